//! Property tests for the statistics leaf.

use proptest::prelude::*;

use super::*;

fn samples() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.001f64..1000.0, 1..200)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn quantiles_monotone_and_bounded(v in samples(), q1 in 0.0f64..=1.0, q2 in 0.0f64..=1.0) {
        let (lo_q, hi_q) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
        let a = quantile(&v, lo_q).unwrap();
        let b = quantile(&v, hi_q).unwrap();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(a <= b);
        prop_assert!(min <= a && b <= max);
    }

    #[test]
    fn selection_agrees_with_sorting(v in samples(), q in 0.0f64..=1.0) {
        let mut w = v.clone();
        let s = select_quantile(&mut w, q);
        let t = quantile(&v, q).unwrap();
        prop_assert!((s - t).abs() <= 1e-12 * t.abs().max(1.0));
    }

    #[test]
    fn scaling_scales_estimates(v in samples(), c in 0.01f64..100.0, q in 0.0f64..=1.0) {
        let scaled: Vec<f64> = v.iter().map(|x| x * c).collect();
        for how in [Reduce::Quantile(q), Reduce::Mean] {
            let a = reduce(&v, how).unwrap() * c;
            let b = reduce(&scaled, how).unwrap();
            prop_assert!((a - b).abs() <= 1e-9 * a.abs().max(1e-300));
        }
        let m1 = mad(&v).unwrap() * c;
        let m2 = mad(&scaled).unwrap();
        prop_assert!((m1 - m2).abs() <= 1e-9 * m1.abs().max(1e-12));
    }

    #[test]
    fn bootstrap_ci_contains_point(a in samples(), b in samples(), seed: u64, q in 0.05f64..0.95) {
        let cfg = BootstrapConfig { resamples: 200, seed, ..Default::default() };
        let ci = bootstrap_ratio_ci(&a, &b, |s| select_quantile(s, q), &cfg).unwrap();
        prop_assert!(ci.lo <= ci.point && ci.point <= ci.hi, "{:?}", ci);
        let want = quantile(&a, q).unwrap() / quantile(&b, q).unwrap();
        prop_assert!((ci.point - want).abs() <= 1e-9 * want);
    }

    #[test]
    fn fast_quantile_ci_contains_point_and_one_for_identical(a in samples(), seed: u64, q in 0.0f64..=1.0) {
        let cfg = BootstrapConfig { resamples: 200, seed, ..Default::default() };
        let ci = bootstrap_quantile_ratio_ci(&a, &a, q, &cfg).unwrap();
        prop_assert!(ci.lo <= 1.0 && 1.0 <= ci.hi, "{:?}", ci);
        prop_assert!((ci.point - 1.0).abs() < 1e-12);
    }

    #[test]
    fn identical_samples_ci_contains_one(a in samples(), seed: u64, q in 0.05f64..0.95) {
        let cfg = BootstrapConfig { resamples: 200, seed, ..Default::default() };
        let ci = bootstrap_ratio_ci(&a, &a, |s| select_quantile(s, q), &cfg).unwrap();
        prop_assert!(ci.lo <= 1.0 && 1.0 <= ci.hi, "{:?}", ci);
    }

    #[test]
    fn mann_whitney_symmetric(a in samples(), b in samples()) {
        let ab = mann_whitney_u(&a, &b).unwrap();
        let ba = mann_whitney_u(&b, &a).unwrap();
        prop_assert!((ab.p - ba.p).abs() < 1e-12);
        prop_assert!((ab.z + ba.z).abs() < 1e-9);
        prop_assert!((ab.u + ba.u - (a.len() * b.len()) as f64).abs() < 1e-6);
        prop_assert!((0.0..=1.0).contains(&ab.p));
    }

    #[test]
    fn reservoir_bounded_and_keeps_all_under_bound(v in samples(), cap in 0usize..300, seed: u64) {
        let r = reservoir_sample(&v, cap, seed);
        prop_assert!(r.len() <= cap);
        if v.len() <= cap {
            prop_assert_eq!(&r, &v);
        } else {
            prop_assert_eq!(r.len(), cap);
            // Every kept value came from the input, and the same seed keeps the same ones.
            prop_assert!(r.iter().all(|x| v.contains(x)));
            prop_assert_eq!(r, reservoir_sample(&v, cap, seed));
        }
    }
}

#[test]
fn reservoir_is_roughly_uniform() {
    // Each of 1000 items should be kept with probability 100/1000.
    let items: Vec<f64> = (0..1000).map(|i| i as f64).collect();
    let mut kept = vec![0u32; 1000];
    for seed in 0..2000 {
        for x in reservoir_sample(&items, 100, seed) {
            kept[x as usize] += 1;
        }
    }
    let first: u32 = kept[..500].iter().sum();
    let second: u32 = kept[500..].iter().sum();
    let ratio = first as f64 / second as f64;
    assert!((0.95..1.05).contains(&ratio), "{ratio}");
}

#[test]
fn outliers_flagged_not_removed() {
    let mut v: Vec<f64> = (0..100).map(|i| 10.0 + (i % 10) as f64 * 0.01).collect();
    v.push(50.0);
    v.push(1.0);
    let c = count_outliers(&v, 1.5);
    assert_eq!((c.low, c.high, c.total), (1, 1, 102));
    assert!(mad(&v).unwrap() < 0.1);
}
