//! Latency distributions: for every metric measured in seconds with enough
//! samples (flood round trips, command timings, kernel times, sweep
//! latencies), an overlaid CDF, and a histogram of the largest sample set.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::plot::{self, AXIS, Area, FONT, GRID, PlotResult};
use crate::metric::{MetricSeries, Unit};
use crate::result::ScenarioResult;
use crate::stats::quantile_sorted;

/// Fewer samples than this make a poor distribution plot.
pub const MIN_SAMPLES: usize = 20;
/// Series drawn in one CDF; the rest are named in the page.
pub const MAX_SERIES: usize = 8;
/// Points per CDF line (drawing only).
const CDF_POINTS: usize = 300;
const BINS: usize = 40;

/// One time metric's samples, sorted, with its name.
pub struct Dist {
    pub name: String,
    pub sorted: Vec<f64>,
}

/// The time-valued metrics of a result worth a distribution plot.
pub fn distributions(result: &ScenarioResult) -> Vec<Dist> {
    result
        .metrics
        .iter()
        .filter(|m| m.unit == Unit::Seconds)
        .filter_map(|m: &MetricSeries| {
            let mut s: Vec<f64> = m
                .samples
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            (s.len() >= MIN_SAMPLES).then(|| {
                s.sort_by(f64::total_cmp);
                Dist {
                    name: m.key.to_string(),
                    sorted: s,
                }
            })
        })
        .collect()
}

/// The CDF (left) and the histogram of the largest set (right).
pub fn render(dists: &[Dist]) -> String {
    let shown = &dists[..dists.len().min(MAX_SERIES)];
    plot::svg(
        "latency distribution: CDF and histogram",
        960,
        340,
        |root| {
            let (l, r) = root.split_horizontally(520);
            let lo = shown
                .iter()
                .map(|d| d.sorted[0])
                .fold(f64::INFINITY, f64::min);
            let hi = shown
                .iter()
                .map(|d| d.sorted[d.sorted.len() - 1])
                .fold(0.0, f64::max);
            let (k, unit) = plot::time_scale(hi);
            if lo > 0.0 && hi / lo > 20.0 {
                cdf_panel(
                    &l,
                    (lo * k * 0.9..hi * k * 1.1).log_scale(),
                    shown,
                    k,
                    unit,
                    " (log)",
                )?;
            } else {
                cdf_panel(&l, plot::padded(lo * k, hi * k), shown, k, unit, "")?;
            }
            let largest = dists
                .iter()
                .max_by_key(|d| d.sorted.len())
                .expect("non-empty");
            histogram_panel(&r, largest)
        },
    )
}

fn cdf_panel<X>(
    area: &Area<'_>,
    x: X,
    dists: &[Dist],
    k: f64,
    unit: &str,
    scale: &str,
) -> PlotResult
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption("CDF", (FONT, 17))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(48)
        .build_cartesian_2d(x, 0.0..100.0)?;
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(6)
        .x_label_formatter(&|v| plot::tick(*v))
        .y_label_formatter(&|v| format!("{v:.0}%"))
        .x_desc(format!("{unit}{scale}"))
        .y_desc("samples at or below")
        .label_style((FONT, 13))
        .draw()?;
    for (i, d) in dists.iter().enumerate() {
        let c = plot::color(i);
        let pts = plot::cdf_points(&d.sorted, CDF_POINTS)
            .into_iter()
            .map(|(x, y)| (x * k, y));
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(format!("{} (n={})", d.name, d.sorted.len()))
            .legend(plot::line_key(c.stroke_width(2)));
    }
    plot::legend(&mut chart, SeriesLabelPosition::LowerRight, 12)?;
    Ok(())
}

/// Bins from the minimum to the 99.5th percentile, so one outlier does not
/// squash the shape; the samples beyond are counted in the caption.
fn histogram_panel(area: &Area<'_>, d: &Dist) -> PlotResult {
    let lo = d.sorted[0];
    let cut = quantile_sorted(&d.sorted, 0.995);
    let hi = if cut > lo {
        cut
    } else {
        lo + lo.abs().max(1e-12)
    };
    let width = (hi - lo) / BINS as f64;
    let mut counts = [0usize; BINS];
    let mut beyond = 0;
    for &v in &d.sorted {
        if v > hi {
            beyond += 1;
        } else {
            counts[(((v - lo) / width) as usize).min(BINS - 1)] += 1;
        }
    }
    let (k, unit) = plot::time_scale(hi);
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let caption = if beyond > 0 {
        format!("{} ({beyond} beyond p99.5 not shown)", d.name)
    } else {
        d.name.clone()
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 15))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(48)
        .build_cartesian_2d(lo * k..hi * k, plot::from_zero(top))?;
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(5)
        .x_label_formatter(&|v| plot::tick(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_desc(unit)
        .y_desc("samples")
        .label_style((FONT, 13))
        .draw()?;
    let c = plot::color(0);
    chart.draw_series(counts.iter().enumerate().map(|(i, &n)| {
        let x0 = (lo + i as f64 * width) * k;
        Rectangle::new(
            [(x0, 0.0), (x0 + width * k, n as f64)],
            c.mix(0.75).filled(),
        )
    }))?;
    Ok(())
}
