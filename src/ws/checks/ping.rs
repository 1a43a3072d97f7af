//! `ping`: WebSocket pings on every connection during a flood (sent by the
//! flood's connections, [`crate::ws::client::ping`]); the check passes when
//! pings were sent and every one was answered within the timeout, and its
//! evidence names the connections that left one unanswered. Run on its
//! own ([`run`]), a short flood of a few connections does the pinging.

use std::time::Duration;

use crate::result::Check;
use crate::ws::client::ping::{PingConfig, PingTotals};
use crate::ws::client::{self, FloodConfig, Load, StopAfter};

use super::CheckKind;

/// Connections named in the evidence, at most.
const NAMED: usize = 10;
/// On its own: connections, window and ping settings of the short flood.
const CONNECTIONS: usize = 4;
const WINDOW: Duration = Duration::from_secs(1);
const ON_ITS_OWN: PingConfig = PingConfig {
    interval: Duration::from_millis(200),
    timeout: Duration::from_secs(2),
};

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 * 1e-6)
}

/// Passes when pings were sent and every one was answered within the timeout.
pub fn ping_check(p: &PingTotals, at: &str) -> Check {
    let timeout = ms(p.timeout.as_nanos() as u64);
    let mut sorted = p.rtts_ns.clone();
    sorted.sort_unstable();
    let pct = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let answered = if sorted.is_empty() {
        "none answered in time".to_string()
    } else {
        format!(
            "{} answered in time (p50 {}, p99 {}, longest {})",
            sorted.len(),
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(pct(1.0))
        )
    };
    let mut evidence = format!(
        "{} pings on {} connections, {answered}",
        p.sent, p.connections
    );
    if p.sent == 0 {
        evidence.push_str("; no ping was sent, so connection health was not observed");
    }
    if !p.missed.is_empty() {
        let pings: u64 = p.missed.values().map(|m| m.pings).sum();
        let late: u64 = p.missed.values().map(|m| m.late).sum();
        let longest = p.missed.values().map(|m| m.longest_ns).max().unwrap_or(0);
        let names: Vec<String> = p.missed.keys().take(NAMED).map(u32::to_string).collect();
        let more = p.missed.len().saturating_sub(NAMED);
        evidence.push_str(&format!(
            "; {} of {} connections left {pings} ping(s) unanswered past the {timeout} timeout \
             (connections {}{}; longest wait {}; {late} answered late)",
            p.missed.len(),
            p.connections,
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            ms(longest),
        ));
    }
    let kind = CheckKind::Ping;
    Check::new(
        format!("{}{at}", kind.id()),
        p.sent > 0 && p.missed.is_empty(),
        evidence,
        Some(kind.item()),
    )
}

/// On its own: a short flood of `flood`'s kind whose connections ping.
pub async fn run(mut flood: FloodConfig) -> (bool, String) {
    flood.connections = CONNECTIONS;
    flood.load = Load::Closed { in_flight: 1 };
    flood.stop = StopAfter::Duration(WINDOW);
    flood.warmup = Duration::from_millis(200);
    flood.ping = Some(ON_ITS_OWN);
    match client::flood(flood, Default::default()).await {
        Ok(r) if r.connected == 0 => {
            let why = r.totals.error_examples.first().cloned();
            (
                false,
                format!("could not connect: {}", why.unwrap_or_default()),
            )
        }
        Ok(r) => {
            let c = ping_check(&r.pings.unwrap_or_default(), "");
            (c.passed, c.evidence)
        }
        Err(e) => (false, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::client::ping::Missed;
    use std::collections::BTreeMap;

    fn totals() -> PingTotals {
        PingTotals {
            timeout: Duration::from_secs(2),
            sent: 4,
            rtts_ns: vec![1_000_000, 2_000_000, 3_000_000, 4_000_000],
            missed: BTreeMap::new(),
            connections: 2,
        }
    }

    #[test]
    fn all_answered_passes_with_percentiles() {
        let c = ping_check(&totals(), "");
        assert!(c.passed, "{}", c.evidence);
        assert_eq!(c.name, "ping");
        assert!(
            c.evidence
                .starts_with("4 pings on 2 connections, 4 answered in time (p50 3.00 ms")
        );
    }

    #[test]
    fn a_missed_ping_fails_naming_the_connection() {
        let mut t = totals();
        t.missed.insert(
            7,
            Missed {
                pings: 1,
                longest_ns: 3_100_000_000,
                late: 1,
            },
        );
        let c = ping_check(&t, " (connections=2)");
        assert!(!c.passed);
        assert_eq!(c.name, "ping (connections=2)");
        assert!(
            c.evidence.contains(
                "1 of 2 connections left 1 ping(s) unanswered past the 2000.00 ms timeout (connections 7; longest wait 3100.00 ms; 1 answered late)"
            ),
            "{}",
            c.evidence
        );
        let none = PingTotals::default();
        assert!(!ping_check(&none, "").passed);
    }
}
