//! Stacks as flame graphs read them: `perf script` output collapsed into
//! folded lines (`main;slow_part 49`) by inferno, and what changed between
//! two profiles, function by function, as a share of all samples.

use std::collections::BTreeMap;

use inferno::collapse::Collapse;

/// Folded stacks: each distinct stack and its sample count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Folded {
    pub stacks: BTreeMap<String, u64>,
}

/// One function's share of the samples in the base and the head.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub function: String,
    /// Share of samples whose stack holds it (inclusive), 0..=1.
    pub base: f64,
    pub head: f64,
}

impl Change {
    /// How much hotter it got, in points of share (head − base).
    pub fn delta(&self) -> f64 {
        self.head - self.base
    }
}

impl Folded {
    /// Collapses `perf script` output.
    pub fn from_perf_script(text: &str) -> Result<Folded, String> {
        let mut out = Vec::new();
        inferno::collapse::perf::Folder::default()
            .collapse(text.as_bytes(), &mut out)
            .map_err(|e| format!("cannot fold the perf script output: {e}"))?;
        Ok(Folded::parse(&String::from_utf8_lossy(&out)))
    }

    /// Reads folded lines (`a;b;c 12`); other lines are skipped.
    pub fn parse(text: &str) -> Folded {
        let mut stacks = BTreeMap::new();
        for line in text.lines() {
            let Some((stack, n)) = line.trim().rsplit_once(' ') else {
                continue;
            };
            if let Ok(n) = n.parse::<u64>() {
                *stacks.entry(stack.to_string()).or_default() += n;
            }
        }
        Folded { stacks }
    }

    /// The folded lines, as inferno and flamegraph.pl read them.
    pub fn text(&self) -> String {
        self.stacks
            .iter()
            .map(|(s, n)| format!("{s} {n}\n"))
            .collect()
    }

    pub fn samples(&self) -> u64 {
        self.stacks.values().sum()
    }

    /// Each function's inclusive share: the samples whose stack holds it
    /// (once per stack, however often it recurses) over all samples.
    pub fn shares(&self) -> BTreeMap<String, f64> {
        let total = self.samples().max(1) as f64;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (stack, n) in &self.stacks {
            let mut seen: Vec<&str> = stack.split(';').collect();
            seen.sort_unstable();
            seen.dedup();
            for f in seen {
                *counts.entry(f.to_string()).or_default() += n;
            }
        }
        counts
            .into_iter()
            .map(|(f, n)| (f, n as f64 / total))
            .collect()
    }
}

impl Folded {
    /// The `n` functions with the most self time (the leaf of a stack),
    /// hottest first, as changes from nothing (`base` 0, `head` the share).
    pub fn hottest(&self, n: usize) -> Vec<Change> {
        let total = self.samples().max(1) as f64;
        let mut own: BTreeMap<&str, u64> = BTreeMap::new();
        for (stack, k) in &self.stacks {
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            *own.entry(leaf).or_default() += k;
        }
        let mut all: Vec<Change> = own
            .into_iter()
            .map(|(f, k)| Change {
                function: f.to_string(),
                base: 0.0,
                head: k as f64 / total,
            })
            .collect();
        all.sort_by(|x, y| y.head.total_cmp(&x.head).then(x.function.cmp(&y.function)));
        all.truncate(n);
        all
    }

    /// Merges another recording of the same program into this one.
    pub fn add(&mut self, other: &Folded) {
        for (s, n) in &other.stacks {
            *self.stacks.entry(s.clone()).or_default() += n;
        }
    }
}

/// The hottest functions as lines: `slow_part  59.3% self`.
pub fn hot_lines(hot: &[Change]) -> Vec<String> {
    let width = hot
        .iter()
        .map(|c| c.function.len())
        .max()
        .unwrap_or(0)
        .min(60);
    hot.iter()
        .map(|c| format!("{:<width$}  {:5.1}% self", c.function, c.head * 100.0))
        .collect()
}

/// Changes smaller than this share (half a point) are noise: a few samples
/// in the scheduler or an interrupt.
pub const MIN_CHANGE: f64 = 0.005;

/// The `n` functions whose share changed most from `base` to `head` (by at
/// least [`MIN_CHANGE`]), listed hotter first, then cooler.
pub fn top_changes(base: &Folded, head: &Folded, n: usize) -> Vec<Change> {
    let (b, h) = (base.shares(), head.shares());
    let mut all: Vec<Change> = b
        .keys()
        .chain(h.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|f| Change {
            function: f.clone(),
            base: b.get(f).copied().unwrap_or(0.0),
            head: h.get(f).copied().unwrap_or(0.0),
        })
        .filter(|c| c.delta().abs() >= MIN_CHANGE)
        .collect();
    all.sort_by(|x, y| {
        y.delta()
            .abs()
            .total_cmp(&x.delta().abs())
            .then(x.function.cmp(&y.function))
    });
    all.truncate(n);
    all.sort_by(|x, y| {
        y.delta()
            .total_cmp(&x.delta())
            .then(x.function.cmp(&y.function))
    });
    all
}

/// The changes as lines a person reads on a phone:
/// `slow_part  50.0% → 70.0%  (+20.0 points)`.
pub fn change_lines(changes: &[Change]) -> Vec<String> {
    let width = changes
        .iter()
        .map(|c| c.function.len())
        .max()
        .unwrap_or(0)
        .min(60);
    changes
        .iter()
        .map(|c| {
            format!(
                "{:<width$}  {:5.1}% → {:5.1}%  ({:+.1} points)",
                c.function,
                c.base * 100.0,
                c.head * 100.0,
                c.delta() * 100.0
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = include_str!("../../tests/fixtures/profile/base.perf-script");
    const HEAD: &str = include_str!("../../tests/fixtures/profile/head.perf-script");

    /// Stored `perf script` output of tests/fixtures/profile/work.c (its
    /// earlier version, the two parts one after the other), `work 1`
    /// (base) and `work 2` (head, `slow_part` doing twice the work): the
    /// fold and the diff name `slow_part` first, whether or not perf events
    /// are allowed where the tests run.
    #[test]
    fn the_doubled_function_comes_first() {
        let base = Folded::from_perf_script(BASE).unwrap();
        let head = Folded::from_perf_script(HEAD).unwrap();
        assert!(base.samples() > 20 && head.samples() > base.samples());
        assert!(base.text().contains("main;slow_part"), "{}", base.text());
        let top = top_changes(&base, &head, 5);
        assert_eq!(top[0].function, "slow_part", "{top:?}");
        assert!(top[0].delta() > 0.1, "{top:?}");
        let cooler = top.iter().find(|c| c.function == "steady_part").unwrap();
        assert!(cooler.delta() < 0.0);
        let lines = change_lines(&top);
        assert!(lines[0].starts_with("slow_part"), "{lines:?}");
    }

    #[test]
    fn the_hottest_are_by_self_time() {
        let f = Folded::parse("main;a 3\nmain;b 1\nmain 1\n");
        let hot = f.hottest(2);
        assert_eq!(hot[0].function, "a");
        assert_eq!(hot[0].head, 0.6);
        assert_eq!(hot[1].function, "b");
        assert_eq!(hot_lines(&hot)[0], "a   60.0% self");
    }

    #[test]
    fn folded_lines_round_trip_and_shares_count_a_stack_once() {
        let f = Folded::parse("main;a;a 3\nmain;b 1\nnot a line\n");
        assert_eq!(f.samples(), 4);
        assert_eq!(Folded::parse(&f.text()), f);
        let s = f.shares();
        assert_eq!(s["main"], 1.0);
        assert_eq!(s["a"], 0.75);
    }
}
