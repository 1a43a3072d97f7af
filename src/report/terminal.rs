//! Terminal output: a line per scenario as it finishes, then a table per
//! scenario (metric, baseline, current, change, CI, verdict) and the checklist.

use std::fmt::Write;

use crate::compare::Verdict;
use crate::outcome::{ItemState, RunReport, ScenarioReport, Status};
use crate::report::percent;
use crate::result::Outcome;
use crate::units::format_seconds;

/// ANSI colours, or none.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn status(&self, st: Status) -> String {
        let label = format!("{:>12}", st.label());
        let code = match st {
            Status::Pass | Status::Improved => "1;32",
            Status::NoBaseline => "1;36",
            Status::Inconclusive | Status::Invalid | Status::Ignored => "1;33",
            Status::Regressed | Status::Failed => "1;31",
        };
        self.paint(code, &label)
    }
}

/// The line printed when a scenario finishes.
pub fn scenario_line(s: &ScenarioReport, style: Style) -> String {
    let r = &s.result;
    let mut line = format!(
        "{} [{:>7}] {}",
        style.status(s.status),
        format_seconds(r.wall_time_s),
        r.full_name()
    );
    match &r.outcome {
        Outcome::Ignored { reason } => {
            let _ = write!(line, ": {reason}");
        }
        Outcome::Failed { error } => {
            // Where it is, since no table follows a failure (its header
            // names the place for a scenario that ran).
            let _ = write!(
                line,
                " ({})\n{}",
                r.location,
                indent(error, "               ")
            );
        }
        Outcome::Ran => {
            let regressed: Vec<String> = s
                .verdicts
                .iter()
                .filter(|v| v.verdict == Verdict::Regressed)
                .map(|v| match &v.bound_violation {
                    Some(b) => format!("{} {}", v.key, super::bound_text(v, b)),
                    None => format!("{} {}", v.key, v.change.map(percent).unwrap_or_default()),
                })
                .collect();
            if !regressed.is_empty() {
                let _ = write!(line, ": {}", regressed.join(", "));
            } else if s.smoke {
                let _ = write!(
                    line,
                    " (smoke: {} metrics, speed not gated)",
                    s.verdicts.len()
                );
            }
        }
    }
    // Why the run cannot be trusted: the reason for `invalid`, and worth
    // seeing beside any other status too.
    for why in &r.invalid_reasons {
        let _ = write!(
            line,
            "\n               {} {why}",
            style.paint("33", "invalid:")
        );
    }
    for w in &r.warnings {
        let _ = write!(
            line,
            "\n               {} {w}",
            style.paint("33", "warning:")
        );
    }
    line
}

