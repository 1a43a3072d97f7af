//! Markdown summary for pull requests and `$GITHUB_STEP_SUMMARY`.
//!
//! Every string that comes from a suite, a program or the host (names,
//! metric keys and labels, units, reasons, errors, evidence) goes through
//! [`text`] or [`code`], so that it reads as written: a unit `<b>u</b>` is
//! not HTML in a pull-request comment, and a `|` does not split a table cell.

use std::fmt::Write;

use crate::compare::Verdict;
use crate::outcome::{ItemState, RunReport};
use crate::report::headline::{Kind, headline};
use crate::report::percent;
use crate::result::Outcome;

/// The most characters of the folded table of every metric: two summaries
/// (the gate's and the paired run's) must fit one pull-request comment.
const MAX_DETAILS: usize = 24_000;

pub fn markdown(report: &RunReport) -> Vec<u8> {
    let mut o = String::new();
    let head = headline(report);
    let mark = match head.kind {
        Kind::Pass | Kind::Blessed => "✅",
        Kind::Failed | Kind::NotRecorded => "❌",
        Kind::Cancelled => "⛔",
        Kind::Inconclusive | Kind::NotMeasured => "⚠️",
        Kind::NothingCompared | Kind::NothingRan => "⚪",
    };
    let _ = writeln!(o, "## {mark} neon-perf: {}\n", head.title);
    if let Some(note) = &head.note {
        // Its command to run, in backticks, is a code span.
        let note = text(note);
        let _ = writeln!(o, "**{note}**\n");
    }
    let _ = writeln!(
        o,
        "Hardware {} · mode {} · commit {}\n",
        code(&report.hardware_dir),
        code(&report.mode),
        code(report.git_commit.as_deref().unwrap_or("unknown"))
    );
    // The comment is read for what changed: metrics that passed (or have
    // no baseline yet) fold into one row per scenario, and the full table
    // follows, folded, for whoever wants every number.
    let folded = table(&mut o, report, false);
    if folded > 0 {
        let every: usize = report.scenarios.iter().map(|s| s.verdicts.len()).sum();
        let mut all = String::new();
        table(&mut all, report, true);
        // A pull-request comment holds at most 65,536 characters, and the
        // workflow posts the gate's and the paired run's summaries in one.
        if all.len() <= MAX_DETAILS {
            let _ = writeln!(o, "\n<details><summary>All {every} metrics</summary>\n");
            o.push_str(&all);
            let _ = writeln!(o, "\n</details>");
        } else {
            let _ = writeln!(
                o,
                "\nAll {every} metrics are in the JSON and HTML reports (too many for a comment)."
            );
        }
    }
    inconclusive(&mut o, report);
    warnings(&mut o, report);
    profiles(&mut o, report);
    let _ = writeln!(o, "\n### Performance checklist\n");
    for c in &report.checklist {
        let mark = match c.state {
            ItemState::Ticked => "- [x]",
            ItemState::Failed => "- [ ] ❌",
            ItemState::NotChecked => "- [ ]",
            ItemState::NotCompared => "- [ ] ⚪",
        };
        let why = match (&c.state, &c.reason) {
            (ItemState::Ticked, _) => c.evidence.first().cloned().unwrap_or_default(),
            (_, Some(r)) => r.clone(),
            _ => String::new(),
        };
        let _ = writeln!(o, "{mark} **{}** — {}", text(c.title), text(&why));
    }
    o.into_bytes()
}

