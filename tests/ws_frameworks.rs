//! The shipped examples/ws-backend/frameworks.toml end to end: the example
//! handlers behind the web frameworks teams serve models with, each started
//! by its own command line — FastAPI on uvicorn (its `websockets` and its
//! `wsproto` implementation) and aiohttp, from scripts/ws/setup.sh's venv
//! (ignored with the reason without it, unless
//! NEON_PERF_REQUIRE_WS_PEERS=1). Streams are matched and timed, a leaking
//! handler fails `cancel` in each, and a refused handshake quotes the body
//! each framework sent, with the secret redacted. examples/ws-backend/
//! buffers.toml runs the WebSocket-buffer and error-handling checks against
//! the same apps, in their protocol; media.toml streams audio and video as
//! binary frames through them and gates on real-time playback. And `neon-perf init`'s
//! commented shapes, uncommented, run a team's Python benchmark and flood
//! its FastAPI app.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};

use serde_json::Value;

trials! {
    each_framework_streams_through_the_protocol_table: FRAMEWORKS;
    a_handler_that_keeps_cancelled_streams_fails_cancel_in_each_framework: FRAMEWORKS;
    a_refusal_quotes_the_body_each_framework_sent_with_the_secret_redacted: FRAMEWORKS;
    the_init_starters_shapes_run_a_python_benchmark_and_flood_a_fastapi_app: FRAMEWORKS;
    uvicorns_keepalive_pings_are_answered_on_idle_connections: FRAMEWORKS;
    hardened_apps_pass_the_buffer_checks_but_aiohttp_accepts_an_unmasked_frame: FRAMEWORKS;
    without_a_stream_cap_a_client_that_never_reads_grows_each_server_past_the_bound: FRAMEWORKS;
    audio_and_video_stream_as_binary_frames_and_a_stalling_stream_fails_the_gate: FRAMEWORKS;
}

/// The frameworks in target/ws-venv (`bash scripts/ws/setup.sh`).
const FRAMEWORKS: needs::Need = needs::Need {
    require: Some("NEON_PERF_REQUIRE_WS_PEERS"),
    probe: || {
        let python = root().join("target/ws-venv/bin/python");
        needs::runs(
            python.to_str().unwrap_or("python"),
            &["-c", "import fastapi, uvicorn, wsproto, aiohttp"],
        )
        .err()
        .map(|e| {
            format!("target/ws-venv cannot import fastapi, uvicorn, wsproto and aiohttp ({e}): run `bash scripts/ws/setup.sh`")
        })
    },
};

const SCENARIOS: [&str; 3] = ["fastapi-uvicorn", "fastapi-uvicorn-wsproto", "aiohttp"];
const TOKEN: &str = "server-s3cret-token";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn suite() -> PathBuf {
    root().join("examples/ws-backend/frameworks.toml")
}

/// Each scenario of the results, by name, in [`SCENARIOS`]' order.
fn scenarios(r: &Value) -> Vec<&Value> {
    SCENARIOS
        .iter()
        .map(|name| common::entry(&r["scenarios"], "scenario", name))
        .collect()
}

/// The first sample of metric `key`.
fn value(s: &Value, key: &str) -> f64 {
    let m = common::entry(&s["metrics"], "key", key);
    m["samples"][0]
        .as_f64()
        .unwrap_or_else(|| panic!("no sample of {key} in {}", s["scenario"]))
}

fn check<'a>(s: &'a Value, name: &str) -> &'a Value {
    common::entry(&s["checks"], "name", name)
}

fn each_framework_streams_through_the_protocol_table() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = common::run_json(&suite(), dir.path(), &[("API_TOKEN", TOKEN)]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    for s in scenarios(&r) {
        let name = &s["scenario"];
        assert_eq!(s["outcome"]["status"], "ran", "{name}: {text}");
        // 16 tokens per request, all counted, none lost or unclaimed.
        assert_eq!(value(s, "replies_per_request"), 16.0, "{name}");
        assert_eq!(value(s, "units_per_request"), 16.0, "{name}");
        for e in ["incomplete", "server_error", "unmatched", "closed", "lost"] {
            assert_eq!(value(s, &format!("errors{{type={e}}}")), 0.0, "{name} {e}");
        }
        // The handler waits 20 ms for the first token and 5 ms between
        // tokens: no measured time can be shorter.
        let ttfr = value(s, "time_to_first_reply_p50");
        assert!(ttfr >= 0.020, "{name}: time_to_first_reply p50 {ttfr}");
        let gap = value(s, "inter_reply_gap_p50");
        assert!(gap >= 0.0045, "{name}: inter_reply_gap p50 {gap}");
        for c in ["ping", "cancel"] {
            assert_eq!(check(s, c)["passed"], true, "{name}: {:#}", check(s, c));
        }
    }
    // The token reached the server through `server.env` (else every
    // handshake is refused) and never reaches a report.
    assert!(!text.contains(TOKEN) && !r.to_string().contains(TOKEN));
}

