//! The shared vocabulary: metric keys with labels, units, which direction is
//! better, how a sample set is reduced to one number, and checklist items.
//! Every other module speaks these types, so no reporter guesses.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{NO_VALUE, format_bytes_like, format_scaled, format_seconds_like, sig3};

/// `name{label=value,...}`; labels are sorted so the text form is canonical.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricKey {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl MetricKey {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    pub fn with(mut self, label: impl Into<String>, value: impl ToString) -> Self {
        self.labels.insert(label.into(), value.to_string());
        self
    }

    pub fn with_labels<'a>(
        mut self,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        for (k, v) in labels {
            self.labels.insert(k.clone(), v.clone());
        }
        self
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

impl FromStr for MetricKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        };
        let Some(open) = s.find('{') else {
            if !valid_name(s) {
                return Err(format!("invalid metric name `{s}`"));
            }
            return Ok(MetricKey::new(s));
        };
        let name = &s[..open];
        let rest = s[open + 1..]
            .strip_suffix('}')
            .ok_or_else(|| format!("invalid metric name `{s}`: missing closing `}}`"))?;
        if !valid_name(name) {
            return Err(format!("invalid metric name `{s}`"));
        }
        let mut key = MetricKey::new(name);
        for part in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid label `{part}` in `{s}`: expected key=value"))?;
            key.labels
                .insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(key)
    }
}

impl Serialize for MetricKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MetricKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Units are stored in base SI form (seconds, bytes, per second); reporters
/// pick a readable scale.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Seconds,
    Bytes,
    BytesPerSecond,
    FlopPerSecond,
    /// Events per second with no name: `/s`, `1/s`.
    PerSecond,
    /// Named events per second: `req/s` is `Rate("req")`, shown with its
    /// name ("1.23 kreq/s"). Compares with [`Unit::PerSecond`]: see
    /// [`Unit::same_quantity`].
    Rate(String),
    Percent,
    /// A plain ratio, e.g. 0.93 of peak, or a speed-up.
    Ratio,
    Count,
    Watts,
    Celsius,
    Hertz,
    /// A unit the program declared that neon-perf does not know; shown as is.
    Other(String),
}

impl Unit {
    /// Whether a value in this unit may be below zero (a temperature, a
    /// unit neon-perf does not know). Times, sizes, rates, counts and
    /// ratios cannot: a baseline holding one is refused as corrupt, and a
    /// program printing one is refused too.
    pub fn may_be_negative(&self) -> bool {
        matches!(self, Unit::Celsius | Unit::Other(_))
    }

    /// Maps a unit string from a program's JSON output or a suite to a unit
    /// and the factor that converts a value into base units.
    pub fn parse_with_scale(s: &str) -> (Unit, f64) {
        match s.trim() {
            "ns" => (Unit::Seconds, 1e-9),
            "us" | "µs" => (Unit::Seconds, 1e-6),
            "ms" => (Unit::Seconds, 1e-3),
            "s" => (Unit::Seconds, 1.0),
            "B" | "bytes" => (Unit::Bytes, 1.0),
            "KiB" => (Unit::Bytes, 1024.0),
            "MiB" => (Unit::Bytes, 1024.0 * 1024.0),
            "GiB" => (Unit::Bytes, 1024.0 * 1024.0 * 1024.0),
            "KB" | "kB" => (Unit::Bytes, 1e3),
            "MB" => (Unit::Bytes, 1e6),
            "GB" => (Unit::Bytes, 1e9),
            "B/s" => (Unit::BytesPerSecond, 1.0),
            "MB/s" => (Unit::BytesPerSecond, 1e6),
            "GB/s" => (Unit::BytesPerSecond, 1e9),
            "TB/s" => (Unit::BytesPerSecond, 1e12),
            "MiB/s" => (Unit::BytesPerSecond, 1024.0 * 1024.0),
            "GiB/s" => (Unit::BytesPerSecond, 1024.0 * 1024.0 * 1024.0),
            "FLOP/s" | "flop/s" => (Unit::FlopPerSecond, 1.0),
            "GFLOP/s" => (Unit::FlopPerSecond, 1e9),
            "TFLOP/s" => (Unit::FlopPerSecond, 1e12),
            "/s" | "1/s" => (Unit::PerSecond, 1.0),
            "%" => (Unit::Percent, 1.0),
            "x" | "ratio" => (Unit::Ratio, 1.0),
            "" | "count" => (Unit::Count, 1.0),
            "W" => (Unit::Watts, 1.0),
            "C" | "°C" => (Unit::Celsius, 1.0),
            "Hz" => (Unit::Hertz, 1.0),
            "MHz" => (Unit::Hertz, 1e6),
            other => rate(other).unwrap_or_else(|| (Unit::Other(other.to_string()), 1.0)),
        }
    }

