//! The shared vocabulary: metric keys with labels, units, which direction is
//! better, how a sample set is reduced to one number, and checklist items.
//! Every other module speaks these types, so no reporter guesses.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{format_bytes, format_seconds, sig3};

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
    /// Events per second: msg/s, samples/s, launches/s.
    PerSecond,
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
            "/s" | "1/s" | "msg/s" | "ops/s" | "samples/s" | "items/s" | "req/s" | "tokens/s" => {
                (Unit::PerSecond, 1.0)
            }
            "%" => (Unit::Percent, 1.0),
            "x" | "ratio" => (Unit::Ratio, 1.0),
            "" | "count" => (Unit::Count, 1.0),
            "W" => (Unit::Watts, 1.0),
            "C" | "°C" => (Unit::Celsius, 1.0),
            "Hz" => (Unit::Hertz, 1.0),
            "MHz" => (Unit::Hertz, 1e6),
            other => (Unit::Other(other.to_string()), 1.0),
        }
    }

    /// The direction a unit usually implies when the user says nothing.
    pub fn default_direction(&self) -> Direction {
        match self {
            Unit::Seconds | Unit::Bytes => Direction::LowerIsBetter,
            Unit::BytesPerSecond | Unit::FlopPerSecond | Unit::PerSecond => {
                Direction::HigherIsBetter
            }
            _ => Direction::LowerIsBetter,
        }
    }

    /// A value in base units, formatted for people.
    pub fn format(&self, v: f64) -> String {
        if !v.is_finite() {
            return format!("{v}");
        }
        match self {
            Unit::Seconds => format_seconds(v),
            Unit::Bytes => format_bytes(v),
            Unit::BytesPerSecond => scaled(v, &["B/s", "KB/s", "MB/s", "GB/s", "TB/s"], 1000.0),
            Unit::FlopPerSecond => scaled(
                v,
                &[
                    "FLOP/s", "kFLOP/s", "MFLOP/s", "GFLOP/s", "TFLOP/s", "PFLOP/s",
                ],
                1000.0,
            ),
            Unit::PerSecond => scaled(v, &["/s", "k/s", "M/s", "G/s"], 1000.0),
            Unit::Percent => format!("{}%", sig3(v)),
            Unit::Ratio => format!("{}x", sig3(v)),
            Unit::Count => sig3(v),
            Unit::Watts => format!("{} W", sig3(v)),
            Unit::Celsius => format!("{} °C", sig3(v)),
            Unit::Hertz => scaled(v, &["Hz", "kHz", "MHz", "GHz"], 1000.0),
            Unit::Other(u) => format!("{} {u}", sig3(v)),
        }
    }

    /// Short name for tables and machine output.
    pub fn symbol(&self) -> &str {
        match self {
            Unit::Seconds => "s",
            Unit::Bytes => "B",
            Unit::BytesPerSecond => "B/s",
            Unit::FlopPerSecond => "FLOP/s",
            Unit::PerSecond => "/s",
            Unit::Percent => "%",
            Unit::Ratio => "x",
            Unit::Count => "count",
            Unit::Watts => "W",
            Unit::Celsius => "°C",
            Unit::Hertz => "Hz",
            Unit::Other(u) => u,
        }
    }
}

fn scaled(v: f64, units: &[&str], base: f64) -> String {
    let mut x = v;
    let mut i = 0;
    while x.abs() >= base && i + 1 < units.len() {
        x /= base;
        i += 1;
    }
    format!("{} {}", sig3(x), units[i])
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
            Unit::BytesPerSecond | Unit::FlopPerSecond | Unit::PerSecond,
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
