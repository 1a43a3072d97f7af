//! Issue #22, the profiling engine on a real program: tests/fixtures/
//! profile/work.c built here, recorded with `perf record` as the base
//! (`work 1`) and the head (`work 2`, `slow_part` doing twice the work);
//! the differential names `slow_part` first and both flame graphs draw.
//! Where perf events are not allowed the trial is ignored with the reason
//! (`NEON_PERF_REQUIRE_PERF=1` makes that a failure); the folding and the
//! diff are covered on stored `perf script` output either way
//! (`profile::folded` unit tests).
//!
//! Through the binary: `run --against BASE --profile` on two trees whose
//! program is `work 1` and `work 2` profiles the regressed scenario on both
//! sides and names `slow_part` first in the JSON, the terminal, the
//! Markdown and the HTML; without perf the profile says why and the verdict
//! and exit code are those of the run; off by default, nothing is profiled.

mod common;
#[macro_use]
mod needs;

use common::text;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use neon_perf::profile::{Perf, Target, change_lines, svg, top_changes};

/// tests/fixtures/profile/work.c compiled into `dir`.
fn build_work(dir: &Path) -> PathBuf {
    let bin = dir.join("work");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profile/work.c");
    let st = Command::new("cc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(st.success());
    bin
}

fn the_doubled_function_is_named_first() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_work(dir.path());
    let perf = Perf::find().unwrap();
    let env = BTreeMap::new();
    let profile = |factor: &str| {
        let argv = vec![bin.display().to_string(), factor.to_string()];
        let t = Target {
            argv: &argv,
            env: &env,
            cwd: dir.path(),
            timeout: Duration::from_secs(60),
        };
        perf.profile(&t, &dir.path().join(format!("{factor}.data")))
            .unwrap()
    };
    let (base, head) = (profile("1"), profile("2"));
    let top = top_changes(&base, &head, 5);
    println!("{}", change_lines(&top).join("\n"));
    assert_eq!(top[0].function, "slow_part", "{top:?}");
    assert!(top[0].delta() > 0.03, "{top:?}");
    let diff = svg::differential(&base, &head, "work: head vs base").unwrap();
    assert!(diff.contains("slow_part"));
    assert!(
        svg::flame_graph(&head, "work")
            .unwrap()
            .contains("steady_part")
    );
}

const SUITE: &str = r#"
[suite]
name = "prof"

[defaults]
warmup = "10ms"
warmup_runs = 0
min_samples = 2
max_samples = 4
max_time = "300ms"
max_contention = 1.0

[[scenario]]
name = "work"
kind = "command"
command = ["sh", "{suite_dir}/run.sh"]
primary = "m"
metric."m" = { tolerance = 0.05 }
metric."wall_time" = { gate = false }
metric."cpu_time" = { gate = false }
metric."peak_rss" = { gate = false }
"#;

/// A tree whose program runs `work FACTOR` and prints `m` = 4 + FACTOR ms,
/// so that the head (2) regresses against the base (1) whatever the
/// machine's speed.
fn tree(root: &Path, work: &Path, factor: u32) {
    fs::create_dir_all(root.join("suites")).unwrap();
    fs::write(root.join("suites/prof.toml"), SUITE).unwrap();
    fs::write(
        root.join("suites/run.sh"),
        format!(
            "{} {factor}\necho '{{\"metric\": \"m\", \"value\": {}, \"unit\": \"ms\"}}'\n",
            work.display(),
            4 + factor
        ),
    )
    .unwrap();
}

fn neon_perf(head: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(head)
        .arg("run")
        .arg("suites/prof.toml")
        .args(args)
        .args(["--json", "r.json", "--markdown", "r.md", "--html", "r.html"])
        .args(["--baselines", "baselines"])
        .env("NEON_PERF_REPORTS_DIR", head.join("reports"))
        .envs(env.iter().copied())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("neon-perf runs")
}

fn scenario(head: &Path) -> serde_json::Value {
    let r: serde_json::Value =
        serde_json::from_slice(&fs::read(head.join("r.json")).unwrap()).unwrap();
    r["scenarios"][0].clone()
}