    /// Whether values in `self` and `other` measure the same thing on the
    /// same scale, so that one can be compared with the other: equal units,
    /// or an unnamed and a named rate (a baseline recorded while `req/s`
    /// was stored as plain "per second" still gates a run that names it).
    pub fn same_quantity(&self, other: &Unit) -> bool {
        self == other
            || matches!(
                (self, other),
                (Unit::PerSecond, Unit::Rate(_)) | (Unit::Rate(_), Unit::PerSecond)
            )
    }

    /// The direction a unit usually implies when the user says nothing.
    pub fn default_direction(&self) -> Direction {
        match self {
            Unit::Seconds | Unit::Bytes => Direction::LowerIsBetter,
            Unit::BytesPerSecond | Unit::FlopPerSecond | Unit::PerSecond | Unit::Rate(_) => {
                Direction::HigherIsBetter
            }
            _ => Direction::LowerIsBetter,
        }
    }

    /// A value in base units, formatted for people. Not a number (the
    /// estimate of a run with no finite samples) is a dash.
    pub fn format(&self, v: f64) -> String {
        self.format_like(v, None)
    }

    /// [`Unit::format`] for a value shown beside `like`, the other side of a
    /// comparison: a zero takes `like`'s scale ("0 ms" beside "12.3 ms",
    /// "0 µs" beside "3.20 µs"), where alone it takes the unit's own.
    pub fn format_like(&self, v: f64, like: Option<f64>) -> String {
        if !v.is_finite() {
            return NO_VALUE.into();
        }
        let scaled = |units: &[&str]| format_scaled(v, units, 1000.0, 0, like);
        match self {
            Unit::Seconds => format_seconds_like(v, like),
            Unit::Bytes => format_bytes_like(v, like),
            Unit::BytesPerSecond => scaled(&["B/s", "KB/s", "MB/s", "GB/s", "TB/s"]),
            Unit::FlopPerSecond => scaled(&[
                "FLOP/s", "kFLOP/s", "MFLOP/s", "GFLOP/s", "TFLOP/s", "PFLOP/s",
            ]),
            Unit::PerSecond => scaled(&["/s", "k/s", "M/s", "G/s"]),
            Unit::Rate(name) => format_rate(v, name, like),
            Unit::Percent => format!("{}%", sig3(v)),
            Unit::Ratio => format!("{}x", sig3(v)),
            Unit::Count => format_count(v),
            Unit::Watts => format!("{} W", sig3(v)),
            Unit::Celsius => format!("{} °C", sig3(v)),
            Unit::Hertz => scaled(&["Hz", "kHz", "MHz", "GHz"]),
            Unit::Other(u) => format!("{} {u}", sig3(v)),
        }
    }

    /// Short name for tables and machine output.
    pub fn symbol(&self) -> String {
        match self {
            Unit::Seconds => "s".into(),
            Unit::Bytes => "B".into(),
            Unit::BytesPerSecond => "B/s".into(),
            Unit::FlopPerSecond => "FLOP/s".into(),
            Unit::PerSecond => "/s".into(),
            Unit::Rate(name) => format!("{name}/s"),
            Unit::Percent => "%".into(),
            Unit::Ratio => "x".into(),
            Unit::Count => "count".into(),
            Unit::Watts => "W".into(),
            Unit::Celsius => "°C".into(),
            Unit::Hertz => "Hz".into(),
            Unit::Other(u) => u.clone(),
        }
    }
}

