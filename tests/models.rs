//! batch_sweep and host oom_stress end to end through the executors: real
//! candle models on the CPU, a real child process under a memory limit.
//! Assertions are about what is reported, never about how fast this machine is
//! (except that batching helps an MLP at all, which holds on any CPU).

#[macro_use]
mod needs;

use std::path::{Path, PathBuf};

use neon_perf::config::parse_suite;
use neon_perf::exec::ExecEnv;
use neon_perf::metric::ChecklistItem;
use neon_perf::model::{Weights, device};
use neon_perf::plan::{DeviceSel, KindSpec, ScenarioPlan};
use neon_perf::result::{Outcome, ScenarioResult};
use neon_perf::run::execute;

fn plans(dir: &Path, text: &str) -> Vec<ScenarioPlan> {
    let path = dir.join("suite.toml");
    std::fs::write(&path, text).unwrap();
    parse_suite(&path, text)
        .unwrap_or_else(|e| panic!("{e}"))
        .scenarios
}

fn env(dir: &Path) -> ExecEnv {
    ExecEnv {
        neon_perf_bin: PathBuf::from(env!("CARGO_BIN_EXE_neon-perf")),
        cache_dir: dir.join("cache"),
    }
}

fn run(plan: &ScenarioPlan, dir: &Path) -> ScenarioResult {
    execute(plan, &env(dir), &plan.settings, &mut |_| {})
}

fn metric(r: &ScenarioResult, key: &str) -> f64 {
    let m = r
        .metric(key)
        .unwrap_or_else(|| panic!("no metric {key} in {:?}", keys(r)));
    m.samples[0]
}

fn keys(r: &ScenarioResult) -> Vec<String> {
    r.metrics.iter().map(|m| m.key.to_string()).collect()
}

const QUICK: &str = "[defaults]\nwarmup = \"20ms\"\nmax_time = \"200ms\"\nmin_samples = 5\n";

fn mlp_sweep_reports_every_metric_and_ticks_batching() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{QUICK}[[scenario]]\nname = \"mlp\"\nkind = \"batch_sweep\"\ndevice = \"cpu\"\n\
         checklist = [\"batching\"]\n\
         model = {{ arch = \"mlp\", layers = [256, 1024, 256], seed = 1 }}\n\
         batch_sizes = [1, 8, 32]\nlatency_slo = \"1s\"\ncompare_dtypes = [\"q8_0\", \"bf16\"]\n"
    );
    let p = &plans(dir.path(), &text)[0];
    let r = run(p, dir.path());
    assert_eq!(r.outcome, Outcome::Ran, "{:?}", r.checks);
    assert_eq!(r.device, "cpu");
    for b in [1, 8, 32] {
        let lat = r.metric(&format!("latency{{batch={b}}}")).unwrap();
        assert!(lat.samples.len() >= 5);
        assert!(
            metric(&r, &format!("latency_p99{{batch={b}}}"))
                >= metric(&r, &format!("latency_p50{{batch={b}}}"))
        );
        assert!(r.metric(&format!("throughput{{batch={b}}}")).is_some());
        assert!(metric(&r, &format!("scaling_efficiency{{batch={b}}}")) > 0.0);
        assert!(r.metric(&format!("memory{{batch={b}}}")).is_some());
    }
    assert_eq!(metric(&r, "scaling_efficiency{batch=1}"), 1.0);
    assert_eq!(metric(&r, "max_batch_under_slo"), 32.0);
    assert!([1.0, 8.0, 32.0].contains(&metric(&r, "best_batch")));
    assert!(metric(&r, "load_time") > 0.0);
    assert!(metric(&r, "first_inference{batch=1}") > 0.0);
    assert!(metric(&r, "second_inference{batch=1}") > 0.0);
    assert!(metric(&r, "device_init") >= 0.0);
    assert!(metric(&r, "harness_overhead") < 100.0);
    // quantization: error small and nonzero, f32 is the reference
    assert_eq!(metric(&r, "rel_l2_error{dtype=f32}"), 0.0);
    let q8 = metric(&r, "rel_l2_error{dtype=q8_0}");
    assert!(q8 > 0.0 && q8 < 0.02, "{q8}");
    assert!(metric(&r, "speedup{dtype=q8_0}") > 0.0);
    assert!(metric(&r, "weights_bytes{dtype=q8_0}") < metric(&r, "weights_bytes{dtype=f32}") / 3.0);
    let batching = r
        .checks
        .iter()
        .find(|c| c.item == Some(ChecklistItem::Batching))
        .unwrap();
    assert!(batching.passed, "{}", batching.evidence);
    assert!(
        batching.evidence.contains("at batch 1"),
        "{}",
        batching.evidence
    );
}

