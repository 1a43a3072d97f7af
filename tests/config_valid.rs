//! Valid fixtures parse into the plans they describe: points, layered
//! settings, metric rules converted to base units.

use std::path::{Path, PathBuf};
use std::time::Duration;

use neon_perf::config::{discover, load_suite};
use neon_perf::metric::{ChecklistItem, Direction, Estimator, MetricKey};
use neon_perf::plan::{DeviceSel, Kind, KindSpec, ParamValue, Resolved, Suite};

const DIR: &str = "tests/fixtures/valid";

fn load(stem: &str) -> Suite {
    let path = Path::new(DIR).join(format!("{stem}.toml"));
    load_suite(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_valid_fixture_loads() {
    let files = discover(&[PathBuf::from(DIR)]).unwrap();
    assert!(files.len() >= 3);
    for f in files {
        let suite = load_suite(&f).unwrap_or_else(|e| panic!("{e}"));
        assert!(!suite.scenarios.is_empty());
        for s in &suite.scenarios {
            assert_eq!(s.location.file, f);
            assert_eq!(s.base_dir, Path::new(DIR));
            assert!(!s.points.is_empty());
        }
    }
}

#[test]
fn minimal_takes_its_name_from_the_file_and_built_in_defaults() {
    let s = load("minimal");
    assert_eq!(s.name, "minimal");
    let p = &s.scenarios[0];
    assert_eq!(p.full_name(), "minimal::true");
    assert_eq!((p.location.line, p.location.column), (2, 1));
    assert_eq!(p.device, DeviceSel::Auto);
    assert!(p.checklist.is_empty() && p.metric_rules.is_empty());
    assert_eq!(p.points.len(), 1);
    assert!(p.points[0].is_empty());
    assert_eq!(p.settings.resolve(), Resolved::default());
}

#[test]
fn command_sweep_layers_settings_and_expands_points() {
    let s = load("command_sweep");
    assert_eq!(s.name, "inference");
    let [sweep, one] = &s.scenarios[..] else {
        panic!("two scenarios")
    };

    assert_eq!(sweep.location.line, 12);
    assert_eq!(sweep.device, DeviceSel::Cuda(0));
    assert_eq!(
        sweep.checklist,
        [ChecklistItem::Batching, ChecklistItem::Monitoring]
    );
    // batch (declared first) varies slowest.
    let points: Vec<(i64, String)> = sweep
        .points
        .iter()
        .map(|p| {
            let ParamValue::Int(b) = p["batch"] else {
                panic!()
            };
            (b, p["dtype"].to_string())
        })
        .collect();
    let want: Vec<(i64, String)> = [1, 8, 64]
        .into_iter()
        .flat_map(|b| ["f32", "f16"].map(|d| (b, d.to_string())))
        .collect();
    assert_eq!(points, want);

    // built-in ← [defaults] ← scenario
    let r = sweep.settings.resolve();
    assert_eq!(r.warmup, Duration::from_secs(1)); // [defaults]
    assert_eq!(r.max_time, Duration::from_secs(10)); // [defaults]
    assert_eq!(r.target_rel_ci, 0.02); // [defaults]
    assert_eq!(r.max_samples, 500); // [defaults]
    assert_eq!(r.tolerance, 0.03); // scenario over [defaults]
    assert_eq!(r.min_samples, 20); // scenario
    assert_eq!(r.timeout, Duration::from_secs(120)); // scenario
    assert_eq!(r.monitor_interval, Resolved::default().monitor_interval); // built-in

    let rule = |k: &str| sweep.rule_for(&k.parse::<MetricKey>().unwrap()).unwrap();
    let lat = rule("latency{batch=1}");
    assert_eq!(lat.max, Some(0.005));
    assert_eq!(lat.estimator, Some(Estimator::Quantile(0.10)));
    let th = rule("throughput{batch=8,dtype=f16}"); // falls back to the bare name
    assert_eq!(th.min, Some(10e9));
    assert_eq!(th.direction, Some(Direction::HigherIsBetter));
    assert_eq!(th.tolerance, Some(0.1));
    let util = rule("gpu_util");
    assert_eq!((util.min, util.gate), (Some(50.0), Some(false)));
    assert_eq!(util.direction, Some(Direction::Neither));
    // Labels are canonical (sorted) whatever order the file used.
    let mem = &sweep.metric_rules["peak_mem{batch=64,dtype=f32}"];
    assert_eq!(mem.max, Some(4.0 * 1024.0 * 1024.0 * 1024.0));
    assert_eq!(mem.estimator, Some(Estimator::Max));

    let KindSpec::Command(c) = &sweep.spec else {
        panic!("command spec")
    };
    assert_eq!(c.command[1], "{suite_dir}/infer.py");
    assert_eq!(c.env["NEON_PERF"], "{neon_perf}");
    assert_eq!(c.cwd.as_deref(), Some(Path::new("scripts")));
    assert_eq!(c.primary.as_deref(), Some("latency"));
    assert!(!c.shell);

    // A scalar param is a one-element list.
    assert_eq!(one.points.len(), 1);
    assert_eq!(one.points[0]["n"], ParamValue::Int(1048576));
    assert_eq!(one.settings.resolve().tolerance, 0.05);
    let KindSpec::Command(c) = &one.spec else {
        panic!("command spec")
    };
    assert!(c.shell);
}

#[test]
fn all_kinds_get_their_specs() {
    let s = load("all_kinds");
    let kinds: Vec<Kind> = s.scenarios.iter().map(|p| p.kind()).collect();
    assert_eq!(kinds, [Kind::GpuKernel, Kind::OomStress, Kind::Command]);
    let devices: Vec<DeviceSel> = s.scenarios.iter().map(|p| p.device).collect();
    assert_eq!(
        devices,
        [DeviceSel::Cuda(1), DeviceSel::Auto, DeviceSel::Cpu]
    );
    for p in &s.scenarios {
        assert_eq!(
            p.settings.monitor_interval.unwrap().0,
            Duration::from_millis(20)
        );
    }
    let saxpy = &s.scenarios[0];
    assert_eq!(saxpy.points.len(), 2);
    assert_eq!(saxpy.metric_rules["bandwidth"].min, Some(500e9));
    let KindSpec::OomStress(o) = &s.scenarios[1].spec else {
        panic!("oom spec")
    };
    assert_eq!(o.memory_fraction, Some(0.5));
    assert_eq!(
        s.scenarios[1].settings.max_time.unwrap().0,
        Duration::from_secs(30)
    );
}

/// The first ```toml block of a markdown section.
fn toml_block_after(doc: &str, heading: &str) -> String {
    let section = &doc[doc.find(heading).expect("heading")..];
    let start = section.find("```toml\n").expect("toml block") + "```toml\n".len();
    let len = section[start..].find("```").expect("closing fence");
    section[start..start + len].to_string()
}

#[test]
fn the_documented_example_parses() {
    let doc = std::fs::read_to_string("docs/suite-format.md").unwrap();
    let example = toml_block_after(&doc, "## A complete example");
    let s = neon_perf::config::parse_suite(Path::new("suites/inference.toml"), &example)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "inference");
    assert_eq!(s.scenarios.len(), 2);
    assert_eq!(s.scenarios[0].points.len(), 6);
    assert_eq!(s.scenarios[0].settings.resolve().tolerance, 0.03);
    assert_eq!(s.scenarios[1].settings.resolve().tolerance, 0.05);
}

#[test]
fn batch_sweep_specs_parse_with_their_batches_and_models() {
    use neon_perf::plan::batch_sweep::{Activation, Arch, CompareDType, ModelDType};
    let s = load("batch_sweep");
    let [mlp, enc] = &s.scenarios[..] else {
        panic!("two scenarios")
    };
    assert_eq!(mlp.kind(), Kind::BatchSweep);
    assert_eq!(mlp.checklist, [ChecklistItem::Batching]);
    let KindSpec::BatchSweep(m) = &mlp.spec else {
        panic!("batch_sweep spec")
    };
    assert_eq!(m.batches(), [1, 4, 16]); // sorted, deduplicated
    assert_eq!(m.model.arch, Arch::Mlp);
    assert_eq!(m.model.layers.as_deref(), Some(&[512, 2048, 512][..]));
    assert_eq!(m.model.activation, Some(Activation::Relu));
    assert_eq!(m.model.dtype(), ModelDType::Bf16);
    assert_eq!(m.model.seed(), 7);
    assert_eq!(m.latency_slo.unwrap().0, Duration::from_millis(5));
    assert_eq!(m.compare_dtypes, [CompareDType::Q8_0, CompareDType::Q4_0]);
    assert_eq!(m.memory_budget.unwrap().0, 1 << 30);
    assert_eq!(mlp.metric_rules["latency_p99{batch=1}"].max, Some(0.005));

    assert_eq!(enc.device, DeviceSel::Cuda(1));
    let KindSpec::BatchSweep(e) = &enc.spec else {
        panic!("batch_sweep spec")
    };
    assert_eq!(e.batches(), [3, 4, 8, 16, 20]);
    assert_eq!(e.model.arch, Arch::Transformer);
    assert_eq!(
        (
            e.model.d_model,
            e.model.heads,
            e.model.seq_len,
            e.model.blocks
        ),
        (Some(256), Some(4), Some(64), Some(2))
    );
    assert_eq!(e.model.weights.as_deref(), Some("enc.safetensors"));
}

#[test]
fn shipped_model_suites_parse() {
    for f in ["suites/models.toml", "suites/models-cuda.toml"] {
        let s = load_suite(Path::new(f)).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.scenarios.len() >= 2, "{f}");
    }
}

/// Every suite under examples/ loads, as a team copying one would check
/// it (with the token the ws-backend suite reads from the environment).
#[test]
fn every_example_suite_parses() {
    let suites = [
        "examples/onnx/onnx.toml",
        "examples/pytorch/pytorch.toml",
        "examples/ws-backend/suite.toml",
        "examples/ws-backend/frameworks.toml",
        "examples/ws-backend/buffers.toml",
        "examples/ws-backend/media.toml",
        "examples/ws-backend/gpu.toml",
        "examples/rust-crate/suites/example.toml",
    ];
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .arg("check")
        .args(suites)
        .env("API_TOKEN", "a-test-token")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("ok: {} suite(s)", suites.len())),
        "{text}"
    );
    // A new example suite gets a line above.
    let found = std::process::Command::new("find")
        .args(["examples", "-name", "*.toml", "-not", "-name", "Cargo.toml"])
        .output()
        .unwrap();
    let mut found: Vec<_> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    found.sort();
    let mut listed: Vec<_> = suites.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}
