//! `websocket_flood` with `[scenario.protocol]` end to end, against the
//! example streaming backend (examples/ws-backend, Python `websockets`
//! from scripts/ws/setup.sh; without it those tests are ignored with the
//! reason, unless NEON_PERF_REQUIRE_WS_PEERS=1): stream metrics, replies
//! interleaved on one connection and matched by a JSON id, by order, every
//! way a stream ends, every way one goes wrong, auth headers, and the gate
//! on streams. Config errors need no peer.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use neon_perf::ws::client::stream::{End, Goodput, Matching, Protocol, Request, request};
use neon_perf::ws::client::{self, FloodConfig, Frame, Load, Payload, Progress, StopAfter};
use tokio_tungstenite::tungstenite::Message;

use neon_perf::config::parse_suite;
use neon_perf::exec::ExecEnv;
use neon_perf::metric::{Direction, Estimator};
use neon_perf::result::{Outcome, ScenarioResult};

trials! {
    streams_report_their_timings_units_and_goodput: needs::WS_PEERS;
    interleaved_streams_on_one_connection_match_by_json_id: needs::WS_PEERS;
    replies_without_ids_match_by_order: needs::WS_PEERS;
    streams_end_by_count: needs::WS_PEERS;
    streams_end_when_idle: needs::WS_PEERS;
    streams_end_when_the_server_closes: needs::WS_PEERS;
    a_reply_that_is_not_json_is_unmatched_and_quoted: needs::WS_PEERS;
    a_reply_without_the_id_field_is_unmatched: needs::WS_PEERS;
    a_stream_that_never_ends_is_incomplete: needs::WS_PEERS;
    a_server_closing_mid_stream_cuts_streams: needs::WS_PEERS;
    error_frames_fail_their_request_with_the_frame_quoted: needs::WS_PEERS;
    a_refused_handshake_shows_status_and_text_with_secrets_redacted: needs::WS_PEERS;
    headers_reach_the_server_without_protocol_too: needs::WS_PEERS;
    the_gate_passes_unchanged_streams_and_fails_a_slower_first_reply: needs::WS_PEERS;
    an_unset_env_variable_is_a_config_error_naming_it;
    a_bad_pointer_is_a_config_error_at_its_line_and_column;
    an_unknown_template_placeholder_is_located;
    open_loop_time_to_first_reply_counts_from_the_intended_send_time;
    requests_come_from_a_file_in_turn: needs::WS_PEERS;
    params_swept_only_by_the_template_label_the_metrics: needs::WS_PEERS;
    empty_replies_are_skipped_and_goodput_applies_its_bounds: needs::WS_PEERS;
    binary_requests_match_replies_by_order: needs::WS_PEERS;
    wss_with_the_suites_own_ca_streams: needs::WS_PEERS, OPENSSL;
    wss_with_an_unknown_ca_fails_with_the_tls_error: needs::WS_PEERS, OPENSSL;
    wss_without_verification_runs_and_every_report_warns: needs::WS_PEERS, OPENSSL;
}

/// `openssl` on PATH, to make the TLS tests' certificates.
const OPENSSL: needs::Need = needs::Need {
    require: None,
    probe: || {
        needs::runs("openssl", &["version"]).err().map(|e| {
            format!("openssl does not run ({e}): the wss tests make their certificates with it")
        })
    },
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

use common::ws_backend as backend;

/// A generate request for `prompt` with `tokens` tokens.
fn request(prompt: &str, tokens: u32) -> String {
    format!(
        "request = {{ text = '{{\"op\":\"generate\",\"id\":\"{{id}}\",\"prompt\":\"{prompt}\",\"max_tokens\":{tokens}}}' }}\n"
    )
}

const JSON_DONE: &str =
    "match = { json = \"/id\" }\nend = { json = \"/type\", equals = \"done\" }\n";

fn suite_text(keys: &str, protocol: &str) -> String {
    format!(
        "[[scenario]]\nname = \"t\"\nkind = \"websocket_flood\"\nwarmup = \"200ms\"\n{keys}\n[scenario.protocol]\n{protocol}"
    )
}

fn run(keys: &str, protocol: &str) -> ScenarioResult {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), keys, protocol)
}

