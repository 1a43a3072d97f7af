//! Markdown summary for pull requests and `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write;

use crate::checklist::ItemState;
use crate::report::percent;
use crate::result::Outcome;
use crate::run::RunReport;

pub fn markdown(report: &RunReport) -> Vec<u8> {
    let mut o = String::new();
    let failed = report
        .scenarios
        .iter()
        .filter(|s| s.status.is_failure())
        .count();
    let head = if report.exit_code == 0 {
        "✅ neon-perf: no regressions"
    } else if failed > 0 {
        "❌ neon-perf: regressions or failures"
    } else {
        "⚠️ neon-perf: inconclusive"
    };
    let _ = writeln!(o, "## {head}\n");
    let _ = writeln!(
        o,
        "Hardware `{}` · mode `{}` · commit `{}`\n",
        report.hardware_dir,
        report.mode,
        report.git_commit.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        o,
        "| scenario | status | metric | baseline | current | change | 95% CI | verdict |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for s in &report.scenarios {
        let name = s.result.full_name();
        match &s.result.outcome {
            Outcome::Ignored { reason } => {
                let _ = writeln!(o, "| `{name}` | ignored | | | | | | {} |", cell(reason));
                continue;
            }
            Outcome::Failed { error } => {
                let first = error.lines().next().unwrap_or("");
                let _ = writeln!(o, "| `{name}` | **failed** | | | | | | {} |", cell(first));
                continue;
            }
            Outcome::Ran => {}
        }
        for (i, v) in s.verdicts.iter().enumerate() {
            let (n, st) = if i == 0 {
                (format!("`{name}`"), s.status.label().to_lowercase())
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                o,
                "| {n} | {st} | `{}` | {} | {} | {} | {} | {} |",
                v.key,
                v.baseline
                    .map(|b| v.unit.format(b))
                    .unwrap_or_else(|| "—".into()),
                v.unit.format(v.current),
                v.change.map(percent).unwrap_or_else(|| "—".into()),
                v.ci.map(|(lo, hi)| format!("{} … {}", percent(lo), percent(hi)))
                    .unwrap_or_else(|| "—".into()),
                match &v.bound_violation {
                    Some(b) => format!("**regressed** ({})", cell(b)),
                    None if v.verdict == crate::compare::Verdict::Regressed =>
                        "**regressed**".into(),
                    None => v.verdict.to_string(),
                }
            );
        }
    }
    let _ = writeln!(o, "\n### Performance checklist\n");
    for c in &report.checklist {
        let mark = match c.state {
            ItemState::Ticked => "- [x]",
            ItemState::Failed => "- [ ] ❌",
            ItemState::NotChecked => "- [ ]",
        };
        let why = match (&c.state, &c.reason) {
            (ItemState::Ticked, _) => c.evidence.first().cloned().unwrap_or_default(),
            (_, Some(r)) => r.clone(),
            _ => String::new(),
        };
        let _ = writeln!(o, "{mark} **{}** — {}", c.title, cell(&why));
    }
    o.into_bytes()
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
