//! Results files read back and combined: `neon-perf merge` (shards of one
//! run into one report) and `neon-perf compare` (two runs, A/B). Both re-derive
//! verdicts, checklist and exit code with the same code `run` uses.

pub mod ab;
pub mod merge;

use std::path::{Path, PathBuf};

use crate::baseline::HardwareKey;
use crate::outcome::{RESULTS_FORMAT_VERSION, RunReport};

pub use ab::compare_files;
pub use merge::merge;

/// Why results files cannot be read or combined (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error("{}: could not read: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error(
        "{}:{line}:{column}: not a neon-perf results file: {message}\n  hint: write one with `neon-perf run --json FILE` (schema: docs/json-schema.md)",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{}: results format_version {found} is not supported by this build (it reads version {supported})\n  hint: read it with the neon-perf version that wrote it ({tool})",
        path.display()
    )]
    Version {
        path: PathBuf,
        found: u64,
        supported: u32,
        tool: String,
    },
    #[error(
        "refusing to combine results from different hardware: {} is `{}` but {} is `{}`\n  hint: only runs on the same hardware key are comparable; merge each machine's shards separately",
        first.display(), first_key, other.display(), other_key
    )]
    HardwareMismatch {
        first: PathBuf,
        first_key: String,
        other: PathBuf,
        other_key: String,
    },
    #[error(
        "scenario `{scenario}` is in both {} and {}: were the shards run with the same --partition?",
        first.display(), other.display()
    )]
    Duplicate {
        scenario: String,
        first: PathBuf,
        other: PathBuf,
    },
    #[error(
        "{}: {what}\n  hint: a results file is what `neon-perf run --json` wrote; was it edited?",
        path.display()
    )]
    Invalid { path: PathBuf, what: String },
    #[error("{0}")]
    Shards(String),
    #[error("merge needs at least one results file")]
    Empty,
}

/// A results file, read and checked, with where it came from.
#[derive(Clone, Debug)]
pub struct ResultsFile {
    pub path: PathBuf,
    pub report: RunReport,
}

