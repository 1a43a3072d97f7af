#!/usr/bin/env python3
"""Which per-run estimator still sees a code change when a run falls in a
slow state of the machine? An experiment for paired mode (docs/paired.md,
"Slow spells"), reproducible from the repo root after `cargo build --release`:

    python3 scripts/slow-run-estimators.py --pairings 12 --out target/sre.json
    python3 scripts/slow-run-estimators.py --analyze target/sre.json

It runs the gate-quality workload (sort of 10,000 u64, `sort_time` samples)
the way a paired run does: pairings of `--pairs` base/head pairs in
B H H B order, each run `--procs` processes of 50 samples (about a paired
run's budget). Half of the pairings are A/A (head = base), half +5% (head
`--slowdown 0.05`), alternating. Every sample is kept, per run.

The analysis reduces each run by several estimators (min, p1, p2, p5, p10)
and, for each, reports the pair log-ratios split by the runs' state: both
runs fast, one slow, both slow (slow = p5 worse than the best p5 of the
pairing by more than 10%, the spell rule's threshold at 5% tolerance).
"""
import argparse
import json
import math
import statistics
import subprocess
import time

EXE = "target/release/neon-perf"


def one_run(slowdown, procs):
    out = []
    for _ in range(procs):
        p = subprocess.run(
            [EXE, "workload", "--kind", "sort", "--n", "10000", "--samples", "50",
             "--slowdown", str(slowdown)],
            capture_output=True, text=True, check=True)
        out += [json.loads(line)["value"] for line in p.stdout.splitlines() if line.strip()]
    return out


def record(args):
    pairings = []
    t0 = time.time()
    for k in range(args.pairings):
        effect = 0.0 if k % 2 == 0 else 0.05
        pairs = []
        for i in range(args.pairs):
            head_first = i % 2 == 1
            if head_first:
                h = one_run(effect, args.procs)
                b = one_run(0.0, args.procs)
            else:
                b = one_run(0.0, args.procs)
                h = one_run(effect, args.procs)
            pairs.append({"base": b, "head": h, "head_first": head_first})
        pairings.append({"effect": effect, "t": time.time() - t0, "pairs": pairs})
        print(f"pairing {k + 1}/{args.pairings} (+{effect:.0%}) done at {time.time() - t0:.0f} s",
              flush=True)
    with open(args.out, "w") as f:
        json.dump({"procs": args.procs, "pairs": args.pairs, "pairings": pairings}, f)
    print("wrote", args.out)


def q(xs, p):
    xs = sorted(xs)
    if p == 0:
        return xs[0]
    pos = p * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


ESTIMATORS = {"min": 0.0, "p1": 0.01, "p2": 0.02, "p5": 0.05, "p10": 0.10}


def analyze(path):
    d = json.load(open(path))
    rows = {}
    for pg in d["pairings"]:
        p5s = [(q(p["base"], 0.05), q(p["head"], 0.05)) for p in pg["pairs"]]
        best = min(min(b, h) for b, h in p5s)
        for p, (b5, h5) in zip(pg["pairs"], p5s):
            # Slow judged on base terms; the head's +5% is inside the 10%.
            state = ("slow" if b5 > 1.10 * best else "fast",
                     "slow" if h5 > 1.10 * best * (1 + pg["effect"]) else "fast")
            kind = {("fast", "fast"): "both fast", ("slow", "slow"): "both slow"}.get(
                state, "one slow")
            for name, qq in ESTIMATORS.items():
                r = math.log(q(p["head"], qq) / q(p["base"], qq))
                rows.setdefault((pg["effect"], kind, name), []).append(r)
            gap = lambda xs: q(xs, 0.05) / min(xs) - 1
            rows.setdefault((pg["effect"], kind, "gap"), []).append(
                (gap(p["base"]), gap(p["head"])))
    print(f"{len(d['pairings'])} pairings x {d['pairs']} pairs, {d['procs']} x 50 samples per run")
    print("effect | pairs' state | n | " + " | ".join(
        f"{e} median [IQR]" for e in ESTIMATORS))
    for effect in (0.0, 0.05):
        for kind in ("both fast", "one slow", "both slow"):
            cells = []
            n = 0
            for e in ESTIMATORS:
                xs = rows.get((effect, kind, e), [])
                n = len(xs)
                if len(xs) >= 4:
                    qs = statistics.quantiles(xs, n=4)
                    cells.append(f"{100 * statistics.median(xs):+.1f}% "
                                 f"[{100 * qs[0]:+.1f}, {100 * qs[2]:+.1f}]")
                else:
                    cells.append("-")
            print(f"+{effect:.0%} | {kind} | {n} | " + " | ".join(cells))
    for effect in (0.0, 0.05):
        for kind in ("both fast", "one slow", "both slow"):
            g = rows.get((effect, kind, "gap"), [])
            if g:
                flat = [x for pair in g for x in pair]
                print(f"gap p5/min-1, +{effect:.0%} {kind}: median {100 * statistics.median(flat):.0f}%")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairings", type=int, default=12)
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--out", default="target/slow-run-estimators.json")
    ap.add_argument("--analyze")
    args = ap.parse_args()
    if args.analyze:
        analyze(args.analyze)
    else:
        record(args)
        analyze(args.out)


if __name__ == "__main__":
    main()