fn run_in(dir: &Path, keys: &str, protocol: &str) -> ScenarioResult {
    let text = suite_text(keys, protocol);
    common::execute_suite_text(dir, &text)
}

fn config_error(keys: &str, protocol: &str) -> String {
    let text = suite_text(keys, protocol);
    match parse_suite(Path::new("ws.toml"), &text) {
        Ok(_) => panic!("expected a config error:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn samples<'a>(r: &'a ScenarioResult, key: &str) -> &'a [f64] {
    let m = r.metric(key).unwrap_or_else(|| {
        let keys: Vec<String> = r.metrics.iter().map(|m| m.key.to_string()).collect();
        panic!("no metric {key} in {keys:?}; {:?}", r.outcome)
    });
    &m.samples
}

fn value(r: &ScenarioResult, key: &str) -> f64 {
    samples(r, key)[0]
}

fn flood_evidence(r: &ScenarioResult) -> &str {
    let c = r.checks.iter().find(|c| c.name.starts_with("flood"));
    &c.unwrap_or_else(|| panic!("no flood check: {:?}", r.outcome))
        .evidence
}

fn assert_clean(r: &ScenarioResult) {
    assert_eq!(r.outcome, Outcome::Ran, "{:#?}", r.checks);
    assert!(r.checks.iter().all(|c| c.passed), "{:#?}", r.checks);
}

fn streams_report_their_timings_units_and_goodput() {
    let keys = backend(&["--first-delay-ms", "20", "--gap-ms", "5"])
        + "connections = 4\nin_flight = 1\nduration = \"1s\"\n";
    let proto = request("hi", 8)
        + JSON_DONE
        + "units = { json = \"/usage/output_tokens\", name = \"tokens\" }\ngoodput = { time_to_first_reply = \"300ms\" }\n";
    let r = run(&keys, &proto);
    assert_clean(&r);
    let ttfr = value(&r, "time_to_first_reply_p50");
    assert!((0.020..0.035).contains(&ttfr), "ttfr p50 {ttfr}");
    let gap = value(&r, "inter_reply_gap_p50");
    assert!((0.0045..0.012).contains(&gap), "gap p50 {gap}");
    let tpr = value(&r, "time_per_reply_p50");
    assert!((0.003..0.012).contains(&tpr), "time per reply p50 {tpr}");
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 8.0));
    assert!(samples(&r, "units_per_request").iter().all(|&n| n == 8.0));
    let stream = samples(&r, "stream_time");
    assert!(
        stream.iter().all(|&s| s > 0.020 + 7.0 * 0.0045),
        "{stream:?}"
    );
    let tokens = r.metric("reply_rate").unwrap();
    assert_eq!(tokens.unit, neon_perf::metric::Unit::Rate("tokens".into()));
    assert!(tokens.samples.iter().sum::<f64>() > 0.0);
    let goodput: f64 = samples(&r, "goodput").iter().sum();
    let requests: f64 = samples(&r, "request_rate").iter().sum();
    assert!(
        goodput > 0.0 && (goodput - requests).abs() < 1e-9,
        "{goodput} {requests}"
    );
    // Every stream met its bound: nothing to say about goodput.
    assert!(
        !r.warnings.iter().any(|w| w.starts_with("goodput")),
        "{:?}",
        r.warnings
    );
    for e in ["incomplete", "server_error", "unmatched"] {
        assert_eq!(value(&r, &format!("errors{{type={e}}}")), 0.0, "{e}");
    }
    // Frames per second and connect times are only reported in a protocol
    // flood (docs/websocket.md, "Stream metrics"), with the estimator a
    // rule's `direction` would gate them on.
    for (k, estimator) in [
        ("msg_rate", Estimator::Quantile(0.95)),
        ("byte_rate", Estimator::Quantile(0.95)),
        ("connect_time", Estimator::Quantile(0.05)),
    ] {
        let m = r.metric(k).unwrap();
        assert_eq!(m.direction, Direction::Neither, "{k}");
        assert_eq!(m.estimator, estimator, "{k}");
    }
    assert_eq!(
        r.metric("time_to_first_reply").unwrap().direction,
        Direction::LowerIsBetter
    );
}

