//! The CUDA executors against suites/gpu.toml, without the suite parser:
//! every scenario's kind-specific keys deserialize into our spec structs
//! (deny_unknown_fields) and validate; on a host without CUDA the executors
//! report a reason instead of panicking; on a GPU host (small sizes) they run
//! and every check passes.

#[macro_use]
mod needs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use neon_perf::device;
use neon_perf::exec::{Availability, ExecEnv, RunCtx, executor_for};
use neon_perf::plan::{
    DeviceSel, GpuKernelSpec, KindSpec, OomStressSpec, ParamPoint, ParamValue, Resolved,
    ScenarioPlan, Settings, SourceLocation,
};

const COMMON: [&str; 15] = [
    "name",
    "kind",
    "device",
    "checklist",
    "params",
    "metric",
    "warmup",
    "warmup_runs",
    "min_samples",
    "max_samples",
    "max_time",
    "target_rel_ci",
    "tolerance",
    "timeout",
    "monitor_interval",
];

fn points(params: Option<&toml::Value>, shrink: bool) -> Vec<ParamPoint> {
    let mut pts = vec![ParamPoint::new()];
    if let Some(toml::Value::Table(t)) = params {
        for (k, v) in t {
            let vals = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
            let mut next = Vec::new();
            for p in &pts {
                for x in &vals {
                    let mut q = p.clone();
                    let pv = match x {
                        toml::Value::Integer(i) if shrink => ParamValue::Int((*i).min(1 << 12)),
                        toml::Value::Integer(i) => ParamValue::Int(*i),
                        toml::Value::Float(f) => ParamValue::Float(*f),
                        other => ParamValue::Str(other.to_string()),
                    };
                    q.insert(k.clone(), pv);
                    next.push(q);
                }
            }
            pts = next;
        }
    }
    pts
}