/// Events a rate is often named after, read back with a prefix too
/// ("1.5kreq/s"). Any other `<word>/s` of letters is a rate named `word`
/// ("frames/s"), read without a prefix ("kernels/s" is not k·"ernels").
const RATE_NAMES: [&str; 6] = ["msg", "ops", "req", "samples", "items", "tokens"];
/// The prefixes a rate is shown with, and read back: "1.23 kreq/s".
const RATE_PREFIXES: [(&str, f64); 4] = [("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9)];

/// A count: a whole number as it is ("32768" batches, not "32800"; "64",
/// not "64.0"), anything else (a median of counts, a mean) to three
/// significant digits.
fn format_count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        sig3(v)
    }
}

/// A rate in `name`s per second. A name of letters takes its prefix
/// ("1.23 kreq/s", "2.40 kframes/s"); any other name, one a suite chose
/// (`units.name = "audio_s"`), keeps it on the number, where it cannot
/// read as part of the name ("1.23k audio_s/s", not "1.23 kaudio_s/s").
fn format_rate(v: f64, name: &str, like: Option<f64>) -> String {
    let prefixes = RATE_PREFIXES.map(|(p, _)| p);
    if name.chars().all(|c| c.is_ascii_alphabetic()) {
        let units = prefixes.map(|p| format!("{p}{name}/s"));
        format_scaled(v, &units.each_ref().map(String::as_str), 1000.0, 0, like)
    } else {
        let number = format_scaled(v, &prefixes, 1000.0, 0, like);
        format!("{} {name}/s", number.replace(' ', ""))
    }
}

/// A rate and its factor to events per second: "req/s" → (`Rate("req")`,
/// 1), "kreq/s" → 1000, "k/s" → (`PerSecond`, 1000).
fn rate(s: &str) -> Option<(Unit, f64)> {
    let per = s.strip_suffix("/s")?;
    RATE_PREFIXES
        .iter()
        .find_map(|&(prefix, scale)| {
            let name = per.strip_prefix(prefix)?;
            if name.is_empty() && !prefix.is_empty() {
                Some((Unit::PerSecond, scale))
            } else if RATE_NAMES.contains(&name) {
                Some((Unit::Rate(name.to_string()), scale))
            } else {
                None
            }
        })
        .or_else(|| {
            // A unit per second ("ms/s", time spent per second) is not a rate
            // of events: as written, lower is better.
            let word = !per.is_empty() && per.chars().all(|c| c.is_ascii_alphabetic());
            (word && matches!(Unit::parse_with_scale(per).0, Unit::Other(_)))
                .then(|| (Unit::Rate(per.to_string()), 1.0))
        })
}

/// Which way is better. `Neither` metrics are reported but never gated on
/// change (absolute bounds still apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
    Neither,
}

/// The largest magnitude a metric value may have, in base units: no
/// measurement is that large (an exaflop is 1e18 FLOP/s), so a larger one
/// is a unit or scale mistake, and it would not display.
pub const MAX_MAGNITUDE: f64 = 1e30;

/// The smallest estimate a ratio may be taken against: below it (zero
/// aside, which compare names as undefined) a ratio is noise in the last
/// bits of a subnormal number.
pub const MIN_RATIO_BASE: f64 = 1e-300;

/// What every door (a program's output, a baseline file, a results file)
/// checks of one value: finite, within [`MAX_MAGNITUDE`], and not negative
/// in a unit that cannot be, unless the metric has no better direction (a
/// slope, a difference: `rss_growth` shrinks). The error completes "… is
/// 1e308, …".
pub fn check_value(v: f64, unit: &Unit, direction: Direction) -> Result<(), String> {
    if !v.is_finite() {
        Err(format!("is {v}, not a finite number"))
    } else if v.abs() > MAX_MAGNITUDE {
        Err(format!(
            "is {v:e}, beyond ±{MAX_MAGNITUDE:e}: no measurement is that large (a unit or scale mistake?)"
        ))
    } else if v < 0.0 && !unit.may_be_negative() && direction != Direction::Neither {
        Err(format!(
            "is {v}, but a value in `{}` cannot be negative",
            unit.symbol()
        ))
    } else {
        Ok(())
    }
}

