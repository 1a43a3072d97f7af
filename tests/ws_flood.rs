//! `websocket_flood` end to end: suites run through the executor against
//! third-party echo servers over loopback (Python `websockets`, Node `ws`,
//! installed by scripts/ws/setup.sh under target/; without them those tests
//! are ignored with the reason, unless NEON_PERF_REQUIRE_WS_PEERS=1, which CI sets), a server that
//! dies mid-flood, 10,000 connections, and the open-file limit; plus the
//! engine against small in-test servers that misbehave on purpose.

#[macro_use]
mod needs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use libtest_mimic::Completion;
use neon_perf::config::parse_suite;
use neon_perf::exec::ExecEnv;
use neon_perf::metric::Direction;
use neon_perf::result::{Outcome, ScenarioResult};
use neon_perf::ws::client::{self, FloodConfig, Frame, Load, Payload, Progress, StopAfter};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `server = {...}` starting one of the repo's echo servers on `{port}`.
fn echo_server(which: &str) -> String {
    let r = root().display().to_string();
    match which {
        "node" => format!(
            "url = \"ws://127.0.0.1:{{port}}/\"\nserver = {{ command = [\"node\", \"{r}/scripts/ws/echo_server.js\", \"{{port}}\"], env = {{ NODE_PATH = \"{r}/target/ws-node/node_modules\" }}, ready = \"log:listening on\" }}\n"
        ),
        "python" => format!(
            "url = \"ws://127.0.0.1:{{port}}/\"\nserver = {{ command = [\"{r}/target/ws-venv/bin/python\", \"{r}/scripts/ws/echo_server.py\", \"{{port}}\"] }}\n"
        ),
        other => panic!("{other}"),
    }
}

fn run(scenario_keys: &str) -> ScenarioResult {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[scenario]]\nname = \"t\"\nkind = \"websocket_flood\"\nwarmup = \"100ms\"\n{scenario_keys}"
    );
    let path = dir.path().join("ws.toml");
    std::fs::write(&path, &text).unwrap();
    let suite = parse_suite(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let plan = &suite.scenarios[0];
    let env = ExecEnv {
        neon_perf_bin: PathBuf::from(env!("CARGO_BIN_EXE_neon-perf")),
        cache_dir: dir.path().to_path_buf(),
    };
    neon_perf::run::execute(plan, &env, &plan.settings, &mut |_| {})
}

fn value(r: &ScenarioResult, key: &str) -> f64 {
    let m = r.metric(key).unwrap_or_else(|| {
        panic!(
            "no metric {key} in {:?}",
            r.metrics
                .iter()
                .map(|m| m.key.to_string())
                .collect::<Vec<_>>()
        )
    });
    m.samples[0]
}

fn assert_ran(r: &ScenarioResult) {
    assert_eq!(r.outcome, Outcome::Ran, "{:#?}", r.checks);
    assert!(r.checks.iter().all(|c| c.passed), "{:#?}", r.checks);
}

fn echo_servers_closed_loop_binary_ranged_and_text() {
    for server in ["node", "python"] {
        for payload in [
            "payload = { size = { min = 16, max = \"4KiB\" }, seed = 3 }",
            "payload = { type = \"text\", size = 100 }",
        ] {
            let r = run(&format!(
                "{}connections = 4\nin_flight = 2\nduration = \"500ms\"\n{payload}\n",
                echo_server(server)
            ));
            assert_ran(&r);
            let what = format!("{server} / {payload}");
            for k in [
                "errors{type=lost}",
                "errors{type=unmatched}",
                "errors{type=closed}",
                "errors{type=connect}",
            ] {
                assert_eq!(value(&r, k), 0.0, "{what}: {k}");
            }
            assert!(value(&r, "msg_rate_overall") > 100.0, "{what}");
            assert!(value(&r, "rtt_p99") >= value(&r, "rtt_p50"), "{what}");
            assert!(r.metric("rtt").unwrap().samples.len() > 50, "{what}");
            assert_eq!(r.metric("connect_time").unwrap().samples.len(), 4, "{what}");
            assert!(value(&r, "server_rss{at=peak}") > 1e6, "{what}");
            assert!(r.metric("msg_rate").unwrap().samples.len() >= 10, "{what}");
            // A plain flood gates its rates and connect times.
            for (k, d) in [
                ("msg_rate", Direction::HigherIsBetter),
                ("byte_rate", Direction::HigherIsBetter),
                ("connect_time", Direction::LowerIsBetter),
            ] {
                assert_eq!(r.metric(k).unwrap().direction, d, "{what}: {k}");
            }
            assert!(r.device.contains("127.0.0.1"), "{}", r.device);
            // An external server: the client polls between replies by default.
            assert!(r.metric("client_spin_back_offs").is_some(), "{what}");
        }
    }
}

