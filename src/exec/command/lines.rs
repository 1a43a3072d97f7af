//! The lines a program prints on stdout that neon-perf reads: metric lines
//! (`{"metric": "latency", "value": 12.5, "unit": "ms"}`) and check lines
//! (`{"check": …, "passed": …}`, as the Python helper's `check` writes
//! them). Any other line is the program's own output, ignored.

use serde::Deserialize;

use crate::metric::{ChecklistItem, Direction};
use crate::result::Check;

/// A metric line the program printed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ProgramMetric {
    pub metric: String,
    pub value: f64,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default, deserialize_with = "direction_word")]
    pub direction: Option<Direction>,
}

fn direction_word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Direction>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref() {
        None => Ok(None),
        Some("lower") | Some("lower_is_better") => Ok(Some(Direction::LowerIsBetter)),
        Some("higher") | Some("higher_is_better") => Ok(Some(Direction::HigherIsBetter)),
        Some("neither") => Ok(Some(Direction::Neither)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "unknown direction `{other}` (use \"lower\", \"higher\" or \"neither\")"
        ))),
    }
}

/// A check line the program printed, as the helper's `neon_perf.check` writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramCheck {
    check: String,
    passed: bool,
    #[serde(default)]
    evidence: String,
    #[serde(default)]
    item: Option<String>,
}

/// Parses one stdout line as a check: `Ok(None)` for lines that are not
/// check objects; an error for one that names a check and is broken.
pub fn parse_check_line(line: &str) -> Result<Option<Check>, String> {
    let t = line.trim();
    if !t.starts_with('{') || !t.contains("\"check\"") {
        return Ok(None);
    }
    let c: ProgramCheck =
        serde_json::from_str(t).map_err(|e| format!("bad check line `{t}`: {e}"))?;
    let item = match c.item.as_deref() {
        None => None,
        Some(id) => Some(ChecklistItem::from_id(id).ok_or_else(|| {
            let ids = ChecklistItem::ALL.map(|i| i.id()).join(", ");
            format!("bad check line `{t}`: unknown checklist item `{id}` (one of: {ids})")
        })?),
    };
    if c.check.trim().is_empty() {
        return Err(format!("bad check line `{t}`: the check has no name"));
    }
    Ok(Some(Check::new(c.check.trim(), c.passed, c.evidence, item)))
}

/// The metrics every `command` run reports from the OS; a program may not
/// print its own under these names (they would be mixed into one series).
pub const RESERVED: [&str; 4] = ["wall_time", "cpu_time", "peak_rss", "process_gpu_memory"];

/// Parses one stdout line: `Ok(None)` for lines that are not metric
/// objects; an error for one that names a metric and is broken.
pub fn parse_metric_line(line: &str) -> Result<Option<ProgramMetric>, String> {
    let t = line.trim();
    if !t.starts_with('{') {
        return Ok(None);
    }
    let value = match serde_json::from_str::<serde_json::Value>(t) {
        Ok(v) => v,
        // Braces in ordinary output are not metric lines; a line that names
        // a metric and is not valid JSON (cut short, `NaN`, `1e999`) is one
        // gone wrong, not one to drop in silence.
        Err(e) if t.contains("\"metric\"") => {
            return Err(format!("bad metric line `{t}`: not valid JSON ({e})"));
        }
        Err(_) => return Ok(None),
    };
    if value.get("metric").is_none() {
        return Ok(None);
    }
    let m: ProgramMetric =
        serde_json::from_value(value).map_err(|e| format!("bad metric line `{t}`: {e}"))?;
    if m.metric.parse::<crate::metric::MetricKey>().is_err() {
        return Err(format!(
            "bad metric line `{t}`: invalid metric name `{}`",
            m.metric
        ));
    }
    if RESERVED.contains(&m.metric.as_str()) {
        return Err(format!(
            "bad metric line `{t}`: `{}` is a metric neon-perf measures itself; print yours under another name",
            m.metric
        ));
    }
    let (unit, scale) = crate::metric::Unit::parse_with_scale(m.unit.as_deref().unwrap_or(""));
    let direction = m.direction.unwrap_or_else(|| unit.default_direction());
    if let Err(e) = crate::metric::check_value(m.value * scale, &unit, direction) {
        return Err(format!("bad metric line `{t}`: its value {e}"));
    }
    Ok(Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines() {
        let m = parse_metric_line(r#"{"metric": "latency", "value": 12.5, "unit": "ms"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.metric, "latency");
        assert_eq!(m.value, 12.5);
        assert_eq!(m.unit.as_deref(), Some("ms"));
        let c = parse_check_line(
            r#"{"check": "unsynchronized timing: step", "passed": false, "evidence": "early", "item": "cuda-sync"}"#,
        )
        .unwrap()
        .unwrap();
        assert!(
            !c.passed && c.item == Some(ChecklistItem::CudaSync),
            "{c:?}"
        );
        assert_eq!(
            parse_check_line(r#"{"metric": "x", "value": 1}"#).unwrap(),
            None
        );
        assert!(parse_check_line(r#"{"check": "x", "passed": true, "item": "gpu"}"#).is_err());
        assert!(parse_check_line(r#"{"check": "x", "passed": "yes"}"#).is_err());
        assert_eq!(parse_metric_line("hello").unwrap(), None);
        assert_eq!(parse_metric_line(r#"{"other": 1}"#).unwrap(), None);
        let d = parse_metric_line(r#"{"metric": "tput", "value": 3, "direction": "higher"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(d.direction, Some(Direction::HigherIsBetter));
        assert!(parse_metric_line(r#"{"metric": "x", "value": "fast"}"#).is_err());
        assert!(parse_metric_line(r#"{"metric": "bad name!", "value": 1}"#).is_err());
        // Broken lines that name a metric are errors, not dropped.
        for bad in [
            r#"{"metric": "w", "value": 1.0, "unit": "ms""#,
            r#"{"metric": "w", "value": NaN}"#,
            r#"{"metric": "w", "value": 1e999}"#,
            // #21 finding 5: accepted before, and shown as "—".
            r#"{"metric": "w", "value": 1e308}"#,
            r#"{"metric": "wall_time", "value": 1.0, "unit": "s"}"#,
            r#"{"metric": "w", "value": -5, "unit": "ms"}"#,
        ] {
            let e = parse_metric_line(bad).unwrap_err();
            assert!(e.contains("bad metric line"), "{bad}: {e}");
        }
        // Braces in other output, and negative values where they can be.
        assert_eq!(parse_metric_line("{ not json }").unwrap(), None);
        assert_eq!(parse_metric_line(r#"{"value": 1.0}"#).unwrap(), None);
        let t = parse_metric_line(r#"{"metric": "t", "value": -3, "unit": "°C"}"#).unwrap();
        assert_eq!(t.unwrap().value, -3.0);
    }
}
