//! What one flood point reports: its metrics (rates, RTT and connect-time
//! percentiles, errors, server memory, client CPU) and its pass/fail check.

use std::collections::BTreeMap;

use crate::exec::ExecOutput;
use crate::metric::{Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::plan::websocket::{FloodPoint, Load as PlanLoad};
use crate::result::Check;
use crate::ws::client::process::MemoryReport;
use crate::ws::client::{self, FloodReport};

/// " (k=v, k2=v2)" after a check's name, or nothing without labels.
pub(super) fn label_suffix(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" ({})", parts.join(", "))
}

pub(super) fn flood_check(
    r: &FloodReport,
    max_errors: u64,
    labels: &BTreeMap<String, String>,
) -> Check {
    let errors = r.errors();
    let at = label_suffix(labels);
    let t = &r.totals;
    // A rate over an empty window is no measurement (it read "1000000000
    // msg/s" over "0.00 s").
    let rate = if t.received_in_window == 0 || r.window.is_zero() {
        "no reply in the window".to_string()
    } else {
        format!("{:.0} msg/s", r.msg_rate())
    };
    let mut evidence = format!(
        "{} of {} connections up; {} requests sent, {} replies ({} in the {:.2} s window, {rate}); {errors} error(s), at most {max_errors} allowed",
        r.connected,
        r.connections,
        t.sent_total,
        t.received_total,
        t.received_in_window,
        r.window.as_secs_f64(),
    );
    // No reply at all is no measurement: never a pass, whatever the errors.
    let answered = t.received_total > 0;
    if !answered {
        evidence.push_str("; no request was answered, so nothing was measured");
    }
    if errors > 0 {
        let kinds: Vec<String> = t
            .errors
            .iter()
            .map(|(k, n)| format!("{} {n}", k.id()))
            .collect();
        evidence.push_str(&format!(" ({})", kinds.join(", ")));
        if !t.closes.is_empty() {
            let codes: Vec<String> = t.closes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            evidence.push_str(&format!("; close codes {}", codes.join(", ")));
        }
        if let Some(e) = t.error_examples.first() {
            evidence.push_str(&format!("; first: {e}"));
        }
    }
    Check::new(
        format!("flood{at}: requests answered"),
        answered && errors <= max_errors,
        evidence,
        None,
    )
}

