//! Mann-Whitney U (Wilcoxon rank-sum) with the normal approximation, tie
//! correction and continuity correction. Reported beside each verdict as a
//! second opinion on "did the distribution shift"; it does not decide the
//! verdict, because samples within one run are not independent and its
//! p-value therefore overstates certainty (see docs/gate-design.md).

use super::dist::normal_cdf;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// Pairs `(a_i, b_j)` with `a_i > b_j`, ties counting one half.
    pub u: f64,
    /// Standardised U (positive: `a` tends to be larger).
    pub z: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// `None` when either side has no finite samples.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| (x, true))
        .chain(b.iter().filter(|x| x.is_finite()).map(|&x| (x, false)))
        .collect();
    let na = all.iter().filter(|p| p.1).count() as f64;
    let nb = all.len() as f64 - na;
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let avg = (i + 1 + j) as f64 / 2.0;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        rank_sum_a += avg * all[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let mu = na * nb / 2.0;
    let nn = na + nb;
    let var = na * nb / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)).max(1.0));
    if var <= 0.0 {
        // Every value tied: no evidence of a shift.
        return Some(MannWhitney { u, z: 0.0, p: 1.0 });
    }
    let d = u - mu;
    let corrected = (d.abs() - 0.5).max(0.0);
    let z = corrected.copysign(d) / var.sqrt();
    let p = (2.0 * (1.0 - normal_cdf(z.abs()))).clamp(0.0, 1.0);
    Some(MannWhitney { u, z, p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        // By hand: mu = 12.5, sigma = sqrt(25·11/12), z = (12.5 - 0.5)/sigma,
        // p = 2(1 - Phi(z)) = 0.012186.
        let r = mann_whitney_u(&[1., 2., 3., 4., 5.], &[6., 7., 8., 9., 10.]).unwrap();
        assert_eq!(r.u, 0.0);
        assert!((r.p - 0.012186).abs() < 1e-5, "{r:?}");
        assert!(r.z < 0.0);
    }

    #[test]
    fn ties_handled() {
        let r = mann_whitney_u(&[1., 1., 1.], &[1., 1.]).unwrap();
        assert_eq!(r.p, 1.0);
        // By hand: U = 3, tie term 48, var = 16/12·(9 - 48/56), p = 0.172034.
        let r = mann_whitney_u(&[1., 2., 2., 3.], &[2., 3., 3., 4.]).unwrap();
        assert_eq!(r.u, 3.0);
        assert!((r.p - 0.172034).abs() < 1e-5, "{r:?}");
    }
}
