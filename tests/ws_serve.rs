//! `neon-perf serve` as a child process: ready line, replies, graceful
//! shutdown on SIGTERM with close 1001 and exit 0, exit 2 on bad setup.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use neon_perf::ws::protocol::{decode_features, encode_features};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
}

#[test]
fn serves_until_sigterm_then_closes_clients_with_1001() {
    let mut child = bin()
        .args([
            "serve",
            "--input-dim",
            "8",
            "--hidden",
            "16,4",
            "--max-batch",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("ready line: {line:?}"))
        .to_string();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let pid = child.id() as i32;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = connect_async(&url).await.unwrap();
        ws.send(Message::Binary(encode_features(11, &[0.25; 8]).into()))
            .await
            .unwrap();
        let Some(Ok(Message::Binary(b))) = ws.next().await else {
            panic!("no reply")
        };
        let (id, out) = decode_features(&b).unwrap();
        assert_eq!((id, out.len()), (11, 4));
        // SAFETY: signalling the child we spawned.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let Some(Ok(Message::Close(Some(c)))) = ws.next().await else {
            panic!("no close frame")
        };
        assert_eq!(c.code, CloseCode::Away);
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shut down: 1 connections, 1 messages"),
        "{err}"
    );
}

#[test]
fn bad_setup_exits_2_with_the_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = bin().args(["serve", "--bind", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot serve on {addr}")), "{err}");

    let out = bin().args(["serve", "--hidden", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`hidden`"));

    // #21 finding 8: a model too large to allocate aborted (exit 134 and a
    // backtrace); now its size is checked against the memory first.
    let out = bin()
        .args(["serve", "--hidden", "1000000,1000000"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("make `hidden` smaller") && err.contains("available"),
        "{err}"
    );
    let out = bin()
        .args([
            "serve",
            "--hidden",
            "18446744073709551615,18446744073709551615",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("overflows"), "{err}");

    let out = bin()
        .args(["serve", "--max-message", "ten"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid size `ten`"));
}