pub(super) fn metrics(
    r: &FloodReport,
    fp: &FloodPoint,
    labels: &BTreeMap<String, String>,
    memory: Option<MemoryReport>,
    client_cpu: Option<f64>,
    out: &mut ExecOutput,
) {
    let key = |name: &str| MetricKey::new(name).with_labels(labels);
    let series = |name: &str, unit: Unit, dir: Direction, samples: Vec<f64>| MetricSeries {
        key: key(name),
        estimator: default_estimator(&unit, dir),
        unit,
        direction: dir,
        samples,
    };
    let single =
        |k: MetricKey, unit: Unit, v: f64| MetricSeries::single(k, unit, Direction::Neither, v);
    let t = &r.totals;
    let rates = r.slice_rates();
    let m = &mut out.metrics;
    m.push(series(
        "msg_rate",
        Unit::Rate("msg".into()),
        Direction::HigherIsBetter,
        rates.iter().map(|x| x.0).collect(),
    ));
    m.push(series(
        "byte_rate",
        Unit::BytesPerSecond,
        Direction::HigherIsBetter,
        rates.iter().map(|x| x.1).collect(),
    ));
    m.push(single(
        key("msg_rate_overall"),
        Unit::Rate("msg".into()),
        r.msg_rate(),
    ));
    let w = r.window.as_secs_f64().max(1e-9);
    m.push(single(
        key("byte_rate_overall").with("dir", "received"),
        Unit::BytesPerSecond,
        t.received_bytes_in_window as f64 / w,
    ));
    m.push(single(
        key("byte_rate_overall").with("dir", "sent"),
        Unit::BytesPerSecond,
        t.sent_bytes_in_window as f64 / w,
    ));
    if !t.rtt_sample.items().is_empty() {
        m.push(series(
            "rtt",
            Unit::Seconds,
            Direction::LowerIsBetter,
            t.rtt_sample.items().to_vec(),
        ));
        for (name, q) in [
            ("rtt_p50", 0.5),
            ("rtt_p90", 0.9),
            ("rtt_p99", 0.99),
            ("rtt_p999", 0.999),
        ] {
            m.push(single(
                key(name),
                Unit::Seconds,
                t.rtt.value_at_quantile(q) as f64 * 1e-9,
            ));
        }
        m.push(single(
            key("rtt_max"),
            Unit::Seconds,
            t.rtt.max() as f64 * 1e-9,
        ));
    }
    if !t.connect_s.is_empty() {
        m.push(series(
            "connect_time",
            Unit::Seconds,
            Direction::LowerIsBetter,
            t.connect_s.clone(),
        ));
        for (name, q) in [("connect_time_p50", 0.5), ("connect_time_p99", 0.99)] {
            m.push(single(
                key(name),
                Unit::Seconds,
                t.connect.value_at_quantile(q) as f64 * 1e-9,
            ));
        }
    }
    if matches!(fp.load, PlanLoad::Open { .. }) && !t.send_lag.is_empty() {
        m.push(single(
            key("send_lag_p99"),
            Unit::Seconds,
            t.send_lag.value_at_quantile(0.99) as f64 * 1e-9,
        ));
        m.push(single(
            key("send_lag_max"),
            Unit::Seconds,
            t.send_lag.max() as f64 * 1e-9,
        ));
    }
    m.push(single(
        key("messages").with("dir", "sent"),
        Unit::Count,
        t.sent_in_window as f64,
    ));
    m.push(single(
        key("messages").with("dir", "received"),
        Unit::Count,
        t.received_in_window as f64,
    ));
    for k in client::ErrorKind::ALL {
        let n = t.errors.get(&k).copied().unwrap_or(0);
        m.push(single(
            key("errors").with("type", k.id()),
            Unit::Count,
            n as f64,
        ));
    }
    for (code, n) in &t.closes {
        m.push(single(
            key("unexpected_closes").with("code", code),
            Unit::Count,
            *n as f64,
        ));
    }
    if let Some(mem) = memory.filter(|m| m.samples > 0) {
        for (at, v) in [
            ("start", mem.rss_start),
            ("peak", mem.rss_peak),
            ("end", mem.rss_end),
        ] {
            m.push(single(
                key("server_rss").with("at", at),
                Unit::Bytes,
                v as f64,
            ));
        }
        if let Some(g) = mem.gpu_peak {
            m.push(single(
                key("server_gpu_memory").with("at", "peak"),
                Unit::Bytes,
                g as f64,
            ));
        }
    }
    if let Some(n) = r.spin_back_offs {
        m.push(single(key("client_spin_back_offs"), Unit::Count, n as f64));
    }
    if let Some(cpu) = client_cpu {
        let msgs = (t.sent_total + t.received_total).max(1) as f64;
        m.push(single(key("client_cpu_per_msg"), Unit::Seconds, cpu / msgs));
    }
}

#[cfg(test)]
mod no_reply_tests {
    use super::*;
    use crate::ws::client::record::Recorder;
    use std::time::Duration;

    /// #21 finding 3: a flood that got no reply (a server announcing a
    /// 2^63−1-byte frame left 0 sent, 0 replies, 0 errors) is a failed
    /// check, and its text shows no rate over an empty window.
    #[test]
    fn no_reply_is_never_a_pass() {
        let r = FloodReport {
            window: Duration::ZERO,
            slice: Duration::from_millis(100),
            connections: 4,
            connected: 4,
            ramp_time: Duration::ZERO,
            totals: Recorder::new(16, 1).into_totals(),
            spin_back_offs: None,
            streams: None,
            pings: None,
        };
        let c = flood_check(&r, 0, &BTreeMap::new());
        assert!(!c.passed, "{}", c.evidence);
        assert!(
            c.evidence.contains("no request was answered"),
            "{}",
            c.evidence
        );
        assert!(
            c.evidence.contains("no reply in the window"),
            "{}",
            c.evidence
        );
        assert!(!c.evidence.contains("msg/s"), "{}", c.evidence);
    }
}