fn a_handler_that_keeps_cancelled_streams_fails_cancel_in_each_framework() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("API_TOKEN", TOKEN),
        ("BACKEND_LEAK_KIB_PER_CANCEL", "1024"),
    ];
    let (o, r) = common::run_json(&suite(), dir.path(), &env);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    for s in scenarios(&r) {
        let cancel = check(s, "cancel");
        let evidence = cancel["evidence"].as_str().unwrap();
        assert_eq!(cancel["passed"], false, "{}: {evidence}", s["scenario"]);
        assert!(evidence.contains("not back within it"), "{evidence}");
        assert_eq!(cancel["item"], "memory-cleanup");
        assert_eq!(s["status"], "failed");
    }
    let cleanup = common::entry(&r["checklist"], "item", "memory-cleanup");
    assert_eq!(cleanup["state"], "failed", "{cleanup:#}");
}

/// The shipped suite with the client sending `CLIENT_TOKEN`, which the
/// servers (expecting `API_TOKEN`) refuse.
fn refused_suite(dir: &Path) -> PathBuf {
    let examples = root().join("examples/ws-backend");
    let text = std::fs::read_to_string(suite())
        .unwrap()
        .replace("{suite_dir}", examples.to_str().unwrap())
        .replace(
            "headers = { Authorization = \"Bearer {env:API_TOKEN}\" }",
            "headers = { Authorization = \"Bearer {env:CLIENT_TOKEN}\" }",
        );
    assert!(text.contains("{env:CLIENT_TOKEN}"));
    let path = dir.join("refused.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn a_refusal_quotes_the_body_each_framework_sent_with_the_secret_redacted() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let client = "client-s3cret-token";
    let suite = refused_suite(dir.path());
    let env = [("API_TOKEN", TOKEN), ("CLIENT_TOKEN", client)];
    let (o, r) = common::run_json(&suite, dir.path(), &env);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    for s in scenarios(&r) {
        let error = s["outcome"]["error"].as_str().unwrap_or_default();
        // uvicorn writes a denial response's body after its headers, so
        // the body is read from the socket after the refusal.
        assert!(
            error.contains("refused: HTTP 401 Unauthorized (\"invalid credentials: <redacted>\")"),
            "{}: {error}",
            s["scenario"]
        );
        // A server that answered 401 listened: no hint about `ready`.
        assert!(!error.contains("nothing listened"), "{error}");
    }
    for secret in [client, TOKEN] {
        assert!(!text.contains(secret) && !r.to_string().contains(secret));
    }
}

/// A team's benchmark for the starter's `command` shape: times its work
/// and prints it with the Python helper neon-perf puts on PYTHONPATH.
const BENCH_PY: &str = r#"import sys, time
import neon_perf

batch = int(sys.argv[sys.argv.index("--batch") + 1])
start = time.perf_counter()
sum(i * i for i in range(20000 * batch))
neon_perf.emit("latency", (time.perf_counter() - start) * 1e3, "ms")
"#;

/// `neon-perf init` in a fresh folder, both commented shapes uncommented
/// as the starter's comments say, the team's files beside the suite (a
/// benchmark, and the example's FastAPI app as `app.py`), `python3` being
/// target/ws-venv's as in a team's environment: every scenario runs.
fn the_init_starters_shapes_run_a_python_benchmark_and_flood_a_fastapi_app() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let neon = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_neon-perf"));
        c.current_dir(repo).env_remove("GITHUB_STEP_SUMMARY");
        c
    };
    let o = neon().args(["init", "."]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    let suites = repo.join("suites");
    let starter = std::fs::read_to_string(suites.join("perf.toml")).unwrap();
    let (uncommented, blocks) = common::uncomment_starter(&starter);
    assert_eq!(blocks, 2);
    std::fs::write(suites.join("perf.toml"), uncommented).unwrap();
    std::fs::write(suites.join("bench.py"), BENCH_PY).unwrap();
    let example = root().join("examples/ws-backend");
    std::fs::copy(example.join("app_fastapi.py"), suites.join("app.py")).unwrap();
    std::fs::copy(example.join("handlers.py"), suites.join("handlers.py")).unwrap();
    let venv_bin = root().join("target/ws-venv/bin");
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap());
    let o = neon()
        .args(["run", "--smoke", "--json", "r.json"])
        .env("PATH", path)
        .env("API_TOKEN", TOKEN)
        .env("BACKEND_TOKEN", TOKEN)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let r: Value = serde_json::from_slice(&std::fs::read(repo.join("r.json")).unwrap()).unwrap();
    let scenario = |name: &str| common::entry(&r["scenarios"], "scenario", name).clone();
    for name in ["sort", "bench", "llm-stream"] {
        assert_eq!(scenario(name)["outcome"]["status"], "ran", "{name}: {text}");
    }
    assert!(value(&scenario("bench"), "latency{batch=8}") > 0.0);
    let stream = scenario("llm-stream");
    assert_eq!(value(&stream, "replies_per_request"), 64.0);
    assert!(value(&stream, "reply_rate") > 0.0);
    for c in ["ping", "cancel"] {
        assert_eq!(check(&stream, c)["passed"], true, "{:#}", check(&stream, c));
    }
}

