//! Robustness checks run against a WebSocket server: each is a pass/fail
//! [`crate::result::Check`] with evidence, mapped to a checklist item.

use crate::metric::ChecklistItem;

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