/// A quantile estimator's `q` must lie in [0, 1].
pub fn check_estimator(e: &Estimator) -> Result<(), String> {
    match e {
        Estimator::Quantile(q) if !(0.0..=1.0).contains(q) => {
            Err(format!("quantile {q} is outside [0, 1]"))
        }
        _ => Ok(()),
    }
}

/// How a metric's samples reduce to the one number the gate compares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "q")]
pub enum Estimator {
    Median,
    /// A quantile in (0, 1): a low one for times, where noise only adds time.
    Quantile(f64),
    Mean,
    Min,
    Max,
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Estimator::Median => f.write_str("median"),
            Estimator::Quantile(q) => {
                let p = format!("{:.3}", q * 100.0);
                write!(f, "p{}", p.trim_end_matches('0').trim_end_matches('.'))
            }
            Estimator::Mean => f.write_str("mean"),
            Estimator::Min => f.write_str("min"),
            Estimator::Max => f.write_str("max"),
        }
    }
}

/// The estimator a metric gets unless its rule says otherwise: p5 for
/// lower-is-better times (noise only adds time, so the fast tail is the
/// stable part of the distribution), p95 for higher-is-better rates (the
/// same argument mirrored), the median for everything else. See
/// docs/gate-design.md for the measurements behind this choice.
pub fn default_estimator(unit: &Unit, direction: Direction) -> Estimator {
    match (unit, direction) {
        (Unit::Seconds, Direction::LowerIsBetter) => Estimator::Quantile(0.05),
        (
            Unit::BytesPerSecond | Unit::FlopPerSecond | Unit::PerSecond | Unit::Rate(_),
            Direction::HigherIsBetter,
        ) => Estimator::Quantile(0.95),
        _ => Estimator::Median,
    }
}

/// One metric of one scenario run: every sample kept, with unit and direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub key: MetricKey,
    pub unit: Unit,
    pub direction: Direction,
    pub estimator: Estimator,
    pub samples: Vec<f64>,
}

impl MetricSeries {
    pub fn new(key: MetricKey, unit: Unit, direction: Direction, estimator: Estimator) -> Self {
        Self {
            key,
            unit,
            direction,
            estimator,
            samples: Vec::new(),
        }
    }

    /// A time in seconds, lower is better, p5: the series most tests of
    /// the gate need.
    pub fn seconds(name: &str, samples: Vec<f64>) -> Self {
        Self {
            samples,
            ..Self::new(
                MetricKey::new(name),
                Unit::Seconds,
                Direction::LowerIsBetter,
                Estimator::Quantile(0.05),
            )
        }
    }

    /// The samples that are finite numbers (what every estimate is taken of).
    pub fn finite_samples(&self) -> Vec<f64> {
        self.samples
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect()
    }

    /// A metric measured once per run (e.g. a derived figure).
    pub fn single(key: MetricKey, unit: Unit, direction: Direction, value: f64) -> Self {
        Self {
            key,
            unit,
            direction,
            estimator: Estimator::Median,
            samples: vec![value],
        }
    }
}

/// The seven items every report ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChecklistItem {
    GpuMemory,
    CudaSync,
    WebsocketBuffers,
    Batching,
    MemoryCleanup,
    Monitoring,
    ErrorHandling,
}

impl ChecklistItem {
    pub const ALL: [ChecklistItem; 7] = [
        ChecklistItem::GpuMemory,
        ChecklistItem::CudaSync,
        ChecklistItem::WebsocketBuffers,
        ChecklistItem::Batching,
        ChecklistItem::MemoryCleanup,
        ChecklistItem::Monitoring,
        ChecklistItem::ErrorHandling,
    ];

