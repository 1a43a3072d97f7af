//! `{suite_dir}` and the child's working folder when the suite is given by a
//! relative path (as in `neon-perf run suites/examples.toml`): the child runs
//! in the suite's folder, so `{suite_dir}` must not stay relative.

use std::fs;
use std::process::Command;

#[test]
fn relative_suite_path_runs_a_script_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("suites/scripts")).unwrap();
    fs::write(
        dir.path().join("suites/scripts/emit.sh"),
        "echo '{\"metric\": \"m\", \"value\": 1, \"unit\": \"ms\"}'\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("suites/rel.toml"),
        r#"
[suite]
name = "rel"

[[scenario]]
name = "beside"
kind = "command"
command = ["sh", "{suite_dir}/scripts/emit.sh"]
primary = "m"
"#,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir.path())
        .args([
            "run",
            "--smoke",
            "suites/rel.toml",
            "--baselines",
            "baselines",
        ])
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
}
