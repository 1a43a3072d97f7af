//! Table-driven tests of whole suites, written inline.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::metric::{ChecklistItem, Direction, Estimator};
use crate::plan::{DeviceSel, Kind, KindSpec, ParamPoint, ParamValue};

fn parse(src: &str) -> Result<Suite, ConfigError> {
    parse_suite(Path::new("suites/t.toml"), src)
}

fn errors(src: &str) -> Vec<(usize, usize, String, Option<String>)> {
    parse(src)
        .expect_err("should fail")
        .diagnostics
        .into_iter()
        .map(|d| (d.line, d.column, d.message, d.hint))
        .collect()
}

const CMD: &str = "[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"true\"]\n";

#[test]
fn minimal_command_suite() {
    let s = parse(CMD).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.scenarios.len(), 1);
    let p = &s.scenarios[0];
    assert_eq!(p.full_name(), "t::a");
    assert_eq!(p.kind(), Kind::Command);
    assert_eq!(p.device, DeviceSel::Auto);
    assert_eq!(p.points, vec![ParamPoint::new()]);
    assert_eq!((p.location.line, p.location.column), (1, 1));
    assert_eq!(p.location.to_string(), "suites/t.toml:1:1");
    assert_eq!(p.base_dir, Path::new("suites"));
    let KindSpec::Command(c) = &p.spec else {
        panic!()
    };
    assert_eq!(c.command, ["true"]);
}

#[test]
fn full_scenario() {
    let src = r#"
[suite]
name = "infer"
description = "inference"

[defaults]
warmup = "1s"
max_time = "10s"
tolerance = 0.05

[[scenario]]
name = "sweep"
kind = "command"
device = "cuda:1"
checklist = ["batching", "gpu-memory", "batching"]
params = { n = [1, 2, 3], dtype = ["f32", "f16"], fast = true }
tolerance = 0.02
min_samples = 20
command = ["python", "b.py", "--n={n}", "--dtype={dtype}", "{suite_dir}/x"]
env = { BIN = "{neon_perf}" }
metric."latency_p99{batch=1}" = { max = "5ms", estimator = "p99", direction = "lower" }
metric.throughput = { min = "10GB/s", tolerance = 0.03, gate = false }
metric."mem{b=2,a=1}".max = "4GiB"
"#;
    let s = parse(src).unwrap();
    assert_eq!(s.name, "infer");
    let p = &s.scenarios[0];
    assert_eq!(p.location.line, 11);
    assert_eq!(p.device, DeviceSel::Cuda(1));
    assert_eq!(
        p.checklist,
        [ChecklistItem::Batching, ChecklistItem::GpuMemory]
    );
    assert_eq!(p.points.len(), 6);
    // Declaration order: `n` varies slowest, then `dtype`.
    let first: Vec<String> = p.points[..3]
        .iter()
        .map(|pt| format!("{}/{}", pt["n"], pt["dtype"]))
        .collect();
    assert_eq!(first, ["1/f32", "1/f16", "2/f32"]);
    assert_eq!(p.points[0]["fast"], ParamValue::Bool(true));
    let r = p.settings.resolve();
    assert_eq!(r.tolerance, 0.02);
    assert_eq!(r.min_samples, 20);
    assert_eq!(r.warmup, Duration::from_secs(1));
    assert_eq!(r.max_time, Duration::from_secs(10));
    let lat = &p.metric_rules["latency_p99{batch=1}"];
    assert_eq!(lat.max, Some(0.005));
    assert_eq!(lat.estimator, Some(Estimator::Quantile(0.99)));
    assert_eq!(lat.direction, Some(Direction::LowerIsBetter));
    let th = &p.metric_rules["throughput"];
    assert_eq!(
        (th.min, th.tolerance, th.gate),
        (Some(1e10), Some(0.03), Some(false))
    );
    assert_eq!(p.metric_rules["mem{a=1,b=2}"].max, Some(4294967296.0));
}

#[test]
fn other_kinds_deserialize_their_spec() {
    let src = "[[scenario]]\nname = \"k\"\nkind = \"gpu_kernel\"\n\
               source = \"k.cu\"\nentry = \"k\"\nthreads = \"1024\"\n\
               [[scenario]]\nname = \"o\"\nkind = \"oom_stress\"\nmemory_fraction = 0.5\n";
    let s = parse(src).unwrap();
    assert_eq!(s.scenarios[0].kind(), Kind::GpuKernel);
    let KindSpec::OomStress(o) = &s.scenarios[1].spec else {
        panic!()
    };
    assert_eq!(o.memory_fraction, Some(0.5));
    assert_eq!(s.scenarios[1].location.line, 7);
}

