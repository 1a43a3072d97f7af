//! Pure statistics for the gate: estimators, confidence intervals, tests.
//! A leaf: imports nothing else from the crate and does no I/O.
//!
//! - [`quantile`], [`reduce`]: the estimators (type-7 quantiles, mean).
//! - [`bootstrap`]: seeded bootstrap CI of the ratio of two estimators.
//! - [`mwu`]: Mann-Whitney U with tie and continuity correction.
//! - [`paired`]: Student t interval and sign-flip test of paired log-ratios.
//! - [`robust`]: MAD, Tukey fences (outliers are flagged, never removed).
//! - [`reservoir`]: bounded, seeded reservoir sampling for baselines.
//! - [`trend`]: the least-squares growth of a series and its interval.
//! - [`rng`]: the seeded PRNG all of the above use.

pub mod bootstrap;
pub mod dist;
pub mod mwu;
pub mod paired;
#[cfg(test)]
mod proptests;
pub mod reservoir;
pub mod rng;
pub mod robust;
pub mod spells;
pub mod trend;

pub use bootstrap::{
    BootstrapConfig, RatioCi, bootstrap_quantile_ratio_ci, bootstrap_ratio_ci, z_for,
};
pub use mwu::{MannWhitney, mann_whitney_u};
pub use paired::{PairedCi, paired_ratio_ci, sign_flip_p, t_quantile};
pub use reservoir::{Reservoir, reservoir_sample};
pub use rng::Rng;
pub use robust::{Fences, OutlierCounts, count_outliers, mad, mad_sigma, tukey_fences};
pub use spells::{more_often_slow_p, slow_runs};
pub use trend::{Trend, linear_trend};

/// How a sample set reduces to one number, in the leaf's own terms (the
/// crate's `Estimator` maps onto it: median = quantile 0.5, min = 0, max = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduce {
    /// Type-7 quantile, `0 ≤ q ≤ 1`.
    Quantile(f64),
    Mean,
}

/// The estimate of the finite samples; `None` when there are none.
pub fn reduce(samples: &[f64], how: Reduce) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    Some(reduce_in_place(&mut v, how))
}

/// Like [`reduce`] on finite, non-empty data it may reorder (the bootstrap's
/// scratch buffer): O(n) by selection instead of a sort.
pub fn reduce_in_place(v: &mut [f64], how: Reduce) -> f64 {
    match how {
        Reduce::Quantile(q) => select_quantile(v, q),
        Reduce::Mean => v.iter().sum::<f64>() / v.len() as f64,
    }
}

/// The type-7 `q`-quantile of non-empty, NaN-free data, by selection; the
/// slice is reordered. Agrees with [`quantile`].
pub fn select_quantile(v: &mut [f64], q: f64) -> f64 {
    debug_assert!(!v.is_empty());
    let q = q.clamp(0.0, 1.0);
    let h = (v.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    let (_, lo_v, rest) = v.select_nth_unstable_by(lo, |a, b| a.total_cmp(b));
    let lo_v = *lo_v;
    if frac == 0.0 || rest.is_empty() {
        return lo_v;
    }
    let hi_v = rest.iter().copied().fold(f64::INFINITY, f64::min);
    lo_v + frac * (hi_v - lo_v)
}

/// The `q`-quantile (0 ≤ q ≤ 1) by linear interpolation between order
/// statistics (type 7, as R and numpy). `None` for an empty slice.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(quantile_sorted(&v, q))
}

/// Like [`quantile`] on data already sorted ascending and free of NaN.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let q = q.clamp(0.0, 1.0);
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

pub fn median(samples: &[f64]) -> Option<f64> {
    quantile(samples, 0.5)
}

pub fn mean(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        None
    } else {
        Some(samples.iter().sum::<f64>() / samples.len() as f64)
    }
}

/// Distribution-free confidence interval for the `q`-quantile from order
/// statistics (normal approximation to the binomial), at two-sided level
/// `1 - alpha` given by `z` (1.96 for 95%). Returns `(lo, hi)`; with too few
/// samples the interval is the whole sample range.
pub fn quantile_ci(samples: &[f64], q: f64, z: f64) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len() as f64;
    let centre = n * q;
    let spread = z * (n * q * (1.0 - q)).sqrt();
    let lo = ((centre - spread).floor() as isize - 1).clamp(0, v.len() as isize - 1) as usize;
    let hi = ((centre + spread).ceil() as isize).clamp(0, v.len() as isize - 1) as usize;
    Some((v[lo], v[hi]))
}

/// Half the width of [`quantile_ci`] relative to the quantile itself: the
/// figure nvbench-style adaptive stopping compares with `target_rel_ci`.
pub fn quantile_rel_ci_halfwidth(samples: &[f64], q: f64) -> Option<f64> {
    let est = quantile(samples, q)?;
    let (lo, hi) = quantile_ci(samples, q, 1.96)?;
    if est == 0.0 {
        return Some(if hi == lo { 0.0 } else { f64::INFINITY });
    }
    Some(((hi - lo) / 2.0 / est).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(median(&v), Some(3.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(5.0));
        assert_eq!(quantile(&v, 0.25), Some(2.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), Some(1.5));
    }

    #[test]
    fn ci_contains_estimate_and_narrows() {
        let small: Vec<f64> = (0..20).map(|i| 100.0 + (i % 7) as f64).collect();
        let big: Vec<f64> = (0..2000).map(|i| 100.0 + (i % 7) as f64).collect();
        let (lo, hi) = quantile_ci(&small, 0.5, 1.96).unwrap();
        let m = median(&small).unwrap();
        assert!(lo <= m && m <= hi);
        assert!(
            quantile_rel_ci_halfwidth(&big, 0.5).unwrap()
                <= quantile_rel_ci_halfwidth(&small, 0.5).unwrap()
        );
    }
}
