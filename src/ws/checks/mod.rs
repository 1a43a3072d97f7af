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

use crate::metric::ChecklistItem;
use crate::result::Check;

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

/// One robustness check, as named in a suite's `checks = [...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// A message over the server's limit gets close 1009 (or the connection
    /// refused), and the server still accepts a new connection.
    Oversize,
    /// A client that stops reading: the server's memory stays bounded and it
    /// closes the connection.
    SlowConsumer,
    /// Connections dropped mid-frame: the server survives.
    AbruptDisconnect,
    /// An invalid frame gets close 1002: the server survives.
    Malformed,
    /// Opening and closing many connections leaves no fd or memory growth.
    Churn,
}

impl CheckKind {
    pub const ALL: [CheckKind; 5] = [
        CheckKind::Oversize,
        CheckKind::SlowConsumer,
        CheckKind::AbruptDisconnect,
        CheckKind::Malformed,
        CheckKind::Churn,
    ];

    /// The name used in suites and reports.
    pub fn id(self) -> &'static str {
        match self {
            CheckKind::Oversize => "oversize",
            CheckKind::SlowConsumer => "slow_consumer",
            CheckKind::AbruptDisconnect => "abrupt_disconnect",
            CheckKind::Malformed => "malformed",
            CheckKind::Churn => "churn",
        }
    }

    pub fn from_id(s: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.id() == s)
    }

    /// The checklist item a pass is evidence for.
    pub fn item(self) -> ChecklistItem {
        match self {
            CheckKind::Oversize | CheckKind::SlowConsumer => ChecklistItem::WebsocketBuffers,
            CheckKind::AbruptDisconnect | CheckKind::Malformed => ChecklistItem::ErrorHandling,
            CheckKind::Churn => ChecklistItem::MemoryCleanup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for k in CheckKind::ALL {
            assert_eq!(CheckKind::from_id(k.id()), Some(k));
        }
        assert_eq!(CheckKind::from_id("nope"), None);
    }
}