fn interleaved_streams_on_one_connection_match_by_json_id() {
    let keys = backend(&["--first-delay-ms", "20", "--gap-ms", "5"])
        + "connections = 1\nin_flight = 4\nduration = \"1s\"\n";
    let r = run(&keys, &(request("hi", 8) + JSON_DONE));
    assert_clean(&r);
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 8.0));
    // Four streams at once on one connection: about four times the
    // requests one at a time would complete (one per stream_time).
    let stream = value(&r, "stream_time");
    let rate = samples(&r, "request_rate");
    let mean = rate.iter().sum::<f64>() / rate.len() as f64;
    assert!(
        mean > 2.5 / stream,
        "{mean} requests/s with streams of {stream} s"
    );
}

fn replies_without_ids_match_by_order() {
    let keys = backend(&["--no-ids", "--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 2\nduration = \"500ms\"\n";
    let proto =
        request("hi", 5) + "match = \"order\"\nend = { json = \"/type\", equals = \"done\" }\n";
    let r = run(&keys, &proto);
    assert_clean(&r);
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 5.0));
    assert_eq!(value(&r, "errors{type=unmatched}"), 0.0);
}

fn streams_end_by_count() {
    let keys = backend(&["--no-done", "--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 2\nduration = \"500ms\"\n";
    let proto = request("hi", 4) + "match = { json = \"/id\" }\nend = { count = 4 }\n";
    let r = run(&keys, &proto);
    assert_clean(&r);
    let replies = samples(&r, "replies_per_request");
    assert!(
        !replies.is_empty() && replies.iter().all(|&n| n == 4.0),
        "{replies:?}"
    );
}

fn streams_end_when_idle() {
    let keys = backend(&["--no-done", "--first-delay-ms", "5", "--gap-ms", "2"])
        + "connections = 2\nduration = \"1s\"\n";
    let proto = request("hi", 6) + "match = { json = \"/id\" }\nend = { idle = \"100ms\" }\n";
    let r = run(&keys, &proto);
    assert_clean(&r);
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 6.0));
    // The stream ends at its last reply, not when the idle time ran out.
    let p50 = value(&r, "stream_time");
    assert!(p50 < 0.060, "stream_time {p50}");
}

fn streams_end_when_the_server_closes() {
    let keys = backend(&[
        "--no-ids",
        "--no-done",
        "--close-after-stream",
        "--first-delay-ms",
        "5",
        "--gap-ms",
        "1",
    ]) + "connections = 2\nduration = \"1s\"\n";
    let proto = request("hi", 3) + "match = \"order\"\nend = \"close\"\n";
    let r = run(&keys, &proto);
    assert_clean(&r);
    let replies = samples(&r, "replies_per_request");
    assert!(replies.iter().all(|&n| n == 3.0), "{replies:?}");
    // Each stream needs a connection of its own: they were opened again.
    assert!(replies.len() >= 10, "{} streams", replies.len());
    assert_eq!(value(&r, "errors{type=closed}"), 0.0);
}

fn a_reply_that_is_not_json_is_unmatched_and_quoted() {
    let keys = backend(&["--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 1\nduration = \"300ms\"\n";
    let r = run(&keys, &(request("not_json", 3) + JSON_DONE));
    assert!(value(&r, "errors{type=unmatched}") >= 1.0);
    let e = flood_evidence(&r);
    assert!(
        e.contains("a reply that is not JSON: \"upstream busy, retrying\""),
        "{e}"
    );
    // The request itself still streamed to its end.
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 3.0));
}

