//! Baseline against current for each gated metric: the relative change with
//! its confidence interval, against the tolerance band, coloured by verdict.

use plotters::prelude::*;

use super::plot::{self, AXIS, Area, FONT, GRID, PlotResult};
use crate::compare::{MetricVerdict, Verdict};
use crate::metric::Direction;

pub fn verdict_color(v: Verdict) -> RGBColor {
    match v {
        Verdict::Pass => RGBColor(0, 140, 90),
        Verdict::Regressed => RGBColor(200, 30, 30),
        Verdict::Improved => RGBColor(0, 114, 178),
        Verdict::Inconclusive => RGBColor(220, 140, 0),
        Verdict::Invalid => RGBColor(140, 70, 160),
        Verdict::NoBaseline => RGBColor(130, 130, 130),
    }
}

/// The verdicts worth a row: gated, and compared with a baseline.
pub fn compared(verdicts: &[MetricVerdict]) -> Vec<&MetricVerdict> {
    verdicts
        .iter()
        .filter(|v| v.gated && v.change.is_some_and(f64::is_finite))
        .collect()
}

const ROW: u32 = 30;
const MAX_LABEL: usize = 44;

fn short(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX_LABEL - 1).collect();
        format!("{head}…")
    }
}

pub fn render(rows: &[&MetricVerdict]) -> String {
    let h = 90 + ROW * rows.len() as u32;
    plot::svg(
        "baseline against current: change with 95% CI",
        960,
        h,
        |root| draw(root, rows),
    )
}

fn draw(area: &Area<'_>, rows: &[&MetricVerdict]) -> PlotResult {
    let pct = |v: f64| v * 100.0;
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for v in rows {
        let c = v.change.unwrap_or(0.0);
        let (a, b) = v.ci.unwrap_or((c, c));
        lo = lo.min(a).min(c).min(-v.tolerance);
        hi = hi.max(b).max(c).max(v.tolerance);
    }
    let n = rows.len() as i32;
    let labels: Vec<String> = rows.iter().map(|v| short(&v.key.to_string())).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(8) as u32;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "change against baseline (current / baseline − 1)",
            (FONT, 17),
        )
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size((longest * 8 + 12).clamp(80, 380))
        .build_cartesian_2d(plot::padded(pct(lo), pct(hi)), -1.0..f64::from(n))?;
    let row_name = |y: &f64| {
        let r = y.round();
        if (y - r).abs() > 0.01 {
            return String::new();
        }
        usize::try_from(n - 1 - r as i32)
            .ok()
            .and_then(|i| labels.get(i))
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(9)
        .x_label_formatter(&|v| format!("{v:+.0}%"))
        .y_labels(rows.len() + 2)
        .y_label_formatter(&row_name)
        .x_desc("change; shaded: within tolerance, whiskers: 95% CI")
        .label_style((FONT, 13))
        .draw()?;
    for (i, v) in rows.iter().enumerate() {
        let y = f64::from(n - 1 - i as i32);
        let c = verdict_color(v.verdict);
        // The band a change can move in without failing the gate.
        let (a, b) = match v.direction {
            Direction::LowerIsBetter => (f64::NEG_INFINITY, v.tolerance),
            Direction::HigherIsBetter => (-v.tolerance, f64::INFINITY),
            Direction::Neither => (-v.tolerance, v.tolerance),
        };
        let (a, b) = (pct(a.max(lo * 1.1)), pct(b.min(hi * 1.1)));
        chart.draw_series([Rectangle::new(
            [(a, y - 0.3), (b, y + 0.3)],
            RGBColor(214, 236, 214).filled(),
        )])?;
        let change = pct(v.change.unwrap_or(0.0));
        if let Some((l, h)) = v.ci {
            chart.draw_series(LineSeries::new(
                [(pct(l), y), (pct(h), y)],
                c.stroke_width(2),
            ))?;
            chart.draw_series([pct(l), pct(h)].map(|x| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, -6), (0, 6)], c.stroke_width(2))
            }))?;
        }
        chart.draw_series([Circle::new((change, y), 5, c.filled())])?;
        chart.draw_series([EmptyElement::at((change, y))
            + Text::new(
                format!("{} {:+.1}%", v.verdict, change),
                (8, -18),
                (FONT, 12).into_font().color(&c),
            )])?;
    }
    chart.draw_series(LineSeries::new(
        [(0.0, -1.0), (0.0, f64::from(n))],
        AXIS.stroke_width(1),
    ))?;
    Ok(())
}
