//! #21: property tests over every door an input comes through: the suite
//! parser, the baseline loader, the results reader and the metric-line
//! parser. Inputs are real files (a shipped suite, a blessed baseline, a
//! results file) cut, spliced and flipped at random, and arbitrary bytes.
//! Any input gives `Ok` or an error with a message, never a panic. The
//! budget is bounded: `PROPTEST_CASES` (default 256) cases per door; each
//! input is at most a few KiB, so a case costs microseconds.

use std::path::Path;

use proptest::prelude::*;

const SUITE: &str = include_str!("../suites/examples.toml");
const BASELINE: &str =
    include_str!("../baselines/nvidia-h100-80gb-hbm3-79gib-drv580-cuda13-ecc-700w/gpu.toml");
const RESULTS: &str = include_str!("fixtures/fuzz/results.json");
const METRIC_LINES: &[&str] = &[
    r#"{"metric": "latency", "value": 12.5, "unit": "ms"}"#,
    r#"{"metric": "tput", "value": 3, "unit": "req/s", "direction": "higher"}"#,
    r#"{"check": "step synced", "passed": true, "evidence": "ok", "item": "cuda-sync"}"#,
];

/// One edit of a text: delete a span, duplicate one, or overwrite a byte.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Byte(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..64).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0usize..64).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
    ]
}

/// `seed` with the edits applied (as bytes; the result may not be UTF-8).
fn mutate(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        match *e {
            Edit::Delete(a, n) => {
                let a = a % b.len();
                let end = (a + n).min(b.len());
                b.drain(a..end);
            }
            Edit::Duplicate(a, n) => {
                let a = a % b.len();
                let end = (a + n).min(b.len());
                let span = b[a..end].to_vec();
                b.splice(end..end, span);
            }
            Edit::Byte(a, v) => {
                let a = a % b.len();
                b[a] = v;
            }
        }
    }
    b
}

/// A metric line is refused saying so, or read with a valid name and a
/// finite value, or is not a metric line at all.
fn check_metric_line(t: &str) -> Result<(), TestCaseError> {
    match neon_perf::exec::command::child::parse_metric_line(t) {
        Err(e) => prop_assert!(e.starts_with("bad metric line `"), "{e}"),
        Ok(Some(m)) => {
            prop_assert!(m.metric.parse::<neon_perf::metric::MetricKey>().is_ok());
            prop_assert!(m.value.is_finite(), "{}", m.value);
        }
        Ok(None) => {}
    }
    Ok(())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

proptest! {
    #[test]
    fn the_suite_parser_never_panics(edits in prop::collection::vec(edit(), 0..8)) {
        let t = text(&mutate(SUITE, &edits));
        if let Err(e) = neon_perf::config::parse_suite(Path::new("suites/fuzz.toml"), &t) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn the_baseline_loader_never_panics(edits in prop::collection::vec(edit(), 0..8)) {
        let t = text(&mutate(BASELINE, &edits));
        if let Err(e) = neon_perf::baseline::store::parse(Path::new("b.toml"), &t) {
            prop_assert!(e.to_string().contains("b.toml"), "{e}");
        }
    }

    #[test]
    fn the_results_reader_never_panics(edits in prop::collection::vec(edit(), 0..8)) {
        let b = mutate(RESULTS, &edits);
        if let Err(e) = neon_perf::combine::parse(Path::new("r.json"), &b) {
            prop_assert!(e.to_string().contains("r.json"), "{e}");
        }
    }

    #[test]
    fn metric_lines_never_panic(
        which in 0..METRIC_LINES.len(),
        edits in prop::collection::vec(edit(), 0..6),
    ) {
        let t = text(&mutate(METRIC_LINES[which], &edits));
        check_metric_line(&t)?;
        match neon_perf::exec::command::child::parse_check_line(&t) {
            Err(e) => prop_assert!(e.starts_with("bad check line `"), "{e}"),
            Ok(Some(c)) => prop_assert!(!c.name.trim().is_empty()),
            Ok(None) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_are_refused_with_a_message(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let t = text(&bytes);
        if let Err(e) = neon_perf::config::parse_suite(Path::new("s.toml"), &t) {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Err(e) = neon_perf::baseline::store::parse(Path::new("b.toml"), &t) {
            prop_assert!(e.to_string().contains("b.toml"), "{e}");
        }
        if let Err(e) = neon_perf::combine::parse(Path::new("r.json"), &bytes) {
            prop_assert!(e.to_string().contains("r.json"), "{e}");
        }
        check_metric_line(&t)?;
    }
}
