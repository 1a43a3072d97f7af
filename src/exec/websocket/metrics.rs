//! What one flood point reports: its metrics (rates, RTT and connect-time
//! percentiles, errors, server memory, client CPU) and its pass/fail check.

use std::collections::BTreeMap;

use super::push::Push;
use crate::exec::ExecOutput;
use crate::exec::gpu_bound::gpu_memory_bound;
use crate::metric::{Direction, MetricKey, Unit};
use crate::plan::ScenarioPlan;
use crate::plan::websocket::{FloodPoint, Load as PlanLoad};
use crate::result::Check;
use crate::ws::client::process::MemoryReport;
use crate::ws::client::record::Totals;
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

/// The flood's own metrics. In a protocol flood (`streams`), `msg_rate`,
/// `byte_rate` and `connect_time` are only reported: the stream metrics
/// are what its gate is for, frames per second follow how a server
/// splits its replies, and unchanged reruns against a streaming server
/// moved these three past any tolerance (a rule's `direction` gates them
/// again).
pub(super) fn metrics(
    r: &FloodReport,
    (fp, streams): (&FloodPoint, bool),
    labels: &BTreeMap<String, String>,
    memory: Option<MemoryReport>,
    client_cpu: Option<f64>,
    out: &mut ExecOutput,
) {
    let mut p = Push::new(labels, &mut out.metrics);
    let gated = !streams;
    rates(&mut p, r, gated);
    latencies(&mut p, &r.totals, fp, gated);
    counts(&mut p, &r.totals);
    if let Some(mem) = memory.filter(|m| m.samples > 0) {
        server_memory(&mut p, &mem);
    }
    if let Some(n) = r.spin_back_offs {
        let k = p.key("client_spin_back_offs");
        p.single(k, Unit::Count, n as f64);
    }
    if let Some(cpu) = client_cpu {
        let t = &r.totals;
        let msgs = (t.sent_total + t.received_total).max(1) as f64;
        let k = p.key("client_cpu_per_msg");
        p.single(k, Unit::Seconds, cpu / msgs);
    }
}

/// Messages and bytes per second: per slice (the gate's samples, when
/// `gated`) and over the whole window.
fn rates(p: &mut Push<'_>, r: &FloodReport, gated: bool) {
    let t = &r.totals;
    let rates = r.slice_rates();
    let up = Direction::HigherIsBetter;
    let msg = ("msg_rate", Unit::Rate("msg".into()), up);
    p.series_gated(gated, msg, rates.iter().map(|x| x.0).collect());
    let bytes = ("byte_rate", Unit::BytesPerSecond, up);
    p.series_gated(gated, bytes, rates.iter().map(|x| x.1).collect());
    let k = p.key("msg_rate_overall");
    p.single(k, Unit::Rate("msg".into()), r.msg_rate());
    let w = r.window.as_secs_f64().max(1e-9);
    let k = p.key("byte_rate_overall").with("dir", "received");
    p.single(
        k,
        Unit::BytesPerSecond,
        t.received_bytes_in_window as f64 / w,
    );
    let k = p.key("byte_rate_overall").with("dir", "sent");
    p.single(k, Unit::BytesPerSecond, t.sent_bytes_in_window as f64 / w);
}

/// RTT, connect time (gated when `gated`) and (open loop) send lag, with
/// their percentiles.
fn latencies(p: &mut Push<'_>, t: &Totals, fp: &FloodPoint, gated: bool) {
    if !t.rtt_sample.items().is_empty() {
        p.series(
            "rtt",
            Unit::Seconds,
            Direction::LowerIsBetter,
            t.rtt_sample.items().to_vec(),
        );
        p.quantiles(
            &t.rtt,
            &[
                ("rtt_p50", 0.5),
                ("rtt_p90", 0.9),
                ("rtt_p99", 0.99),
                ("rtt_p999", 0.999),
            ],
        );
        let k = p.key("rtt_max");
        p.single(k, Unit::Seconds, t.rtt.max() as f64 * 1e-9);
    }
    if !t.connect_s.is_empty() {
        let connect = ("connect_time", Unit::Seconds, Direction::LowerIsBetter);
        p.series_gated(gated, connect, t.connect_s.clone());
        p.quantiles(
            &t.connect,
            &[("connect_time_p50", 0.5), ("connect_time_p99", 0.99)],
        );
    }
    if matches!(fp.load, PlanLoad::Open { .. }) && !t.send_lag.is_empty() {
        p.quantiles(&t.send_lag, &[("send_lag_p99", 0.99)]);
        let k = p.key("send_lag_max");
        p.single(k, Unit::Seconds, t.send_lag.max() as f64 * 1e-9);
    }
}

/// Messages sent and received in the window, errors by type, and the
/// server's unexpected closes by code.
fn counts(p: &mut Push<'_>, t: &Totals) {
    let k = p.key("messages").with("dir", "sent");
    p.single(k, Unit::Count, t.sent_in_window as f64);
    let k = p.key("messages").with("dir", "received");
    p.single(k, Unit::Count, t.received_in_window as f64);
    for e in client::ErrorKind::ALL {
        let n = t.errors.get(&e).copied().unwrap_or(0);
        let k = p.key("errors").with("type", e.id());
        p.single(k, Unit::Count, n as f64);
    }
    for (code, n) in &t.closes {
        let k = p.key("unexpected_closes").with("code", code);
        p.single(k, Unit::Count, *n as f64);
    }
}

/// With a `max` on `server_gpu_memory`, the started server's GPU memory
/// peak over the point against it (a check for "GPU memory usage
/// optimized").
pub(super) fn server_gpu_bound(
    plan: &ScenarioPlan,
    labels: &BTreeMap<String, String>,
    memory: Option<&MemoryReport>,
) -> Option<Check> {
    let m = memory.filter(|m| m.samples > 0)?;
    let peak = m.gpu_peak?;
    let key = MetricKey::new("server_gpu_memory")
        .with_labels(labels)
        .with("at", "peak");
    let source = format!("NVML, {} samples of the server's process tree", m.samples);
    gpu_memory_bound(plan, &key, peak, "server", &source)
}

/// A started server's RSS and, where NVML lists its processes, its GPU
/// memory (start, peak, end).
fn server_memory(p: &mut Push<'_>, mem: &MemoryReport) {
    for (at, v) in [
        ("start", mem.rss_start),
        ("peak", mem.rss_peak),
        ("end", mem.rss_end),
    ] {
        let k = p.key("server_rss").with("at", at);
        p.single(k, Unit::Bytes, v as f64);
    }
    if let Some(peak) = mem.gpu_peak {
        for (at, v) in [
            ("start", mem.gpu_start),
            ("peak", peak),
            ("end", mem.gpu_end),
        ] {
            let k = p.key("server_gpu_memory").with("at", at);
            p.single(k, Unit::Bytes, v as f64);
        }
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
