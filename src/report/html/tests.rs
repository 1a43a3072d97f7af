//! Structural checks of the page: well-formed (parsed as XML), one `<svg>`
//! per expected plot, every user string escaped, self-contained, bounded in
//! size. The browser check (scripts/html-check.sh) renders it for real.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::fixture;
use super::html;

/// Parses the page as XML; returns the `aria-label` of every `<svg class="plot">`.
fn plots(page: &str) -> Vec<String> {
    parse(page).0
}

/// The plots' labels and the text drawn inside them (axis captions, legends).
fn parse(page: &str) -> (Vec<String>, Vec<String>) {
    let mut reader = Reader::from_str(page);
    let mut stack: Vec<String> = Vec::new();
    let mut found = Vec::new();
    let mut drawn = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if name == "svg" {
                    let attr = |k: &str| {
                        e.attributes()
                            .flatten()
                            .find(|a| a.key.as_ref() == k.as_bytes())
                            .map(|a| a.unescape_value().expect("attr").into_owned())
                    };
                    if attr("class").as_deref() == Some("plot") {
                        found.push(attr("aria-label").expect("every plot is labelled"));
                    }
                }
                stack.push(name);
            }
            Ok(Event::End(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.as_str()),
                    "mismatched </{name}>"
                );
            }
            Ok(Event::Text(t)) => {
                // Every entity in text must be one XML knows.
                let text = t.decode().expect("text decodes");
                if stack.last().is_some_and(|n| n == "text") {
                    drawn.push(text.trim().to_string());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed at byte {}: {e}\n{}",
                reader.error_position(),
                &page[reader.error_position() as usize..]
                    [..200.min(page.len() - reader.error_position() as usize)]
            ),
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    (found, drawn)
}

fn page(r: &crate::outcome::RunReport) -> String {
    String::from_utf8(html(r)).expect("utf-8")
}

#[test]
fn synthetic_page_is_well_formed_with_one_svg_per_plot() {
    let p = page(&fixture::synthetic(2000));
    let labels = plots(&p);
    assert_eq!(
        labels,
        [
            "baseline against current: change with 95% CI",
            "latency distribution: CDF and histogram",
            "batch sweep: latency and throughput",
            "latency distribution: CDF and histogram",
        ],
        "plots: command (change, CDF), sweep (curves, CDF), ignored (none)"
    );
    assert!(p.starts_with("<!DOCTYPE html>"));
}

#[test]
fn user_strings_are_escaped_everywhere() {
    let p = page(&fixture::synthetic(100));
    assert!(
        p.contains("ex::sort&lt;&amp;&gt;&quot;x&#39;"),
        "scenario name escaped"
    );
    assert!(p.contains("&lt;b&gt;not bold&lt;/b&gt;"), "warning escaped");
    assert!(p.contains("exit 0 &lt;ok&gt;"), "evidence escaped");
    assert!(p.contains("fixture-&lt;host&gt;"), "hardware escaped");
    for raw in ["sort<&>", "<b>not bold", "<ok>", "n=<10>"] {
        assert!(!p.contains(raw), "unescaped {raw:?} in the page");
    }
}

#[test]
fn page_is_self_contained() {
    let p = page(&fixture::recorded_h100());
    assert!(!p.contains("<script"), "no scripts");
    assert!(!p.contains("<link"), "no stylesheets fetched");
    assert!(!p.contains("src="), "nothing loaded");
    let external = p
        .match_indices("http")
        .filter(|(i, _)| !p[*i..].starts_with("http://www.w3.org/2000/svg"))
        .count();
    assert_eq!(external, 0, "only the SVG namespace is a URL");
}

#[test]
fn sweep_curves_show_the_slo_and_the_best_batch() {
    let p = page(&fixture::synthetic(100));
    assert!(p.contains("SLO 5.00 ms"));
    assert!(p.contains("best batch 64"));
    assert!(p.contains("largest batch under SLO: 16"));
}

#[test]
fn recorded_h100_page_has_timelines_and_comparisons() {
    let r = fixture::recorded_h100();
    let p = page(&r);
    let (labels, drawn) = parse(&p);
    let count = |l: &str| labels.iter().filter(|x| x.as_str() == l).count();
    assert_eq!(
        count("GPU 0 timeline: utilization, memory, clocks, power"),
        2
    );
    assert_eq!(count("baseline against current: change with 95% CI"), 2);
    assert_eq!(count("latency distribution: CDF and histogram"), 2);
    for c in ["utilization", "memory in use", "clocks", "power"] {
        assert!(drawn.iter().any(|t| t == c), "panel {c}");
    }
    // Recorded samples against their own baseline: nothing regressed.
    assert_eq!(r.exit_code, 0);
    assert!(!p.contains("regressed ("));
    // scripts/html-check.sh opens these pages in a browser.
    if let Some(dir) = std::env::var_os("NEON_PERF_HTML_FIXTURE_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("fixture dir");
        std::fs::write(dir.join("gpu-fixture.html"), &p).expect("write");
        std::fs::write(dir.join("synthetic.html"), html(&fixture::synthetic(5000))).expect("write");
    }
}

#[test]
fn big_sample_counts_keep_the_page_small() {
    let small = page(&fixture::synthetic(1_000)).len();
    let big = page(&fixture::synthetic(200_000)).len();
    assert!(big < 400 * 1024, "{big} bytes");
    assert!(
        big < small + 8 * 1024,
        "{big} vs {small}: plots are downsampled"
    );
}
