//! `neon-perf init` through the real binary: the files it writes, that the
//! starter suite checks and runs as written, that it never overwrites, and
//! that `--action` reaches the workflow.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FILES: [&str; 3] = [
    "suites/perf.toml",
    "baselines/README.md",
    ".github/workflows/neon-perf.yml",
];

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_neon-perf"));
    c.env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("NEON_PERF_BASELINES");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn init(dir: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("init")
        .arg(dir)
        .args(extra)
        .output()
        .expect("neon-perf runs")
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn init_writes_a_suite_that_checks_and_runs_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let o = init(&repo, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for f in FILES {
        assert!(repo.join(f).is_file(), "{f} written");
        assert!(
            out.contains(&format!("wrote {}", repo.join(f).display())),
            "{f} named: {out}"
        );
    }
    // And .gitignore, which ignores the reports under target/.
    assert_eq!(
        snapshot(&repo).len(),
        FILES.len() + 1,
        "nothing else written"
    );
    let ignore = std::fs::read_to_string(repo.join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target/"), "{ignore}");
    for step in [
        "neon-perf run",
        "neon-perf bless --reason \"first baseline\"",
        "git add",
    ] {
        assert!(out.contains(step), "next step `{step}`: {out}");
    }
    let yml = std::fs::read_to_string(repo.join(FILES[2])).unwrap();
    assert_eq!(yml.matches("uses: neon-perf/neon-perf@main\n").count(), 2);
    assert!(yml.contains("against: ${{ github.event.pull_request.base.sha }}"));

    let o = bin()
        .arg("check")
        .arg(repo.join("suites"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("ok: 1 suite(s), 1 scenario(s)"),
        "{}",
        text(&o)
    );

    // As a user would: from the repository, with the defaults (suites/, baselines/).
    let o = bin().arg("run").current_dir(&repo).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("perf::sort"), "{}", text(&o));
}

/// In the current folder (the default), the output is the same everywhere:
/// snapshot it, and the refusal that follows.
#[test]
fn init_defaults_to_the_current_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bin().arg("init").current_dir(tmp.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in FILES {
        assert!(tmp.path().join(f).is_file(), "{f} written");
    }
    insta::assert_snapshot!("init_output", text(&o));

    let o = bin().arg("init").current_dir(tmp.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    insta::assert_snapshot!("init_refused", text(&o));
}

#[test]
fn a_second_init_refuses_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    assert_eq!(init(repo, &[]).status.code(), Some(0));
    std::fs::write(repo.join("suites/perf.toml"), "# mine\n").unwrap();
    let before = snapshot(repo);

    let o = init(repo, &["--action", "acme/neon-perf@v2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for f in FILES {
        assert!(err.contains(f), "names {f}: {err}");
    }
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(snapshot(repo), before, "nothing changed");
}

/// A .gitignore of the team's own gets one line at its end, once; one that
/// ignores target/ already is left as it is.
#[test]
fn target_is_added_to_an_existing_gitignore_once() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    std::fs::write(repo.join(".gitignore"), "__pycache__/\n*.onnx").unwrap();
    let o = init(repo, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("added target/ to "), "{}", text(&o));
    let ignore = std::fs::read_to_string(repo.join(".gitignore")).unwrap();
    assert!(
        ignore.starts_with("__pycache__/\n*.onnx\n# neon-perf"),
        "{ignore}"
    );
    assert_eq!(ignore.lines().filter(|l| *l == "target/").count(), 1);

    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join(".gitignore"), "/target\n").unwrap();
    let o = init(other.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !text(&o).contains("added target/") && !text(&o).contains("/.gitignore\n"),
        "{}",
        text(&o)
    );
    let ignore = std::fs::read_to_string(other.path().join(".gitignore")).unwrap();
    assert_eq!(ignore, "/target\n");
}

#[test]
fn one_existing_file_is_enough_to_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    std::fs::create_dir_all(repo.join("baselines")).unwrap();
    std::fs::write(repo.join("baselines/README.md"), "ours\n").unwrap();

    let o = init(repo, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("baselines/README.md"), "{err}");
    assert!(!err.contains("suites/perf.toml"), "only what exists: {err}");
    assert_eq!(snapshot(repo).len(), 1, "nothing written");
}

#[test]
fn the_action_flag_lands_in_the_workflow() {
    let tmp = tempfile::tempdir().unwrap();
    let o = init(tmp.path(), &["--action", "acme/tools/neon-perf@v1.2.0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let yml = std::fs::read_to_string(tmp.path().join(FILES[2])).unwrap();
    assert_eq!(
        yml.matches("uses: acme/tools/neon-perf@v1.2.0\n").count(),
        2,
        "{yml}"
    );
    assert!(!yml.contains("neon-perf/neon-perf@main"));
    assert!(!yml.contains("{action}"));

    // Not an action reference: a usage error, and nothing written.
    let other = tmp.path().join("other");
    let o = init(&other, &["--action", "acme/neon-perf@v1\n  run: evil"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("expected OWNER/REPO@REF"), "{}", text(&o));
    assert!(!other.exists());
}

/// The commented-out shapes (a `# [[scenario]]` line and the lines after it
/// up to a blank line) are valid once uncommented, as the comments say.
#[test]
fn the_commented_out_scenarios_check_once_uncommented() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(init(tmp.path(), &[]).status.code(), Some(0));
    let suite = tmp.path().join(FILES[0]);
    let (uncommented, blocks) =
        common::uncomment_starter(&std::fs::read_to_string(&suite).unwrap());
    assert_eq!(blocks, 2, "a `command` shape and a `websocket_flood` shape");
    std::fs::write(&suite, uncommented).unwrap();
    // The streaming shape's bearer token comes from the environment.
    let o = bin()
        .arg("check")
        .arg(suite)
        .env("API_TOKEN", "a-token")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("1 suite(s), 3 scenario(s)"),
        "{}",
        text(&o)
    );
}
