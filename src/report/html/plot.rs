//! Pieces every plot shares: rendering a plotters drawing into an inline
//! `<svg>`, colours, readable unit scales, axis ranges and downsampling.
//! Downsampling is for drawing only; statistics always use every sample.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::escape::esc;

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub type PlotResult = Result<(), Box<dyn std::error::Error>>;

pub const FONT: &str = "sans-serif";
pub const GRID: RGBColor = RGBColor(232, 232, 232);
pub const AXIS: RGBColor = RGBColor(120, 120, 120);
pub const SLO: RGBColor = RGBColor(200, 30, 30);
/// Series colours (colour-blind friendly, Okabe-Ito).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Renders one drawing of `w`×`h` pixels into an `<svg class="plot">`
/// labelled `title` (for screen readers and tests). A drawing error becomes
/// a short note in the page instead of a broken report.
pub fn svg(title: &str, w: u32, h: u32, draw: impl FnOnce(&Area<'_>) -> PlotResult) -> String {
    let mut buf = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into))
    };
    match drawn {
        Ok(()) => buf.replacen(
            "<svg ",
            &format!(
                "<svg class=\"plot\" role=\"img\" aria-label=\"{}\" ",
                esc(title)
            ),
            1,
        ),
        Err(e) => format!(
            "<p class=\"plot-error\">plot “{}” could not be drawn: {}</p>",
            esc(title),
            esc(&e.to_string())
        ),
    }
}

/// A legend entry's key for a line series: a short stroke in `style`.
pub fn line_key(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style)
}

/// The legend every plot draws: at `pos`, labels of `size` points on a
/// light background, bordered in the axis colour.
pub fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    size: u32,
) -> PlotResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(pos)
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.85))
        .border_style(AXIS)
        .draw()?;
    Ok(())
}

/// A multiplier that turns seconds into a readable unit for an axis whose
/// largest value is `max_s`.
pub fn time_scale(max_s: f64) -> (f64, &'static str) {
    let a = max_s.abs();
    if a >= 1.0 || a == 0.0 || !a.is_finite() {
        (1.0, "s")
    } else if a >= 1e-3 {
        (1e3, "ms")
    } else if a >= 1e-6 {
        (1e6, "µs")
    } else {
        (1e9, "ns")
    }
}

/// `lo..hi` with a little room on both sides; never empty.
pub fn padded(lo: f64, hi: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return 0.0..1.0;
    }
    if hi <= lo {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return lo - d..hi + d;
    }
    let d = (hi - lo) * 0.06;
    lo - d..hi + d
}

/// `0..hi` with headroom, for quantities that start at zero.
pub fn from_zero(hi: f64) -> Range<f64> {
    if hi.is_finite() && hi > 0.0 {
        0.0..hi * 1.08
    } else {
        0.0..1.0
    }
}

/// A compact tick label.
pub fn tick(v: f64) -> String {
    crate::units::sig3(v)
}

/// Points of the empirical CDF of `sorted` (ascending) as (value, percent
/// at or below), at most `max` of them, evenly spaced in rank.
pub fn cdf_points(sorted: &[f64], max: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let pick = |i: usize| (sorted[i], 100.0 * (i + 1) as f64 / n as f64);
    if n <= max || max < 2 {
        return (0..n).map(pick).collect();
    }
    (0..max)
        .map(|k| pick(((k as f64 / (max - 1) as f64) * (n - 1) as f64).round() as usize))
        .collect()
}

/// At most `max` points: consecutive runs are averaged (x and y alike).
pub fn bucket_means(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            let (sx, sy) = c.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
            (sx / n, sy / n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_is_bounded_and_ends_at_100() {
        let xs: Vec<f64> = (0..10_000).map(f64::from).collect();
        let p = cdf_points(&xs, 200);
        assert_eq!(p.len(), 200);
        assert_eq!(p[0].0, 0.0);
        assert_eq!(*p.last().unwrap(), (9999.0, 100.0));
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(cdf_points(&[2.0, 1.0][..1], 10), vec![(2.0, 100.0)]);
    }

    #[test]
    fn bucket_means_bound_the_points() {
        let pts: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, 1.0)).collect();
        let d = bucket_means(&pts, 100);
        assert!(d.len() <= 100);
        assert!(d.iter().all(|p| p.1 == 1.0));
        assert_eq!(d[0].0, 4.5);
    }

    #[test]
    fn time_scale_picks_readable_units() {
        assert_eq!(time_scale(0.004), (1e3, "ms"));
        assert_eq!(time_scale(4e-5), (1e6, "µs"));
        assert_eq!(time_scale(2.0), (1.0, "s"));
    }
}
