#!/usr/bin/env python3
"""Would paired mode gain from judging pairs with *both* runs in a slow spell?

An experiment on recorded data, no measurement: reads every
docs/data/gate-quality-both-*.json, re-marks each paired pairing's slow runs
the way `stats::slow_runs` does (threshold max(2 x tolerance, 5%) against the
best run nearby, 20% against the best of all), and takes the pairs whose
base and head runs were both slow. A pairing counts as "rescued" when
it was not `regressed` and those pairs' t interval (mean of log ratios) lies
wholly beyond the tolerance. For unchanged code (A/A) it reports how close
any prefix of a pairing (4, 6, 8 ... pairs: every look the extension takes)
came to a false alarm. Usage:

    python3 scripts/both-slow-pairs.py [MIN_PAIRS]   # default 6

Written up in docs/paired.md, "Pairs with both runs slow".
"""
import glob
import json
import math
import statistics as st
import sys

LONG_SPELL = 0.2
# Two-sided 95% t quantiles.
T = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
     9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
     16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086}
TOL = {"aa": 0.05, "slow10": 0.05, "slow5": 0.03}


def tq(df):
    return T.get(df, 1.96 + 2.4 / df)


def slow_runs(pairs, thr):
    best_b = min(p[0] for p in pairs)
    best_h = min(p[1] for p in pairs)
    scale = best_b / best_h
    far = max(2 * thr, LONG_SPELL)
    best_all = min(min(b, h * scale) for b, h in pairs)
    out = []
    for i in range(len(pairs)):
        best = min(min(b, h * scale) for b, h in pairs[max(0, i - 1):i + 2])
        slow = lambda x: x > best * (1 + thr) or x > best_all * (1 + far)
        out.append((slow(pairs[i][0]), slow(pairs[i][1] * scale)))
    return out


def both_slow(pairs, tol):
    marks = slow_runs(pairs, max(2 * tol, 0.05))
    return [math.log(h / b) for (b, h), (sb, sh) in zip(pairs, marks) if sb and sh]


def interval(d):
    n, m, sd = len(d), st.mean(d), st.stdev(d)
    h = tq(n - 1) * sd / math.sqrt(n)
    return math.exp(m - h) - 1, math.exp(m) - 1, math.exp(m + h) - 1


def main():
    min_pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    summary = {}
    closest = []
    for f in sorted(glob.glob("docs/data/gate-quality-both-*.json")):
        d = json.load(open(f))
        for kind, xs in d["results"]["paired"].items():
            tol = TOL[kind]
            s = summary.setdefault(kind, {"pairings": 0, "not_regressed": 0, "rescued": 0})
            for x in xs:
                pairs = [tuple(p) for p in x["pairs"] if p[0] and p[1]]
                if len(pairs) < 2:
                    continue
                s["pairings"] += 1
                s["not_regressed"] += x["verdict"] != "regressed"
                d_slow = both_slow(pairs, tol)
                if kind != "aa" and x["verdict"] != "regressed" and len(d_slow) >= min_pairs:
                    lo, mid, hi = interval(d_slow)
                    if lo > tol:
                        s["rescued"] += 1
                        print(f"rescued {kind} {f.split('/')[-1]}: {x['verdict']}, {len(pairs)} pairs, "
                              f"{len(d_slow)} both slow: {100 * mid:+.1f}% [{100 * lo:+.1f}%, {100 * hi:+.1f}%]")
                if kind == "aa":
                    for k in range(4, len(pairs) + 1, 2):
                        d_pre = both_slow(pairs[:k], tol)
                        if len(d_pre) >= min_pairs:
                            lo, mid, hi = interval(d_pre)
                            closest.append((max(lo, -hi), len(d_pre), mid, f.split("/")[-1]))
    print(json.dumps(summary, indent=1))
    closest.sort(reverse=True)
    print(f"A/A: {len(closest)} looks with >= {min_pairs} both-slow pairs; the interval bounds "
          "nearest a claim (positive: the whole interval on one side of zero):")
    for c in closest[:5]:
        print(f"  {100 * c[0]:+.1f}% from {c[1]} pairs (mean {100 * c[2]:+.1f}%) in {c[3]}")


if __name__ == "__main__":
    main()
