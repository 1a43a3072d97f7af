//! Human-readable quantities in suite files: durations ("500ms", "10s") and
//! sizes ("4KiB", "2GiB"). Leaf module: parsing and formatting only.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written with an explicit unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// A size in bytes, written as a plain integer or with a unit:
/// `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let num: String = num.chars().filter(|c| *c != '_').collect();
    let value: f64 = num.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    Some((value, unit.trim()))
}

/// Parses "500ms", "1.5s", "2m". A bare number is refused: the unit must be explicit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (value, unit) = split_number(s).ok_or_else(|| {
        format!(
            "invalid duration `{s}`: expected a number with a unit, such as \"500ms\" or \"10s\""
        )
    })?;
    let nanos_per = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "" => {
            return Err(format!(
                "invalid duration `{s}`: missing unit (write \"{s}s\" or \"{s}ms\")"
            ));
        }
        other => {
            return Err(format!(
                "invalid duration `{s}`: unknown unit `{other}` (use ns, us, ms, s, m or h)"
            ));
        }
    };
    let nanos = value * nanos_per;
    if nanos > u64::MAX as f64 {
        return Err(format!("invalid duration `{s}`: too large"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Parses "4KiB", "2GiB", "512", "1.5MB".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (value, unit) = split_number(s).ok_or_else(|| {
        format!("invalid size `{s}`: expected a number with a unit, such as \"4KiB\" or \"2GiB\"")
    })?;
    let mult: f64 = match unit {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0f64.powi(4),
        other => {
            return Err(format!(
                "invalid size `{s}`: unknown unit `{other}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ));
        }
    };
    let bytes = value * mult;
    if bytes > u64::MAX as f64 {
        return Err(format!("invalid size `{s}`: too large"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("invalid size `{s}`: not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// Formats a duration with three significant digits in the largest fitting unit.
pub fn format_duration(d: Duration) -> String {
    format_seconds(d.as_secs_f64())
}

/// Time units from the smallest, each 1000 of the one before.
const TIME_UNITS: [&str; 4] = ["ns", "µs", "ms", "s"];
/// The scale a zero time takes when nothing beside it sets one: "0 ms".
/// Zero has no magnitude of its own, and "0 s" reads as "under half a
/// second".
const TIME_ZERO: usize = 2;

/// Formats seconds as "12.3 ms", "1.20 s", ...; zero is "0 ms".
pub fn format_seconds(secs: f64) -> String {
    format_seconds_like(secs, None)
}

/// [`format_seconds`] for a value shown beside `like` (the other side of a
/// comparison): a zero takes `like`'s scale, "0 µs" beside "3.20 µs".
pub fn format_seconds_like(secs: f64, like: Option<f64>) -> String {
    format_scaled(
        secs * 1e9,
        &TIME_UNITS,
        1000.0,
        TIME_ZERO,
        like.map(|l| l * 1e9),
    )
}

/// Formats bytes in binary units: "4.00 KiB", "100 B".
pub fn format_bytes(bytes: f64) -> String {
    format_bytes_like(bytes, None)
}

/// [`format_bytes`] of a whole number of bytes.
pub fn format_byte_count(bytes: u64) -> String {
    format_bytes(bytes as f64)
}

/// [`format_bytes`] for a value shown beside `like`: a zero takes `like`'s
/// scale, "0 MiB" beside "8.18 MiB".
pub fn format_bytes_like(bytes: f64, like: Option<f64>) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if !bytes.is_finite() {
        return NO_VALUE.into();
    }
    let i = scale_index(bytes, UNITS.len(), 1024.0, 0, like);
    // A whole number of bytes is shown exactly; a fraction of one (a mean
    // or a median between two counts) keeps its digits rather than
    // rounding to "0 B".
    if i == 0 && bytes.fract() == 0.0 {
        format!("{bytes:.0} B")
    } else {
        format!("{} {}", sig3(bytes / 1024f64.powi(i as i32)), UNITS[i])
    }
}

/// What a table shows for a value that is not a number (an estimate of no
/// samples): a dash, like any other empty cell, never `NaN`.
pub const NO_VALUE: &str = "—";

/// `v` (in `units[0]`) in the largest of `units`, each `base` times the
/// one before, that leaves at least 1 once rounded to three digits (so
/// 999.96 ms is "1.00 s", not "1000 ms"). A zero takes the scale `like`
/// would get, or `units[zero]` without one. Not a number: [`NO_VALUE`].
pub fn format_scaled(v: f64, units: &[&str], base: f64, zero: usize, like: Option<f64>) -> String {
    if !v.is_finite() {
        return NO_VALUE.into();
    }
    let i = scale_index(v, units.len(), base, zero, like);
    format!("{} {}", sig3(v / base.powi(i as i32)), units[i])
}

fn scale_index(v: f64, n: usize, base: f64, zero: usize, like: Option<f64>) -> usize {
    let index = |x: f64| {
        let mut m = x.abs();
        let mut i = 0;
        // `m >= base` too: with base 1024, round3 takes 1024 down to 1020,
        // and exactly 1 GiB would read "1020 MiB".
        while i + 1 < n && (m >= base || round3(m) >= base) {
            m /= base;
            i += 1;
        }
        i
    };
    if v == 0.0 {
        like.filter(|l| l.is_finite() && *l != 0.0)
            .map_or(zero.min(n - 1), index)
    } else {
        index(v)
    }
}

/// `v` rounded to three significant digits: what [`sig3`] shows.
fn round3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let e = v.abs().log10().floor() as i32;
    let m = 10f64.powi(2 - e);
    (v * m).round() / m
}

/// Three significant digits without exponent for the usual ranges
/// ("123", "12.3", "1.23", "0.0123"); below 0.001, with one ("1.23e-4").
pub fn sig3(v: f64) -> String {
    // Round first, so that the digits shown decide the format: 9.996 is
    // "10.0", not "10.00".
    let r = round3(v);
    let a = r.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 100.0 {
        format!("{r:.0}")
    } else if a >= 0.001 {
        let decimals = (2 - a.log10().floor() as i32) as usize;
        format!("{r:.decimals$}")
    } else {
        format!("{r:.2e}")
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_bytes(self.0 as f64))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(HumanDuration)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_size(s).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\" or \"10s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                parse_duration(s).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "invalid duration `{v}`: missing unit (write \"{v}s\" or \"{v}ms\")"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "invalid duration `{v}`: missing unit (write \"{v}s\" or \"{v}ms\")"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ns", self.0.as_nanos()))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"4KiB\", \"2GiB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
                parse_size(s).map(ByteSize).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size `{v}`: must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("250us", Duration::from_micros(250)),
            ("2m", Duration::from_secs(120)),
            ("1_000ns", Duration::from_nanos(1000)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s).unwrap(), want, "{s}");
        }
        for bad in ["10", "ten s", "10 parsecs", "", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn sizes() {
        let cases = [
            ("4KiB", 4096),
            ("2GiB", 2 << 30),
            ("512", 512),
            ("1.5MiB", 1_572_864),
            ("4KB", 4000),
            ("64 B", 64),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s).unwrap(), want, "{s}");
        }
        for bad in ["4 KiBs", "x", "0.5B", "-4KiB"] {
            assert!(parse_size(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_seconds(0.0123), "12.3 ms");
        assert_eq!(format_seconds(1.2), "1.20 s");
        assert_eq!(format_seconds(2.5e-7), "250 ns");
        assert_eq!(format_bytes(4096.0), "4.00 KiB");
        assert_eq!(format_bytes(100.0), "100 B");
    }

    #[test]
    fn zero_and_tiny_values_keep_a_sensible_unit() {
        // Zero has no scale of its own; "0 s" read as "under half a second".
        assert_eq!(format_seconds(0.0), "0 ms");
        assert_eq!(format_seconds(-0.0), "0 ms");
        assert_eq!(format_duration(Duration::ZERO), "0 ms");
        assert_eq!(format_bytes(0.0), "0 B");
        // The scale is chosen on the rounded value: not "1000 ms".
        assert_eq!(format_seconds(0.99996), "1.00 s");
        assert_eq!(format_seconds(999.7e-9), "1.00 µs");
        assert_eq!(format_seconds(2.5e-13), "2.50e-4 ns");
        // A fraction of a byte (a median between two counts) is not "0 B".
        assert_eq!(format_bytes(0.4), "0.400 B");
        assert_eq!(format_bytes(1023.0), "1023 B");
        // Exactly one unit up is that unit: not "1020 MiB" for 1 GiB.
        assert_eq!(format_bytes(1024.0), "1.00 KiB");
        assert_eq!(format_bytes((1u64 << 30) as f64), "1.00 GiB");
        assert_eq!(format_bytes(1024.5 * 1024.0), "1.00 MiB");
        // Three significant digits below 0.1 too, and no fourth after rounding.
        assert_eq!(sig3(0.0123), "0.0123");
        assert_eq!(sig3(0.5), "0.500");
        assert_eq!(sig3(9.996), "10.0");
        assert_eq!(sig3(99.96), "100");
        assert_eq!(sig3(2.5e-5), "2.50e-5");
        assert_eq!(format_seconds(f64::NAN), NO_VALUE);
        assert_eq!(format_bytes(f64::INFINITY), NO_VALUE);
    }
}
