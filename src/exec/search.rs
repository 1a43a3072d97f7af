//! The search both out-of-memory searches share (`oom_stress` and a
//! `command` scenario's `find_max_batch`).

/// The largest `b` in 1..=max with `fits(b)`, assuming fits is monotone
/// (true up to some batch, false after): doubling, then bisection. 0 when
/// even 1 does not fit.
pub fn max_true<E>(max: usize, mut fits: impl FnMut(usize) -> Result<bool, E>) -> Result<usize, E> {
    if max == 0 || !fits(1)? {
        return Ok(0);
    }
    let (mut lo, mut hi) = (1usize, None::<usize>); // lo fits; hi does not
    while hi.is_none() {
        let next = (lo * 2).min(max);
        if next == lo {
            return Ok(lo);
        }
        if fits(next)? {
            lo = next;
        } else {
            hi = Some(next);
        }
    }
    let mut hi = hi.expect("set above");
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_finds_the_edge_with_few_probes() {
        for edge in [0usize, 1, 2, 3, 37, 64, 1000, 65536] {
            let mut n = 0;
            let got = max_true::<()>(65536, |b| {
                n += 1;
                Ok(b <= edge)
            })
            .unwrap();
            assert_eq!(got, edge.min(65536), "edge {edge}");
            assert!(n <= 34, "edge {edge}: {n} probes");
        }
    }
}