fn open_loop_keeps_its_rate_and_reports_send_lag() {
    let r = run(&format!(
        "{}connections = 4\nrate = \"2000msg/s\"\nduration = \"1s\"\n",
        echo_server("node")
    ));
    assert_ran(&r);
    let sent = value(&r, "messages{dir=sent}");
    assert!(
        (1700.0..=2300.0).contains(&sent),
        "sent {sent} in 1 s at 2000 msg/s"
    );
    assert!(
        value(&r, "send_lag_p99") < 0.5,
        "send lag p99 {}",
        value(&r, "send_lag_p99")
    );
}

fn message_count_mode_sends_exactly_that_many() {
    let r = run(&format!(
        "{}connections = 3\nin_flight = 4\nmessages = 1000\n",
        echo_server("python")
    ));
    assert_ran(&r);
    assert_eq!(value(&r, "messages{dir=sent}"), 1000.0);
    assert_eq!(r.metric("rtt").unwrap().samples.len(), 1000);
}

fn a_server_that_dies_mid_flood_fails_the_scenario_with_its_output() {
    let r_ = root().display().to_string();
    let r = run(&format!(
        "url = \"ws://127.0.0.1:{{port}}/\"\nserver = {{ command = [\"{r_}/target/ws-venv/bin/python\", \"{r_}/tests/fixtures/ws/dying_server.py\", \"{{port}}\"], env = {{ DIE_AFTER = \"0.5\" }} }}\nconnections = 8\nduration = \"10s\"\n"
    ));
    let Outcome::Failed { error } = &r.outcome else {
        panic!("expected a failure, got {:?}", r.outcome);
    };
    assert!(error.contains("dying_server.py"), "{error}");
    assert!(
        error.contains("exited with exit code 3 during the flood"),
        "{error}"
    );
    assert!(
        error.contains("dying server: giving up now (simulated crash)"),
        "{error}"
    );
    assert!(r.wall_time_s < 8.0, "the flood stops when the server dies");
}

fn a_server_that_never_gets_ready_times_out_with_its_output() {
    let r = run(
        "url = \"ws://127.0.0.1:{port}/\"\nserver = { command = [\"sh\", \"-c\", \"echo starting up; sleep 30\", \"{port}\"], timeout = \"700ms\" }\nduration = \"1s\"\n",
    );
    let Outcome::Failed { error } = &r.outcome else {
        panic!("{:?}", r.outcome);
    };
    assert!(error.contains("was not ready within 700ms"), "{error}");
    assert!(error.contains("| starting up"), "{error}");
}

/// Another process took the free port found for the server before it
/// bound it (seen in CI as `[Errno 98] ... address already in use`): the
/// server is started again on another port, and the flood runs.
fn a_server_whose_port_was_taken_is_started_on_another() {
    let script = r#"if [ ! -e "$MARK" ]; then : > "$MARK"; echo "OSError: [Errno 98] error while attempting to bind on address: address already in use" >&2; exit 1; fi; exec "$NEON_PERF" serve --bind 127.0.0.1:$PORT"#;
    let r = run(&format!(
        "url = \"ws://127.0.0.1:{{port}}/\"\nserver = {{ command = [\"sh\", \"-c\", '{script}'], env = {{ MARK = \"{{suite_dir}}/first-try\", NEON_PERF = \"{{neon_perf}}\", PORT = \"{{port}}\" }}, ready = \"log:listening on\" }}\nconnections = 2\nduration = \"500ms\"\n"
    ));
    assert_ran(&r);
    assert!(value(&r, "messages{dir=received}") > 0.0);
}

