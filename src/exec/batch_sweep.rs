//! `batch_sweep`: a candle model run over batch sizes. Per batch: latency
//! samples, throughput, memory; per model: load time and first inference;
//! derived: best batch, largest batch under the latency SLO, scaling
//! efficiency; optionally the same model in other dtypes / quantizations.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};

use crate::exec::sampler::run_adaptive;
use crate::exec::{Availability, ExecError, ExecEvent, ExecOutput, Executes, Executor, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::model::device::{self, MemReading};
use crate::model::{Model, Precision, Weights, rel_l2_error};
use crate::plan::batch_sweep::CompareDType;
use crate::plan::{BatchSweepSpec, DeviceSel, KindSpec, ScenarioPlan};

pub use super::sweep::{BatchPoint, Derived, SweepRules};

pub struct BatchSweepExecutor;

impl Executes for crate::plan::BatchSweepSpec {
    const EXECUTOR: &'static dyn Executor = &BatchSweepExecutor;
}

impl Executor for BatchSweepExecutor {
    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        match device::unavailable(plan.device) {
            None => Availability::Ready,
            Some(why) => Availability::Missing(why),
        }
    }

    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        let KindSpec::BatchSweep(spec) = &plan.spec else {
            return Err(ExecError::Failed("batch_sweep: wrong spec".into()));
        };
        // GPU scenarios never overlap (see `device::exclusive`).
        let _gpu = (plan.device != DeviceSel::Cpu).then(crate::device::exclusive);
        // A panic inside candle (an unsupported op on some backend) fails
        // this scenario, not the whole session.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_sweep(plan, spec, ctx)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(ExecError::Failed(format!("batch_sweep panicked: {msg}")))
            })
    }
}

fn failed(what: impl std::fmt::Display) -> impl FnOnce(candle_core::Error) -> ExecError {
    move |e| ExecError::Failed(format!("{what}: {e}"))
}

fn model_failed(
    what: impl std::fmt::Display,
) -> impl FnOnce(crate::model::ModelError) -> ExecError {
    move |e| ExecError::Failed(format!("{what}: {e}"))
}

/// Loads the spec's weights (seeded or from file) as the f32 host master.
pub fn load_weights(plan: &ScenarioPlan, spec: &BatchSweepSpec) -> Result<Weights, ExecError> {
    match &spec.model.weights {
        Some(p) => Weights::load(&plan.base_dir.join(p), &spec.model),
        None => Weights::random(&spec.model),
    }
    .map_err(model_failed("loading weights"))
}

/// Runs one forward pass and waits for it.
fn forward_synced(m: &Model, x: &Tensor) -> candle_core::Result<Tensor> {
    let y = m.forward(x)?;
    m.sync()?;
    Ok(y)
}

/// What measuring one batch size (or one dtype) produced.
struct Measured {
    latency: MetricSeries,
    throughput: MetricSeries,
    /// Time spent inside forward passes, warm-up included.
    forward_time: Duration,
    /// Wall time of the whole sampling loop.
    loop_time: Duration,
    mem_before: Option<MemReading>,
    mem_after: Option<MemReading>,
}

