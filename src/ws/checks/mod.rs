//! Robustness checks run against a WebSocket server: each is a pass/fail
//! [`crate::result::Check`] with evidence, mapped to a checklist item.
//! One file per check; `raw` is the hand-written client they share and
//! `observe` reads the server's memory and descriptors from `/proc`.

mod abrupt;
mod cancel;
mod churn;
mod malformed;
pub mod observe;
mod oversize;
pub mod peer;
mod ping;
pub mod raw;
mod slow;

use crate::plan::websocket::health::{CANCEL_STREAMS, CANCEL_TOLERANCE};
use crate::result::Check;
use crate::ws::client::stream::Protocol;
use crate::ws::client::{self, FloodConfig, Frame, Headers, Load, Payload};

pub use crate::plan::websocket::wire::CheckKind;

pub use cancel::CancelSetup;
pub use oversize::UNKNOWN_LIMIT_PROBE;
pub use ping::ping_check;

/// The server a check runs against.
#[derive(Clone, Debug)]
pub struct CheckTarget {
    /// `ws://host:port/path`.
    pub url: String,
    /// The server's process, for its memory (VmRSS) and open descriptors:
    /// this process's own pid when the server runs in-process, `None` when
    /// unknown (then only behaviour is judged, and the evidence says so).
    pub server_pid: Option<u32>,
    /// The server's message size limit, when known; otherwise `oversize`
    /// probes with [`UNKNOWN_LIMIT_PROBE`] bytes.
    pub max_message: Option<usize>,
    /// The flood's handshake headers (a bearer token), sent by every check.
    pub headers: Headers,
    /// The flood's protocol: the checks that send requests send its
    /// requests and read its streams; `None`: neon-perf's format.
    pub protocol: Option<Protocol>,
}

impl CheckTarget {
    /// A server spoken to in neon-perf's format, with no headers.
    pub fn new(
        url: impl Into<String>,
        server_pid: Option<u32>,
        max_message: Option<usize>,
    ) -> Self {
        CheckTarget {
            url: url.into(),
            server_pid,
            max_message,
            headers: Headers::default(),
            protocol: None,
        }
    }
}

/// Runs one check against `target`. Never panics on a misbehaving server:
/// what went wrong is the evidence of a failed check.
pub async fn run_check(kind: CheckKind, target: &CheckTarget) -> Check {
    let (passed, evidence) = match raw::parse_url(&target.url) {
        Err(e) => (false, e),
        Ok(url) => {
            let server = observe::Server {
                pid: target.server_pid,
            };
            let peer = peer::Peer {
                url,
                headers: target.headers.clone(),
                protocol: target.protocol.clone(),
            };
            match kind {
                CheckKind::Oversize => oversize::run(&peer, target.max_message).await,
                CheckKind::SlowConsumer => slow::run(&peer, server).await,
                CheckKind::AbruptDisconnect => abrupt::run(&peer, server).await,
                CheckKind::Malformed => malformed::run(&peer).await,
                CheckKind::Churn => churn::run(&peer, server).await,
                CheckKind::Ping | CheckKind::Cancel => own_format(kind, &peer, target).await,
            }
        }
    };
    Check::new(kind.id(), passed, evidence, Some(kind.item()))
}

/// The `cancel` check against `target`'s server, with the flood's client
/// settings (headers, TLS, `protocol`); `ws://` and `wss://` alike.
pub async fn run_cancel(target: &CheckTarget, setup: &CancelSetup) -> Check {
    let kind = CheckKind::Cancel;
    let (passed, evidence) = cancel::run(target.server_pid, setup).await;
    Check::new(kind.id(), passed, evidence, Some(kind.item()))
}

/// `ping` or `cancel` on their own, with the target's headers: in its
/// protocol when it has one, else in neon-perf's format (feature vectors
/// of the width the reference server advertises, else 64-byte binary
/// messages: an echo server); `cancel` with its default settings.
async fn own_format(kind: CheckKind, peer: &peer::Peer, target: &CheckTarget) -> (bool, String) {
    let conn = match peer.connect().await {
        Ok(c) => c,
        Err(e) => return (false, format!("could not connect: {e}")),
    };
    let dim = conn.header(crate::ws::server::INPUT_DIM_HEADER);
    let payload = match dim.and_then(|d| d.parse().ok()) {
        Some(dim) => Payload::features(dim, 0),
        None => Payload::random(Frame::Binary, 64, 64, 0),
    };
    drop(conn);
    let mut flood = FloodConfig::new(
        target.url.clone(),
        1,
        Load::Closed { in_flight: 1 },
        payload,
    );
    flood.headers = target.headers.clone();
    flood.protocol = target.protocol.clone();
    if kind == CheckKind::Ping {
        return ping::run(flood).await;
    }
    let connector = match client::connector(&flood).await {
        Ok(c) => c,
        Err(e) => return (false, e),
    };
    let setup = CancelSetup {
        flood,
        connector,
        streams: CANCEL_STREAMS,
        tolerance: CANCEL_TOLERANCE,
    };
    cancel::run(target.server_pid, &setup).await
}
