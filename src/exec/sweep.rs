//! Figures derived from a batch sweep's samples (pure, no I/O): percentiles,
//! best batch, the largest batch under the SLO, scaling efficiency, and the
//! checks the checklist reads. One implementation for `batch_sweep` (the
//! built-in models) and a `command` scenario's `sweep` (the team's own).

use std::time::Duration;

use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::BatchSweepSpec;
use crate::result::Check;
use crate::stats::{median, quantile};
use crate::units::{format_bytes, sig3};

/// Default of `min_batch_speedup`.
pub const DEFAULT_MIN_BATCH_SPEEDUP: f64 = 1.5;

/// What a sweep is judged by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepRules {
    /// The p99 latency a batch must stay within to count as "under the SLO".
    pub latency_slo: Option<Duration>,
    /// Best throughput over the smallest batch's that the batching check
    /// needs (default [`DEFAULT_MIN_BATCH_SPEEDUP`]).
    pub min_batch_speedup: Option<f64>,
    /// Memory a batch may use, bytes.
    pub memory_budget: Option<u64>,
}

impl From<&BatchSweepSpec> for SweepRules {
    fn from(spec: &BatchSweepSpec) -> Self {
        SweepRules {
            latency_slo: spec.latency_slo.map(|d| d.0),
            min_batch_speedup: spec.min_batch_speedup,
            memory_budget: spec.memory_budget.map(|b| b.0),
        }
    }
}

/// What one batch size measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPoint {
    pub batch: usize,
    /// Seconds per forward pass of the whole batch.
    pub latency: Vec<f64>,
    /// Memory growth above the level before the batch ran, bytes.
    pub memory: Option<u64>,
    /// Peak memory in use while the batch ran (device pool or host RSS), bytes.
    pub memory_peak: Option<u64>,
    /// The program's own throughput samples, when it prints them; else
    /// throughput is the batch over the median latency.
    pub throughput: Option<Vec<f64>>,
}

impl BatchPoint {
    /// Samples per second: the median of the printed throughput, else the
    /// batch at the median latency.
    pub fn throughput(&self) -> f64 {
        match &self.throughput {
            Some(t) => median(t).unwrap_or(0.0),
            None => median(&self.latency).map_or(0.0, |m| self.batch as f64 / m),
        }
    }

    /// Throughput samples: the printed ones, else the batch over each latency.
    fn throughput_samples(&self) -> Vec<f64> {
        match &self.throughput {
            Some(t) => t.clone(),
            None => self.latency.iter().map(|l| self.batch as f64 / l).collect(),
        }
    }

    pub fn p(&self, q: f64) -> f64 {
        quantile(&self.latency, q).unwrap_or(f64::NAN)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    /// Index into the points of the highest median throughput.
    pub best: usize,
    /// Largest batch whose p99 latency is within `latency_slo` (0: none is);
    /// `None` without an SLO.
    pub max_batch_under_slo: Option<usize>,
    /// throughput(b) / ((b / b0) × throughput(b0)), b0 the smallest batch.
    pub efficiency: Vec<f64>,
}

impl Derived {
    /// `points` is non-empty and ascending in batch.
    pub fn from_points(points: &[BatchPoint], spec: &SweepRules) -> Derived {
        let thr: Vec<f64> = points.iter().map(BatchPoint::throughput).collect();
        let best = thr
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let max_batch_under_slo = spec.latency_slo.map(|slo| {
            points
                .iter()
                .filter(|p| p.p(0.99) <= slo.as_secs_f64())
                .map(|p| p.batch)
                .max()
                .unwrap_or(0)
        });
        let (b0, t0) = (points[0].batch as f64, thr[0]);
        let efficiency = points
            .iter()
            .zip(&thr)
            .map(|(p, t)| t / ((p.batch as f64 / b0) * t0))
            .collect();
        Derived {
            best,
            max_batch_under_slo,
            efficiency,
        }
    }