/// The results table. With `every`, one row per metric; without it, only
/// the metrics a reader must see (regressed, improved, inconclusive,
/// invalid, a bound broken), and the rest of a scenario's metrics as one
/// row that counts them by verdict. Returns how many metrics were folded.
fn table(o: &mut String, report: &RunReport, every: bool) -> usize {
    // A paired run's other side is the base revision, measured beside it.
    let against = if report.mode == "paired" {
        "base"
    } else {
        "baseline"
    };
    let _ = writeln!(
        o,
        "| scenario | status | metric | {against} | current | change | 95% CI | verdict |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    let mut folded = 0;
    for s in &report.scenarios {
        let name = code(&s.result.full_name());
        let failed = matches!(s.result.outcome, Outcome::Failed { .. });
        match &s.result.outcome {
            Outcome::Ignored { reason } => {
                let _ = writeln!(o, "| {name} | ignored | | | | | | {} |", text(reason));
                continue;
            }
            Outcome::Failed { error } => {
                let first = error.lines().next().unwrap_or("");
                let _ = writeln!(o, "| {name} | **failed** | | | | | | {} |", text(first));
            }
            Outcome::Ran => {}
        }
        let mut first = !failed;
        let lead = |first: &mut bool| {
            if std::mem::take(first) {
                (name.clone(), s.status.label().to_lowercase())
            } else {
                (String::new(), String::new())
            }
        };
        // A run that could not be trusted is `invalid` on every metric: its
        // status says so once.
        let all_invalid = s.verdicts.iter().all(|v| v.verdict == Verdict::Invalid);
        let (shown, rest): (Vec<_>, Vec<_>) = s
            .verdicts
            .iter()
            .partition(|v| every || (notable(v) && !(all_invalid && v.bound_violation.is_none())));
        for v in shown {
            let (n, st) = lead(&mut first);
            metric_row(o, &n, &st, v);
        }
        if !rest.is_empty() {
            folded += rest.len();
            let (n, st) = lead(&mut first);
            let what = if rest.len() == s.verdicts.len() {
                format!("{} metrics", rest.len())
            } else {
                format!("{} more", rest.len())
            };
            let _ = writeln!(o, "| {n} | {st} | {what} | | | | | {} |", counts(&rest));
        }
    }
    folded
}

/// A verdict the reader of a pull request must see.
fn notable(v: &crate::compare::MetricVerdict) -> bool {
    use crate::compare::Verdict;
    v.bound_violation.is_some() || !matches!(v.verdict, Verdict::Pass | Verdict::NoBaseline)
}

/// "10 pass, 2 no-baseline".
fn counts(vs: &[&crate::compare::MetricVerdict]) -> String {
    let mut by: Vec<(crate::compare::Verdict, usize)> = Vec::new();
    for v in vs {
        match by.iter_mut().find(|(k, _)| *k == v.verdict) {
            Some((_, n)) => *n += 1,
            None => by.push((v.verdict, 1)),
        }
    }
    by.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn metric_row(o: &mut String, n: &str, st: &str, v: &crate::compare::MetricVerdict) {
    let (baseline, current) = crate::report::value_cells(v);
    let _ = writeln!(
        o,
        "| {n} | {st} | {} | {} | {} | {} | {} | {} |",
        code(&v.key.to_string()),
        text(&baseline),
        text(&current),
        v.change.map(percent).unwrap_or_else(|| "—".into()),
        v.ci.map(|(lo, hi)| format!("{} … {}", percent(lo), percent(hi)))
            .unwrap_or_else(|| "—".into()),
        match &v.bound_violation {
            Some(b) => format!("**regressed** ({})", text(b)),
            None if v.verdict == crate::compare::Verdict::Regressed => "**regressed**".into(),
            None => v.verdict.to_string(),
        }
    );
}

/// Why each `inconclusive` verdict could not be decided, under the table.
fn inconclusive(o: &mut String, report: &RunReport) {
    let mut head = false;
    for s in &report.scenarios {
        for (key, why) in crate::report::inconclusive_notes(s) {
            if !head {
                let _ = writeln!(o, "\n### Why inconclusive\n");
                head = true;
            }
            let name = code(&s.result.full_name());
            let _ = writeln!(o, "- {name} {}: {}", code(&key), text(why));
        }
    }
}

/// At most this many warnings in the comment; the rest are in the JSON and
/// HTML reports.
const MAX_WARNINGS: usize = 20;

/// The scenarios' warnings (a metric rule that matches nothing and so is
/// not enforced, a busy machine, leftovers of a program): in CI the
/// comment is what people read.
fn warnings(o: &mut String, report: &RunReport) {
    let all: Vec<(String, &String)> = report
        .scenarios
        .iter()
        .flat_map(|s| {
            s.result
                .warnings
                .iter()
                .map(move |w| (s.result.full_name(), w))
        })
        .collect();
    if all.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n### Warnings\n");
    for (name, w) in all.iter().take(MAX_WARNINGS) {
        let _ = writeln!(o, "- {} {}", code(name), text(w));
    }
    if all.len() > MAX_WARNINGS {
        let _ = writeln!(
            o,
            "- … and {} more in the JSON and HTML reports",
            all.len() - MAX_WARNINGS
        );
    }
}

/// The profiled scenarios: what changed, as text (pull-request comments
/// are read on phones), and where the flame graphs are.
fn profiles(o: &mut String, report: &RunReport) {
    let profiled: Vec<_> = report
        .scenarios
        .iter()
        .filter_map(|s| s.profile.as_ref().map(|p| (s, p)))
        .collect();
    if profiled.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n### Profiles\n");
    for (s, p) in profiled {
        let point = if p.point.is_empty() {
            String::new()
        } else {
            format!(" at {}", code(&p.point))
        };
        let _ = writeln!(
            o,
            "**{}** ({}, {}{point}):",
            code(&s.result.full_name()),
            text(&p.profiler),
            text(&p.reason)
        );
        if let Some(e) = &p.error {
            let _ = writeln!(o, "\n> {}\n", text(e));
        }
        if let Some(e) = &p.gpu_error {
            let _ = writeln!(o, "\n> {}\n", text(e));
        }
        for lines in [p.kernel_lines(), p.figure_lines(), p.lines()] {
            if !lines.is_empty() {
                let body = lines.join("\n");
                let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
                let fence = "`".repeat((longest + 1).max(3));
                let _ = writeln!(o, "\n{fence}text\n{body}\n{fence}\n");
            }
        }
        let file = p
            .differential
            .as_ref()
            .map(|d| ("differential flame graph", d))
            .or(p.head.as_ref().map(|h| ("flame graph", &h.flame_graph)));
        if let Some((what, path)) = file {
            let _ = writeln!(
                o,
                "{} {} (with the reports)\n",
                text(&format!("{what}:")),
                code(&path.display().to_string())
            );
        }
    }
}

/// Plain text in a table cell or a list line: HTML-significant characters
/// as entities, Markdown punctuation that could start emphasis, links or
/// code backslash-escaped, `|` escaped (GFM table cells), `@` kept from
/// mentioning anyone, lines joined.
fn text(s: &str) -> String {
    // neon-perf's own messages quote names in backticks (`max`, `{port}`):
    // balanced, they become code spans, read as GitHub shows code.
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() > 1
        && parts.len() % 2 == 1
        && parts
            .iter()
            .skip(1)
            .step_by(2)
            .all(|p| !p.trim().is_empty())
    {
        return parts
            .iter()
            .enumerate()
            .map(|(i, p)| if i % 2 == 1 { code(p) } else { plain(p) })
            .collect();
    }
    plain(s)
}

/// [`text`] without code spans: every character as written.
fn plain(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' => {
                o.push('\\');
                o.push(c);
            }
            // A zero-width space after `@` keeps `@name` in a program's
            // output or a suite's text from notifying that GitHub user
            // when the summary is posted as a pull-request comment. (Code
            // spans need nothing: GitHub links no mentions inside them.)
            '@' => o.push_str("@&#8203;"),
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// `s` as a code span in a table cell. Inside a code span HTML is shown as
/// written (entities would show as `&lt;`), so only what could end the span
/// or the cell is handled: the fence is longer than any run of backticks
/// in `s`, and `|` is escaped, which GFM tables undo inside code spans too.
fn code(s: &str) -> String {
    let body: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space inside the
    // fence (CommonMark strips one space from each side).
    if body.starts_with('`') || body.ends_with('`') {
        format!("{fence} {body} {fence}")
    } else {
        format!("{fence}{body}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Unit;
    use crate::report::html::fixture;

    #[test]
    fn escapes() {
        assert_eq!(text("<b>u</b>"), "&lt;b&gt;u&lt;/b&gt;");
        assert_eq!(text("a|b & c"), "a\\|b &amp; c");
        assert_eq!(
            text("*x* _y_ [l](u) `c` ~s~"),
            "\\*x\\* \\_y\\_ \\[l\\](u) `c` \\~s\\~"
        );
        // A lone backtick is text; a quoted name is code.
        assert_eq!(text("a ` b"), "a \\` b");
        assert_eq!(text("set `max` <5>"), "set `max` &lt;5&gt;");
        assert_eq!(text("two\nlines"), "two lines");
        assert_eq!(code("m{p=<script>}"), "`m{p=<script>}`");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("x`y"), "``x`y``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(
            text("ask @octocat or @org/team"),
            "ask @&#8203;octocat or @&#8203;org/team"
        );
    }

    /// A Markdown line's text outside its code spans.
    fn outside_code(line: &str) -> String {
        let mut outside = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                outside.push(c);
            }
        }
        outside
    }

    #[test]
    fn program_text_mentions_nobody() {
        let mut report = fixture::synthetic(20);
        report.scenarios[0].result.outcome = crate::result::Outcome::Failed {
            error: "`run.sh` failed: ask @octocat".into(),
        };
        report.scenarios[1].verdicts[0].unit = Unit::Other("@team".into());
        report.scenarios[2].result.outcome = crate::result::Outcome::Ignored {
            reason: "needs a GPU; ping @org/gpu-team".into(),
        };
        let md = String::from_utf8(markdown(&report)).unwrap();
        // Outside code spans (where GitHub links no mentions), every `@` is
        // followed by a zero-width space.
        let mut mentions = 0;
        for line in md.lines() {
            let outside = outside_code(line);
            for (i, _) in outside.match_indices('@') {
                mentions += 1;
                assert!(outside[i..].starts_with("@&#8203;"), "{line}");
            }
        }
        // The error and the reason twice (the changes, then every metric
        // folded), the unit of a passing metric once (folded only).
        assert_eq!(mentions, 5, "{md}");
    }

    /// A pull-request comment shows what changed; passing metrics fold
    /// into one row per scenario, and every metric follows, folded away.
    #[test]
    fn passing_metrics_fold_and_every_metric_follows_in_details() {
        let report = fixture::synthetic(20);
        let md = String::from_utf8(markdown(&report)).unwrap();
        let (changes, every) = md.split_once("<details>").expect("details");
        assert!(changes.contains("`sort_time{n=<10>}`"), "{changes}");
        assert!(!changes.contains("`throughput`"), "{changes}");
        assert!(changes.contains("| 1 more | | | | | 1 pass |"), "{changes}");
        assert!(every.contains("`throughput`"), "{every}");
        assert!(every.contains("</details>"), "{every}");
    }

    /// An invalid run is `invalid` on every metric: one folded row, the
    /// status saying why, not a row per metric.
    #[test]
    fn an_invalid_run_folds_into_one_row() {
        let mut report = fixture::synthetic(20);
        for v in &mut report.scenarios[1].verdicts {
            v.verdict = Verdict::Invalid;
        }
        let md = String::from_utf8(markdown(&report)).unwrap();
        let (changes, _) = md.split_once("<details>").expect("details");
        assert!(!changes.contains("`latency{batch=1}`"), "{changes}");
        assert!(
            changes.contains("| 7 metrics | | | | | 7 invalid |"),
            "{changes}"
        );
    }

    /// Two summaries go into one pull-request comment (at most 65,536
    /// characters): a table of every metric too long for that is left to
    /// the JSON and HTML reports.
    #[test]
    fn a_table_too_long_for_a_comment_is_left_to_the_other_reports() {
        let mut report = fixture::synthetic(20);
        let v = report.scenarios[0].verdicts[1].clone();
        for i in 0..2000 {
            let mut v = v.clone();
            v.key = format!("m{i}").parse().unwrap();
            report.scenarios[0].verdicts.push(v);
        }
        let md = String::from_utf8(markdown(&report)).unwrap();
        assert!(md.len() < 30_000, "{}", md.len());
        assert!(!md.contains("<details>"));
        assert!(md.contains("metrics are in the JSON and HTML reports (too many for a comment)"));
    }

    #[test]
    fn program_text_is_not_markup() {
        let mut report = fixture::synthetic(20);
        let s = &mut report.scenarios[0];
        for v in &mut s.verdicts {
            v.unit = Unit::Other("<b>u</b>".into());
        }
        s.result.outcome = crate::result::Outcome::Ran;
        report.scenarios[2].result.outcome = crate::result::Outcome::Ignored {
            reason: "needs <gpu> | a *driver*".into(),
        };
        let md = String::from_utf8(markdown(&report)).unwrap();
        // Outside code spans, no tag survives and every `|` is a cell border
        // or escaped.
        for line in md.lines() {
            let outside = outside_code(line);
            let ours = line.starts_with("<details><summary>All ") || line == "</details>";
            assert!(ours || !outside.contains('<'), "{line}");
        }
        assert!(md.contains("&lt;b&gt;u&lt;/b&gt;"), "{md}");
        assert!(md.contains("needs &lt;gpu&gt; \\| a \\*driver\\*"), "{md}");
        assert!(md.contains("`fixture-<host>`"), "{md}");
        insta::assert_snapshot!(md);
    }
}
