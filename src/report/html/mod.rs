//! The HTML report: one self-contained page (inline CSS and SVG, no
//! scripts, nothing fetched) with batch-sweep curves, latency
//! distributions, NVML timelines and baseline-against-current charts.
//! docs/report.md describes what each plot shows.

mod change;
mod escape;
#[cfg(test)]
pub(crate) mod fixture;
mod gpu;
mod latency;
mod page;
mod plot;
mod profile;
mod sweep;
mod tables;
#[cfg(test)]
mod tests;

use crate::outcome::RunReport;

/// The report as one HTML file.
pub fn html(report: &RunReport) -> Vec<u8> {
    page::page(report).into_bytes()
}