    /// Appends the derived metrics. Single values computed from noisy
    /// samples (percentiles, efficiency, the SLO batch, host memory) are
    /// reported with direction `Neither`: never gated on change, since one
    /// number has no spread to test (the `latency`/`throughput` samples carry
    /// that signal), but absolute bounds (`max`, `min`) and a rule's
    /// `direction` still apply. Device memory on CUDA is steady and gated.
    pub fn emit(
        &self,
        m: &mut Vec<MetricSeries>,
        points: &[BatchPoint],
        spec: &SweepRules,
        on_cuda: bool,
    ) {
        let single = MetricSeries::single;
        let mem_dir = if on_cuda {
            Direction::LowerIsBetter
        } else {
            Direction::Neither
        };
        for (p, eff) in points.iter().zip(&self.efficiency) {
            let k = |n: &str| MetricKey::new(n).with("batch", p.batch);
            for (name, q) in [
                ("latency_p50", 0.5),
                ("latency_p90", 0.9),
                ("latency_p99", 0.99),
            ] {
                m.push(single(k(name), Unit::Seconds, Direction::Neither, p.p(q)));
            }
            m.push(single(
                k("scaling_efficiency"),
                Unit::Ratio,
                Direction::Neither,
                *eff,
            ));
            if let Some(bytes) = p.memory {
                m.push(single(k("memory"), Unit::Bytes, mem_dir, bytes as f64));
            }
            if let Some(bytes) = p.memory_peak {
                m.push(single(k("memory_peak"), Unit::Bytes, mem_dir, bytes as f64));
            }
        }
        let best = &points[self.best];
        m.push(single(
            MetricKey::new("best_batch"),
            Unit::Count,
            Direction::Neither,
            best.batch as f64,
        ));
        // The best batch's throughput samples again, under a stable name, so
        // `metric."throughput{batch=best}"` gates the peak whichever batch it is.
        let mut tb = MetricSeries::new(
            MetricKey::new("throughput").with("batch", "best"),
            Unit::Rate("samples".into()),
            Direction::HigherIsBetter,
            crate::metric::default_estimator(
                &Unit::Rate("samples".into()),
                Direction::HigherIsBetter,
            ),
        );
        tb.samples = best.throughput_samples();
        m.push(tb);
        if let Some(b) = self.max_batch_under_slo {
            m.push(single(
                MetricKey::new("max_batch_under_slo"),
                Unit::Count,
                Direction::Neither,
                b as f64,
            ));
        }
        // The SLO itself, so reports can draw it next to the latencies.
        if let Some(slo) = spec.latency_slo {
            m.push(single(
                MetricKey::new("latency_slo"),
                Unit::Seconds,
                Direction::Neither,
                slo.as_secs_f64(),
            ));
        }
    }

    /// The "batching" check (throughput grows with batch size; only when the
    /// scenario lists `batching` in its checklist, since a model that is
    /// already compute-bound at batch 1 is no failure otherwise), on CUDA the
    /// "gpu-memory" check, and a memory budget check wherever one is set.
    pub fn checks(
        &self,
        points: &[BatchPoint],
        spec: &SweepRules,
        on_cuda: bool,
        batching: bool,
    ) -> Vec<Check> {
        let mut out = Vec::new();
        if batching {
            out.push(self.batching_check(points, spec));
        }
        out.extend(memory_check(points, spec.memory_budget, on_cuda));
        out
    }

