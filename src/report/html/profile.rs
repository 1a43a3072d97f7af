//! A scenario's profile on the page: the differential flame graph (or the
//! head's, with no base) embedded as an image, the functions that changed
//! most, and where the files are. The SVG is read from the profile's
//! folder when the page is written; a flame graph's own script does not
//! run in an `<img>`, so the picture is static (open the file for search
//! and zoom).

use std::fmt::Write;

use base64::Engine;

use super::escape::esc;
use crate::profile::ProfileReport;
use crate::units::format_seconds;

/// Larger flame graphs are linked, not embedded.
const MAX_EMBED: u64 = 8 << 20;

pub fn section(p: &ProfileReport) -> String {
    let mut o = String::from("<details open=\"open\">\n<summary>Profile</summary>\n");
    let runs = |s: &Option<crate::profile::Side>| {
        s.as_ref()
            .map(|s| format!("{} run(s), {} samples", s.runs, s.samples))
    };
    let mut meta = vec![
        format!("{} ({})", esc(&p.profiler), esc(&p.reason)),
        format!("profiling took {}", format_seconds(p.seconds)),
    ];
    if !p.point.is_empty() {
        meta.push(format!("point <code>{}</code>", esc(&p.point)));
    }
    if let Some(h) = runs(&p.head) {
        meta.push(format!("head: {h}"));
    }
    if let Some(b) = runs(&p.base) {
        meta.push(format!("base: {b}"));
    }
    let _ = writeln!(o, "<p class=\"meta\">{}</p>", meta.join(" · "));
    for e in p.error.iter().chain(&p.gpu_error) {
        let _ = writeln!(o, "<p class=\"warning\">profile: {}</p>", esc(e));
    }
    kernels(&mut o, p);
    let figures = p.figure_lines();
    if !figures.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"meta\">CUDA kernels (ncu, % of peak):</p>\n<pre>{}</pre>",
            esc(&figures.join("\n"))
        );
    }
    let picture = p
        .differential
        .as_ref()
        .or(p.head.as_ref().map(|h| &h.flame_graph));
    if let Some(path) = picture {
        embed(&mut o, path, p.is_differential());
    }
    changes(&mut o, p);
    o.push_str("</details>\n");
    o
}

fn embed(o: &mut String, path: &std::path::Path, differential: bool) {
    let caption = if differential {
        "Differential flame graph: the head's stacks, red where they got hotter than the base, blue cooler."
    } else {
        "Flame graph of the head (no base to compare with: run with --against for a differential)."
    };
    let readable = std::fs::metadata(path).is_ok_and(|m| m.len() <= MAX_EMBED);
    match std::fs::read(path) {
        Ok(svg) if readable => {
            let data = base64::engine::general_purpose::STANDARD.encode(svg);
            let _ = write!(
                o,
                "<figure>\n<img class=\"flame\" alt=\"flame graph\" src=\"data:image/svg+xml;base64,{data}\">\n\
                 <figcaption>{} File: <code>{}</code></figcaption>\n</figure>\n",
                esc(caption),
                esc(&path.display().to_string())
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "<p class=\"note\">{} Not embedded (missing or over 8 MiB): <code>{}</code></p>",
                esc(caption),
                esc(&path.display().to_string())
            );
        }
    }
}

/// The CUDA kernels nsys timed (a GPU runner with Nsight Systems).
fn kernels(o: &mut String, p: &ProfileReport) {
    if p.kernels.is_empty() {
        return;
    }
    let with_base = p.nsys_reports.len() > 1;
    o.push_str("<table>\n<thead><tr><th>CUDA kernel (nsys)</th>");
    if with_base {
        o.push_str("<th>base</th>");
    }
    o.push_str("<th>head</th><th>launches</th></tr></thead>\n<tbody>\n");
    for k in &p.kernels {
        let _ = write!(o, "<tr><td><code>{}</code></td>", esc(&k.name));
        if with_base {
            let _ = write!(o, "<td class=\"num\">{}</td>", format_seconds(k.base_s));
        }
        let _ = writeln!(
            o,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            format_seconds(k.head_s),
            k.head_instances
        );
    }
    o.push_str("</tbody>\n</table>\n");
    for r in &p.nsys_reports {
        let _ = writeln!(
            o,
            "<p class=\"note\">Nsight Systems report: <code>{}</code></p>",
            esc(&r.display().to_string())
        );
    }
}

fn changes(o: &mut String, p: &ProfileReport) {
    if p.changes.is_empty() {
        return;
    }
    if p.is_differential() {
        o.push_str(
            "<table>\n<thead><tr><th>function</th><th>base</th><th>head</th><th>change</th></tr></thead>\n<tbody>\n",
        );
        for c in &p.changes {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td class=\"num\">{:.1}%</td><td class=\"num\">{:.1}%</td>\
                 <td class=\"num\">{:+.1} points</td></tr>",
                esc(&c.function),
                c.base * 100.0,
                c.head * 100.0,
                c.delta() * 100.0
            );
        }
    } else {
        o.push_str(
            "<table>\n<thead><tr><th>function</th><th>self time</th></tr></thead>\n<tbody>\n",
        );
        for c in &p.changes {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td class=\"num\">{:.1}%</td></tr>",
                esc(&c.function),
                c.head * 100.0
            );
        }
    }
    o.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::nsys::Kernel;

    /// A profile from a GPU runner (written here, as nsys's would be read):
    /// the kernel table, base beside head, and where the reports are; a
    /// missing flame graph is said, not embedded.
    #[test]
    fn a_gpu_profile_shows_its_kernels() {
        let p = ProfileReport {
            reason: "regressed".into(),
            profiler: "perf".into(),
            nsys_reports: vec!["p/base.nsys-rep".into(), "p/head.nsys-rep".into()],
            kernels: vec![Kernel {
                name: "saxpy<float>".into(),
                base_s: 0.001,
                head_s: 0.003,
                head_instances: 10,
            }],
            head: Some(crate::profile::Side {
                folded: "p/head.folded".into(),
                flame_graph: "/no/such/head.svg".into(),
                samples: 10,
                runs: 1,
            }),
            ..Default::default()
        };
        let html = section(&p);
        assert!(
            html.contains("<th>CUDA kernel (nsys)</th><th>base</th><th>head</th>"),
            "{html}"
        );
        assert!(html.contains("<code>saxpy&lt;float&gt;</code>"), "{html}");
        assert!(html.contains("Nsight Systems report: <code>p/head.nsys-rep</code>"));
        assert!(
            html.contains("Not embedded (missing or over 8 MiB)"),
            "{html}"
        );
        let lines = p.kernel_lines();
        assert_eq!(lines, ["saxpy<float>  1.000 ms → 3.000 ms  (+200%)"]);
    }
}
