//! The metrics of a protocol flood's streams (docs/websocket.md,
//! "Streams"): per-request timings as samples the gate compares, their
//! percentiles from every value, and the window's rates of requests,
//! replies (or units) and good requests.

use std::collections::BTreeMap;

use super::push::Push;
use crate::metric::{Direction, MetricSeries, Unit};
use crate::plan::websocket::protocol::GoodputSpec;
use crate::units::format_duration;
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

/// Which `goodput` bound the streams that missed one missed, when some
/// did: a `goodput` that fell says what fell with it ("0 request/s" alone
/// does not say whether the first reply or the pace was late).
pub(super) fn goodput_misses(
    r: &FloodReport,
    goodput: Option<GoodputSpec>,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    let (s, g) = (r.streams.as_ref()?, goodput?);
    let bounds = [
        ("time_to_first_reply", g.time_to_first_reply),
        ("time_per_reply", g.time_per_reply),
    ];
    let parts: Vec<String> = bounds
        .iter()
        .zip(s.missed)
        .filter_map(|((name, bound), n)| {
            let b = (*bound)?;
            (n > 0).then(|| format!("{n} over {name} = {}", format_duration(b.0)))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "goodput{}: {} of {} streams sent in the window missed a bound: {}",
        super::metrics::label_suffix(labels),
        s.missed_any,
        s.judged,
        parts.join(", ")
    ))
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

/// Requests, replies (or units) and good requests per second over the
/// whole window, one value each (as LLM serving benchmarks report request
/// and output-token throughput). Not per slice: streams of equal length
/// end in bursts, so a slice's count is 0 or a whole burst and a quantile
/// of slices measures how bursts fall on slice edges, not throughput
/// (examples/ws-backend/suite.toml: a p95 of 400 requests/s in 6 runs of
/// 6, where 144 completed per second; an unchanged rerun of
/// frameworks.toml read 800 against a blessed 400). Each stream counts by
/// the share of its lifetime inside the window (`record::share_in`), so
/// long streams do not make the count jump by one per connection. Gated
/// between runs like any single value.
fn rates(p: &mut Push<'_>, r: &FloodReport, s: &StreamTotals, units_name: Option<&str>) {
    let w = r.window.as_secs_f64().max(1e-9);
    let replies = match units_name {
        Some(_) => s.units_share,
        None => r.totals.received_in_window as f64,
    };
    let reply_unit = Unit::Rate(units_name.unwrap_or("reply").into());
    let request = || Unit::Rate("request".into());
    p.rate("request_rate", request(), s.done_share / w);
    p.rate("reply_rate", reply_unit, replies / w);
    p.rate("goodput", request(), s.good_share / w);
}

fn percentiles(p: &mut Push<'_>, name: &str, d: &Dist) {
    let names = ["p50", "p90", "p99"].map(|suffix| format!("{name}_{suffix}"));
    p.quantiles(
        &d.all,
        &[(&names[0], 0.5), (&names[1], 0.9), (&names[2], 0.99)],
    );
}
