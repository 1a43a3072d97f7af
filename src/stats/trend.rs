//! A straight line through a series in the order it was printed: the growth
//! per iteration of a metric within one run, with its confidence interval
//! (the leak check of issue #20).

use super::paired::t_quantile;

/// Least-squares growth per step of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// Growth per step (the slope).
    pub slope: f64,
    /// The two-sided interval of the slope at the confidence asked for.
    pub low: f64,
    pub high: f64,
    /// Points fitted.
    pub n: usize,
}

/// The ordinary least-squares line through `(i, values[i])`, with the
/// Student t interval of its slope (`n − 2` degrees of freedom). `None`
/// below three points or with a value that is not finite.
pub fn linear_trend(values: &[f64], confidence: f64) -> Option<Trend> {
    let n = values.len();
    if n < 3 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let nf = n as f64;
    // Relative to the first value: large levels (bytes of a process) with
    // small steps keep their precision, and an exact line fits exactly.
    let y0 = values[0];
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = values.iter().map(|y| y - y0).sum::<f64>() / nf;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxx += dx * dx;
        sxy += dx * (y - y0 - mean_y);
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let sse: f64 = values
        .iter()
        .enumerate()
        .map(|(i, y)| (y - y0 - intercept - slope * i as f64).powi(2))
        .sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    let t = t_quantile(0.5 + confidence / 2.0, n - 2);
    Some(Trend {
        slope,
        low: slope - t * se,
        high: slope + t * se,
        n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Rng;

    #[test]
    fn an_exact_line_has_a_zero_width_interval() {
        let v: Vec<f64> = (0..30).map(|i| 100.0 + 2.0 * i as f64).collect();
        let t = linear_trend(&v, 0.95).unwrap();
        assert!((t.slope - 2.0).abs() < 1e-12);
        assert!((t.high - t.low).abs() < 1e-9, "{t:?}");
        assert_eq!(t.n, 30);
    }

    #[test]
    fn noise_around_a_flat_level_covers_zero() {
        let mut rng = Rng::new(7);
        let v: Vec<f64> = (0..50).map(|_| 1000.0 + rng.next_f64() - 0.5).collect();
        let t = linear_trend(&v, 0.95).unwrap();
        assert!(t.low < 0.0 && t.high > 0.0, "{t:?}");
    }

    #[test]
    fn too_few_points_or_a_nan_fit_nothing() {
        assert!(linear_trend(&[1.0, 2.0], 0.95).is_none());
        assert!(linear_trend(&[1.0, f64::NAN, 3.0], 0.95).is_none());
    }
}
