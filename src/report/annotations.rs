//! GitHub Actions annotations: `::error file=…,line=…,title=…::message` for
//! each regressed or failed scenario, `::warning` for an inconclusive or
//! invalid one, pointing at the `[[scenario]]` in its suite file so the
//! pull request shows the failure on that line.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::compare::Verdict;
use crate::outcome::{RunReport, ScenarioReport, Status};
use crate::report::percent;
use crate::result::Outcome;

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
            (Verdict::Regressed, Some(b)) => format!("{}: {}", v.key, super::bound_text(v, b)),
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
    use crate::compare::MetricVerdict;
    use crate::metric::{Direction, Estimator, Unit};
    use crate::plan::{Kind, SourceLocation};
    use crate::result::ScenarioResult;

    fn report(status: Status, verdict: Verdict, invalid: &[&str]) -> RunReport {
        let v = MetricVerdict {
            key: "lat{batch=8}".parse().unwrap(),
            unit: Unit::Seconds,
            direction: Direction::LowerIsBetter,
            estimator: Estimator::Quantile(0.05),
            verdict,
            current: 0.011,
            baseline: Some(0.010),
            change: Some(0.1),
            ci: Some((-0.05, 0.25)),
            p_value: None,
            tolerance: 0.05,
            bound_violation: None,
            gated: true,
            note: Some("interval wide".into()),
            pairs: Vec::new(),
            pair_order: Vec::new(),
        };
        let result = ScenarioResult {
            suite: "s".into(),
            scenario: "x".into(),
            kind: Kind::Command,
            location: SourceLocation {
                file: "suites/s.toml".into(),
                line: 7,
                column: 1,
            },
            device: "cpu".into(),
            outcome: Outcome::Ran,
            metrics: vec![],
            checks: vec![],
            monitor: Default::default(),
            invalid_reasons: invalid.iter().map(|r| r.to_string()).collect(),
            warnings: vec![],
            wall_time_s: 1.0,
        };
        RunReport {
            format_version: 1,
            tool_version: "0".into(),
            created: String::new(),
            git_commit: None,
            mode: "gate".into(),
            hardware_key: crate::baseline::HardwareKey {
                cpu_model: "cpu".into(),
                cpu_cores: 2,
                gpus: vec![],
            },
            hardware_dir: "cpu-2c".into(),
            scenarios: vec![ScenarioReport {
                result,
                status,
                verdicts: vec![v],
                checklist: vec![],
                smoke: false,
                rules: Default::default(),
                tolerance: 0.05,
                profile: None,
            }],
            checklist: vec![],
            exit_code: 0,
            blessed: vec![],
            partition: None,
            not_recorded: Vec::new(),
            cancelled: None,
        }
    }

    fn text(r: &RunReport) -> String {
        String::from_utf8(github(r, Path::new("/nowhere"))).unwrap()
    }

    #[test]
    fn inconclusive_is_a_warning_with_the_interval() {
        let t = text(&report(Status::Inconclusive, Verdict::Inconclusive, &[]));
        assert_eq!(
            t,
            "::warning file=suites/s.toml,line=7,col=1,title=neon-perf%3A s%3A%3Ax inconclusive::\
             lat{batch=8}: inconclusive +10.0%25 vs baseline, 95%25 CI -5.0%25 … +25.0%25, \
             tolerance ±5.0%25 (interval wide)\n"
        );
    }

    #[test]
    fn an_invalid_run_gives_its_reason_once() {
        let t = text(&report(
            Status::Invalid,
            Verdict::Invalid,
            &["GPU throttled: thermal"],
        ));
        assert!(t.starts_with("::warning file=suites/s.toml,line=7,"), "{t}");
        assert!(
            // Messages keep ":" (only properties escape it).
            t.ends_with("::invalid run: GPU throttled: thermal\n"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 1);
    }

    #[test]
    fn passing_scenarios_are_not_annotated() {
        assert_eq!(text(&report(Status::Pass, Verdict::Pass, &[])), "");
    }

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