/// uvicorn pings every connection (every 20 s by default) and closes one
/// whose pong is late. At 0.5 s and 0.5 s, over 4 s of an open-loop flood
/// slow enough that connections sit idle between requests, and with no
/// `ping` check of neon-perf's own writing to the sockets, no connection
/// is closed: the client answers the server's pings while it waits.
fn uvicorns_keepalive_pings_are_answered_on_idle_connections() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples/ws-backend");
    let python = root().join("target/ws-venv/bin/python");
    let suite = format!(
        r#"[[scenario]]
name = "keepalive"
kind = "websocket_flood"
url = "ws://127.0.0.1:{{port}}/ws"
server = {{ command = ["{python}", "-m", "uvicorn", "app_fastapi:app", "--app-dir", "{examples}", "--port", "{{port}}", "--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5"], ready = "log:Uvicorn running on" }}
connections = 8
rate = "2/s"
duration = "4s"
warmup = "0s"

[scenario.protocol]
request = {{ text = '{{"op":"generate","id":"{{id}}","max_tokens":4}}' }}
match = {{ json = "/id" }}
end = {{ json = "/type", equals = "done" }}
"#,
        python = python.display(),
        examples = examples.display(),
    );
    let path = dir.path().join("keepalive.toml");
    std::fs::write(&path, suite).unwrap();
    let (o, r) = common::run_json(&path, dir.path(), &[]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let s = &r["scenarios"][0];
    assert_eq!(s["outcome"]["status"], "ran", "{text}");
    for e in ["closed", "lost", "incomplete"] {
        assert_eq!(value(s, &format!("errors{{type={e}}}")), 0.0, "{e}: {text}");
    }
    // Connections were idle most of the time: 2 requests/s over 8 of them.
    assert!(value(s, "request_rate") < 4.0, "{text}");
}

fn buffers_suite() -> PathBuf {
    root().join("examples/ws-backend/buffers.toml")
}

fn hardened_apps_pass_the_buffer_checks_but_aiohttp_accepts_an_unmasked_frame() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = common::run_json(&buffers_suite(), dir.path(), &[("API_TOKEN", TOKEN)]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    for s in scenarios(&r) {
        let name = s["scenario"].as_str().unwrap();
        let evidence = |c: &str| check(s, c)["evidence"].as_str().unwrap().to_string();
        for c in ["oversize", "slow_consumer", "abrupt_disconnect", "churn"] {
            assert_eq!(check(s, c)["passed"], true, "{name} {c}: {}", evidence(c));
        }
        // Over the limit each app was given: refused with 1009.
        assert!(evidence("oversize").contains("close 1009"), "{name}");
        // A client that sends its requests and never reads asks for more
        // than 64 streams at once: the handlers close it.
        let slow = evidence("slow_consumer");
        assert!(slow.contains("requests of the protocol"), "{name}: {slow}");
        assert!(
            slow.contains("close 1008 (more than 64 streams in flight)"),
            "{name}: {slow}"
        );
        // Churn's connections each read a whole stream in the protocol.
        assert!(evidence("churn").contains(
            "500 connections opened and closed (8 at a time, after 50 warm-up), 0 failed"
        ));
        let malformed = check(s, "malformed");
        if name == "aiohttp" {
            // aiohttp 3.14.5 hands an unmasked client frame to the app
            // (RFC 6455 §5.1: the server MUST close the connection).
            let e = evidence("malformed");
            assert_eq!(malformed["passed"], false, "{e}");
            assert!(
                e.contains("unmasked client frame → accepted: answered with 1 frame(s)"),
                "{e}"
            );
            assert!(e.contains("reserved opcode 0x3 → close 1002"), "{e}");
        } else {
            assert_eq!(malformed["passed"], true, "{name}: {malformed:#}");
        }
    }
    let item = |id: &str| common::entry(&r["checklist"], "item", id)["state"].clone();
    assert_eq!(item("error-handling"), "failed");
    assert_ne!(item("websocket-buffers"), "failed");
    assert!(!text.contains(TOKEN) && !r.to_string().contains(TOKEN));
}

