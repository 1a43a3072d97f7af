//! Batch-sweep curves: latency (p50, p99) and throughput against batch size,
//! with the latency SLO and the best batch marked.

use plotters::prelude::*;

use super::plot::{self, AXIS, Area, FONT, GRID, PlotResult, SLO};
use crate::metric::MetricSeries;
use crate::result::ScenarioResult;
use crate::stats::{median, quantile};
use crate::units::format_seconds;

/// What the curves need, read from a batch_sweep result's metrics.
#[derive(Debug, PartialEq)]
pub struct Sweep {
    pub batches: Vec<usize>,
    /// Seconds per forward pass, from every sample of `latency{batch=b}`.
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
    /// Per second: the median of `throughput{batch=b}` (a command's printed
    /// throughput, a batch_sweep's batch over each latency), else the batch
    /// over the median latency.
    pub throughput: Vec<f64>,
    pub best_batch: Option<usize>,
    /// `latency_slo`, seconds, when the scenario set one.
    pub slo: Option<f64>,
    pub max_batch_under_slo: Option<usize>,
}

fn value(result: &ScenarioResult, key: &str) -> Option<f64> {
    result
        .metric(key)
        .and_then(|m| m.samples.first().copied())
        .filter(|v| v.is_finite())
}

/// The sweep's points, or `None` for a scenario that is no sweep (a
/// `batch_sweep`, or a `command` with `sweep`: both report `best_batch`)
/// or failed before measuring.
pub fn sweep_data(result: &ScenarioResult) -> Option<Sweep> {
    result.metric("best_batch")?;
    let by_batch = |name: &str| -> Vec<(usize, &MetricSeries)> {
        let mut pts: Vec<(usize, &MetricSeries)> = result
            .metrics
            .iter()
            .filter(|m| m.key.name == name && m.key.labels.len() == 1 && !m.samples.is_empty())
            .filter_map(|m| Some((m.key.labels.get("batch")?.parse().ok()?, m)))
            .collect();
        pts.sort_by_key(|p| p.0);
        pts
    };
    let q = |m: &MetricSeries, q| quantile(&m.samples, q).unwrap_or(f64::NAN);
    // Every latency sample when the latency is called `latency` and the
    // param `batch`; else the derived percentiles.
    let (batches, p50, p99) = match by_batch("latency") {
        pts if !pts.is_empty() => (
            pts.iter().map(|p| p.0).collect::<Vec<_>>(),
            pts.iter().map(|p| q(p.1, 0.5)).collect::<Vec<_>>(),
            pts.iter().map(|p| q(p.1, 0.99)).collect::<Vec<_>>(),
        ),
        _ => {
            let p50 = by_batch("latency_p50");
            let p99 = by_batch("latency_p99");
            if p50.is_empty() || p50.len() != p99.len() {
                return None;
            }
            (
                p50.iter().map(|p| p.0).collect(),
                p50.iter().map(|p| p.1.samples[0]).collect(),
                p99.iter().map(|p| p.1.samples[0]).collect(),
            )
        }
    };
    // The median `throughput{batch=b}` (a command's printed one, or a
    // batch_sweep's batch over each latency), else the batch over the
    // median latency.
    let recorded = by_batch("throughput");
    let throughput = batches
        .iter()
        .zip(&p50)
        .map(|(b, l)| {
            recorded
                .iter()
                .find(|(pb, _)| pb == b)
                .and_then(|(_, m)| median(&m.samples))
                .unwrap_or(*b as f64 / l)
        })
        .collect();
    Some(Sweep {
        batches,
        p50,
        p99,
        throughput,
        best_batch: value(result, "best_batch").map(|v| v as usize),
        slo: value(result, "latency_slo"),
        max_batch_under_slo: value(result, "max_batch_under_slo").map(|v| v as usize),
    })
}

pub fn render(s: &Sweep) -> String {
    plot::svg("batch sweep: latency and throughput", 960, 340, |root| {
        let (l, r) = root.split_horizontally(480);
        latency_panel(&l, s)?;
        throughput_panel(&r, s)
    })
}

