//! Seeded bootstrap confidence interval for the ratio of two estimators,
//! `est(current) / est(baseline)`, optionally widened by a between-run term.
//!
//! The interval is the percentile bootstrap: resample both sides
//! independently, form `r* / r0`, take its percentiles, and scale the point
//! ratio by them. A log-normal factor `exp(N(0, extra_log_sd²))` multiplied
//! into every resample adds run-to-run variance that one run's samples
//! cannot show (see docs/gate-design.md).

use super::dist::normal_quantile;
use super::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapConfig {
    pub resamples: usize,
    /// Two-sided confidence level, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
    /// Standard deviation, in log space, of extra multiplicative noise on the
    /// ratio (the between-run term). 0 for a plain bootstrap.
    pub extra_log_sd: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            resamples: 2000,
            confidence: 0.95,
            seed: 0,
            extra_log_sd: 0.0,
        }
    }
}

/// A ratio with its confidence interval; `lo ≤ point ≤ hi` always holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioCi {
    pub point: f64,
    pub lo: f64,
    pub hi: f64,
}

impl RatioCi {
    /// The same relative interval around another point estimate.
    pub fn recentred(&self, point: f64) -> RatioCi {
        let f = point / self.point;
        RatioCi {
            point,
            lo: self.lo * f,
            hi: self.hi * f,
        }
    }

    /// Half the interval's width relative to its point.
    pub fn rel_halfwidth(&self) -> f64 {
        (self.hi - self.lo) / 2.0 / self.point
    }
}

/// `None` when a side has no finite samples, or the point ratio is not a
/// positive finite number (a zero or negative estimate has no meaningful
/// ratio). `est` receives a scratch buffer it may reorder.
pub fn bootstrap_ratio_ci(
    current: &[f64],
    baseline: &[f64],
    est: impl Fn(&mut [f64]) -> f64,
    cfg: &BootstrapConfig,
) -> Option<RatioCi> {
    let a: Vec<f64> = current.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = baseline.iter().copied().filter(|x| x.is_finite()).collect();
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut sa = a.clone();
    let mut sb = b.clone();
    let ea = est(&mut sa);
    let eb = est(&mut sb);
    let r0 = ea / eb;
    if !(r0.is_finite() && r0 > 0.0) {
        return None;
    }
    let mut rng = Rng::new(cfg.seed);
    let mut factors = Vec::with_capacity(cfg.resamples.max(1));
    for _ in 0..cfg.resamples {
        for x in sa.iter_mut() {
            *x = a[rng.below(a.len() as u64) as usize];
        }
        for x in sb.iter_mut() {
            *x = b[rng.below(b.len() as u64) as usize];
        }
        let mut r = est(&mut sa) / est(&mut sb) / r0;
        if cfg.extra_log_sd > 0.0 {
            r *= (cfg.extra_log_sd * rng.normal()).exp();
        }
        // A resample whose baseline estimate is 0 gives inf: it still counts,
        // as an extreme, so the interval widens instead of silently narrowing.
        if r.is_nan() {
            r = f64::INFINITY;
        }
        factors.push(r);
    }
    if factors.is_empty() {
        return Some(RatioCi {
            point: r0,
            lo: r0,
            hi: r0,
        });
    }
    factors.sort_by(|x, y| x.total_cmp(y));
    let alpha = (1.0 - cfg.confidence.clamp(0.0, 1.0)) / 2.0;
    let lo_f = super::quantile_sorted(&factors, alpha);
    let hi_f = super::quantile_sorted(&factors, 1.0 - alpha);
    // Percentile interval (transformation-respecting, as criterion uses),
    // widened if needed so it always covers the point estimate.
    let lo = (r0 * lo_f).min(r0);
    let hi = (r0 * hi_f).max(r0);
    Some(RatioCi { point: r0, lo, hi })
}

/// The two-sided normal critical value for a confidence level (1.96 at 0.95).
pub fn z_for(confidence: f64) -> f64 {
    normal_quantile(0.5 + confidence.clamp(0.0, 0.999_999) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::select_quantile;

    #[test]
    fn shifted_samples_give_shifted_interval() {
        let mut rng = Rng::new(7);
        let base: Vec<f64> = (0..500).map(|_| 100.0 + rng.normal()).collect();
        let cur: Vec<f64> = base.iter().map(|x| x * 1.10).collect();
        let ci = bootstrap_ratio_ci(
            &cur,
            &base,
            |s| select_quantile(s, 0.5),
            &BootstrapConfig::default(),
        )
        .unwrap();
        assert!((ci.point - 1.10).abs() < 1e-9);
        assert!(ci.lo > 1.09 && ci.hi < 1.11, "{ci:?}");
        let wide = bootstrap_ratio_ci(
            &cur,
            &base,
            |s| select_quantile(s, 0.5),
            &BootstrapConfig {
                extra_log_sd: 0.05,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(wide.lo < 1.0 && wide.hi > 1.2, "{wide:?}");
    }
}
