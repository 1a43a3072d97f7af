//! The seven-item performance checklist, each item ticked only by evidence
//! from a scenario that ran on this machine.

use crate::compare::Verdict;
use crate::metric::ChecklistItem;
use crate::outcome::{ChecklistEntry, ItemState, ScenarioReport};
use crate::result::Outcome;

/// Why nothing could tick an item, in words a user can act on.
fn missing_reason(item: ChecklistItem) -> &'static str {
    match item {
        ChecklistItem::GpuMemory => {
            "no CUDA batch sweep or oom_stress ran here, and no `max` was set on a GPU memory \
             metric (`process_gpu_memory`, `server_gpu_memory`, or the Python helper's \
             `gpu_allocated_peak` or `gpu_reserved_peak`)"
        }
        ChecklistItem::CudaSync => {
            "no gpu_kernel scenario with a correctness check ran, and no program timed CUDA work \
             with the Python helper"
        }
        ChecklistItem::WebsocketBuffers => {
            "no websocket_flood scenario ran the `oversize` or `slow_consumer` check"
        }
        ChecklistItem::Batching => {
            "no batch sweep listing `batching` ran (a `batch_sweep`, or a `command` with `sweep`)"
        }
        ChecklistItem::MemoryCleanup => {
            "no oom_stress scenario, `leak` check or WebSocket `cancel` check ran"
        }
        ChecklistItem::Monitoring => "no scenario ran",
        ChecklistItem::ErrorHandling => {
            "no scenario exercised an error path (oom_stress, find_max_batch, or a flood's \
             `abrupt_disconnect` or `malformed` check)"
        }
    }
}

/// Why an item whose checks passed is not ticked: nothing was compared.
pub const NOT_COMPARED: &str = "its checks passed, but no scenario behind it was compared with a \
     baseline for this hardware: record one with `neon-perf bless`";

/// A scenario that failed a check but was compared with its baseline all
/// the same (its verdicts are not all `no-baseline`).
fn compared_anyway(r: &ScenarioReport) -> bool {
    r.verdicts
        .iter()
        .any(|v| !matches!(v.verdict, Verdict::NoBaseline | Verdict::Invalid))
}

/// Evaluates every item from the scenarios' checks and verdicts. An item is
/// ticked when at least one check is evidence for it and all of them pass,
/// no scenario that lists the item in its `checklist` regressed, and at
/// least one scenario behind the evidence was compared with a baseline
/// (else it is [`ItemState::NotCompared`]).
pub fn evaluate(reports: &[ScenarioReport]) -> Vec<ChecklistEntry> {
    ChecklistItem::ALL
        .into_iter()
        .map(|item| {
            let mut evidence = Vec::new();
            let mut failures = Vec::new();
            let mut any_compared = false;
            for r in reports {
                if !matches!(r.result.outcome, Outcome::Ran | Outcome::Failed { .. }) {
                    continue;
                }
                let name = r.result.full_name();
                for c in r.result.checks.iter().filter(|c| c.item == Some(item)) {
                    let line = format!("{name}: {} — {}", c.name, c.evidence);
                    if c.passed {
                        any_compared |= r.status.compared() || compared_anyway(r);
                        evidence.push(line);
                    } else {
                        failures.push(line);
                    }
                }
                if r.checklist.contains(&item) {
                    for v in r
                        .verdicts
                        .iter()
                        .filter(|v| v.verdict == Verdict::Regressed)
                    {
                        failures.push(format!("{name}: {} regressed", v.key));
                    }
                }
            }
            let (state, reason) = if !failures.is_empty() {
                (ItemState::Failed, Some(failures.join("; ")))
            } else if evidence.is_empty() {
                (
                    ItemState::NotChecked,
                    Some(missing_reason(item).to_string()),
                )
            } else if !any_compared {
                (ItemState::NotCompared, Some(NOT_COMPARED.to_string()))
            } else {
                (ItemState::Ticked, None)
            };
            evidence.extend(failures);
            ChecklistEntry {
                item,
                title: item.title(),
                state,
                evidence,
                reason,
            }
        })
        .collect()
}
