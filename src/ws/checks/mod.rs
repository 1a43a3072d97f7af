//! Robustness checks run against a WebSocket server: each is a pass/fail
//! [`crate::result::Check`] with evidence, mapped to a checklist item.
//! One file per check; `raw` is the hand-written client they share and
//! `observe` reads the server's memory and descriptors from `/proc`.

mod abrupt;
mod churn;
mod malformed;
pub mod observe;
mod oversize;
pub mod raw;
mod slow;

use crate::result::Check;

pub use crate::plan::websocket::wire::CheckKind;

pub use oversize::UNKNOWN_LIMIT_PROBE;

/// The server a check runs against.
#[derive(Clone, Debug, PartialEq)]
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
            match kind {
                CheckKind::Oversize => oversize::run(&url, target.max_message).await,
                CheckKind::SlowConsumer => slow::run(&url, server).await,
                CheckKind::AbruptDisconnect => abrupt::run(&url, server).await,
                CheckKind::Malformed => malformed::run(&url).await,
                CheckKind::Churn => churn::run(&url, server).await,
            }
        }
    };
    Check::new(kind.id(), passed, evidence, Some(kind.item()))
}
