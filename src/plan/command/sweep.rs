//! `sweep = { param = "batch", latency = "latency", latency_slo = "20ms" }` on
//! a `command` scenario: the program's own latency at each batch size,
//! analysed as a `batch_sweep` is (best batch, largest batch under the SLO,
//! scaling efficiency, the batching check).

use serde::Deserialize;

use super::super::ParamValue;
use super::super::hint::did_you_mean;
use super::super::kinds::{At, CheckCtx, SpecError};
use super::CommandSpec;
use crate::units::HumanDuration;

/// The keys of `sweep`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSweep {
    /// The param that is the batch size (whole numbers ≥ 1).
    pub param: String,
    /// The printed metric that is the latency of one batch, in a time unit
    /// (default `latency`).
    #[serde(default = "default_latency")]
    pub latency: String,
    /// The printed metric that is throughput. Default: `throughput` when the
    /// program prints it, else the batch over the median latency.
    #[serde(default)]
    pub throughput: Option<String>,
    /// The p99 latency a batch must stay within (`max_batch_under_slo`).
    #[serde(default)]
    pub latency_slo: Option<HumanDuration>,
    /// Best throughput over the smallest batch's that the batching check
    /// needs (default 1.5).
    #[serde(default)]
    pub min_batch_speedup: Option<f64>,
}

fn default_latency() -> String {
    "latency".into()
}

impl CommandSweep {
    /// The throughput metric to read, and whether it was named (then it
    /// must be printed).
    pub fn throughput_metric(&self) -> (&str, bool) {
        match &self.throughput {
            Some(t) => (t, true),
            None => ("throughput", false),
        }
    }
}

/// The checks of `sweep` serde cannot do: the param is the scenario's only
/// param, takes whole numbers ≥ 1, and reaches the program.
pub(super) fn check(
    spec: &CommandSpec,
    sweep: &CommandSweep,
    ctx: &CheckCtx<'_>,
) -> Result<(), SpecError> {
    let err = |m: String| SpecError::new(At::Key("sweep"), m);
    let param = sweep.param.as_str();
    if !ctx.params.iter().any(|p| p == param) {
        let names = ctx.params.iter().map(String::as_str);
        return Err(
            err(format!("`sweep.param` `{param}` is not a param of this scenario")).hint(
                did_you_mean(param, names).or_else(|| {
                    Some(format!(
                        "add it to `params`, e.g. `params = {{ {param} = [1, 2, 4, 8] }}`, and pass `{{{param}}}` to the program"
                    ))
                }),
            ),
        );
    }
    if let Some(other) = ctx.params.iter().find(|p| *p != param) {
        return Err(err(format!(
            "`params.{other}` is swept too: a `sweep` varies `{param}` alone, so each batch size is one point"
        ))
        .hint(Some(format!(
            "give `{other}` one value here, or split the scenario by `{other}`"
        ))));
    }
    for point in ctx.points {
        match point.get(param) {
            Some(ParamValue::Int(n)) if *n >= 1 => {}
            Some(v) => {
                return Err(err(format!(
                    "`sweep.param` `{param}` must take whole numbers ≥ 1 (batch sizes), found `{v}`"
                )));
            }
            None => {}
        }
    }
    if !spec.passes(param) {
        return Err(err(format!(
            "`sweep.param` `{param}` does not reach the program: no `{{{param}}}` in `command` or `env`, so every batch would run the same"
        )));
    }
    if sweep.latency.is_empty() {
        return Err(err("`sweep.latency` must name a printed metric".into()));
    }
    if sweep.latency_slo.is_some_and(|d| d.0.is_zero()) {
        return Err(err("`sweep.latency_slo` must be positive".into()));
    }
    if let Some(s) = sweep.min_batch_speedup
        && !(s.is_finite() && s > 0.0)
    {
        return Err(err(format!(
            "`sweep.min_batch_speedup` must be a positive number, got {s}"
        )));
    }
    Ok(())
}