fn without_a_stream_cap_a_client_that_never_reads_grows_each_server_past_the_bound() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples/ws-backend");
    let checks = "checks = [\"oversize\", \"slow_consumer\", \"abrupt_disconnect\", \"malformed\", \"churn\"]";
    let text = std::fs::read_to_string(buffers_suite())
        .unwrap()
        .replace("{suite_dir}", examples.to_str().unwrap())
        .replace(
            "BACKEND_MAX_STREAMS = \"64\"",
            "BACKEND_MAX_STREAMS = \"0\"",
        )
        .replace(checks, "checks = [\"slow_consumer\"]");
    assert_eq!(text.matches("checks = [\"slow_consumer\"]").count(), 3);
    let suite = dir.path().join("uncapped.toml");
    std::fs::write(&suite, text).unwrap();
    let (o, r) = common::run_json(&suite, dir.path(), &[("API_TOKEN", TOKEN)]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    for s in scenarios(&r) {
        let slow = check(s, "slow_consumer");
        let e = slow["evidence"].as_str().unwrap();
        // Every request starts a stream task: memory grows with them, and
        // the check stops sending once it is past the bound.
        assert_eq!(slow["passed"], false, "{}: {e}", s["scenario"]);
        assert!(
            e.contains("then stopped: the server's memory had grown past the bound"),
            "{e}"
        );
        assert!(e.contains(": over the 64 MiB bound"), "{e}");
        assert_eq!(slow["item"], "websocket-buffers");
    }
}

fn audio_and_video_stream_as_binary_frames_and_a_stalling_stream_fails_the_gate() {
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let suite = root().join("examples/ws-backend/media.toml");
    let (suite, d) = (suite.to_str().unwrap(), dir.path());
    let json = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(d.join(name)).unwrap()).unwrap()
    };
    let run = |verb: &str, out: &str, env: &[(&str, &str)]| {
        let mut args = vec![verb, suite, "--baselines", "baselines", "--json", out];
        if verb == "bless" {
            args.extend(["--runs", "1"]);
        }
        common::neon_in(d, &args, &[[("API_TOKEN", TOKEN)].as_slice(), env].concat())
    };
    let bless = run("bless", "bless.json", &[]);
    assert_eq!(bless.status.code(), Some(0), "{}", common::text(&bless));
    let r = json("bless.json");
    // tts-audio: 50 chunks of 20 ms PCM (1 s of audio); video-frames: 30
    // frames of 128 KiB (0.999 s of video). Binary frames carry no id:
    // matched by order, the JSON end frame ends each stream.
    for (name, chunks, seconds, unit) in [
        ("tts-audio", 50.0, 1.0, "audio_s"),
        ("video-frames", 30.0, 0.999, "video_s"),
    ] {
        let s = common::entry(&r["scenarios"], "scenario", name);
        assert_eq!(value(s, "replies_per_request"), chunks, "{name}");
        assert!(
            (value(s, "units_per_request") - seconds).abs() < 1e-9,
            "{name}"
        );
        for e in ["incomplete", "server_error", "unmatched", "closed", "lost"] {
            assert_eq!(value(s, &format!("errors{{type={e}}}")), 0.0, "{name} {e}");
        }
        let rate = common::entry(&s["metrics"], "key", "reply_rate");
        assert_eq!(rate["unit"]["rate"], unit, "{rate:#}");
        // One chunk every 5 ms, faster than real time: every stream good.
        assert!(value(s, "inter_reply_gap_p50") >= 0.0045, "{name}");
        assert_eq!(value(s, "goodput"), value(s, "request_rate"), "{name}");
    }
    // An unchanged rerun passes: streams of 280 ms against a 2 s window
    // count by their share inside it, not as whole streams ended there.
    let same = run("run", "same.json", &[]);
    assert_eq!(same.status.code(), Some(0), "{}", common::text(&same));
    // A chunk every 25 ms: the audio (20 ms chunks) stalls, so no stream
    // is good; the video (33 ms frames) still plays in real time, but
    // slower than blessed. Both regress.
    let slow = run("run", "slow.json", &[("BACKEND_GAP_MS", "25")]);
    assert_eq!(slow.status.code(), Some(1), "{}", common::text(&slow));
    let r = json("slow.json");
    for name in ["tts-audio", "video-frames"] {
        let s = common::entry(&r["scenarios"], "scenario", name);
        for m in ["inter_reply_gap", "request_rate", "goodput"] {
            let v = common::entry(&s["verdicts"], "key", m);
            assert_eq!(v["verdict"], "regressed", "{name} {m}: {v:#}");
        }
    }
    let audio = common::entry(&r["scenarios"], "scenario", "tts-audio");
    assert_eq!(value(audio, "goodput"), 0.0);
    let video = common::entry(&r["scenarios"], "scenario", "video-frames");
    assert_eq!(value(video, "goodput"), value(video, "request_rate"));
    assert!(!common::text(&slow).contains(TOKEN));
}
