//! The page's tables: scenarios, the checklist, monitor figures, verdicts
//! and checks with their evidence.

use std::fmt::Write;

use super::change::verdict_color;
use super::escape::esc;
use crate::compare::MetricVerdict;
use crate::outcome::{ItemState, RunReport, Status};
use crate::report::percent;
use crate::result::{Check, MonitorSummary};
use crate::units::{format_bytes, format_seconds, sig3};

pub fn summary(r: &RunReport) -> String {
    let mut o = String::from(
        "<section>\n<h2>Scenarios</h2>\n<table>\n<thead><tr><th>scenario</th><th>kind</th>\
         <th>device</th><th>status</th><th>verdicts</th><th>wall time</th></tr></thead>\n<tbody>\n",
    );
    for (i, s) in r.scenarios.iter().enumerate() {
        let mut counts = std::collections::BTreeMap::new();
        for v in &s.verdicts {
            *counts.entry(v.verdict.id()).or_insert(0) += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#s-{i}\">{}</a></td><td>{}</td><td>{}</td>\
             <td><span class=\"{}\">{}</span></td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&s.result.full_name()),
            s.result.kind.id(),
            esc(&s.result.device),
            status_class(s.status),
            s.status.label(),
            counts.join(", "),
            format_seconds(s.result.wall_time_s),
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
    o
}

pub fn checklist(r: &RunReport) -> String {
    let mut o =
        String::from("<section>\n<h2>Performance checklist</h2>\n<ul class=\"checklist\">\n");
    for c in &r.checklist {
        let (class, mark) = match c.state {
            ItemState::Ticked => ("ticked", "✔"),
            ItemState::Failed => ("failed", "✘"),
            ItemState::NotChecked => ("unchecked", "–"),
            ItemState::NotCompared => ("uncompared", "○"),
        };
        let _ = write!(
            o,
            "<li class=\"{class}\"><span class=\"mark\">{mark}</span> <b>{}</b>",
            esc(c.title)
        );
        if let Some(reason) = &c.reason {
            let _ = write!(o, " — {}", esc(reason));
        }
        if !c.evidence.is_empty() {
            o.push_str("<ul>");
            for e in &c.evidence {
                let _ = write!(o, "<li>{}</li>", esc(e));
            }
            o.push_str("</ul>");
        }
        o.push_str("</li>\n");
    }
    o.push_str("</ul>\n</section>\n");
    o
}

/// The monitor's readings; `said` is a GPU-off reason the page already
/// gave for every scenario, not repeated here.
pub fn monitor(m: &MonitorSummary, said: Option<&str>) -> String {
    let mut o = String::new();
    let h = &m.host;
    let _ = writeln!(
        o,
        "<p class=\"meta\">host: {} samples · peak RSS {} · CPU {}% of all cores{}</p>",
        h.samples,
        format_bytes(h.peak_rss_bytes as f64),
        sig3(h.cpu_percent_mean),
        h.other_cpu_cores.map_or(String::new(), |c| format!(
            " · other processes {} cores",
            sig3(c)
        )),
    );
    if let Some(why) = m.gpu_unavailable.as_deref().filter(|w| Some(*w) != said) {
        let _ = writeln!(o, "<p class=\"meta\">GPU monitoring off: {}</p>", esc(why));
    }
    for g in &m.gpus {
        let mine = if g.withheld_processes > 0 {
            "unknown: NVML gives no figure for it on this host".to_string()
        } else if crate::monitor::summary::untold_here(g).is_some() {
            "not attributable: NVML's PIDs are of another PID namespace".to_string()
        } else {
            format_bytes(g.process_mem_peak_bytes as f64)
        };
        let _ = write!(
            o,
            "<p class=\"meta\">GPU {} {}: {} samples · SM util mean {}% max {}% · \
             memory peak {} of {} (this process {}) · power mean {} W max {} W · \
             temp max {} °C · SM clock max {} MHz, lowest while busy {}× of max",
            g.index,
            esc(&g.name),
            g.samples,
            sig3(g.sm_util_mean),
            sig3(g.sm_util_max),
            format_bytes(g.mem_used_peak_bytes as f64),
            format_bytes(g.mem_total_bytes as f64),
            esc(&mine),
            sig3(g.power_mean_w),
            sig3(g.power_max_w),
            sig3(g.temp_max_c),
            sig3(g.sm_clock_max_mhz),
            sig3(g.sm_clock_min_ratio),
        );
        if !g.throttle_reasons.is_empty() {
            let _ = write!(o, " · throttle: {}", esc(&g.throttle_reasons.join(", ")));
        }
        if !g.other_processes.is_empty() {
            let _ = write!(
                o,
                " · other processes: {}",
                esc(&g.other_processes.join(", "))
            );
        }
        o.push_str("</p>\n");
    }
    o
}

/// Verdict tables up to this many rows start unfolded.
const OPEN_ROWS: usize = 16;

pub fn verdicts(vs: &[MetricVerdict]) -> String {
    if vs.is_empty() {
        return String::new();
    }
    // Long tables (a sweep has dozens of metrics) start folded unless
    // something in them failed.
    let bad = vs
        .iter()
        .any(|v| v.verdict == crate::compare::Verdict::Regressed || v.bound_violation.is_some());
    let open = if vs.len() <= OPEN_ROWS || bad {
        " open=\"open\""
    } else {
        ""
    };
    let mut o = format!(
        "<details{open}>\n<summary>Metrics and verdicts ({})</summary>\n<table>\n<thead><tr>\
         <th>metric</th><th>estimator</th><th>baseline</th><th>current</th><th>change</th>\
         <th>95% CI</th><th>tolerance</th><th>verdict</th></tr></thead>\n<tbody>\n",
        vs.len()
    );
    for v in vs {
        let c = verdict_color(v.verdict);
        let (baseline, current) = crate::report::value_cells(v);
        let verdict = match &v.bound_violation {
            Some(b) => format!("regressed ({})", esc(b)),
            None if !v.gated => format!("{} (not gated)", v.verdict),
            None => v.verdict.to_string(),
        };
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">±{}</td>\
             <td style=\"color: rgb({},{},{})\">{}</td></tr>",
            esc(&v.key.to_string()),
            v.estimator,
            esc(&baseline),
            esc(&current),
            v.change.map_or("—".into(), percent),
            v.ci.map_or("—".into(), |(l, h)| format!(
                "{} … {}",
                percent(l),
                percent(h)
            )),
            percent(v.tolerance).trim_start_matches('+'),
            c.0,
            c.1,
            c.2,
            verdict,
        );
    }
    o.push_str("</tbody>\n</table>\n</details>\n");
    o
}

pub fn checks(cs: &[Check]) -> String {
    if cs.is_empty() {
        return String::new();
    }
    let mut o = String::from("<h3>Checks</h3>\n<ul class=\"checks\">\n");
    for c in cs {
        let (class, mark) = if c.passed {
            ("ticked", "✔")
        } else {
            ("failed", "✘")
        };
        let _ = writeln!(
            o,
            "<li class=\"{class}\"><span class=\"mark\">{mark}</span> <b>{}</b>: {}</li>",
            esc(&c.name),
            esc(&c.evidence)
        );
    }
    o.push_str("</ul>\n");
    o
}

/// The CSS classes of a status badge.
pub fn status_class(s: Status) -> String {
    format!("status st-{}", s.label().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::GpuSummary;

    /// NVML's PIDs from another PID namespace: this process's GPU memory
    /// is said to be unknown, not shown as 0 B.
    #[test]
    fn this_process_is_not_shown_as_zero_bytes_under_a_foreign_pid_namespace() {
        let gpu = |foreign| GpuSummary {
            name: "g".into(),
            foreign_pid_processes: foreign,
            ..Default::default()
        };
        let page = |g| {
            monitor(
                &MonitorSummary {
                    gpus: vec![g],
                    ..Default::default()
                },
                None,
            )
        };
        let foreign = page(gpu(1));
        assert!(
            foreign.contains("(this process not attributable: NVML"),
            "{foreign}"
        );
        assert!(page(gpu(0)).contains("(this process 0 B)"));
        let withheld = page(GpuSummary {
            withheld_processes: 1,
            ..gpu(0)
        });
        assert!(
            withheld.contains("(this process unknown: NVML gives no figure"),
            "{withheld}"
        );
    }
}
