//! Every invalid fixture fails with one located, snapshotted message.
//!
//! Each file under `tests/fixtures/invalid/` holds exactly one mistake; the
//! table below names the line it is on. Paths stay relative to the package
//! root so snapshots read the same on every machine.

use std::path::{Path, PathBuf};

use neon_perf::config::{ConfigError, discover, duplicate_suite_names, load_suite};

const DIR: &str = "tests/fixtures/invalid";

/// (fixture stem, line of the mistake)
const CASES: &[(&str, usize)] = &[
    ("bad_checklist_id", 4),
    ("bad_device", 4),
    ("bad_duration", 5),
    ("bad_metric_name", 5),
    ("bad_scenario_name", 2),
    ("bad_size", 5),
    ("batch_sweep_bad_arch", 4),
    ("batch_sweep_heads", 4),
    ("batch_sweep_model_typo", 4),
    ("batch_sweep_no_batches", 1),
    ("batch_sweep_quant_block", 6),
    ("batch_sweep_unknown_dtype", 6),
    ("duplicate_key", 5),
    ("duplicate_scenario_names", 7),
    ("duration_without_unit", 2),
    ("empty_command", 4),
    ("empty_file", 1),
    ("empty_params_list", 4),
    ("min_greater_than_max", 5),
    ("missing_kind", 1),
    ("missing_name", 1),
    ("negative_tolerance", 5),
    ("no_scenarios", 1),
    ("oom_cuda_max_batch_pattern", 7),
    ("oom_find_max_batch_no_model", 6),
    ("samples_min_greater_than_max", 8),
    ("single_bracket_scenario", 1),
    ("spec_wrong_type", 4),
    ("syntax_error", 7),
    ("tolerance_out_of_range", 2),
    ("unknown_defaults_key", 2),
    ("unknown_kind", 3),
    ("unknown_metric_rule_key", 5),
    ("unknown_placeholder", 5),
    ("unknown_scenario_key", 5),
    ("unknown_top_level_key", 4),
    ("wrong_type", 2),
    ("ws_payload_size_typo", 5),
    ("ws_port_without_server", 4),
    ("ws_rate_and_in_flight", 6),
    ("ws_server_port_not_passed", 5),
    ("ws_unknown_check", 5),
    ("ws_url_fixed_port_server_told", 4),
    ("ws_url_placeholder_typo", 4),
];

fn fixture(stem: &str) -> PathBuf {
    Path::new(DIR).join(format!("{stem}.toml"))
}

fn load_err(path: &Path) -> ConfigError {
    match load_suite(path) {
        Ok(s) => panic!(
            "{} should not parse, got {} scenarios",
            path.display(),
            s.scenarios.len()
        ),
        Err(e) => e,
    }
}

#[test]
fn each_invalid_fixture_names_its_line_and_matches_its_snapshot() {
    for &(stem, line) in CASES {
        let path = fixture(stem);
        let err = load_err(&path);
        assert_eq!(err.diagnostics.len(), 1, "one mistake per fixture:\n{err}");
        let d = &err.diagnostics[0];
        assert_eq!(d.line, line, "{stem}:\n{err}");
        assert!(d.column >= 1, "{stem}: columns are 1-based");
        assert!(
            d.message.chars().next().is_some_and(|c| !c.is_uppercase()),
            "{stem}: messages start in lower case: {}",
            d.message
        );
        let rendered = err.render(false);
        let at = format!("{}:{line}:", path.display());
        assert!(rendered.contains(&at), "{stem}: no `{at}` in\n{rendered}");
        assert_eq!(rendered, err.to_string(), "Display is render(false)");
        insta::assert_snapshot!(stem, rendered);
    }
}

/// An unset `{env:NAME}` is no mistake in the file: the suite loads, and
/// what stops a run of the scenario that reads it is one located error.
#[test]
fn an_unset_env_variable_loads_and_stops_its_scenario_at_its_text() {
    for stem in ["command_env_unset_variable", "ws_server_env_unset_variable"] {
        let path = Path::new("tests/fixtures/env").join(format!("{stem}.toml"));
        let suite = load_suite(&path).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let plans: Vec<_> = suite.scenarios.iter().collect();
        let errors = neon_perf::config::unset_env(&plans);
        assert_eq!(errors.len(), 1, "{stem}");
        assert_eq!(errors[0].diagnostics.len(), 1, "{stem}");
        assert_eq!(errors[0].diagnostics[0].line, 5, "{stem}");
        insta::assert_snapshot!(stem, errors[0].render(false));
    }
}

#[test]
fn every_fixture_is_in_the_table() {
    let files = discover(&[PathBuf::from(DIR)]).unwrap();
    assert!(files.len() >= 18);
    for f in files {
        let stem = f.file_stem().unwrap().to_str().unwrap();
        assert!(
            CASES.iter().any(|(s, _)| *s == stem),
            "{stem}: add it to CASES with the line of its mistake"
        );
    }
}

#[test]
fn colored_rendering_differs_only_by_escapes() {
    let err = load_err(&fixture("unknown_scenario_key"));
    let colored = err.render(true);
    assert!(colored.contains("\u{1b}["), "color uses ANSI escapes");
    let stripped: String = {
        let mut out = String::new();
        let mut chars = colored.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(stripped, err.render(false));
}

#[test]
fn the_documented_error_is_the_real_one() {
    let doc = std::fs::read_to_string("docs/suite-format.md").unwrap();
    let rendered = load_err(&fixture("unknown_scenario_key")).render(false);
    assert!(
        doc.contains(&format!("```text\n{rendered}\n```")),
        "docs/suite-format.md should show:\n{rendered}"
    );
}

#[test]
fn suites_sharing_a_name_are_refused_naming_both_files() {
    let dir = Path::new("tests/fixtures/duplicate-suites");
    let files = discover(&[dir.to_path_buf()]).unwrap();
    let suites: Vec<_> = files.iter().map(|f| load_suite(f).unwrap()).collect();
    assert_eq!(suites.len(), 3);
    let errors = duplicate_suite_names(&suites);
    // first.toml comes first; the other two each reuse its name.
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].path, dir.join("second.toml"));
    assert_eq!(errors[0].diagnostics[0].line, 3, "points at `name`");
    assert_eq!(errors[1].path, dir.join("shared.toml"));
    let rendered: Vec<String> = errors.iter().map(|e| e.render(false)).collect();
    for r in &rendered {
        assert!(r.contains("first.toml"), "names the first file: {r}");
    }
    insta::assert_snapshot!("duplicate_suite_names", rendered.join("\n\n"));
}

#[test]
fn a_file_given_twice_is_loaded_once() {
    let dir = PathBuf::from("tests/fixtures/duplicate-suites");
    let files = discover(&[dir.clone(), dir.join("first.toml")]).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
}
