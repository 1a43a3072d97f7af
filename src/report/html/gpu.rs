//! NVML timelines of one GPU over a scenario's window: utilization, memory
//! in use, clocks and power, one panel each.

use plotters::prelude::*;

use super::plot::{self, AXIS, Area, FONT, GRID, PlotResult};
use crate::result::{GpuSample, GpuSummary};

/// Points per line (drawing only; the summary figures use every reading).
const MAX_POINTS: usize = 600;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn render(g: &GpuSummary) -> String {
    let title = format!(
        "GPU {} timeline: utilization, memory, clocks, power",
        g.index
    );
    plot::svg(&title, 960, 520, |root| {
        let panels = root.split_evenly((2, 2));
        let line = |f: fn(&GpuSample) -> f64| -> Vec<(f64, f64)> {
            let pts: Vec<(f64, f64)> = g.timeline.iter().map(|s| (s.t, f(s))).collect();
            plot::bucket_means(&pts, MAX_POINTS)
        };
        let util = [
            ("SM", line(|s| s.sm_util)),
            ("memory", line(|s| s.mem_util)),
        ];
        panel(&panels[0], g, "utilization", "%", 0.0..105.0, &util, None)?;
        let mem = [("used", line(|s| s.mem_used_bytes as f64 / GIB))];
        let total = (g.mem_total_bytes > 0).then(|| g.mem_total_bytes as f64 / GIB);
        let mem_hi = total.unwrap_or_else(|| peak(&mem));
        panel(
            &panels[1],
            g,
            "memory in use",
            "GiB",
            plot::from_zero(mem_hi),
            &mem,
            total.map(|t| ("total", t)),
        )?;
        let clocks = [
            ("SM", line(|s| s.sm_clock_mhz)),
            ("memory", line(|s| s.mem_clock_mhz)),
        ];
        panel(
            &panels[2],
            g,
            "clocks",
            "MHz",
            plot::from_zero(peak(&clocks)),
            &clocks,
            None,
        )?;
        let power = [("power", line(|s| s.power_w))];
        panel(
            &panels[3],
            g,
            "power",
            "W",
            plot::from_zero(peak(&power)),
            &power,
            None,
        )
    })
}

fn peak(lines: &[(&str, Vec<(f64, f64)>)]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.1.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

fn panel(
    area: &Area<'_>,
    g: &GpuSummary,
    caption: &str,
    unit: &str,
    y: std::ops::Range<f64>,
    lines: &[(&str, Vec<(f64, f64)>)],
    limit: Option<(&str, f64)>,
) -> PlotResult {
    let t_end = g.timeline.last().map_or(1.0, |s| s.t).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..t_end, y)?;
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(6)
        .x_label_formatter(&|v| plot::tick(*v))
        .y_label_formatter(&|v| plot::tick(*v))
        .x_desc("time in scenario (s)")
        .y_desc(unit)
        .label_style((FONT, 12))
        .draw()?;
    for (i, (name, pts)) in lines.iter().enumerate() {
        let c = plot::color(i);
        let series = chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?;
        if lines.len() > 1 || limit.is_some() {
            series
                .label(*name)
                .legend(plot::line_key(c.stroke_width(2)));
        }
    }
    if let Some((name, v)) = limit {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, v), (t_end, v)],
                6,
                4,
                AXIS.stroke_width(1),
            ))?
            .label(format!("{name} {}", plot::tick(v)))
            .legend(plot::line_key(AXIS.stroke_width(1)));
    }
    if lines.len() > 1 || limit.is_some() {
        plot::legend(&mut chart, SeriesLabelPosition::LowerRight, 12)?;
    }
    Ok(())
}
