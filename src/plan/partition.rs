//! `--partition k/n`: a stable subset of scenarios per CI runner, as
//! nextest's partitions do. Pure; the CLI and the harness apply it to plans.
//!
//! - `hash:k/n` (and bare `k/n`): a scenario belongs to shard
//!   `h mod n + 1`, `h` the first 8 bytes of SHA-256(`suite::scenario`).
//!   A fixed, well-mixed hash: every runner and build agrees, and the low
//!   bits are as good as the high ones (FNV-1a's low bits depend only on
//!   the bytes' low bits, which skews `mod 2`). Adding or removing a
//!   scenario never moves another one.
//! - `count:k/n`: round-robin over the selected scenarios sorted by name;
//!   shards are balanced in number, but adding a scenario can move others.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    Hash,
    Count,
}

/// Shard `k` of `n` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub kind: PartitionKind,
    pub k: u32,
    pub n: u32,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PartitionKind::Hash => "hash",
            PartitionKind::Count => "count",
        };
        write!(f, "{kind}:{}/{}", self.k, self.n)
    }
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid partition `{s}`: {why} (expected `k/n`, `hash:k/n` or `count:k/n`, 1 ≤ k ≤ n)"
            )
        };
        let (kind, rest) = match s.split_once(':') {
            Some(("hash", r)) => (PartitionKind::Hash, r),
            Some(("count", r)) => (PartitionKind::Count, r),
            Some((other, _)) => return Err(bad(&format!("unknown kind `{other}`"))),
            None => (PartitionKind::Hash, s),
        };
        let (k, n) = rest.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let k: u32 = k.trim().parse().map_err(|_| bad("k is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("n is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(bad("k out of range"));
        }
        Ok(Partition { kind, k, n })
    }
}

/// The first 8 bytes of SHA-256 of the name, big-endian.
pub fn name_hash(name: &str) -> u64 {
    let digest = Sha256::digest(name.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl Partition {
    /// The shard (1-based) each of `names` belongs to, in the same order.
    pub fn shards(kind: PartitionKind, n: u32, names: &[String]) -> Vec<u32> {
        match kind {
            PartitionKind::Hash => names
                .iter()
                .map(|name| (name_hash(name) % u64::from(n)) as u32 + 1)
                .collect(),
            PartitionKind::Count => {
                let mut order: Vec<usize> = (0..names.len()).collect();
                order.sort_by(|&a, &b| names[a].cmp(&names[b]));
                let mut out = vec![0; names.len()];
                for (rank, i) in order.into_iter().enumerate() {
                    out[i] = (rank as u64 % u64::from(n)) as u32 + 1;
                }
                out
            }
        }
    }

    /// Which of `names` (full `suite::scenario` names) this shard runs.
    pub fn selects(&self, names: &[String]) -> Vec<bool> {
        Self::shards(self.kind, self.n, names)
            .into_iter()
            .map(|s| s == self.k)
            .collect()
    }

    /// Keeps the items of this shard; `name` gives each one's full name.
    pub fn filter<T>(&self, items: Vec<T>, name: impl Fn(&T) -> String) -> Vec<T> {
        let names: Vec<String> = items.iter().map(&name).collect();
        let keep = self.selects(&names);
        items
            .into_iter()
            .zip(keep)
            .filter_map(|(t, k)| k.then_some(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("suite{}::scenario-{i}", i % 3))
            .collect()
    }

    #[test]
    fn parses_and_rejects() {
        let p: Partition = "2/4".parse().unwrap();
        assert_eq!((p.kind, p.k, p.n), (PartitionKind::Hash, 2, 4));
        assert_eq!(p.to_string(), "hash:2/4");
        let p: Partition = "count:1/3".parse().unwrap();
        assert_eq!(p.kind, PartitionKind::Count);
        for bad in ["0/4", "5/4", "1/0", "x/2", "2", "slice:1/2", "1/-2"] {
            let e = bad.parse::<Partition>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn every_scenario_in_exactly_one_shard() {
        let all = names(50);
        for kind in [PartitionKind::Hash, PartitionKind::Count] {
            for n in 1..=7 {
                let mut count = vec![0; all.len()];
                for k in 1..=n {
                    let p = Partition { kind, k, n };
                    for (i, sel) in p.selects(&all).into_iter().enumerate() {
                        count[i] += usize::from(sel);
                    }
                }
                assert!(count.iter().all(|&c| c == 1), "{kind:?} n={n}: {count:?}");
            }
        }
    }

    #[test]
    fn hash_shards_are_stable_when_scenarios_come_and_go() {
        let all = names(40);
        let before = Partition::shards(PartitionKind::Hash, 4, &all);
        // Drop every third scenario and reverse the order: the rest keep their shard.
        let kept: Vec<String> = all.iter().step_by(3).rev().cloned().collect();
        let after = Partition::shards(PartitionKind::Hash, 4, &kept);
        for (name, shard) in kept.iter().zip(after) {
            let i = all.iter().position(|x| x == name).unwrap();
            assert_eq!(before[i], shard, "{name}");
        }
        // A fixed hash, not std's per-process random one: every runner
        // agrees on shards. SHA-256("abc") starts ba7816bf 8f01cfea.
        assert_eq!(name_hash("abc"), 0xba78_16bf_8f01_cfea);
    }

    #[test]
    fn hash_shards_are_not_skewed_for_even_counts() {
        // 200 similar names over 2 and 4 shards: each shard gets a fair share.
        let all: Vec<String> = (0..200).map(|i| format!("suite::case-{i}")).collect();
        for n in [2u32, 4] {
            let shards = Partition::shards(PartitionKind::Hash, n, &all);
            for k in 1..=n {
                let got = shards.iter().filter(|&&s| s == k).count();
                let fair = all.len() / n as usize;
                assert!(
                    got * 3 > fair * 2 && got * 3 < fair * 4,
                    "n={n} k={k}: {got}"
                );
            }
        }
    }

    #[test]
    fn count_shards_are_balanced() {
        let all = names(10);
        let sizes: Vec<usize> = (1..=3)
            .map(|k| {
                Partition {
                    kind: PartitionKind::Count,
                    k,
                    n: 3,
                }
                .filter(all.clone(), |s| s.clone())
                .len()
            })
            .collect();
        assert_eq!(sizes, vec![4, 3, 3]);
    }
}