/// `ready = "log:…"` matched a line the server prints before it listens:
/// every connection is refused, and the error says why and what to do.
fn a_ready_line_printed_before_listening_says_so() {
    let script = r#"echo "listening on"; sleep 5; exec "$NEON_PERF" serve --bind 127.0.0.1:$PORT"#;
    let r = run(&format!(
        "url = \"ws://127.0.0.1:{{port}}/\"\nserver = {{ command = [\"sh\", \"-c\", '{script}'], env = {{ NEON_PERF = \"{{neon_perf}}\", PORT = \"{{port}}\" }}, ready = \"log:listening on\" }}\nconnections = 2\nduration = \"300ms\"\n"
    ));
    let Outcome::Failed { error } = &r.outcome else {
        panic!("{:?}", r.outcome);
    };
    assert!(
        error.contains("refused") && error.contains("nothing listened on the port yet"),
        "{error}"
    );
}

fn a_missing_server_program_ignores_the_scenario() {
    let r = run(
        "url = \"ws://127.0.0.1:{port}/\"\nserver = { command = [\"/nonexistent/target/ws-venv/bin/python\", \"{port}\"] }\n",
    );
    let Outcome::Ignored { reason } = &r.outcome else {
        panic!("{:?}", r.outcome);
    };
    assert!(reason.contains("scripts/ws/setup.sh"), "{reason}");
}

fn ten_thousand_connections_against_a_local_server() {
    let r = run(&format!(
        // A message count, not a duration: how many replies fit in a second
        // depends on this machine's load, not on the client.
        "{}connections = 10000\nmessages = 20000\ntimeout = \"120s\"\n",
        echo_server("node")
    ));
    assert_ran(&r);
    assert_eq!(r.metric("connect_time").unwrap().samples.len(), 10_000);
    assert_eq!(value(&r, "errors{type=connect}"), 0.0);
    assert!(value(&r, "messages{dir=received}") >= 10_000.0);
}

fn too_many_connections_for_the_hard_limit_say_so() -> Result<(), Completion> {
    let (_, hard) = client::limits::open_files().unwrap();
    needs::condition(
        (hard > 1 << 22)
            .then(|| format!("the hard open-file limit ({hard}) is too high to exceed")),
    )?;
    // Both ends of every connection live in this process with the builtin server.
    let r = run(&format!(
        "target = \"builtin\"\nconnections = {}\n",
        hard / 2 + 1
    ));
    let Outcome::Failed { error } = &r.outcome else {
        panic!("{:?}", r.outcome);
    };
    assert!(error.contains("hard limit (RLIMIT_NOFILE)"), "{error}");
    assert!(error.contains("both ends in this process"), "{error}");
    Ok(())
}

// ---- the engine against in-test servers that misbehave on purpose ----

/// A tokio-tungstenite server; `handle` gets each accepted connection.
async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let h = handle.clone();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(s).await {
                    h(ws).await;
                }
            });
        }
    });
    addr
}

