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
    Some(interval(r0, factors, cfg.confidence))
}

/// [`bootstrap_ratio_ci`] for the type-7 `q`-quantile, exact and fast: a
/// resample's order statistics are drawn directly (the k-th smallest of n
/// uniforms is Beta(k, n-k+1); the next one follows by a uniform spacing),
/// so a resample costs O(1) after one sort instead of O(n). Same
/// distribution as resampling, so no need to thin long runs.
pub fn bootstrap_quantile_ratio_ci(
    current: &[f64],
    baseline: &[f64],
    q: f64,
    cfg: &BootstrapConfig,
) -> Option<RatioCi> {
    let a = super::robust::sorted_finite(current);
    let b = super::robust::sorted_finite(baseline);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let r0 = super::quantile_sorted(&a, q) / super::quantile_sorted(&b, q);
    if !(r0.is_finite() && r0 > 0.0) {
        return None;
    }
    let mut rng = Rng::new(cfg.seed);
    let mut factors = Vec::with_capacity(cfg.resamples);
    for _ in 0..cfg.resamples {
        let mut r = resampled_quantile(&a, q, &mut rng) / resampled_quantile(&b, q, &mut rng) / r0;
        if cfg.extra_log_sd > 0.0 {
            r *= (cfg.extra_log_sd * rng.normal()).exp();
        }
        if r.is_nan() {
            r = f64::INFINITY;
        }
        factors.push(r);
    }
    Some(interval(r0, factors, cfg.confidence))
}

/// The type-7 `q`-quantile of one bootstrap resample of sorted data.
pub fn resampled_quantile(sorted: &[f64], q: f64, rng: &mut Rng) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    // U_(lo+1), the (lo+1)-th smallest of n uniforms.
    let u = beta(rng, (lo + 1) as f64, (n - lo) as f64);
    let at = |u: f64| sorted[((u * n as f64) as usize).min(n - 1)];
    let x_lo = at(u);
    if frac == 0.0 || lo + 1 >= n {
        return x_lo;
    }
    // The next order statistic: the smallest of the n-lo-1 uniforms above u.
    let m = (n - lo - 1) as f64;
    let u2 = u + (1.0 - u) * (1.0 - (1.0 - rng.next_f64()).powf(1.0 / m));
    x_lo + frac * (at(u2) - x_lo)
}

fn beta(rng: &mut Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

/// Gamma(shape `a` ≥ 1, scale 1) by Marsaglia and Tsang's method.
fn gamma(rng: &mut Rng, a: f64) -> f64 {
    debug_assert!(a >= 1.0);
    let d = a - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = rng.next_f64();
        if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

fn interval(r0: f64, mut factors: Vec<f64>, confidence: f64) -> RatioCi {
    if factors.is_empty() {
        return RatioCi {
            point: r0,
            lo: r0,
            hi: r0,
        };
    }
    factors.sort_by(|x, y| x.total_cmp(y));
    let alpha = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    let lo_f = super::quantile_sorted(&factors, alpha);
    let hi_f = super::quantile_sorted(&factors, 1.0 - alpha);
    // Percentile interval (transformation-respecting, as criterion uses),
    // widened if needed so it always covers the point estimate.
    RatioCi {
        point: r0,
        lo: (r0 * lo_f).min(r0),
        hi: (r0 * hi_f).max(r0),
    }
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
    fn fast_quantile_resampling_matches_plain_resampling() {
        let mut rng = Rng::new(3);
        let mut data: Vec<f64> = (0..300).map(|_| 1.0 + 0.3 * rng.exp1()).collect();
        data.sort_by(|a, b| a.total_cmp(b));
        for q in [0.0, 0.05, 0.1, 0.5, 0.93, 1.0] {
            let draws = 20_000;
            let fast: Vec<f64> = (0..draws)
                .map(|_| resampled_quantile(&data, q, &mut rng))
                .collect();
            let mut buf = data.clone();
            let slow: Vec<f64> = (0..draws)
                .map(|_| {
                    for x in buf.iter_mut() {
                        *x = data[rng.below(data.len() as u64) as usize];
                    }
                    select_quantile(&mut buf, q)
                })
                .collect();
            let moments = |v: &[f64]| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                (m, sd)
            };
            let (mf, sf) = moments(&fast);
            let (ms, ss) = moments(&slow);
            assert!(
                (mf - ms).abs() < 0.002 + 0.05 * ss,
                "q={q}: mean {mf} vs {ms}"
            );
            assert!(
                (sf - ss).abs() <= 0.06 * ss + 1e-12,
                "q={q}: sd {sf} vs {ss}"
            );
        }
    }

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