fn indent(s: &str, pad: &str) -> String {
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The per-metric table of one scenario, then its checks: empty when it
/// has neither (a scenario that failed before reporting anything).
pub fn scenario_table(s: &ScenarioReport) -> String {
    let mut out = String::new();
    if !s.verdicts.is_empty() {
        out.push_str(&verdict_table(s));
    }
    for (key, why) in super::inconclusive_notes(s) {
        let _ = writeln!(out, "  {key} inconclusive: {why}");
    }
    for c in s.result.checks.iter() {
        let _ = writeln!(
            out,
            "  check {} {}: {}",
            c.name,
            if c.passed { "passed" } else { "FAILED" },
            c.evidence
        );
    }
    out
}

fn verdict_table(s: &ScenarioReport) -> String {
    let mut rows = vec![[
        "metric".to_string(),
        "estimator".to_string(),
        "baseline".to_string(),
        "current".to_string(),
        "change".to_string(),
        "95% CI".to_string(),
        "verdict".to_string(),
    ]];
    for v in &s.verdicts {
        let estimator = s
            .result
            .metrics
            .iter()
            .find(|m| m.key == v.key)
            .map(|m| format!("{} of {}", m.estimator, m.samples.len()))
            .unwrap_or_default();
        let (baseline, current) = super::value_cells(v);
        rows.push([
            v.key.to_string(),
            estimator,
            baseline,
            current,
            v.change.map(percent).unwrap_or_else(|| "—".into()),
            v.ci.map(|(lo, hi)| format!("[{}, {}]", percent(lo), percent(hi)))
                .unwrap_or_else(|| "—".into()),
            match &v.bound_violation {
                Some(b) => format!("regressed: {b}"),
                None => v.verdict.to_string(),
            },
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::from(" ");
        for (c, w) in r.iter().zip(widths) {
            let _ = write!(line, " {c:<w$} ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Everything after the live lines: tables, checklist, summary, with the
/// report's own exit code.
pub fn summary(report: &RunReport, style: Style) -> String {
    let mut o = details(report, style);
    o.push_str(&totals(report, report.exit_code, None));
    o
}

/// The tables and the checklist: [`summary`] without its closing totals.
pub fn details(report: &RunReport, style: Style) -> String {
    let mut o = String::new();
    // A reason profiling failed is given once, however many scenarios hit it.
    let mut said: Vec<String> = Vec::new();
    for s in report
        .scenarios
        .iter()
        .filter(|s| matches!(s.result.outcome, Outcome::Ran) || !s.verdicts.is_empty())
    {
        let _ = writeln!(
            o,
            "\n{} ({}, {})",
            style.paint("1", &s.result.full_name()),
            s.result.device,
            s.result.location
        );
        o.push_str(&scenario_table(s));
        if let Some(p) = &s.profile {
            o.push_str(&profile_text(p, &mut said));
        }
    }
    let _ = writeln!(o, "\n{}", style.paint("1", "Performance checklist"));
    for c in &report.checklist {
        let (mark, detail) = match c.state {
            ItemState::Ticked => (
                style.paint("32", "[x]"),
                c.evidence.first().cloned().unwrap_or_default(),
            ),
            ItemState::Failed => (
                style.paint("31", "[!]"),
                format!("FAILED: {}", c.reason.clone().unwrap_or_default()),
            ),
            ItemState::NotChecked => (
                "[ ]".to_string(),
                format!("not checked: {}", c.reason.clone().unwrap_or_default()),
            ),
            ItemState::NotCompared => (
                style.paint("36", "[~]"),
                format!("not compared: {}", c.reason.clone().unwrap_or_default()),
            ),
        };
        let _ = writeln!(o, "  {mark} {:<48} {detail}", c.title);
    }
    o
}

/// The closing "Summary: ... exit N" line and the baseline changes. `exit`
/// is the exit code the process ends with: the report's, or another one
/// when something after the verdicts failed, which `why` explains.
/// A scenario's profile: what changed (or the hottest), and the files.
fn profile_text(p: &crate::profile::ProfileReport, said: &mut Vec<String>) -> String {
    let mut o = String::new();
    let side = |s: &Option<crate::profile::Side>, name: &str| {
        s.as_ref()
            .map(|s| format!("; {name} {} run(s), {} samples", s.runs, s.samples))
            .unwrap_or_default()
    };
    let point = if p.point.is_empty() {
        String::new()
    } else {
        format!(" at {}", p.point)
    };
    let _ = writeln!(
        o,
        "  profile ({}, {}{point}{}{}; {} profiling):",
        p.profiler,
        p.reason,
        side(&p.head, "head"),
        side(&p.base, "base"),
        crate::units::format_seconds(p.seconds)
    );
    if let Some(e) = &p.error {
        if said.contains(e) {
            let _ = writeln!(o, "    not recorded (the reason is given above)");
        } else {
            let _ = writeln!(o, "    {e}");
            said.push(e.clone());
        }
    }
    if !p.changes.is_empty() {
        let _ = writeln!(
            o,
            "    {}",
            if p.is_differential() {
                "what changed, head vs base (share of samples):"
            } else {
                "hottest functions of the head:"
            }
        );
        for l in p.lines() {
            let _ = writeln!(o, "      {l}");
        }
    }
    if let Some(e) = &p.gpu_error {
        let _ = writeln!(o, "    {e}");
    }
    let kernels = p.kernel_lines();
    if !kernels.is_empty() {
        let _ = writeln!(o, "    CUDA kernels (nsys, total time):");
        for l in kernels {
            let _ = writeln!(o, "      {l}");
        }
    }
    let figures = p.figure_lines();
    if !figures.is_empty() {
        let _ = writeln!(o, "    CUDA kernels (ncu, % of peak):");
        for l in figures {
            let _ = writeln!(o, "      {l}");
        }
    }
    for r in p.nsys_reports.iter().chain(&p.ncu_reports) {
        let _ = writeln!(o, "    Nsight report: {}", r.display());
    }
    if let Some(d) = &p.differential {
        let _ = writeln!(o, "    differential flame graph: {}", d.display());
    } else if let Some(h) = &p.head {
        let _ = writeln!(o, "    flame graph: {}", h.flame_graph.display());
    }
    o
}

pub fn totals(report: &RunReport, exit: i32, why: Option<&str>) -> String {
    let mut o = String::new();
    let count = |st: Status| report.scenarios.iter().filter(|s| s.status == st).count();
    let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
    let _ = writeln!(
        o,
        "\nSummary: {} passed, {} improved, {} no baseline, {} inconclusive, {} invalid, {} regressed, {} failed, {} ignored (hardware {}); exit {exit}{why}",
        count(Status::Pass),
        count(Status::Improved),
        count(Status::NoBaseline),
        count(Status::Inconclusive),
        count(Status::Invalid),
        count(Status::Regressed),
        count(Status::Failed),
        count(Status::Ignored),
        report.hardware_dir,
    );
    for b in &report.blessed {
        let _ = writeln!(o, "{b}");
    }
    // What the run amounts to, when there is more to say than the counts.
    let h = super::headline::headline(report);
    if let Some(note) = &h.note {
        let _ = writeln!(o, "{}: {note}", h.title);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::fixture;

    #[test]
    fn an_invalid_scenario_says_why_under_its_line() {
        let mut s = fixture::synthetic(20).scenarios.remove(1);
        s.status = Status::Invalid;
        s.smoke = false;
        s.result.invalid_reasons = vec![
            "other processes used 1.27 of 2 CPU cores while this scenario measured: its CPU timings cannot be trusted".into(),
            "GPU 0 throttled: thermal".into(),
        ];
        s.result.warnings = vec!["first attempt invalid; retried once".into()];
        insta::assert_snapshot!(scenario_line(&s, Style { color: false }));
    }
}