fn cfg(addr: SocketAddr, conns: usize, load: Load) -> FloodConfig {
    let mut c = FloodConfig::new(
        format!("ws://{addr}/"),
        conns,
        load,
        Payload::random(Frame::Binary, 64, 64, 0),
    );
    c.warmup = Duration::from_millis(50);
    c.stop = StopAfter::Duration(Duration::from_millis(300));
    c.drain_timeout = Duration::from_millis(300);
    c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn engine_counts_close_codes_lost_and_unmatched_replies() {
    rt().block_on(async {
        // Echoes 20 messages, then closes with 1011 (internal error).
        let addr = serve(|mut ws| async move {
            for _ in 0..20 {
                let Some(Ok(m)) = ws.next().await else { return };
                let _ = ws.send(m).await;
            }
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Error,
                    reason: "overloaded".into(),
                }))
                .await;
            // Finish the closing handshake: dropping the socket with the
            // client's later requests unread makes the kernel send a reset,
            // which can discard the close frame before the client reads it
            // (CI saw {1006: 1, 1011: 2}).
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let r = client::flood(
            cfg(addr, 3, Load::Closed { in_flight: 2 }),
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
        assert_eq!(
            r.totals.closes.get(&1011),
            Some(&3),
            "{:?}",
            r.totals.closes
        );
        assert_eq!(r.totals.errors.get(&client::ErrorKind::Closed), Some(&3));
        // Requests in flight when the close came are lost (0 to 2 per connection, by timing).
        assert!(
            r.totals
                .errors
                .get(&client::ErrorKind::Lost)
                .copied()
                .unwrap_or(0)
                <= 6
        );

        // Replies with the id's bytes flipped: nothing matches.
        let addr = serve(|mut ws| async move {
            while let Some(Ok(Message::Binary(b))) = ws.next().await {
                let mut v = b.to_vec();
                v[0] ^= 0xff;
                v[7] ^= 0xff;
                if ws.send(Message::Binary(v.into())).await.is_err() {
                    return;
                }
            }
        })
        .await;
        let r = client::flood(
            cfg(addr, 2, Load::Closed { in_flight: 1 }),
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
        assert_eq!(r.totals.errors.get(&client::ErrorKind::Unmatched), Some(&2));
        assert_eq!(r.totals.errors.get(&client::ErrorKind::Lost), Some(&2));
        assert_eq!(r.totals.rtt.len(), 0);
    });
}

fn engine_measures_open_loop_latency_from_the_intended_send_time() {
    rt().block_on(async {
        // Answers every message 20 ms late, one at a time: at 200 msg/s on
        // one connection the server can do 50/s, so a queue builds. Closed
        // loop would report ~20 ms; the corrected open-loop RTT keeps growing.
        let addr = serve(|mut ws| async move {
            while let Some(Ok(m)) = ws.next().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if ws.send(m).await.is_err() {
                    return;
                }
            }
        })
        .await;
        let mut c = cfg(addr, 1, Load::Open { rate: 200.0 });
        c.stop = StopAfter::Duration(Duration::from_millis(500));
        c.drain_timeout = Duration::from_secs(5);
        let r = client::flood(c, Arc::new(Progress::default()))
            .await
            .unwrap();
        let p99 = r.totals.rtt.value_at_quantile(0.99) as f64 * 1e-9;
        let p50 = r.totals.rtt.value_at_quantile(0.5) as f64 * 1e-9;
        assert!(p99 > 0.5, "queueing shows in the corrected p99: {p99} s");
        assert!(p50 > 0.1, "and in the median: {p50} s");
        let sent = r.totals.sent_in_window;
        assert!(
            (80..=120).contains(&sent),
            "the schedule is kept while the server lags: {sent}"
        );
    });
}

fn engine_handles_a_server_that_pings() {
    rt().block_on(async {
        let addr = serve(|mut ws| async move {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_binary() {
                    let _ = ws.send(Message::Ping(vec![1, 2].into())).await;
                    if ws.send(m).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await;
        let r = client::flood(
            cfg(addr, 2, Load::Closed { in_flight: 3 }),
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
        assert!(r.totals.errors.is_empty(), "{:?}", r.totals.error_examples);
        assert!(r.totals.rtt.len() > 10);
        assert_eq!(r.spin_back_offs, None, "no spin unless asked");
    });
}

fn engine_with_the_client_spinning_answers_every_request_and_ends() {
    rt().block_on(async {
        let addr = serve(|mut ws| async move {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_binary() && ws.send(m).await.is_err() {
                    return;
                }
            }
        })
        .await;
        for load in [Load::Closed { in_flight: 2 }, Load::Open { rate: 2000.0 }] {
            let mut c = cfg(addr, 3, load);
            c.spin = Duration::from_millis(1);
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                client::flood(c, Arc::new(Progress::default())),
            )
            .await
            .expect("a spinning flood still ends")
            .unwrap();
            let t = &r.totals;
            assert!(t.errors.is_empty(), "{load:?}: {:?}", t.error_examples);
            assert!(t.sent_total > 10, "{load:?}");
            assert_eq!(t.received_total, t.sent_total, "{load:?}");
            assert_eq!(t.rtt.len(), t.sent_in_window, "{load:?}");
            assert!(r.spin_back_offs.is_some(), "{load:?}");
        }
    });
}

trials! {
    echo_servers_closed_loop_binary_ranged_and_text: needs::WS_PEERS;
    open_loop_keeps_its_rate_and_reports_send_lag: needs::WS_PEERS;
    message_count_mode_sends_exactly_that_many: needs::WS_PEERS;
    a_server_that_dies_mid_flood_fails_the_scenario_with_its_output: needs::WS_PEERS;
    a_server_that_never_gets_ready_times_out_with_its_output;
    a_ready_line_printed_before_listening_says_so;
    a_missing_server_program_ignores_the_scenario;
    a_server_whose_port_was_taken_is_started_on_another;
    ten_thousand_connections_against_a_local_server: needs::WS_PEERS;
    ?too_many_connections_for_the_hard_limit_say_so;
    engine_counts_close_codes_lost_and_unmatched_replies;
    engine_measures_open_loop_latency_from_the_intended_send_time;
    engine_handles_a_server_that_pings;
    engine_with_the_client_spinning_answers_every_request_and_ends;
}