    /// "throughput scales with batch size": the best batch's throughput at
    /// least `min_batch_speedup` times the smallest's.
    fn batching_check(&self, points: &[BatchPoint], spec: &SweepRules) -> Check {
        let first = &points[0];
        if points.len() < 2 {
            return Check::new(
                "throughput scales with batch size",
                false,
                format!(
                    "only one batch size ({}) was swept: give two or more in `batch_sizes`",
                    first.batch
                ),
                Some(ChecklistItem::Batching),
            );
        }
        let best = &points[self.best];
        let need = spec.min_batch_speedup.unwrap_or(DEFAULT_MIN_BATCH_SPEEDUP);
        let per_s = |t: f64| Unit::Rate("samples".into()).format(t);
        let ratio = best.throughput() / first.throughput();
        let passed = ratio >= need && best.batch > first.batch;
        let evidence = if best.batch == first.batch {
            let last = points.last().expect("two or more points");
            format!(
                "no larger batch was faster per sample than batch {}: throughput {} at batch {}, {} at batch {} ({}x, needs >= {}x)",
                first.batch,
                per_s(first.throughput()),
                first.batch,
                per_s(last.throughput()),
                last.batch,
                sig3(last.throughput() / first.throughput()),
                sig3(need),
            )
        } else {
            // A ratio just short of the need reads as a pass at 3 digits.
            let shown = if !passed && sig3(ratio) == sig3(need) {
                format!("{ratio:.4}")
            } else {
                sig3(ratio)
            };
            format!(
                "throughput {} at batch {} -> {} at batch {} ({}x, needs >= {}x); scaling efficiency at batch {}: {}",
                per_s(first.throughput()),
                first.batch,
                per_s(best.throughput()),
                best.batch,
                shown,
                sig3(need),
                best.batch,
                sig3(self.efficiency[self.best]),
            )
        };
        Check::new(
            "throughput scales with batch size",
            passed,
            evidence,
            Some(ChecklistItem::Batching),
        )
    }
}

/// On CUDA, "device memory per batch measured and within budget"; on the
/// host, "host memory growth per batch within budget" when a budget is set.
fn memory_check(points: &[BatchPoint], budget: Option<u64>, on_cuda: bool) -> Option<Check> {
    let mem_of = |p: &BatchPoint| if on_cuda { p.memory_peak } else { p.memory };
    let listed: Vec<String> = points
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p.batch,
                mem_of(p).map_or("?".into(), |b| format_bytes(b as f64))
            )
        })
        .collect();
    let all_known = points.iter().all(|p| mem_of(p).is_some());
    let over: Vec<usize> = points
        .iter()
        .filter(|p| matches!((mem_of(p), budget), (Some(m), Some(b)) if m > b))
        .map(|p| p.batch)
        .collect();
    let budget_txt = budget.map_or(String::new(), |b| {
        format!("; budget {}", format_bytes(b as f64))
    });
    if on_cuda {
        let passed = all_known && over.is_empty();
        let why = if !all_known {
            "; the driver did not report memory for every batch".to_string()
        } else if !over.is_empty() {
            format!("; over budget at batch {over:?}")
        } else {
            String::new()
        };
        Some(Check::new(
            "device memory per batch measured and within budget",
            passed,
            format!(
                "peak device memory by batch: {}{budget_txt}{why}",
                listed.join(", ")
            ),
            Some(ChecklistItem::GpuMemory),
        ))
    } else {
        budget.is_some().then(|| {
            Check::new(
                "host memory growth per batch within budget",
                all_known && over.is_empty(),
                format!("RSS growth by batch: {}{budget_txt}", listed.join(", ")),
                None,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(slo_ms: Option<u64>) -> SweepRules {
        SweepRules {
            latency_slo: slo_ms.map(Duration::from_millis),
            ..SweepRules::default()
        }
    }

    fn pt(batch: usize, ms: f64) -> BatchPoint {
        BatchPoint {
            batch,
            latency: vec![ms / 1e3; 5],
            memory: Some(1024 * batch as u64),
            memory_peak: Some(4096 * batch as u64),
            throughput: None,
        }
    }

    #[test]
    fn best_batch_slo_and_efficiency() {
        // 1 → 1 ms (1000/s), 4 → 2 ms (2000/s), 16 → 16 ms (1000/s)
        let pts = [pt(1, 1.0), pt(4, 2.0), pt(16, 16.0)];
        let d = Derived::from_points(&pts, &spec(Some(5)));
        assert_eq!(d.best, 1);
        assert_eq!(d.max_batch_under_slo, Some(4));
        assert!((d.efficiency[1] - 0.5).abs() < 1e-9);
        assert!((d.efficiency[2] - 1.0 / 16.0).abs() < 1e-9);
        let checks = d.checks(&pts, &spec(None), false, true);
        assert_eq!(checks.len(), 1);
        assert!(checks[0].passed, "{}", checks[0].evidence);
        assert_eq!(checks[0].item, Some(ChecklistItem::Batching));
        assert!(
            checks[0].evidence.contains("(2.00x, needs >= 1.50x)"),
            "{}",
            checks[0].evidence
        );
    }

    #[test]
    fn flat_throughput_fails_batching_and_no_batch_meets_a_tight_slo() {
        let pts = [pt(1, 1.0), pt(8, 8.0)];
        let d = Derived::from_points(&pts, &spec(Some(0)));
        assert_eq!(d.max_batch_under_slo, Some(0));
        let c = &d.checks(&pts, &spec(None), false, true)[0];
        assert!(!c.passed, "{}", c.evidence);
    }

    /// Batch 1 fastest per sample: said so, against the largest batch,
    /// not "batch 1 -> batch 1"; a ratio just short of the need is not
    /// shown rounded up to it.
    #[test]
    fn batching_evidence_says_what_was_compared() {
        let pts = [pt(1, 1.0), pt(8, 9.0)];
        let d = Derived::from_points(&pts, &spec(None));
        let c = &d.checks(&pts, &spec(None), false, true)[0];
        assert!(!c.passed);
        assert!(
            c.evidence
                .starts_with("no larger batch was faster per sample than batch 1: ")
                && c.evidence.contains("at batch 8 (0.889x"),
            "{}",
            c.evidence
        );
        let pts = [pt(1, 1.0), pt(4, 4.0 / 1.4985)];
        let d = Derived::from_points(&pts, &spec(None));
        let c = &d.checks(&pts, &spec(None), false, true)[0];
        assert!(!c.passed);
        assert!(
            c.evidence.contains("(1.4985x, needs >= 1.50x)"),
            "{}",
            c.evidence
        );
    }

    #[test]
    fn emits_every_derived_metric() {
        let pts = [pt(1, 1.0), pt(4, 2.0)];
        let s = spec(Some(5));
        let d = Derived::from_points(&pts, &s);
        let mut m = Vec::new();
        d.emit(&mut m, &pts, &s, false);
        let names: Vec<String> = m.iter().map(|s| s.key.to_string()).collect();
        for want in [
            "latency_p99{batch=4}",
            "scaling_efficiency{batch=4}",
            "memory{batch=1}",
            "memory_peak{batch=4}",
            "best_batch",
            "throughput{batch=best}",
            "max_batch_under_slo",
            "latency_slo",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn gpu_memory_check_on_cuda_respects_budget() {
        let pts = [pt(1, 1.0), pt(4, 2.0)];
        let mut s = spec(None);
        s.memory_budget = Some(8192);
        let d = Derived::from_points(&pts, &s);
        let c = d.checks(&pts, &s, true, false);
        let gpu = c
            .iter()
            .find(|c| c.item == Some(ChecklistItem::GpuMemory))
            .unwrap();
        assert!(
            !gpu.passed && gpu.evidence.contains("over budget at batch [4]"),
            "{}",
            gpu.evidence
        );
    }
}
