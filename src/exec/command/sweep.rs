//! A `command` scenario's `sweep`: the program's own latency (and
//! throughput) at each batch size, analysed by `exec::sweep` exactly as a
//! `batch_sweep` is.

use crate::exec::sweep::{BatchPoint, Derived, SweepRules};
use crate::exec::{ExecError, ExecOutput};
use crate::metric::{ChecklistItem, Unit};
use crate::plan::command::sweep::CommandSweep;
use crate::plan::{ParamValue, ScenarioPlan, point_labels};

/// Adds the derived metrics and checks to `out`, whose metrics hold every
/// point's series.
pub fn analyse(
    plan: &ScenarioPlan,
    sweep: &CommandSweep,
    out: &mut ExecOutput,
) -> Result<(), ExecError> {
    let mut points = Vec::with_capacity(plan.points.len());
    for point in &plan.points {
        let Some(&ParamValue::Int(batch)) = point.get(&sweep.param) else {
            continue;
        };
        let labels = point_labels(point);
        let series = |name: &str| {
            out.metrics
                .iter()
                .find(|m| m.key.name == name && m.key.labels == labels)
        };
        let at = || format!("{}={batch}", sweep.param);
        let latency = series(&sweep.latency).ok_or_else(|| {
            ExecError::Failed(format!(
                "`sweep.latency`: the program printed no `{}` at {}",
                sweep.latency,
                at()
            ))
        })?;
        if latency.unit != Unit::Seconds {
            return Err(ExecError::Failed(format!(
                "`sweep.latency`: `{}` is printed in `{}`, not a time: print it with \"unit\": \"ms\" (or s, us)",
                sweep.latency,
                latency.unit.symbol()
            )));
        }
        let (name, named) = sweep.throughput_metric();
        let throughput = match series(name) {
            Some(t) => Some(t.samples.clone()),
            None if named => {
                return Err(ExecError::Failed(format!(
                    "`sweep.throughput`: the program printed no `{name}` at {}",
                    at()
                )));
            }
            None => None,
        };
        points.push(BatchPoint {
            batch: batch as usize,
            latency: latency.samples.clone(),
            memory: None,
            memory_peak: None,
            throughput,
        });
    }
    points.sort_by_key(|p| p.batch);
    if points.is_empty() {
        return Ok(());
    }
    let rules = SweepRules {
        latency_slo: sweep.latency_slo.map(|d| d.0),
        min_batch_speedup: sweep.min_batch_speedup,
        memory_budget: None,
    };
    let derived = Derived::from_points(&points, &rules);
    derived.emit(&mut out.metrics, &points, &rules, false);
    let batching = plan.checklist.contains(&ChecklistItem::Batching);
    out.checks
        .extend(derived.checks(&points, &rules, false, batching));
    Ok(())
}