fn transformer_from_a_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = "{ arch = \"transformer\", d_model = 64, heads = 4, seq_len = 16, blocks = 2, seed = 5, weights = \"w.safetensors\" }";
    let text = format!(
        "{QUICK}[[scenario]]\nname = \"tf\"\nkind = \"batch_sweep\"\ndevice = \"cpu\"\n\
         model = {model}\nbatch_range = {{ min = 1, max = 4 }}\n"
    );
    let p = plans(dir.path(), &text).remove(0);
    let KindSpec::BatchSweep(spec) = &p.spec else {
        panic!()
    };
    // the file holds the seeded weights of seed 5
    let mut seeded = spec.model.clone();
    seeded.weights = None;
    Weights::random(&seeded)
        .unwrap()
        .save(&dir.path().join("w.safetensors"))
        .unwrap();
    let r = run(&p, dir.path());
    assert_eq!(r.outcome, Outcome::Ran);
    for b in [1, 2, 4] {
        assert!(
            r.metric(&format!("throughput{{batch={b}}}")).is_some(),
            "{:?}",
            keys(&r)
        );
    }
    // a missing file is a clear failure, not a panic
    std::fs::remove_file(dir.path().join("w.safetensors")).unwrap();
    let r = run(&p, dir.path());
    match &r.outcome {
        Outcome::Failed { error } => assert!(error.contains("w.safetensors"), "{error}"),
        o => panic!("{o:?}"),
    }
}

/// Ignores the tests below where the CUDA models can run: they are about
/// what happens when they cannot.
const NO_CUDA_MODELS: needs::Need = needs::Need {
    require: None,
    probe: cuda_models_usable,
};

fn cuda_models_usable() -> Option<String> {
    device::unavailable(DeviceSel::Cuda(0))
        .is_none()
        .then(|| "the CUDA models can run here; this test is about when they cannot".into())
}

/// Without a GPU (or, in the default build, without candle's CUDA backend)
/// the scenario in `text` is ignored, with the reason.
fn assert_ignored_without_gpu(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let p = &plans(dir.path(), text)[0];
    let why = device::unavailable(DeviceSel::Cuda(0))
        .expect("listed as NO_CUDA_MODELS: no GPU is usable here");
    let r = run(p, dir.path());
    assert_eq!(
        r.outcome,
        Outcome::Ignored {
            reason: why.clone()
        }
    );
    if cfg!(not(feature = "cuda")) {
        // Even with a driver present: the models need candle's CUDA backend.
        assert!(why.contains("--features cuda"), "{why}");
    }
}

fn cuda_scenarios_are_ignored_with_a_reason_without_a_gpu() {
    assert_ignored_without_gpu(
        "[[scenario]]\nname = \"g\"\nkind = \"batch_sweep\"\ndevice = \"cuda\"\n\
         model = { arch = \"mlp\", layers = [8, 8] }\nbatch_sizes = [1]\n",
    );
}

