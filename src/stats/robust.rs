//! Robust spread and outlier flags.
//!
//! Outlier policy: samples outside Tukey's fences are *counted and reported*,
//! never removed. The gate's time estimator is a low quantile, which high
//! outliers (preemption, page faults, a neighbour's job) cannot move, so
//! removing them would only hide how noisy the machine was. Low outliers on
//! a time metric are suspicious (work skipped? a cached result?) and are
//! reported for the same reason.

use super::quantile_sorted;

/// The median absolute deviation (unscaled). Multiply by 1.4826 for a
/// normal-consistent estimate of sigma ([`mad_sigma`]).
pub fn mad(samples: &[f64]) -> Option<f64> {
    let v = sorted_finite(samples);
    if v.is_empty() {
        return None;
    }
    let med = quantile_sorted(&v, 0.5);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(|a, b| a.total_cmp(b));
    Some(quantile_sorted(&dev, 0.5))
}

pub fn mad_sigma(samples: &[f64]) -> Option<f64> {
    mad(samples).map(|m| 1.4826 * m)
}

/// Tukey's fences: `[q1 - k·IQR, q3 + k·IQR]`; `k = 1.5` is the usual "mild"
/// fence, `3.0` the "severe" one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fences {
    pub lo: f64,
    pub hi: f64,
}

pub fn tukey_fences(samples: &[f64], k: f64) -> Option<Fences> {
    let v = sorted_finite(samples);
    if v.is_empty() {
        return None;
    }
    let q1 = quantile_sorted(&v, 0.25);
    let q3 = quantile_sorted(&v, 0.75);
    let iqr = q3 - q1;
    Some(Fences {
        lo: q1 - k * iqr,
        hi: q3 + k * iqr,
    })
}

/// How many samples fall below / above the fences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutlierCounts {
    pub low: usize,
    pub high: usize,
    pub total: usize,
}

pub fn count_outliers(samples: &[f64], k: f64) -> OutlierCounts {
    let Some(f) = tukey_fences(samples, k) else {
        return OutlierCounts::default();
    };
    let mut c = OutlierCounts {
        total: samples.len(),
        ..Default::default()
    };
    for &x in samples {
        if x < f.lo {
            c.low += 1;
        } else if x > f.hi {
            c.high += 1;
        }
    }
    c
}

pub(crate) fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}
