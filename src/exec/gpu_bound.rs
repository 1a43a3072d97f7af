//! A `max` bound on a GPU memory metric, as a check. A bound alone gives a
//! verdict ("above max"), which ticks no checklist item; as a check, a
//! peak within its bound is evidence for "GPU memory usage optimized",
//! and one above it fails that item. `command` (`process_gpu_memory`) and
//! `websocket_flood` (`server_gpu_memory` of the server it started).

use crate::metric::{ChecklistItem, MetricKey, Unit};
use crate::plan::ScenarioPlan;
use crate::result::Check;

/// With a `max` for `key`, whether `peak` stayed within it; `whose` names
/// the memory ("process", "server") and `source` where the figure came
/// from, both for the evidence.
pub fn gpu_memory_bound(
    plan: &ScenarioPlan,
    key: &MetricKey,
    peak: u64,
    whose: &str,
    source: &str,
) -> Option<Check> {
    let max = plan.rule_for(key).and_then(|r| r.max)?;
    let peak = peak as f64;
    Some(Check::new(
        format!("{whose} GPU memory within bound ({key})"),
        peak <= max,
        format!(
            "peak {}, bound {} ({source})",
            Unit::Bytes.format(peak),
            Unit::Bytes.format(max)
        ),
        Some(ChecklistItem::GpuMemory),
    ))
}