fn cuda_max_batch_is_ignored_with_a_reason_without_a_gpu() {
    assert_ignored_without_gpu(
        "[[scenario]]\nname = \"m\"\nkind = \"oom_stress\"\ndevice = \"cuda\"\n\
         find_max_batch = true\nmodel = { arch = \"mlp\", layers = [8, 8] }\n\
         memory_limit = \"64MiB\"\n",
    );
}

fn oom_child_probe_on_cuda_reports_instead_of_crashing_without_a_gpu() {
    // The probe child itself, as the parent starts it: without the `cuda`
    // feature or a GPU it must print a report with the reason and exit 0.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .args([
            "oom-child",
            "--device",
            "cuda:0",
            "--limit",
            "67108864",
            "--batch",
            "4",
        ])
        .args(["--model", r#"{"arch":"mlp","layers":[8,8]}"#])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let r: neon_perf::exec::oom::cuda::CudaProbeReport = serde_json::from_str(line.trim()).unwrap();
    assert!(!r.fits && !r.oom && r.batch == 4, "{r:?}");
    assert!(!r.error.is_empty());
}

fn host_oom_refuses_cleanly_recovers_and_finds_max_batch() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[scenario]]\nname = \"oom\"\nkind = \"oom_stress\"\ndevice = \"cpu\"\n\
                memory_limit = \"64MiB\"\nchunk = \"4MiB\"\nfind_max_batch = true\n\
                model = { arch = \"mlp\", layers = [256, 1024, 256] }\nmax_batch = 100000\n";
    let p = &plans(dir.path(), text)[0];
    let r = run(p, dir.path());
    assert_eq!(r.outcome, Outcome::Ran, "{:#?}", r.checks);
    let allocated = metric(&r, "oom_allocated");
    assert!(
        allocated > 32.0 * 1048576.0 && allocated <= 64.0 * 1048576.0,
        "{allocated}"
    );
    let max = metric(&r, "max_batch");
    // activations are ~ (256 + 1024 + 256) * 4 B per sample, a few copies:
    // tens of thousands fit in 64 MiB, 100000 do not.
    assert!(max > 1000.0 && max < 100000.0, "{max}");
    for item in [ChecklistItem::ErrorHandling, ChecklistItem::MemoryCleanup] {
        assert!(r.checks.iter().any(|c| c.item == Some(item) && c.passed));
    }
}

fn fragment_pattern_reports_refill() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[scenario]]\nname = \"frag\"\nkind = \"oom_stress\"\ndevice = \"cpu\"\n\
                memory_limit = \"48MiB\"\npattern = \"fragment\"\nchunk = \"1MiB\"\n";
    let p = &plans(dir.path(), text)[0];
    let r = run(p, dir.path());
    assert_eq!(r.outcome, Outcome::Ran, "{:#?}", r.checks);
    assert!(metric(&r, "refill_after_fragmentation") > 0.0);
    assert!(metric(&r, "oom_allocations") > 48.0);
}

fn an_absurd_limit_is_refused_before_any_child_runs() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[scenario]]\nname = \"big\"\nkind = \"oom_stress\"\ndevice = \"cpu\"\n\
                memory_limit = \"64TiB\"\n";
    let p = &plans(dir.path(), text)[0];
    match run(p, dir.path()).outcome {
        Outcome::Ignored { reason } => assert!(reason.contains("more than half"), "{reason}"),
        o => panic!("{o:?}"),
    }
}

trials! {
    mlp_sweep_reports_every_metric_and_ticks_batching;
    transformer_from_a_safetensors_file;
    cuda_scenarios_are_ignored_with_a_reason_without_a_gpu: NO_CUDA_MODELS;
    cuda_max_batch_is_ignored_with_a_reason_without_a_gpu: NO_CUDA_MODELS;
    oom_child_probe_on_cuda_reports_instead_of_crashing_without_a_gpu: NO_CUDA_MODELS;
    host_oom_refuses_cleanly_recovers_and_finds_max_batch;
    fragment_pattern_reports_refill;
    an_absurd_limit_is_refused_before_any_child_runs;
}
