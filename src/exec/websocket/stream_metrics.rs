//! The metrics of a protocol flood's streams (docs/websocket.md,
//! "Streams"): per-request timings as samples the gate compares, their
//! percentiles from every value, and per-slice rates of requests, replies
//! (or units) and good requests.

use std::collections::BTreeMap;

use super::push::Push;
use crate::metric::{Direction, MetricSeries, Unit};
use crate::ws::client::stream::StreamTotals;
use crate::ws::client::stream::record::Dist;
use crate::ws::client::{ErrorKind, FloodReport};

/// Pushes the stream metrics of `r` (a protocol flood) onto `m`.
pub(super) fn stream_metrics(
    r: &FloodReport,
    units_name: Option<&str>,
    labels: &BTreeMap<String, String>,
    m: &mut Vec<MetricSeries>,
) {
    let Some(s) = &r.streams else { return };
    let mut p = Push::new(labels, m);
    timings(&mut p, s);
    if !s.replies.items().is_empty() {
        p.series(
            "replies_per_request",
            Unit::Count,
            Direction::Neither,
            s.replies.items().to_vec(),
        );
    }
    if units_name.is_some() && !s.units.items().is_empty() {
        p.series(
            "units_per_request",
            Unit::Count,
            Direction::Neither,
            s.units.items().to_vec(),
        );
    }
    rates(&mut p, r, s, units_name);
    for k in ErrorKind::STREAM {
        let n = r.totals.errors.get(&k).copied().unwrap_or(0);
        let key = p.key("errors").with("type", k.id());
        p.single(key, Unit::Count, n as f64);
    }
}

/// Per-request timings as samples, and the percentiles of the first three
/// from every value.
fn timings(p: &mut Push<'_>, s: &StreamTotals) {
    for (name, d, pct) in [
        ("time_to_first_reply", &s.ttfr, true),
        ("inter_reply_gap", &s.gap, true),
        ("time_per_reply", &s.tpr, true),
        ("stream_time", &s.stream, false),
    ] {
        if d.sample.items().is_empty() {
            continue;
        }
        p.series(
            name,
            Unit::Seconds,
            Direction::LowerIsBetter,
            d.sample.items().to_vec(),
        );
        if pct {
            percentiles(p, name, d);
        }
    }
}

/// Requests, replies (or units) and good requests per second, per slice.
fn rates(p: &mut Push<'_>, r: &FloodReport, s: &StreamTotals, units_name: Option<&str>) {
    let rates = slice_rates(r, s);
    let reply_unit = units_name.unwrap_or("reply");
    let reply_rate = |(_, replies, units, _): (f64, f64, f64, f64)| {
        if units_name.is_some() { units } else { replies }
    };
    let higher = Direction::HigherIsBetter;
    p.series(
        "request_rate",
        Unit::Rate("request".into()),
        higher,
        rates.iter().map(|x| x.0).collect(),
    );
    p.series(
        "reply_rate",
        Unit::Rate(reply_unit.into()),
        higher,
        rates.iter().map(|&x| reply_rate(x)).collect(),
    );
    p.series(
        "goodput",
        Unit::Rate("request".into()),
        higher,
        rates.iter().map(|x| x.3).collect(),
    );
}

fn percentiles(p: &mut Push<'_>, name: &str, d: &Dist) {
    let names = ["p50", "p90", "p99"].map(|suffix| format!("{name}_{suffix}"));
    p.quantiles(
        &d.all,
        &[(&names[0], 0.5), (&names[1], 0.9), (&names[2], 0.99)],
    );
}

/// Per full slice of the window: (requests, replies, units, good requests)
/// per second; a window shorter than a slice gives its overall rates.
fn slice_rates(r: &FloodReport, s: &StreamTotals) -> Vec<(f64, f64, f64, f64)> {
    let secs = r.slice.as_secs_f64();
    let full = (r.window.as_secs_f64() / secs).floor() as usize;
    if full == 0 {
        let w = r.window.as_secs_f64().max(1e-9);
        let replies = r.totals.received_in_window as f64;
        return vec![(
            s.done_in_window as f64 / w,
            replies / w,
            s.units_in_window / w,
            s.good_in_window as f64 / w,
        )];
    }
    (0..full)
        .map(|i| {
            let c = s.slices.get(i).copied().unwrap_or_default();
            let replies = r.totals.slices.get(i).map_or(0, |x| x.0) as f64;
            (
                c.done as f64 / secs,
                replies / secs,
                c.units / secs,
                c.good as f64 / secs,
            )
        })
        .collect()
}