fn a_reply_without_the_id_field_is_unmatched() {
    let keys = backend(&["--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 1\nduration = \"300ms\"\n";
    let r = run(&keys, &(request("no_id", 3) + JSON_DONE));
    assert!(value(&r, "errors{type=unmatched}") >= 1.0);
    let e = flood_evidence(&r);
    assert!(e.contains("without the `match.json` field"), "{e}");
}

fn a_stream_that_never_ends_is_incomplete() {
    // messages mode: the window ends at the `timeout` setting at the latest.
    let keys = backend(&["--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 1\nmessages = 2\ntimeout = \"1s\"\n";
    let r = run(&keys, &(request("never_end", 3) + JSON_DONE));
    // The flood's check fails the scenario, with the evidence.
    let Outcome::Failed { error } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert!(error.contains("(incomplete 1)"), "{error}");
    assert!(
        error.contains("without an end at the drain deadline"),
        "{error}"
    );
    assert!(error.contains("the oldest had 3 repl"), "{error}");
    // What the server last sent, so that a wrong `end` shows itself.
    assert!(error.contains("; the last frame received: \"{"), "{error}");
    assert_eq!(value(&r, "errors{type=incomplete}"), 1.0);
}

fn a_server_closing_mid_stream_cuts_streams() {
    let keys = backend(&["--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 2\nduration = \"500ms\"\n";
    let r = run(&keys, &(request("close_mid", 5) + JSON_DONE));
    assert_eq!(value(&r, "errors{type=closed}"), 2.0);
    assert_eq!(value(&r, "errors{type=incomplete}"), 2.0);
    let e = flood_evidence(&r);
    assert!(
        e.contains("incomplete 2") && e.contains("close codes 1011×2"),
        "{e}"
    );
}

fn error_frames_fail_their_request_with_the_frame_quoted() {
    let keys = backend(&["--first-delay-ms", "5"]) + "connections = 1\nduration = \"300ms\"\n";
    let proto =
        request("fail", 3) + JSON_DONE + "error = { json = \"/type\", equals = \"error\" }\n";
    let r = run(&keys, &proto);
    assert!(value(&r, "errors{type=server_error}") >= 1.0);
    assert_eq!(value(&r, "errors{type=unmatched}"), 0.0);
    let e = flood_evidence(&r);
    assert!(
        e.contains("ended by an error frame") && e.contains("cannot generate"),
        "{e}"
    );
}

const SECRET: &str = "s3cr3t-for-the-test";

fn a_refused_handshake_shows_status_and_text_with_secrets_redacted() {
    // SAFETY: set before any thread of this test reads the environment;
    // each trial sets its own variable name.
    unsafe { std::env::set_var("NEON_PERF_TEST_WS_WRONG", SECRET) };
    let keys = backend(&["--token", "the-right-one"])
        + "headers = { Authorization = \"Bearer {env:NEON_PERF_TEST_WS_WRONG}\" }\nduration = \"300ms\"\n";
    let r = run(&keys, &(request("hi", 2) + JSON_DONE));
    let Outcome::Failed { error } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert!(error.contains("refused: HTTP 401 Unauthorized"), "{error}");
    assert!(error.contains("invalid credentials"), "{error}");
    assert!(error.contains("<redacted>"), "{error}");
    assert!(!error.contains(SECRET), "{error}");
    let all = format!("{r:?}");
    assert!(!all.contains(SECRET), "the secret appears in the result");
}

fn headers_reach_the_server_without_protocol_too() {
    // The backend answers a non-JSON request with an error frame; the
    // handshake passing is the point: neon-perf's own format, with a token
    // the server checks.
    unsafe { std::env::set_var("NEON_PERF_TEST_WS_RIGHT", "ok-token") };
    let text = format!(
        "[[scenario]]\nname = \"t\"\nkind = \"websocket_flood\"\nwarmup = \"100ms\"\n{}headers = {{ Authorization = \"Bearer {{env:NEON_PERF_TEST_WS_RIGHT}}\" }}\nduration = \"300ms\"\nmax_errors = 1000000\npayload = {{ type = \"text\", size = 32 }}\n",
        backend(&["--token", "ok-token"])
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.toml");
    let suite = parse_suite(&path, &text).unwrap();
    let plan = &suite.scenarios[0];
    let env = ExecEnv {
        neon_perf_bin: PathBuf::from(env!("CARGO_BIN_EXE_neon-perf")),
        cache_dir: dir.path().to_path_buf(),
    };
    let r = neon_perf::run::execute(plan, &env, &plan.settings, &mut |_| {});
    assert_eq!(r.outcome, Outcome::Ran, "{:?}", r.outcome);
    assert_eq!(value(&r, "errors{type=connect}"), 0.0);
    // Its replies carry no neon-perf id: answered, but unmatched.
    assert!(value(&r, "errors{type=unmatched}") > 0.0);
}

/// neon-perf with the example backend's first-reply delay and gap (ms).
fn neon(dir: &Path, args: &[&str], (first_delay_ms, gap_ms): (u32, f64)) -> Output {
    let (first, gap) = (first_delay_ms.to_string(), gap_ms.to_string());
    let env = [
        ("API_TOKEN", "gate-token"),
        ("BACKEND_FIRST_DELAY_MS", first.as_str()),
        ("BACKEND_GAP_MS", gap.as_str()),
    ];
    common::neon_in(dir, args, &env)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn the_gate_passes_unchanged_streams_and_fails_a_slower_first_reply() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baselines");
    let suite = root().join("examples/ws-backend/suite.toml");
    let (suite, base) = (suite.to_str().unwrap(), base.to_str().unwrap());
    let d = dir.path();
    let bless = neon(
        d,
        &["bless", suite, "--baselines", base, "--runs", "1"],
        (20, 5.0),
    );
    assert_eq!(bless.status.code(), Some(0), "{}", text(&bless));
    let same = neon(d, &["run", suite, "--baselines", base], (20, 5.0));
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let slower = neon(d, &["run", suite, "--baselines", base], (30, 5.0));
    assert_regressed(&slower, &["time_to_first_reply"]);
    // 16 tokens 7.5 ms apart instead of 5: each stream takes 132 ms
    // instead of 95, so a quarter fewer requests and tokens per second.
    let slower_tokens = neon(d, &["run", suite, "--baselines", base], (20, 7.5));
    assert_regressed(
        &slower_tokens,
        &["inter_reply_gap", "request_rate", "reply_rate"],
    );
}

/// The run exited 1 with each of `metrics` regressed.
fn assert_regressed(o: &Output, metrics: &[&str]) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for m in metrics {
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{m} ")))
            .unwrap_or_else(|| panic!("no {m} in {t}"));
        assert!(line.contains("regressed"), "{line}");
    }
}

fn an_unset_env_variable_is_a_config_error_naming_it() {
    let keys = "url = \"ws://127.0.0.1:9/\"\nheaders = { Authorization = \"Bearer {env:NEON_PERF_TEST_NEVER_SET}\" }\n";
    // The suite loads (`list`, `check` and the other scenarios work); what
    // stops a run of this one is located at the `{env:...}` inside the
    // string, on line 6.
    let text = suite_text(keys, &(request("hi", 2) + JSON_DONE));
    let suite = parse_suite(Path::new("ws.toml"), &text).unwrap();
    let plan = &suite.scenarios[0];
    let unset = plan.unset_env();
    assert_eq!(unset.len(), 1, "{:?}", plan.env);
    assert_eq!(unset[0].name, "NEON_PERF_TEST_NEVER_SET");
    assert_eq!(unset[0].what, "header `Authorization`");
    assert_eq!(unset[0].location.to_string(), "ws.toml:6:37");
    let e = neon_perf::config::unset_env(&[plan]);
    assert!(
        e[0].to_string()
            .contains("`NEON_PERF_TEST_NEVER_SET`, which is not set"),
        "{}",
        e[0]
    );
}

fn a_bad_pointer_is_a_config_error_at_its_line_and_column() {
    let keys = "url = \"ws://127.0.0.1:9/\"\n";
    let proto = request("hi", 2) + "match = { json = \"id\" }\n";
    let e = config_error(keys, &proto);
    assert!(e.contains("`id` is not a JSON pointer"), "{e}");
    assert!(e.contains("ws.toml:9:18"), "{e}");
}

fn an_unknown_template_placeholder_is_located() {
    let keys = "url = \"ws://127.0.0.1:9/\"\n";
    let proto = "request = { text = '{\"id\":\"{id}\",\"p\":\"{prompt}\"}' }\n";
    let e = config_error(keys, proto);
    assert!(e.contains("unknown placeholder `{prompt}`"), "{e}");
    assert!(e.contains("ws.toml:8:"), "{e}");
}

/// Answers each request 20 ms late, one at a time, with two frames: at
/// 200 requests/s on one connection the server does 50/s, so a queue
/// builds. Closed loop would see ~20 ms to the first reply; measured from
/// each request's intended send time, the queueing shows.
fn open_loop_time_to_first_reply_counts_from_the_intended_send_time() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
            while let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                for kind in ["token", "done"] {
                    let frame = serde_json::json!({ "id": v["id"], "type": kind });
                    if ws.send(Message::text(frame.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut c = FloodConfig::new(
            format!("ws://{addr}/"),
            1,
            Load::Open { rate: 200.0 },
            Payload::random(Frame::Binary, 64, 64, 0),
        );
        c.warmup = Duration::from_millis(50);
        c.stop = StopAfter::Duration(Duration::from_millis(500));
        c.drain_timeout = Duration::from_secs(5);
        c.protocol = Some(Protocol {
            request: Request::Text(request::compile(r#"{"id":"{id}"}"#, &[])),
            matching: Matching::Json("/id".into()),
            end: End::Json("/type".into(), serde_json::json!("done")),
            skip_empty: None,
            error: None,
            units: None,
            goodput: Goodput::default(),
        });
        let r = client::flood(c, Arc::new(Progress::default()))
            .await
            .unwrap();
        let s = r
            .streams
            .as_ref()
            .expect("a protocol flood reports streams");
        let p50 = s.ttfr.all.value_at_quantile(0.5) as f64 * 1e-9;
        let p99 = s.ttfr.all.value_at_quantile(0.99) as f64 * 1e-9;
        assert!(p99 > 0.5, "queueing shows in the corrected p99: {p99} s");
        assert!(p50 > 0.1, "and in the median: {p50} s");
        let sent = r.totals.sent_in_window;
        assert!((80..=120).contains(&sent), "the schedule is kept: {sent}");
        assert_eq!(r.errors(), 0, "{:?}", r.totals.error_examples);
    });
}

fn requests_come_from_a_file_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [2, 4]
        .map(|n| {
            format!("{{\"op\":\"generate\",\"id\":\"{{id}}\",\"prompt\":\"x\",\"max_tokens\":{n}}}")
        })
        .join("\n");
    std::fs::write(dir.path().join("requests.jsonl"), lines + "\n").unwrap();
    let keys = backend(&["--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 2\nduration = \"500ms\"\n";
    let proto = "request = { file = \"requests.jsonl\" }\n".to_string() + JSON_DONE;
    let r = run_in(dir.path(), &keys, &proto);
    assert_clean(&r);
    let replies = samples(&r, "replies_per_request");
    let twos = replies.iter().filter(|&&n| n == 2.0).count();
    let fours = replies.iter().filter(|&&n| n == 4.0).count();
    assert_eq!(twos + fours, replies.len(), "{replies:?}");
    assert!(twos.abs_diff(fours) <= 2, "in turn: {twos} and {fours}");
}

fn params_swept_only_by_the_template_label_the_metrics() {
    let keys = backend(&["--first-delay-ms", "5", "--gap-ms", "1"])
        + "connections = 1\nduration = \"300ms\"\nparams = { tokens = [2, 3] }\n";
    let proto =
        "request = { text = '{\"op\":\"generate\",\"id\":\"{id}\",\"max_tokens\":{tokens}}' }\n"
            .to_string()
            + JSON_DONE;
    let r = run(&keys, &proto);
    assert_clean(&r);
    for n in [2.0, 3.0] {
        let key = format!("replies_per_request{{tokens={n}}}");
        let replies = samples(&r, &key);
        assert!(
            !replies.is_empty() && replies.iter().all(|&x| x == n),
            "{key}: {replies:?}"
        );
    }
}

fn empty_replies_are_skipped_and_goodput_applies_its_bounds() {
    // An empty token comes first; a 10 ms bound on the first reply that a
    // 20 ms server never meets.
    let keys = backend(&["--empty-first", "--first-delay-ms", "20", "--gap-ms", "2"])
        + "connections = 2\nduration = \"500ms\"\n";
    let proto = request("hi", 4)
        + JSON_DONE
        + "skip_empty = \"/text\"\ngoodput = { time_to_first_reply = \"10ms\" }\n";
    let r = run(&keys, &proto);
    assert_clean(&r);
    let replies = samples(&r, "replies_per_request");
    assert!(
        !replies.is_empty() && replies.iter().all(|&n| n == 4.0),
        "{replies:?}"
    );
    assert!(samples(&r, "request_rate").iter().sum::<f64>() > 0.0);
    assert_eq!(samples(&r, "goodput").iter().sum::<f64>(), 0.0);
    // Which bound they missed, said.
    let w = r.warnings.join("\n");
    assert!(
        w.contains(" streams sent in the window missed a bound: ")
            && w.contains(" over time_to_first_reply = 10.0 ms"),
        "{w}"
    );
    let judged = w.split(" of ").nth(1).and_then(|t| t.split(' ').next());
    assert!(
        w.contains(&format!(
            "goodput: {} of {}",
            judged.unwrap(),
            judged.unwrap()
        )),
        "{w}"
    );
    // The same without skip_empty counts the empty token as a reply.
    let r = run(&keys, &(request("hi", 4) + JSON_DONE));
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 5.0));
}

fn binary_requests_match_replies_by_order() {
    // The backend answers a request that is not JSON with one error frame
    // (no id): one reply per binary request, matched by order.
    let keys = backend(&[]) + "connections = 2\nin_flight = 1\nduration = \"300ms\"\n";
    let r = run(&keys, "request = { binary = \"64B\" }\nmatch = \"order\"\n");
    assert_clean(&r);
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 1.0));
    assert!(value(&r, "messages{dir=received}") > 10.0);
    assert_eq!(value(&r, "errors{type=unmatched}"), 0.0);
}

/// A CA (`ca.pem`) and a certificate it signed for 127.0.0.1 (`cert.pem`,
/// `key.pem`) in `dir`.
fn make_certs(dir: &Path) {
    let sh = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=neon-perf test CA",
    ]);
    sh(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
}

/// The backend over TLS, and `tls_keys` (e.g. `tls = { ca = "ca.pem" }`).
fn tls_backend(dir: &Path, tls_keys: &str) -> String {
    make_certs(dir);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let flags = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--first-delay-ms",
        "5",
        "--gap-ms",
        "1",
    ];
    backend(&flags).replace("ws://127.0.0.1", "wss://127.0.0.1")
        + tls_keys
        + "connections = 2\nduration = \"300ms\"\n"
}

fn wss_with_the_suites_own_ca_streams() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tls_backend(dir.path(), "tls = { ca = \"ca.pem\" }\n");
    let r = run_in(dir.path(), &keys, &(request("hi", 3) + JSON_DONE));
    assert_clean(&r);
    assert!(samples(&r, "replies_per_request").iter().all(|&n| n == 3.0));
    assert!(
        r.warnings.iter().all(|w| !w.contains("NOT verified")),
        "{:?}",
        r.warnings
    );
}

fn wss_with_an_unknown_ca_fails_with_the_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tls_backend(dir.path(), "");
    let r = run_in(dir.path(), &keys, &(request("hi", 3) + JSON_DONE));
    let Outcome::Failed { error } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert!(
        error.contains("no connection to wss://127.0.0.1:"),
        "{error}"
    );
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
}

fn wss_without_verification_runs_and_every_report_warns() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tls_backend(dir.path(), "tls = { insecure = true }\n");
    let r = run_in(dir.path(), &keys, &(request("hi", 3) + JSON_DONE));
    assert_clean(&r);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("TLS certificates were NOT verified")),
        "{:?}",
        r.warnings
    );
}
