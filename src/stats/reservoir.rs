//! Bounded, seeded reservoir sampling (Vitter's algorithm R): a baseline
//! keeps at most `cap` samples of a run, each sample equally likely to be
//! kept, and the same input and seed always keep the same samples.

use super::rng::Rng;

#[derive(Clone, Debug)]
pub struct Reservoir {
    cap: usize,
    seen: u64,
    items: Vec<f64>,
    rng: Rng,
}

impl Reservoir {
    pub fn new(cap: usize, seed: u64) -> Self {
        Reservoir {
            cap,
            seen: 0,
            items: Vec::with_capacity(cap.min(4096)),
            rng: Rng::new(seed),
        }
    }

    pub fn push(&mut self, x: f64) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(x);
        } else if self.cap > 0 {
            let j = self.rng.below(self.seen);
            if (j as usize) < self.cap {
                self.items[j as usize] = x;
            }
        }
    }

    /// How many values were offered.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn items(&self) -> &[f64] {
        &self.items
    }

    pub fn into_items(self) -> Vec<f64> {
        self.items
    }
}

/// At most `cap` of `samples`, chosen uniformly; all of them (in order) when
/// there are no more than `cap`.
pub fn reservoir_sample(samples: &[f64], cap: usize, seed: u64) -> Vec<f64> {
    if samples.len() <= cap {
        return samples.to_vec();
    }
    let mut r = Reservoir::new(cap, seed);
    for &x in samples {
        r.push(x);
    }
    r.into_items()
}