/// Warm-up + adaptive sampling of `model` on batch `x` of `batch` samples.
fn measure(
    model: &Model,
    x: &Tensor,
    batch: usize,
    key: impl Fn(&str) -> MetricKey,
    ctx: &mut RunCtx<'_>,
) -> Result<Measured, ExecError> {
    let lat_est = default_estimator(&Unit::Seconds, Direction::LowerIsBetter);
    let mut latency = MetricSeries::new(
        key("latency"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        lat_est,
    );
    let mut throughput = MetricSeries::new(
        key("throughput"),
        Unit::Rate("samples".into()),
        Direction::HigherIsBetter,
        default_estimator(&Unit::Rate("samples".into()), Direction::HigherIsBetter),
    );
    model.sync().map_err(failed("device"))?;
    let dev = &model.device;
    device::reset_peak(dev);
    let mem_before = device::read_memory(dev);
    let mut forward_time = Duration::ZERO;
    let settings = ctx.settings.clone();
    let start = Instant::now();
    {
        let mut events = |n: usize| ctx.event(ExecEvent::Sample { count: n });
        run_adaptive(
            &settings,
            lat_est,
            |warm| {
                let t = Instant::now();
                let y = forward_synced(model, x)
                    .map_err(failed(format!("batch {batch}: forward pass failed")))?;
                let dt = t.elapsed();
                drop(y);
                forward_time += dt;
                let s = dt.as_secs_f64();
                if !warm {
                    latency.samples.push(s);
                    throughput.samples.push(batch as f64 / s);
                }
                Ok::<_, ExecError>(Some(s))
            },
            &mut events,
        )?;
    }
    let loop_time = start.elapsed();
    let mem_after = device::read_memory(dev);
    Ok(Measured {
        latency,
        throughput,
        forward_time,
        loop_time,
        mem_before,
        mem_after,
    })
}

fn single(key: MetricKey, unit: Unit, dir: Direction, v: f64) -> MetricSeries {
    MetricSeries::single(key, unit, dir, v)
}

fn run_sweep(
    plan: &ScenarioPlan,
    spec: &BatchSweepSpec,
    ctx: &mut RunCtx<'_>,
) -> Result<ExecOutput, ExecError> {
    // Device start-up, timed on its own: on CUDA, context creation plus
    // candle's cuBLAS and cuRAND handles (library loading included).
    let t = Instant::now();
    let (dev, desc) = device::open(plan.device).map_err(ExecError::Unavailable)?;
    let device_init = t.elapsed().as_secs_f64();
    let on_cuda = dev.is_cuda();
    let mut out = ExecOutput {
        device: desc,
        ..Default::default()
    };
    out.metrics.push(single(
        MetricKey::new("device_init"),
        Unit::Seconds,
        Direction::Neither,
        device_init,
    ));
    let batches = spec.batches();
    let (w, model) = load(plan, spec, &dev, &mut out)?;
    first_inferences(&model, batches[0], spec.model.seed(), &mut out)?;
    let (points, overhead) = sweep(&model, spec, &batches, ctx, &mut out)?;
    let rules = SweepRules::from(spec);
    let derived = Derived::from_points(&points, &rules);
    derived.emit(&mut out.metrics, &points, &rules, on_cuda);
    // Report-only: the harness's own share of the sampling loops.
    out.metrics.push(single(
        MetricKey::new("harness_overhead"),
        Unit::Percent,
        Direction::Neither,
        overhead * 100.0,
    ));
    let batching = plan.checklist.contains(&ChecklistItem::Batching);
    out.checks
        .extend(derived.checks(&points, &rules, on_cuda, batching));
    if !spec.compare_dtypes.is_empty() {
        compare_dtypes(spec, &w, &model, &batches, ctx, &mut out)?;
    }
    Ok(out)
}

/// Load: weights read (or generated) and placed on the device, timed.
fn load(
    plan: &ScenarioPlan,
    spec: &BatchSweepSpec,
    dev: &Device,
    out: &mut ExecOutput,
) -> Result<(Weights, Model), ExecError> {
    let t = Instant::now();
    let w = load_weights(plan, spec)?;
    let precision = Precision::of_model(spec.model.dtype());
    let model = Model::build(&spec.model, &w, precision, dev)
        .map_err(model_failed("building the model"))?;
    model.sync().map_err(failed("placing weights"))?;
    let load_time = t.elapsed().as_secs_f64();
    // One sample each, so reported, not gated on change (bounds still apply).
    out.metrics.push(single(
        MetricKey::new("load_time"),
        Unit::Seconds,
        Direction::Neither,
        load_time,
    ));
    out.metrics.push(single(
        MetricKey::new("weights_bytes"),
        Unit::Bytes,
        Direction::LowerIsBetter,
        model.weight_bytes as f64,
    ));
    Ok((w, model))
}

/// First inference: cold caches, lazy kernel loading (on CUDA, candle's
/// PTX modules are JIT-compiled by the driver on first use), allocator
/// growth. The second pass right after it, at the same batch, is the
/// model's own cost: the difference is what happens once per process.
fn first_inferences(
    model: &Model,
    batch: usize,
    seed: u64,
    out: &mut ExecOutput,
) -> Result<(), ExecError> {
    let x = model.input(batch, seed).map_err(model_failed("input"))?;
    for (name, what) in [
        ("first_inference", "first inference"),
        ("second_inference", "second inference"),
    ] {
        let t = Instant::now();
        forward_synced(model, &x).map_err(failed(what))?;
        out.metrics.push(single(
            MetricKey::new(name).with("batch", batch),
            Unit::Seconds,
            Direction::Neither,
            t.elapsed().as_secs_f64(),
        ));
    }
    Ok(())
}

/// Every batch measured: its points for the sweep analysis, and the
/// harness's share of the sampling loops' time (0..1).
fn sweep(
    model: &Model,
    spec: &BatchSweepSpec,
    batches: &[usize],
    ctx: &mut RunCtx<'_>,
    out: &mut ExecOutput,
) -> Result<(Vec<BatchPoint>, f64), ExecError> {
    let seed = spec.model.seed();
    let mut points = Vec::new();
    let (mut fwd, mut wall) = (Duration::ZERO, Duration::ZERO);
    for (i, &b) in batches.iter().enumerate() {
        ctx.event(ExecEvent::Point {
            index: i,
            total: batches.len(),
            label: format!("batch={b}"),
        });
        let x = model
            .input(b, seed)
            .map_err(model_failed(format!("batch {b}: input")))?;
        let m = measure(model, &x, b, |n| MetricKey::new(n).with("batch", b), ctx)?;
        drop(x);
        fwd += m.forward_time;
        wall += m.loop_time;
        let growth = match (m.mem_before, m.mem_after) {
            (Some(before), Some(after)) => Some(
                after
                    .peak
                    .unwrap_or(after.current)
                    .saturating_sub(before.current),
            ),
            _ => None,
        };
        points.push(BatchPoint {
            batch: b,
            latency: m.latency.samples.clone(),
            memory: growth,
            // Without a pool high-water mark (or VmHWM), what is in use after the batch.
            memory_peak: m.mem_after.map(|a| a.peak.unwrap_or(a.current)),
            throughput: None,
        });
        out.metrics.push(m.latency);
        out.metrics.push(m.throughput);
    }
    let overhead = if wall.is_zero() {
        0.0
    } else {
        (1.0 - fwd.as_secs_f64() / wall.as_secs_f64()).max(0.0)
    };
    Ok((points, overhead))
}

/// The batch of the dtype comparison: `compare_batch`, else the largest
/// swept batch ≤ 16, else the smallest.
pub fn compare_batch(spec: &BatchSweepSpec, batches: &[usize]) -> usize {
    spec.compare_batch.map(|b| b as usize).unwrap_or_else(|| {
        batches
            .iter()
            .rev()
            .find(|&&b| b <= 16)
            .copied()
            .unwrap_or(batches[0])
    })
}

fn compare_dtypes(
    spec: &BatchSweepSpec,
    w: &Weights,
    model: &Model,
    batches: &[usize],
    ctx: &mut RunCtx<'_>,
    out: &mut ExecOutput,
) -> Result<(), ExecError> {
    let b = compare_batch(spec, batches);
    let seed = spec.model.seed();
    let f32p = Precision::of_compare(CompareDType::F32);
    let built;
    let reference = if model.precision == f32p {
        model
    } else {
        built = Model::build(&spec.model, w, f32p, &model.device)
            .map_err(model_failed("compare_dtypes: f32 reference"))?;
        &built
    };
    let x_ref = reference.input(b, seed).map_err(model_failed("input"))?;
    let y_ref = forward_synced(reference, &x_ref).map_err(failed("f32 reference"))?;
    let key =
        |dt: &'static str| move |n: &str| MetricKey::new(n).with("dtype", dt).with("batch", b);

    let mut list = vec![CompareDType::F32];
    list.extend(
        spec.compare_dtypes
            .iter()
            .filter(|d| **d != CompareDType::F32),
    );
    let total = list.len();
    let mut f32_median = None;
    for (i, d) in list.into_iter().enumerate() {
        ctx.event(ExecEvent::Point {
            index: i,
            total,
            label: format!("dtype={}", d.id()),
        });
        let p = Precision::of_compare(d);
        let m_owned;
        let m = if p == f32p {
            reference
        } else {
            m_owned = Model::build(&spec.model, w, p, &reference.device)
                .map_err(model_failed(format!("compare_dtypes: {}", d.id())))?;
            &m_owned
        };
        let x = m.input(b, seed).map_err(model_failed("input"))?;
        let y =
            forward_synced(m, &x).map_err(failed(format!("{}: forward pass failed", d.id())))?;
        let err = rel_l2_error(&y, &y_ref).map_err(model_failed(d.id()))?;
        drop(y);
        let meas = measure(m, &x, b, key(d.id()), ctx)?;
        let med = crate::stats::median(&meas.latency.samples).unwrap_or(f64::NAN);
        let base = *f32_median.get_or_insert(med);
        out.metrics.push(meas.latency);
        out.metrics.push(meas.throughput);
        out.metrics.push(single(
            // A ratio of two medians, one number: gate it with `min`.
            MetricKey::new("speedup").with("dtype", d.id()),
            Unit::Ratio,
            Direction::Neither,
            base / med,
        ));
        out.metrics.push(single(
            MetricKey::new("rel_l2_error").with("dtype", d.id()),
            Unit::Ratio,
            Direction::LowerIsBetter,
            err,
        ));
        out.metrics.push(single(
            MetricKey::new("weights_bytes").with("dtype", d.id()),
            Unit::Bytes,
            Direction::LowerIsBetter,
            m.weight_bytes as f64,
        ));
    }
    Ok(())
}
