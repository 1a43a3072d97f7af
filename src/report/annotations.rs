//! GitHub Actions annotations: `::error file=…,line=…,title=…::message` for
//! each regressed or failed scenario, `::warning` for an inconclusive or
//! invalid one, pointing at the `[[scenario]]` in its suite file so the
//! pull request shows the failure on that line.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::compare::Verdict;
use crate::report::percent;
use crate::result::Outcome;
use crate::run::{RunReport, ScenarioReport, Status};

/// The workflow commands for `report`. Suite paths are made relative to
/// `root` (the repository checkout, `$GITHUB_WORKSPACE`), as GitHub needs.
pub fn github(report: &RunReport, root: &Path) -> Vec<u8> {
    let mut o = String::new();
    for s in &report.scenarios {
        let level = match s.status {
            Status::Regressed | Status::Failed => "error",
            Status::Inconclusive | Status::Invalid => "warning",
            _ => continue,
        };
        let loc = &s.result.location;
        let file = relative(&loc.file, root);
        let title = format!(
            "neon-perf: {} {}",
            s.result.full_name(),
            s.status.label().to_lowercase()
        );
        let _ = writeln!(
            o,
            "::{level} file={},line={},col={},title={}::{}",
            property(&file.to_string_lossy().replace('\\', "/")),
            loc.line.max(1),
            loc.column.max(1),
            property(&title),
            data(&message(s))
        );
    }
    o.into_bytes()
}

/// `path` relative to `root` when it lies under it (the harness gives
/// absolute suite paths); otherwise as it is.
fn relative(path: &Path, root: &Path) -> PathBuf {
    if path.is_absolute() {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let path_c = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Ok(rel) = path_c.strip_prefix(&root) {
            return rel.to_path_buf();
        }
    }
    path.strip_prefix("./").unwrap_or(path).to_path_buf()
}

fn message(s: &ScenarioReport) -> String {
    match &s.result.outcome {
        Outcome::Failed { error } => return error.clone(),
        Outcome::Ignored { reason } => return reason.clone(),
        Outcome::Ran => {}
    }
    // One reason for the whole run, not one line per metric repeating it.
    if s.status == Status::Invalid && !s.result.invalid_reasons.is_empty() {
        return format!("invalid run: {}", s.result.invalid_reasons.join("; "));
    }
    let mut lines: Vec<String> = Vec::new();
    for v in &s.verdicts {
        let why = match (v.verdict, &v.bound_violation) {
            (Verdict::Regressed, Some(b)) => format!("{}: {b}", v.key),
            (Verdict::Regressed | Verdict::Inconclusive, None) => {
                let change = v.change.map(percent).unwrap_or_else(|| "n/a".into());
                let ci =
                    v.ci.map(|(lo, hi)| format!(", 95% CI {} … {}", percent(lo), percent(hi)))
                        .unwrap_or_default();
                format!(
                    "{}: {} {change} vs baseline{ci}, tolerance ±{:.1}%{}",
                    v.key,
                    v.verdict,
                    v.tolerance * 100.0,
                    v.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            }
            (Verdict::Invalid, _) => format!(
                "{}: invalid{}",
                v.key,
                v.note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            _ => continue,
        };
        lines.push(why);
    }
    lines.join("\n")
}

/// Escapes a command's message (GitHub's toolkit `escapeData`).
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (toolkit `escapeProperty`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_the_toolkit_does() {
        assert_eq!(data("50% of a\nb\r"), "50%25 of a%0Ab%0D");
        assert_eq!(property("a::b,c"), "a%3A%3Ab%2Cc");
    }

    #[test]
    fn paths_become_relative_to_the_workspace() {
        let root = std::env::current_dir().unwrap();
        assert_eq!(
            relative(&root.join("suites/examples.toml"), &root),
            PathBuf::from("suites/examples.toml")
        );
        assert_eq!(
            relative(Path::new("./suites/x.toml"), &root),
            PathBuf::from("suites/x.toml")
        );
        assert_eq!(
            relative(Path::new("/elsewhere/x.toml"), &root),
            PathBuf::from("/elsewhere/x.toml")
        );
    }
}
