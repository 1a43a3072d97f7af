//! Reporters turn a [`RunReport`] into bytes; they never write files
//! themselves. [`files`] (one owner) writes what they return, for the CLI
//! and the harness alike.

pub mod annotations;
pub mod dashboards;
pub mod files;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod terminal;

use crate::run::RunReport;

/// The JSON results (schema: docs/json-schema.md).
pub fn json(report: &RunReport) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(report).expect("report serializes");
    v.push(b'\n');
    v
}

/// "+3.2%" for a relative change.
pub fn percent(change: f64) -> String {
    if change.is_finite() {
        format!("{:+.1}%", change * 100.0)
    } else {
        "n/a".into()
    }
}