fn batch_axis(s: &Sweep) -> (std::ops::Range<i32>, impl Fn(&i32) -> String + '_) {
    let n = s.batches.len() as i32;
    (-1..n, move |i: &i32| {
        usize::try_from(*i)
            .ok()
            .and_then(|i| s.batches.get(i))
            .map_or(String::new(), ToString::to_string)
    })
}

fn best_index(s: &Sweep) -> Option<i32> {
    let b = s.best_batch?;
    s.batches.iter().position(|&x| x == b).map(|i| i as i32)
}

fn latency_panel(area: &Area<'_>, s: &Sweep) -> PlotResult {
    let hi = s
        .p99
        .iter()
        .chain(s.slo.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (k, unit) = plot::time_scale(hi);
    let (xr, xfmt) = batch_axis(s);
    let mut chart = ChartBuilder::on(area)
        .caption("latency per forward pass", (FONT, 17))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(56)
        .build_cartesian_2d(xr, plot::from_zero(hi * k))?;
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(s.batches.len() + 2)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v| plot::tick(*v))
        .x_desc("batch size")
        .y_desc(format!("latency ({unit})"))
        .label_style((FONT, 13))
        .draw()?;
    let top = hi * k * 1.08;
    if let Some(b) = best_index(s) {
        chart.draw_series(DashedLineSeries::new(
            [(b, 0.0), (b, top)],
            5,
            4,
            plot::color(2).stroke_width(1),
        ))?;
    }
    for (i, (name, ys)) in [("p50", &s.p50), ("p99", &s.p99)].into_iter().enumerate() {
        let c = plot::color(i);
        let pts: Vec<(i32, f64)> = ys
            .iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .map(|(x, y)| (x as i32, y * k))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(name)
            .legend(plot::line_key(c.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
    }
    if let Some(slo) = s.slo {
        let n = s.batches.len() as i32;
        chart
            .draw_series(DashedLineSeries::new(
                [(-1, slo * k), (n, slo * k)],
                8,
                5,
                SLO.stroke_width(2),
            ))?
            .label(format!("SLO {}", format_seconds(slo)))
            .legend(plot::line_key(SLO.stroke_width(2)));
    }
    plot::legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    Ok(())
}

fn throughput_panel(area: &Area<'_>, s: &Sweep) -> PlotResult {
    let hi = s
        .throughput
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (xr, xfmt) = batch_axis(s);
    let mut chart = ChartBuilder::on(area)
        .caption("throughput (at median latency)", (FONT, 17))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(62)
        .build_cartesian_2d(xr, plot::from_zero(hi * 1.1))?;
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(s.batches.len() + 2)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v| plot::tick(*v))
        .x_desc("batch size")
        .y_desc("samples/s")
        .label_style((FONT, 13))
        .draw()?;
    let c = plot::color(0);
    let pts: Vec<(i32, f64)> = s
        .throughput
        .iter()
        .enumerate()
        .filter(|(_, y)| y.is_finite())
        .map(|(x, y)| (x as i32, *y))
        .collect();
    chart
        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
        .label("throughput")
        .legend(plot::line_key(c.stroke_width(2)));
    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
    if let Some(b) = best_index(s) {
        let best = plot::color(2);
        let y = s.throughput[b as usize];
        chart
            .draw_series([Circle::new((b, y), 7, best.stroke_width(3))])?
            .label(format!("best batch {}", s.batches[b as usize]))
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, best.stroke_width(2)));
    }
    if let (Some(m), Some(_)) = (s.max_batch_under_slo, s.slo) {
        let text = if m == 0 {
            "no batch meets the SLO".to_string()
        } else {
            format!("largest batch under SLO: {m}")
        };
        chart
            .draw_series([Circle::new((0, 0.0), 0, SLO.filled())])?
            .label(text)
            .legend(plot::line_key(SLO.stroke_width(2)));
    }
    plot::legend(&mut chart, SeriesLabelPosition::LowerRight, 13)?;
    Ok(())
}
