//! The settings of the connection-health checks: `ping = { interval,
//! timeout }` for the `ping` check and `cancel = { streams, tolerance }`
//! for the `cancel` check, and the rules serde cannot check.

use std::time::Duration;

use serde::Deserialize;

use super::WebsocketFloodSpec;
use super::wire::CheckKind;
use crate::plan::kinds::{At, SpecError};
use crate::units::{ByteSize, HumanDuration};

/// Default time between two pings of one connection.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Default longest wait for a pong.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of streams the `cancel` check cancels.
pub const CANCEL_STREAMS: u32 = 200;
/// Most streams the `cancel` check may cancel.
pub const MAX_CANCEL_STREAMS: u32 = 100_000;
/// Default memory growth over the cancelled streams that counts as none.
pub const CANCEL_TOLERANCE: u64 = 16 << 20;

/// `ping = { interval = "1s", timeout = "2s" }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingSpec {
    /// Time between two pings of one connection.
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    /// Longest wait for the pong; past it the connection failed the check.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// `cancel = { streams = 200, tolerance = "16MiB" }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelSpec {
    /// How many streams are started and cancelled.
    #[serde(default)]
    pub streams: Option<u32>,
    /// The server's memory may end this much above where it started.
    #[serde(default)]
    pub tolerance: Option<ByteSize>,
}

/// The `ping` check's settings, defaults applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PingSettings {
    pub interval: Duration,
    pub timeout: Duration,
}

/// The `cancel` check's settings, defaults applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CancelSettings {
    pub streams: u32,
    pub tolerance: u64,
}

impl WebsocketFloodSpec {
    /// With `"ping"` in `checks`: its settings.
    pub fn ping_settings(&self) -> Option<PingSettings> {
        if !self.check_kinds().contains(&CheckKind::Ping) {
            return None;
        }
        let p = self.ping.clone().unwrap_or_default();
        Some(PingSettings {
            interval: p.interval.map_or(PING_INTERVAL, |d| d.0),
            timeout: p.timeout.map_or(PING_TIMEOUT, |d| d.0),
        })
    }

    /// With `"cancel"` in `checks`: its settings.
    pub fn cancel_settings(&self) -> Option<CancelSettings> {
        if !self.check_kinds().contains(&CheckKind::Cancel) {
            return None;
        }
        let c = self.cancel.clone().unwrap_or_default();
        Some(CancelSettings {
            streams: c.streams.unwrap_or(CANCEL_STREAMS),
            tolerance: c.tolerance.map_or(CANCEL_TOLERANCE, |b| b.0),
        })
    }

    /// `ping` and `cancel` tables only with their check, and sensible values.
    pub(super) fn check_health(&self) -> Result<(), SpecError> {
        let kinds = self.check_kinds();
        if let Some(p) = &self.ping {
            if !kinds.contains(&CheckKind::Ping) {
                return Err(SpecError::new(
                    At::Key("ping"),
                    "`ping` sets the `ping` check, which is not in `checks`",
                )
                .hint(Some("add \"ping\" to `checks`".into())));
            }
            for (key, d) in [("ping.interval", p.interval), ("ping.timeout", p.timeout)] {
                if d.is_some_and(|d| d.0 < Duration::from_millis(1)) {
                    return Err(SpecError::new(At::Key(key), "must be at least 1ms"));
                }
            }
        }
        if let Some(c) = &self.cancel {
            if !kinds.contains(&CheckKind::Cancel) {
                return Err(SpecError::new(
                    At::Key("cancel"),
                    "`cancel` sets the `cancel` check, which is not in `checks`",
                )
                .hint(Some("add \"cancel\" to `checks`".into())));
            }
            if c.streams.is_some_and(|n| n == 0 || n > MAX_CANCEL_STREAMS) {
                return Err(SpecError::new(
                    At::Key("cancel.streams"),
                    format!("must be between 1 and {MAX_CANCEL_STREAMS}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::websocket::parse_spec as spec;

    #[test]
    fn defaults_apply_only_with_the_check() {
        let none = spec("url = \"ws://a:1/\"");
        assert_eq!((none.ping_settings(), none.cancel_settings()), (None, None));
        let both = spec("url = \"ws://a:1/\"\nchecks = [\"ping\", \"cancel\"]");
        assert_eq!(
            both.ping_settings(),
            Some(PingSettings {
                interval: PING_INTERVAL,
                timeout: PING_TIMEOUT
            })
        );
        assert_eq!(both.cancel_settings().unwrap().streams, CANCEL_STREAMS);
        let set = spec(
            "url = \"ws://a:1/\"\nchecks = [\"ping\", \"cancel\"]\nping = { interval = \"250ms\", timeout = \"1s\" }\ncancel = { streams = 20, tolerance = \"1MiB\" }",
        );
        assert_eq!(
            set.ping_settings().unwrap().interval,
            Duration::from_millis(250)
        );
        assert_eq!(set.cancel_settings().unwrap().tolerance, 1 << 20);
        assert!(set.check_health().is_ok());
    }

    #[test]
    fn refusals() {
        let cases = [
            ("ping = { interval = \"1s\" }", "ping", "not in `checks`"),
            ("cancel = { streams = 5 }", "cancel", "not in `checks`"),
            (
                "checks = [\"ping\"]\nping = { timeout = \"0s\" }",
                "ping.timeout",
                "at least 1ms",
            ),
            (
                "checks = [\"cancel\"]\ncancel = { streams = 0 }",
                "cancel.streams",
                "between 1 and",
            ),
        ];
        for (src, key, want) in cases {
            let e = spec(&format!("url = \"ws://a:1/\"\n{src}"))
                .check_health()
                .unwrap_err();
            assert_eq!(e.at, At::Key(key), "{src}");
            assert!(e.message.contains(want), "{src}: {e:?}");
        }
    }
}
