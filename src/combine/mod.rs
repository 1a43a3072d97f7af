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