/// Reads a JSON results file (`run --json`). The format version is checked
/// before anything else, so a file from a newer build gets a version
/// message rather than a field-level one.
pub fn read(path: &Path) -> Result<ResultsFile, CombineError> {
    let bytes = std::fs::read(path).map_err(|e| CombineError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse(path, &bytes)
}

/// Parses a results file's bytes; `path` is for messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ResultsFile, CombineError> {
    let corrupt = |e: serde_json::Error| {
        // The position goes in front, as for suite errors; drop serde's copy.
        let text = e.to_string();
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        CombineError::Corrupt {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message,
        }
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    let found = value.get("format_version").and_then(|v| v.as_u64());
    match found {
        Some(v) if v == u64::from(RESULTS_FORMAT_VERSION) => {}
        Some(found) => {
            return Err(CombineError::Version {
                path: path.to_path_buf(),
                found,
                supported: RESULTS_FORMAT_VERSION,
                tool: value
                    .get("tool_version")
                    .and_then(|v| v.as_str())
                    .map(|v| format!("neon-perf {v}"))
                    .unwrap_or_else(|| "unknown".into()),
            });
        }
        None => {
            return Err(CombineError::Corrupt {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: "no numeric `format_version` field".into(),
            });
        }
    }
    // Parse the text again (not the Value) so errors carry line and column.
    let mut report: RunReport = serde_json::from_slice(bytes).map_err(corrupt)?;
    check_meaning(&report).map_err(|what| CombineError::Invalid {
        path: path.to_path_buf(),
        what,
    })?;
    for c in &mut report.checklist {
        c.title = c.item.title();
    }
    Ok(ResultsFile {
        path: path.to_path_buf(),
        report,
    })
}

/// Refuses files whose hardware keys differ from the first one's.
pub fn same_hardware(files: &[ResultsFile]) -> Result<&HardwareKey, CombineError> {
    let first = files.first().ok_or(CombineError::Empty)?;
    for f in &files[1..] {
        let (a, b) = (&first.report.hardware_key, &f.report.hardware_key);
        if a != b {
            // Keys can differ beyond their folder name (a second GPU, say).
            let show = |k: &HardwareKey| {
                if a.dirname() == b.dirname() {
                    serde_json::to_string(k).unwrap_or_default()
                } else {
                    k.dirname()
                }
            };
            return Err(CombineError::HardwareMismatch {
                first: first.path.clone(),
                first_key: show(a),
                other: f.path.clone(),
                other_key: show(b),
            });
        }
    }
    Ok(&first.report.hardware_key)
}

/// What the baseline loader checks of its numbers, checked of a results
/// file's too (the same functions): every sample finite, within range and
/// of a sign its unit allows; quantile estimators in [0, 1]; no metric
/// twice in one scenario.
fn check_meaning(report: &RunReport) -> Result<(), String> {
    for s in &report.scenarios {
        let name = s.result.full_name();
        for (i, m) in s.result.metrics.iter().enumerate() {
            let at = format!("scenario `{name}`, metric `{}`", m.key);
            crate::metric::check_estimator(&m.estimator).map_err(|e| format!("{at}: {e}"))?;
            for (j, v) in m.samples.iter().enumerate() {
                crate::metric::check_value(*v, &m.unit, m.direction)
                    .map_err(|e| format!("{at}: sample {j} {e}"))?;
            }
            if s.result.metrics[..i].iter().any(|o| o.key == m.key) {
                return Err(format!("{at} is there twice"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Estimator, Unit};

    fn file(report: &RunReport) -> Vec<u8> {
        serde_json::to_vec(report).unwrap()
    }

    /// #21 finding 5: `merge` and `compare` read results files through the
    /// baseline loader's checks: negative times, q = 7 and a metric twice
    /// are refused, naming the file, the scenario and the metric.
    #[test]
    fn results_files_are_checked_for_meaning() {
        let good = crate::report::html::fixture::synthetic(20);
        let path = Path::new("r.json");
        assert!(parse(path, &file(&good)).is_ok());
        let tamper = |f: &dyn Fn(&mut RunReport)| {
            let mut r = good.clone();
            f(&mut r);
            parse(path, &file(&r)).unwrap_err().to_string()
        };
        let first_time = |r: &mut RunReport| -> usize {
            r.scenarios[0]
                .result
                .metrics
                .iter()
                .position(|m| m.unit == Unit::Seconds)
                .unwrap()
        };
        let e = tamper(&|r| {
            let i = first_time(r);
            r.scenarios[0].result.metrics[i].samples[3] = -0.5;
        });
        assert!(
            e.contains("r.json") && e.contains("sample 3 is -0.5"),
            "{e}"
        );
        assert!(e.contains("cannot be negative"), "{e}");
        let e = tamper(&|r| {
            r.scenarios[0].result.metrics[0].estimator = Estimator::Quantile(7.0);
        });
        assert!(e.contains("quantile 7 is outside [0, 1]"), "{e}");
        let e = tamper(&|r| {
            let m = r.scenarios[0].result.metrics[0].clone();
            r.scenarios[0].result.metrics.push(m);
        });
        assert!(e.contains("is there twice"), "{e}");
    }

    /// A metric whose unit changed between OLD and NEW is refused by
    /// `compare`, never judged as a ratio of two quantities.
    #[test]
    fn compare_refuses_a_changed_unit() {
        let old = crate::report::html::fixture::synthetic(20);
        let mut new = old.clone();
        let m = &mut new.scenarios[0].result.metrics[0];
        m.unit = if m.unit == Unit::Bytes {
            Unit::Seconds
        } else {
            Unit::Bytes
        };
        let old = ResultsFile {
            path: "old.json".into(),
            report: old,
        };
        let new = ResultsFile {
            path: "new.json".into(),
            report: new,
        };
        let e = compare_files(&old, &new, &crate::compare::Policy::default(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot be compared") && e.contains("old.json"),
            "{e}"
        );
    }
}