/// The repository: the current folder when it has suites/gpu.toml (the test
/// binary copied to a GPU host and run from the checkout), else the crate.
fn repo_root() -> PathBuf {
    if Path::new("suites/gpu.toml").exists() {
        std::env::current_dir().unwrap()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

fn suite_plans(shrink: bool) -> Vec<ScenarioPlan> {
    let root = &repo_root();
    let path = root.join("suites/gpu.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let mut plans = Vec::new();
    for sc in doc["scenario"].as_array().unwrap() {
        let t = sc.as_table().unwrap();
        let name = t["name"].as_str().unwrap().to_string();
        let kind = t["kind"].as_str().unwrap();
        let mut rest = t.clone();
        for k in COMMON {
            rest.remove(k);
        }
        let rest = toml::Value::Table(rest);
        let spec = match kind {
            "gpu_kernel" => {
                let s: GpuKernelSpec = rest
                    .try_into()
                    .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
                s.validate()
                    .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
                s.into()
            }
            "oom_stress" => {
                let s: OomStressSpec = rest
                    .try_into()
                    .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
                s.validate()
                    .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
                s.into()
            }
            other => panic!("unexpected kind {other}"),
        };
        plans.push(ScenarioPlan {
            suite: "gpu".into(),
            name,
            location: SourceLocation {
                file: path.clone(),
                line: 1,
                column: 1,
            },
            base_dir: root.join("suites"),
            device: DeviceSel::parse(t["device"].as_str().unwrap_or("auto")).unwrap(),
            checklist: vec![],
            settings: Settings::default(),
            metric_rules: BTreeMap::new(),
            points: points(t.get("params"), shrink),
            spec,
            env: vec![],
        });
    }
    plans
}

fn gpu_suite_specs_deserialize_and_validate() {
    let plans = suite_plans(false);
    assert!(plans.len() >= 7, "{} scenarios", plans.len());
    let kernels = plans
        .iter()
        .filter(|p| matches!(p.spec, KindSpec::GpuKernel(_)))
        .count();
    assert!(kernels >= 6);
    let copy = plans.iter().find(|p| p.name == "copy").unwrap();
    assert_eq!(copy.points[0]["n"], ParamValue::Int(1 << 28));
    for p in &plans {
        if let KindSpec::GpuKernel(s) = &p.spec {
            s.validate_device(p.device)
                .unwrap_or_else(|e| panic!("scenario {}: {e}", p.name));
        }
    }
    for name in ["saxpy-all", "p2p"] {
        let p = plans.iter().find(|p| p.name == name).unwrap();
        assert_eq!(p.device, DeviceSel::AllGpus, "{name}");
    }
}

fn quick() -> Resolved {
    Resolved {
        warmup: Duration::ZERO,
        warmup_runs: 1,
        min_samples: 3,
        max_samples: 5,
        max_time: Duration::from_millis(200),
        ..Resolved::default()
    }
}

fn cuda_executors_run_or_explain() {
    let cache = tempfile::tempdir().unwrap();
    let env = ExecEnv {
        neon_perf_bin: PathBuf::from("neon-perf"),
        cache_dir: cache.path().to_path_buf(),
    };
    for plan in suite_plans(true) {
        let exec = executor_for(plan.kind());
        match exec.availability(&plan) {
            Availability::Missing(reason) if reason.starts_with("p2p_copy needs") => {
                // A CUDA host with one GPU: the peer-to-peer copy is ignored.
                let count = device::gpu_count().unwrap();
                assert!(count < 2, "{}: {reason}", plan.name);
                assert_eq!(
                    reason,
                    format!("p2p_copy needs two or more GPUs; this host has {count}")
                );
            }
            Availability::Missing(reason) => {
                // Without a GPU every CUDA scenario is skipped with a plain reason.
                assert!(
                    device::cuda_unavailable_reason().is_some()
                        || device::nvrtc_unavailable_reason().is_some(),
                    "{}: missing on a CUDA host: {reason}",
                    plan.name
                );
                assert!(
                    reason.contains("CUDA")
                        || reason.contains("NVRTC")
                        || reason.contains("cuBLAS"),
                    "{reason}"
                );
            }
            Availability::Ready => {
                let mut events = |_e| {};
                let mut ctx = RunCtx::new(&env, quick(), &mut events, Default::default());
                let out = exec
                    .run(&plan, &mut ctx)
                    .unwrap_or_else(|e| panic!("{}: {e}", plan.name));
                eprintln!("{} on {}:", plan.name, out.device);
                for m in &out.metrics {
                    let med = neon_perf::stats::median(&m.samples).unwrap_or(f64::NAN);
                    eprintln!(
                        "  {} = {} ({} samples)",
                        m.key,
                        m.unit.format(med),
                        m.samples.len()
                    );
                }
                for c in &out.checks {
                    eprintln!("  check {}: {} — {}", c.name, c.passed, c.evidence);
                }
                for w in &out.warnings {
                    eprintln!("  warning: {w}");
                }
                assert!(!out.checks.is_empty(), "{}: no checks", plan.name);
                for c in &out.checks {
                    assert!(c.passed, "{}: {} failed: {}", plan.name, c.name, c.evidence);
                }
                assert!(out.device.starts_with("cuda:"), "{}", out.device);
            }
        }
    }
}

fn oom_stress_on_the_host_goes_to_the_host_executor() {
    let mut plan = suite_plans(true)
        .into_iter()
        .find(|p| p.name == "oom")
        .unwrap();
    plan.device = DeviceSel::Cpu;
    let exec = executor_for(plan.kind());
    // exec/oom/host.rs runs it in a child process (tests/models.rs).
    assert_eq!(exec.availability(&plan), Availability::Ready);
}

fn env_in(dir: &Path) -> ExecEnv {
    ExecEnv {
        neon_perf_bin: PathBuf::from("neon-perf"),
        cache_dir: dir.to_path_buf(),
    }
}

fn plan_named(name: &str) -> ScenarioPlan {
    suite_plans(true)
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

fn run_plan(plan: &ScenarioPlan, env: &ExecEnv) -> neon_perf::exec::ExecOutput {
    let exec = executor_for(plan.kind());
    let mut events = |_e| {};
    let mut ctx = RunCtx::new(env, quick(), &mut events, Default::default());
    let out = exec
        .run(plan, &mut ctx)
        .unwrap_or_else(|e| panic!("{}: {e}", plan.name));
    eprintln!("{} on {}:", plan.name, out.device);
    for m in &out.metrics {
        eprintln!("  {} ({} samples)", m.key, m.samples.len());
    }
    for c in &out.checks {
        eprintln!("  check {}: {} — {}", c.name, c.passed, c.evidence);
        assert!(c.passed, "{}: {} failed: {}", plan.name, c.name, c.evidence);
    }
    out
}

/// `device = "all"`: every GPU runs every point; keys carry `gpu=<index>`.
fn device_all_runs_on_every_gpu() {
    let count = device::gpu_count().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = env_in(cache.path());
    let plan = plan_named("saxpy-all");
    assert_eq!(
        executor_for(plan.kind()).availability(&plan),
        Availability::Ready
    );
    let out = run_plan(&plan, &env);
    for g in 0..count {
        assert!(out.device.contains(&format!("cuda:{g}")), "{}", out.device);
        for key in [
            format!("time{{gpu={g},n=4096}}"),
            format!("bandwidth{{gpu={g},n=4096}}"),
            format!("flops{{gpu={g},n=4096}}"),
            format!("device_peak_bandwidth{{gpu={g}}}"),
        ] {
            assert!(
                out.metrics.iter().any(|m| m.key.to_string() == key),
                "no {key}"
            );
        }
        assert!(
            out.checks
                .iter()
                .any(|c| c.name == format!("builtin saxpy output is exact (cuda:{g})")),
            "no check for cuda:{g}"
        );
    }
    assert_eq!(out.checks.len(), count);
    assert!(out.metrics.iter().all(|m| m.key.labels.contains_key("gpu")));

    // oom_stress too: one stress per GPU, each labelled.
    let mut oom = plan_named("oom");
    oom.device = DeviceSel::AllGpus;
    let out = run_plan(&oom, &env);
    for g in 0..count {
        let key = format!("peak_allocated{{gpu={g}}}");
        assert!(
            out.metrics.iter().any(|m| m.key.to_string() == key),
            "no {key}"
        );
    }
    assert_eq!(out.checks.len(), 3 * count);
}

/// The peer-to-peer copy is ignored with the GPU count below two GPUs, and
/// measures every ordered pair from two on. Below two, this test checks the
/// scenario's reason and is itself reported as ignored with it: the copy
/// did not run.
fn p2p_copy_matches_the_gpu_count() -> Result<(), libtest_mimic::Completion> {
    let plan = plan_named("p2p");
    let exec = executor_for(plan.kind());
    if let Some(r) = device::cuda_unavailable_reason() {
        assert_eq!(exec.availability(&plan), Availability::Missing(r.clone()));
        return needs::condition(Some(r));
    }
    let count = device::gpu_count().unwrap();
    if let Some(r) = neon_perf::exec::gpus::p2p_unavailable_reason(count) {
        assert_eq!(exec.availability(&plan), Availability::Missing(r.clone()));
        return needs::condition(Some(r));
    }
    assert_eq!(exec.availability(&plan), Availability::Ready);
    let cache = tempfile::tempdir().unwrap();
    let out = run_plan(&plan, &env_in(cache.path()));
    assert_eq!(out.checks.len(), count * (count - 1));
    for s in 0..count {
        for d in (0..count).filter(|&d| d != s) {
            for name in ["p2p_bandwidth", "time"] {
                let key = format!("{name}{{dst={d},n=4096,src={s}}}");
                assert!(
                    out.metrics.iter().any(|m| m.key.to_string() == key),
                    "no {key}"
                );
            }
        }
    }
    Ok(())
}

trials! {
    gpu_suite_specs_deserialize_and_validate;
    cuda_executors_run_or_explain;
    oom_stress_on_the_host_goes_to_the_host_executor;
    device_all_runs_on_every_gpu: needs::GPU, needs::NVRTC;
    ?p2p_copy_matches_the_gpu_count;
}