fn a_regression_is_profiled_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let work = build_work(dir.path());
    let (head, base) = (dir.path().join("head"), dir.path().join("base"));
    tree(&base, &work, 1);
    tree(&head, &work, 2);
    let o = neon_perf(
        &head,
        &["--pairs", "3", "--against", "../base", "--profile"],
        &[],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let s = scenario(&head);
    assert_eq!(s["status"], "regressed", "{s}");
    let p = &s["profile"];
    assert_eq!(p["reason"], "regressed", "{p}");
    assert!(p.get("error").is_none(), "{p}");
    assert_eq!(p["changes"][0]["function"], "slow_part", "{p}");
    // No GPU here: nsys is not looked for, and nothing is said of it.
    assert!(
        p.get("gpu_error").is_none() && p.get("kernels").is_none(),
        "{p}"
    );
    assert!(p["seconds"].as_f64().unwrap() > 0.0);
    for side in ["base", "head"] {
        assert!(p[side]["samples"].as_u64().unwrap() > 50, "{p}");
        let folded = fs::read_to_string(p[side]["folded"].as_str().unwrap()).unwrap();
        assert!(folded.contains("slow_part"), "{folded}");
    }
    let diff = PathBuf::from(p["differential"].as_str().unwrap());
    assert!(
        diff.starts_with(head.join("reports/profiles")),
        "{}",
        diff.display()
    );
    assert!(fs::read_to_string(&diff).unwrap().contains("slow_part"));
    // Profiled once every scenario was measured: after the verdict's line.
    let verdict = out.find("REGRESSED").expect(&out);
    assert!(
        out.find("PROFILED prof::work").expect(&out) > verdict,
        "{out}"
    );
    // The text names it first, in the terminal and in the Markdown.
    let after = out.split("what changed, head vs base").nth(1).expect(&out);
    assert!(
        after
            .lines()
            .nth(1)
            .unwrap()
            .trim_start()
            .starts_with("slow_part"),
        "{out}"
    );
    let md = fs::read_to_string(head.join("r.md")).unwrap();
    let block = md.split("```text\n").nth(1).expect(&md);
    assert!(block.starts_with("slow_part"), "{md}");
    let html = fs::read_to_string(head.join("r.html")).unwrap();
    assert!(
        html.contains("data:image/svg+xml;base64,"),
        "no embedded flame graph"
    );
    assert!(html.contains("<code>slow_part</code>"));
}

fn without_perf_the_profile_says_why_and_the_verdict_stands() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    tree(&head, Path::new("true"), 1);
    let missing = dir.path().join("no-perf");
    let o = neon_perf(
        &head,
        &["--smoke", "--profile", "always"],
        &[("NEON_PERF_PERF", missing.to_str().unwrap())],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let s = scenario(&head);
    assert_eq!(s["status"], "no_baseline", "{s}");
    let e = s["profile"]["error"].as_str().unwrap();
    assert!(
        e.starts_with("profiling unavailable: NEON_PERF_PERF="),
        "{e}"
    );
    assert!(out.contains(e), "{out}");
    assert!(s["profile"].get("head").is_none());
}