    pub fn id(self) -> &'static str {
        match self {
            ChecklistItem::GpuMemory => "gpu-memory",
            ChecklistItem::CudaSync => "cuda-sync",
            ChecklistItem::WebsocketBuffers => "websocket-buffers",
            ChecklistItem::Batching => "batching",
            ChecklistItem::MemoryCleanup => "memory-cleanup",
            ChecklistItem::Monitoring => "monitoring",
            ChecklistItem::ErrorHandling => "error-handling",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ChecklistItem::GpuMemory => "GPU memory usage optimized",
            ChecklistItem::CudaSync => "CUDA operations properly synchronized",
            ChecklistItem::WebsocketBuffers => "WebSocket buffer sizes configured",
            ChecklistItem::Batching => "Batch processing implemented where appropriate",
            ChecklistItem::MemoryCleanup => "Memory cleanup handlers in place",
            ChecklistItem::Monitoring => "Performance monitoring enabled",
            ChecklistItem::ErrorHandling => "Error handling properly implemented",
        }
    }

    pub fn from_id(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.id() == s)
    }
}

impl fmt::Display for ChecklistItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trip() {
        let k = MetricKey::new("latency_p99")
            .with("batch", 8)
            .with("a", "x");
        assert_eq!(k.to_string(), "latency_p99{a=x,batch=8}");
        assert_eq!("latency_p99{batch=8,a=x}".parse::<MetricKey>().unwrap(), k);
        assert_eq!(
            "wall_time".parse::<MetricKey>().unwrap().to_string(),
            "wall_time"
        );
        assert!("bad{".parse::<MetricKey>().is_err());
        assert!("".parse::<MetricKey>().is_err());
        assert!("x{nolabel}".parse::<MetricKey>().is_err());
    }

    #[test]
    fn units_scale() {
        assert_eq!(Unit::parse_with_scale("ms"), (Unit::Seconds, 1e-3));
        assert_eq!(Unit::parse_with_scale("GB/s"), (Unit::BytesPerSecond, 1e9));
        assert_eq!(Unit::BytesPerSecond.format(3.0e12), "3.00 TB/s");
        assert_eq!(Unit::Seconds.format(0.0125), "12.5 ms");
        assert_eq!(
            Unit::parse_with_scale("widgets").0,
            Unit::Other("widgets".into())
        );
    }

    #[test]
    fn a_missing_value_is_a_dash_never_nan() {
        let units = [
            Unit::Seconds,
            Unit::Bytes,
            Unit::BytesPerSecond,
            Unit::FlopPerSecond,
            Unit::PerSecond,
            Unit::Rate("req".into()),
            Unit::Percent,
            Unit::Ratio,
            Unit::Count,
            Unit::Watts,
            Unit::Celsius,
            Unit::Hertz,
            Unit::Other("widgets".into()),
        ];
        for unit in units {
            for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                assert_eq!(unit.format(v), "—", "{unit:?} {v}");
            }
        }
    }

    #[test]
    fn zero_takes_the_scale_beside_it() {
        assert_eq!(Unit::Seconds.format(0.0), "0 ms");
        assert_eq!(Unit::Seconds.format_like(0.0, Some(3.2e-6)), "0 µs");
        assert_eq!(Unit::Seconds.format_like(0.0, Some(2.5)), "0 s");
        assert_eq!(Unit::Seconds.format_like(0.0, Some(f64::NAN)), "0 ms");
        assert_eq!(Unit::Bytes.format_like(0.0, Some(8.0 * 1048576.0)), "0 MiB");
        assert_eq!(Unit::BytesPerSecond.format_like(0.0, Some(3e9)), "0 GB/s");
        // Only a zero: any other value takes its own scale.
        assert_eq!(Unit::Seconds.format_like(5e-7, Some(0.0123)), "500 ns");
        assert_eq!(Unit::PerSecond.format(999.7), "1.00 k/s");
    }

    #[test]
    fn named_rates_keep_their_name() {
        let cases = [
            ("req/s", 1234.0, "1.23 kreq/s"),
            ("req/s", 12.0, "12.0 req/s"),
            ("kreq/s", 1.5, "1.50 kreq/s"),
            ("tokens/s", 5e6, "5.00 Mtokens/s"),
            ("msg/s", 2.5e9, "2.50 Gmsg/s"),
            ("/s", 1234.0, "1.23 k/s"),
            ("k/s", 1.5, "1.50 k/s"),
        ];
        for (unit, value, want) in cases {
            let (u, scale) = Unit::parse_with_scale(unit);
            assert_eq!(u.format(value * scale), want, "{value} {unit}");
            assert_eq!(u.default_direction(), Direction::HigherIsBetter, "{unit}");
        }
        assert_eq!(
            Unit::parse_with_scale("req/s"),
            (Unit::Rate("req".into()), 1.0)
        );
        assert_eq!(Unit::Rate("req".into()).symbol(), "req/s");
        assert_eq!(
            default_estimator(&Unit::Rate("req".into()), Direction::HigherIsBetter),
            Estimator::Quantile(0.95)
        );
        // Any other word per second is a rate by that name, read with no
        // prefix: "kernels/s" is not k·"ernels".
        for (unit, name) in [("frames/s", "frames"), ("kernels/s", "kernels")] {
            let (u, scale) = Unit::parse_with_scale(unit);
            assert_eq!((u.clone(), scale), (Unit::Rate(name.into()), 1.0));
            assert_eq!(u.default_direction(), Direction::HigherIsBetter);
        }
        assert_eq!(Unit::Rate("frames".into()).format(2400.0), "2.40 kframes/s");
        assert_eq!(Unit::Count.format(32768.0), "32768");
        assert_eq!(Unit::Count.format(64.0), "64");
        assert_eq!(Unit::Count.format(1.0), "1");
        assert_eq!(Unit::Count.format(2.5), "2.50");
        assert_eq!(Unit::Count.format(17163.5), "17200");
        let audio = Unit::Rate("audio_s".into());
        assert_eq!(audio.format(28.4), "28.4 audio_s/s");
        assert_eq!(audio.format(2400.0), "2.40k audio_s/s");
        assert_eq!(audio.format_like(0.0, Some(2400.0)), "0k audio_s/s");
        assert_eq!(audio.format(f64::NAN), NO_VALUE);
        // Not a word: a unit neon-perf does not know, shown as written.
        assert_eq!(
            Unit::parse_with_scale("MiB/h").0,
            Unit::Other("MiB/h".into())
        );
        assert_eq!(Unit::parse_with_scale("ms/s").0, Unit::Other("ms/s".into()));
        // Baselines stored `req/s` as plain "per second": still comparable.
        let lower = Direction::LowerIsBetter;
        assert!(
            check_value(1e308, &Unit::Seconds, lower)
                .unwrap_err()
                .contains("beyond")
        );
        assert!(
            check_value(-1.0, &Unit::Bytes, lower)
                .unwrap_err()
                .contains("cannot be negative")
        );
        assert!(check_value(-1.0, &Unit::Bytes, Direction::Neither).is_ok());
        assert!(check_value(f64::NAN, &Unit::Bytes, lower).is_err());
        assert!(check_value(-3.0, &Unit::Celsius, lower).is_ok());
        assert!(check_value(1e18, &Unit::FlopPerSecond, Direction::HigherIsBetter).is_ok());
        assert!(check_estimator(&Estimator::Quantile(7.0)).is_err());
        assert!(check_estimator(&Estimator::Quantile(0.05)).is_ok());
        assert!(Unit::PerSecond.same_quantity(&Unit::Rate("req".into())));
        assert!(Unit::Rate("req".into()).same_quantity(&Unit::PerSecond));
        assert!(!Unit::Rate("req".into()).same_quantity(&Unit::Rate("msg".into())));
        assert!(!Unit::PerSecond.same_quantity(&Unit::Seconds));
    }

    #[test]
    fn estimator_names() {
        assert_eq!(Estimator::Quantile(0.05).to_string(), "p5");
        assert_eq!(Estimator::Quantile(0.995).to_string(), "p99.5");
        assert_eq!(Estimator::Median.to_string(), "median");
    }

    #[test]
    fn checklist_ids() {
        for item in ChecklistItem::ALL {
            assert_eq!(ChecklistItem::from_id(item.id()), Some(item));
        }
    }
}