#[test]
fn one_mistake_each() {
    let with = |extra: &str| format!("{CMD}{extra}\n");
    // (suite text, (line, column), message prefix, hint)
    type Case = (String, (usize, usize), &'static str, Option<&'static str>);
    let cases: Vec<Case> = vec![
        ("".into(), (1, 1), "empty suite: no [[scenario]]", None),
        ("[suite]\nname = \"x\"\n".into(), (1, 1), "empty suite: no [[scenario]]", None),
        ("[suite\n".into(), (1, 7), "invalid toml: ", None),
        ("[defualts]\n".to_string() + CMD, (1, 2), "unknown top-level key `defualts`", Some("did you mean `defaults`?")),
        (with("max_tiem = \"1s\""), (5, 1), "unknown key `max_tiem` in a `command` scenario", Some("did you mean `max_time`?")),
        (with("max_time = 10"), (5, 12), "`max_time` needs a unit: write a string such as \"10s\" or \"10ms\"", None),
        (with("max_time = true"), (5, 12), "expected a duration string such as \"500ms\" for `max_time`, found boolean", None),
        (with("timeout = \"5 secs\""), (5, 11), "invalid duration `5 secs`: unknown unit `secs` (use ns, us, ms, s, m or h)", None),
        (with("device = \"tpu\""), (5, 10), "invalid device `tpu`", None),
        (with("checklist = [\"gpu-memroy\"]"), (5, 14), "unknown checklist item `gpu-memroy`", Some("did you mean `gpu-memory`?")),
        (with("params = { n = [] }"), (5, 16), "`params.n` is an empty list: give at least one value", None),
        (with("metric.\"lat{\" = { max = 1 }"), (5, 8), "invalid metric name `lat{`: missing closing `}`", None),
        (with("metric.lat = { maxx = 1 }"), (5, 16), "unknown key `maxx` in the rule for metric `lat`", Some("did you mean `max`?")),
        (with("metric.lat = { min = \"5ms\", max = \"1ms\" }"), (5, 22), "`min` (\"5ms\") is greater than `max` (\"1ms\") for metric `lat`", None),
        (with("metric.lat = { tolerance = -0.1 }"), (5, 28), "`tolerance` must be between 0 and 1, found -0.1", None),
        (with("metric.lat = { max = \"5 parsecs\" }"), (5, 22), "invalid quantity `5 parsecs`: unknown unit `parsecs`", None),
        (with("metric.lat = { estimator = \"avg\" }"), (5, 28), "invalid estimator `avg`", None),
        (with("metric.lat = { direction = \"up\" }"), (5, 28), "invalid direction `up`", None),
        (with("shell = \"yes\""), (5, 9), "expected true or false for `shell`, found string", None),
        (with("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\"]"), (6, 8), "duplicate scenario name `a` (first used on line 2)", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"gpu_kernal\"\n".into(), (3, 8), "unknown kind `gpu_kernal`", Some("did you mean `gpu_kernel`?")),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\n".into(), (1, 1), "missing `target = \"builtin\"`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\ntarget = \"builtin\"\nchecks = [\"oversise\"]\n".into(), (5, 11), "unknown check `oversise`", Some("did you mean `oversize`?")),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\ntarget = \"builtin\"\nchecks = [\"oversize\", \"oversize\"]\n".into(), (5, 23), "check `oversize` is listed twice", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\nurl = \"ws://127.0.0.1:{port}/\"\nserver = { command = [\"x\"], env = { P = \"{sute_dir}\" } }\n".into(), (5, 42), "unknown placeholder `{sute_dir}`", Some("did you mean `{suite_dir}`?")),
        ("[[scenario]]\nname = \"a\"\nkind = \"oom_stress\"\nmax_batch = 4\n".into(), (4, 13), "`max_batch` is only used with `find_max_batch = true`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"gpu_kernel\"\n".into(), (1, 1), "missing kernel: give `source = \"kernels/x.cu\"` with `entry`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\nurl = \"ws://127.0.0.1:1/\"\nrate = 10\nin_flight = 2\n".into(), (5, 8), "give either `in_flight` (closed loop) or `rate` (open loop), not both", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\nurl = \"ws://127.0.0.1:{port}/\"\nserver = { command = [\"x\", \"{prot}\"] }\n".into(), (5, 29), "unknown placeholder `{prot}`", Some("did you mean `{port}`?")),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\ntarget = \"builtin\"\nconection = 5\n".into(), (5, 1), "unknown key `conection` in a `websocket_flood` scenario", Some("did you mean `connections`?")),
        (with("connections = 5"), (5, 1), "unknown key `connections` in a `command` scenario", Some("`connections` is a key of `websocket_flood` scenarios; this one is `kind = \"command\"`")),
        ("[[scenario]]\nname = \"a\"\nkind = \"batch_sweep\"\nbatch_sizes = [1]\n".into(), (1, 1), "missing key `model`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"batch_sweep\"\nmodel = { arch = \"mlp\", layers = [8, 8] }\nbatch_sizes = [0, 2]\n".into(), (5, 15), "batch sizes must be at least 1", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"batch_sweep\"\nmodel = { arch = \"mlp\", layers = [8, 8] }\nbatch_size = [1]\n".into(), (5, 1), "unknown key `batch_size`", Some("did you mean `batch_sizes`?")),
        ("[[scenario]]\nname = \"a\"\n".into(), (1, 1), "missing key `kind` in [[scenario]]", None),
        ("[[scenario]]\nkind = \"command\"\ncommand = [\"x\"]\n".into(), (1, 1), "missing key `name` in [[scenario]]", None),
        ("[[scenario]]\nname = \"a b\"\nkind = \"command\"\ncommand = [\"x\"]\n".into(), (2, 8), "scenario name `a b` is not a slug", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\n".into(), (1, 1), "missing key `command`: a `command` scenario needs it", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = []\n".into(), (4, 11), "`command` must not be empty", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", 3]\n".into(), (4, 17), "expected a string for `command`, found integer `3`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"--n={m}\"]\nparams = { n = 1 }\n".into(), (4, 22), "unknown placeholder `{m}`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\"]\nenv = { A = \"{neon_prf}\" }\n".into(), (5, 14), "unknown placeholder `{neon_prf}`", Some("did you mean `{neon_perf}`?")),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{b}\"]\nparams = { b = [1, 2] }\nsweep = { param = \"batch\" }\n".into(), (6, 9), "`sweep.param` `batch` is not a param of this scenario", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nparams = { batch = [\"one\", \"two\"] }\nsweep = { param = \"batch\" }\n".into(), (6, 9), "`sweep.param` `batch` must take whole numbers ≥ 1 (batch sizes), found `one`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\"]\nparams = { batch = [1, 2] }\nsweep = { param = \"batch\" }\n".into(), (6, 9), "`sweep.param` `batch` does not reach the program", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\", \"{dtype}\"]\nparams = { batch = [1, 2], dtype = [\"f16\", \"f32\"] }\nsweep = { param = \"batch\" }\n".into(), (6, 9), "`params.dtype` is swept too", Some("give `dtype` one value here, or split the scenario by `dtype`")),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nparams = { batch = [1, 2] }\nsweep = { param = \"batch\", latency_slo = \"0ms\" }\n".into(), (6, 9), "`sweep.latency_slo` must be positive", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nparams = { batch = [1, 2] }\nsweep = { parm = \"batch\" }\n".into(), (6, 11), "unknown key `parm`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"websocket_flood\"\ntarget = \"builtin\"\nmetric.rtt = { leak = true }\n".into(), (5, 23), "`leak` checks the values a program prints once per iteration: a `websocket_flood` scenario has none", None),
        (with("metric.rss = { leak = true, leak_tolerance = \"-1KiB\" }"), (5, 46), "`leak_tolerance` must not be negative", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\"]\nfind_max_batch = { param = \"batch\", memory_limit = \"1GiB\" }\n".into(), (5, 18), "`find_max_batch.param` `batch` does not reach the program", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nfind_max_batch = { param = \"batch\", memory_limit = \"gpu:1.5\" }\n".into(), (5, 18), "`find_max_batch.memory_limit`: the fraction of GPU memory must be in (0, 1], found 1.5", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nfind_max_batch = { param = \"batch\", memory_limit = \"gpu:most\" }\n".into(), (5, 18), "`find_max_batch.memory_limit`: expected `gpu:<fraction>` such as `gpu:0.8`, found `gpu:most`", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nfind_max_batch = { param = \"batch\", memory_limit = \"lots\" }\n".into(), (5, 18), "`find_max_batch.memory_limit`: ", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\", \"{n}\"]\nparams = { n = [1, 2] }\nfind_max_batch = { param = \"batch\", memory_limit = \"1GiB\" }\n".into(), (6, 18), "`params.n`: a `find_max_batch` scenario runs the values it searches", None),
        ("[[scenario]]\nname = \"a\"\nkind = \"command\"\ncommand = [\"x\", \"{batch}\"]\nfind_max_batch = { param = \"batch\", memory_limit = \"1GiB\", oom_pattern = \"(\" }\n".into(), (5, 18), "`find_max_batch.oom_pattern` is not a regular expression", None),
        ("[defaults]\nmax_samples = 5\n".to_string() + CMD, (2, 15), "`min_samples` (10, the built-in default) is greater than `max_samples` (5)", None),
        ("[defaults]\ndevice = \"cpu\"\n".to_string() + CMD, (2, 1), "unknown key `device` in [defaults]", Some("`device` is set per scenario, under [[scenario]]")),
        ("max_time = \"1s\"\n".to_string() + CMD, (1, 1), "unknown top-level key `max_time`", None),
        ("[scenario]\nname = \"a\"\n".into(), (1, 1), "`scenario` must be an array of tables, found table", Some("write `[[scenario]]` (double brackets)")),
        ("[suite]\nname = \"my suite\"\n".to_string() + CMD, (2, 8), "suite name `my suite` is not a slug", None),
        ("[suite]\nnmae = \"x\"\n".to_string() + CMD, (2, 1), "unknown key `nmae` in [suite]", Some("did you mean `name`?")),
        (with("params = { neon_perf = 1 }"), (5, 12), "param name `neon_perf` is reserved", None),
        (with("params = { n = [[1]] }"), (5, 17), "expected a string, number or boolean in `params.n`, found array", None),
        (with("memory_fraction = 0.5"), (5, 1), "unknown key `memory_fraction` in a `command` scenario", Some("`memory_fraction` is a key of `oom_stress` scenarios; this one is `kind = \"command\"`")),
        (with("warmup_runs = -1"), (5, 15), "`warmup_runs` must not be negative", None),
    ];
    for (src, (line, col), msg, hint) in cases {
        let errs = errors(&src);
        assert_eq!(errs.len(), 1, "one error for:\n{src}\ngot {errs:#?}");
        let (l, c, m, h) = &errs[0];
        assert!(
            m.starts_with(msg),
            "message for:\n{src}\n  got:  {m}\n  want: {msg}"
        );
        assert_eq!((*l, *c), (line, col), "position for:\n{src}\n{m}");
        if let Some(hint) = hint {
            assert_eq!(h.as_deref(), Some(hint), "hint for:\n{src}");
        }
    }
}

#[test]
fn every_error_of_a_file_is_reported() {
    let src = r#"
[defaults]
tolerance = 2

[[scenario]]
name = "a"
kind = "command"
command = ["x"]
device = "tpu"
max_time = "1"
"#;
    let errs = errors(src);
    let lines: Vec<usize> = errs.iter().map(|e| e.0).collect();
    assert_eq!(lines, [3, 9, 10], "{errs:#?}");
    let text = parse(src).unwrap_err().render(false);
    assert!(text.contains("due to 3 previous errors"), "{text}");
}

#[test]
fn discover_lists_toml_files_sorted() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["b.toml", "a.toml", "notes.md"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
    let single = dir.path().join("notes.md");
    let got = discover(&[dir.path().to_path_buf(), single.clone()]).unwrap();
    assert_eq!(
        got,
        [dir.path().join("a.toml"), dir.path().join("b.toml"), single]
    );
    let missing = dir.path().join("nope");
    let e = discover(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(e.path, missing);
    assert!(e.message().starts_with("no such file or folder"));
}

#[test]
fn unreadable_file_is_an_error_without_position() {
    let e = load_suite(Path::new("/nonexistent/suite.toml")).unwrap_err();
    assert_eq!(e.diagnostics[0].line, 0);
    assert!(e.message().starts_with("could not read suite file"), "{e}");
    assert!(e.render(false).contains("/nonexistent/suite.toml"));
}