/// The GPU half of `--profile` through the binary: the NVML test double
/// (harness logic only) makes this machine look like a GPU runner, so the
/// real nsys is run on the scenario's program beside perf, and what it
/// said (no kernels: the program has none) reaches the JSON and the
/// terminal; the verdict is the run's; no nsys agent is left behind.
fn on_a_gpu_runner_nsys_runs_beside_perf_and_what_it_said_is_reported() {
    let nsys = needs::nsys().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    tree(&head, Path::new("true"), 1);
    let nvml = needs::nvml_double().unwrap();
    let bin = nsys.bin().display().to_string();
    let o = neon_perf(
        &head,
        &["--smoke", "--profile", "always"],
        &[
            ("LD_LIBRARY_PATH", nvml.to_str().unwrap()),
            ("NEON_PERF_NSYS", &bin),
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let s = scenario(&head);
    assert_eq!(s["status"], "no_baseline", "{s}");
    let e = s["profile"]["gpu_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{s:#}"));
    assert!(
        e.contains("nsys said: ") && e.contains("CUDA kernel data"),
        "{e}"
    );
    assert!(out.contains(e), "{out}");
    assert_eq!(s["profile"]["profiler"], "perf + nsys");
    // The report is listed though its summary had no kernels.
    let kept = s["profile"]["nsys_reports"].to_string();
    assert!(kept.contains("head.nsys-rep"), "{s:#}");
    assert!(
        head.join("reports/profiles/prof__work/head.nsys-rep")
            .is_file()
    );
}

fn off_by_default_nothing_is_profiled() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    tree(&head, Path::new("true"), 1);
    // A perf that would fail loudly if it were ever looked for.
    let o = neon_perf(&head, &["--smoke"], &[("NEON_PERF_PERF", "/no/such/perf")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = scenario(&head);
    assert!(s.get("profile").is_none(), "{s}");
    assert!(!text(&o).contains("profil"), "{}", text(&o));
    assert!(!head.join("reports/profiles").exists());
}

/// A kind that runs inside neon-perf (a model's batch sweep) is profiled as
/// neon-perf running that one scenario: the model's matrix multiplications
/// are what it shows, and the profile's own run judges nothing.
fn a_batch_sweep_is_profiled_through_neon_perf_itself() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    fs::create_dir_all(head.join("suites")).unwrap();
    fs::write(
        head.join("suites/prof.toml"),
        r#"
[suite]
name = "prof"

[defaults]
max_time = "300ms"
max_contention = 1.0

[[scenario]]
name = "mlp"
kind = "batch_sweep"
device = "cpu"
model = { arch = "mlp", layers = [256, 1024, 256], activation = "gelu", dtype = "f32", seed = 7 }
batch_sizes = [1, 16]
"#,
    )
    .unwrap();
    let o = neon_perf(&head, &["--smoke", "--profile", "always"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let p = &scenario(&head)["profile"];
    assert!(p.get("error").is_none(), "{p}");
    assert!(p["head"]["samples"].as_u64().unwrap() > 50, "{p}");
    let folded = fs::read_to_string(p["head"]["folded"].as_str().unwrap()).unwrap();
    assert!(
        folded.contains("gemm"),
        "no matrix multiplication in the profile"
    );
    assert!(out.contains("hottest functions of the head:"), "{out}");
    // The profiled run wrote its reports to a scratch folder, not over these.
    assert!(head.join("target/neon-perf/profile-run/reports").is_dir());
}

/// A real nsys (Debian's 2022.4 from `scripts/nsys-setup.sh`, or
/// `$NEON_PERF_NSYS`) on a program with no CUDA, here without a GPU: the
/// command line is one it accepts (2022.4 refuses `--` before the
/// program), the kernel summary is asked for under the name it knows
/// (`gpukernsum` before 2023), what it said reaches the error, the report
/// is kept, and nothing nsys started (its agent) outlives the profile.
fn a_real_nsys_profiles_and_says_why_there_are_no_kernels() {
    let nsys = needs::nsys().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let argv: Vec<String> = ["sh", "-c", "echo profiled"].map(String::from).into();
    let env = BTreeMap::new();
    let t = Target {
        argv: &argv,
        env: &env,
        cwd: dir.path(),
        timeout: Duration::from_secs(60),
    };
    // nsys itself now and then hangs on a small VM (its agent never
    // finishes); the timeout ends it, as in a run, and it is tried again.
    let mut tries = 0;
    let e = loop {
        tries += 1;
        let e = nsys.profile(&t, &dir.path().join("head")).unwrap_err();
        if !e.starts_with("profiling timed out") || tries == 3 {
            break e;
        }
        println!("try {tries}: {e}");
    };
    println!("{} → {e}", nsys.version);
    assert!(!e.contains("ambiguous"), "{e}");
    if nsys.version.contains(" 2022.") {
        assert!(
            e.contains("nsys said: SKIPPED: ") && e.contains("does not contain CUDA kernel data"),
            "{e}"
        );
    } else {
        assert!(e.contains("no CUDA kernel summary"), "{e}");
    }
    assert!(dir.path().join("head.nsys-rep").is_file());
    // Cut short by its timeout mid-profile: it ends, and so do nsys's
    // agent and the program, all carrying the run's tag.
    let argv: Vec<String> = ["sleep", "30"].map(String::from).into();
    let short = Target {
        argv: &argv,
        timeout: Duration::from_secs(2),
        ..t
    };
    let e = nsys.profile(&short, &dir.path().join("cut")).unwrap_err();
    assert!(e.starts_with("profiling timed out after 2"), "{e}");
    let left: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| {
            (c.contains("--start-agent")
                && (c.contains("profile-sh-") || c.contains("profile-sleep-")))
                || c.trim() == "sleep 30"
        })
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

trials! {
    a_real_nsys_profiles_and_says_why_there_are_no_kernels: needs::NSYS;
    on_a_gpu_runner_nsys_runs_beside_perf_and_what_it_said_is_reported: needs::NSYS, needs::NVML_DOUBLE;
    the_doubled_function_is_named_first: needs::PERF;
    a_regression_is_profiled_on_both_sides: needs::PERF;
    a_batch_sweep_is_profiled_through_neon_perf_itself: needs::PERF;
    without_perf_the_profile_says_why_and_the_verdict_stands;
    off_by_default_nothing_is_profiled;
}
