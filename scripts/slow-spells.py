#!/usr/bin/env python3
"""How long this machine's slow spells last, and whether they hit every CPU.

Reproducible: from the repo root after `cargo build --release`, on an
otherwise idle machine (anything else running is measured too):

    python3 scripts/slow-spells.py [--seconds 60] [--out target/slow-spells]

Phase 1 runs the built-in sort workload (`neon-perf workload --stamp`, one
process, ~94 us per sort on the 2-vCPU VM) for --seconds and cuts the
trace into 100 ms windows. A window is "slow" when its p5 is more than 15%
above the trace's fastest (its 0.5% quantile): a run of the gate there
would be slow even by its p5. It prints:
  - the share of slow windows and P(slow at t + lag | slow at t);
  - how long the slow spells last;
  - the chance that a run of D seconds is wholly slow (its p5 slow), and
    that two 0.7 s runs, g seconds apart, are both slow: what the gate's
    confirmation design rests on (docs/gate-design.md, "Confirmation").
Phase 2 runs one workload pinned to each CPU at the same time (taskset)
and compares their slow windows: whether a spell is the machine's or one
CPU's.

Writes OUT/slow-spells.json with every number printed.
"""
import argparse
import bisect
import json
import os
import random
import subprocess
import tempfile
import time

WINDOW = 0.1
SLOW = 1.15


def trace(binary, seconds, cpu=None):
    """A workload process writing its samples to a file (not a pipe: a
    second process's pipe, unread while the first is collected, would fill
    and stall it)."""
    n = int(seconds / 95e-6)
    cmd = [binary, "workload", "--kind", "sort", "--n", "10000", "--samples", str(n), "--stamp"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = tempfile.TemporaryFile(mode="w+")
    return subprocess.Popen(cmd, stdout=out, text=True), out


def collect(started):
    """(start times, durations in us) of one workload process."""
    proc, out = started
    proc.wait()
    out.seek(0)
    t, d = [], []
    for line in out:
        x = json.loads(line)
        t.append(x["t"])
        d.append(x["value"] * 1e6)
    return t, d


def fastest(d):
    return sorted(d)[len(d) // 200]


def p5_slow(t, d, best, a, b):
    i, j = bisect.bisect_left(t, a), bisect.bisect_left(t, b)
    s = sorted(d[i:j])
    if len(s) < 10:
        return None
    return s[len(s) // 20] > SLOW * best


def windows(t, d, best, start, end):
    out = []
    x = start
    while x + WINDOW <= end:
        out.append(p5_slow(t, d, best, x, x + WINDOW))
        x += WINDOW
    return out


def phase1(t, d):
    best = fastest(d)
    w = [s for s in windows(t, d, best, t[0], t[-1]) if s is not None]
    n = len(w)
    res = {"fastest_us": best, "windows": n, "slow_share": sum(w) / n, "p_slow_given_slow": {}}
    for lag in (0.1, 0.2, 0.5, 1, 2, 3, 5, 10):
        k = int(round(lag / WINDOW))
        if k >= n:
            break
        prev = [(a, b) for a, b in zip(w, w[k:]) if a]
        res["p_slow_given_slow"][str(lag)] = sum(b for _, b in prev) / max(1, len(prev))
    spells, c = [], 0
    for s in w + [False]:
        if s:
            c += 1
        elif c:
            spells.append(c * WINDOW)
            c = 0
    spells.sort()
    res["spells"] = {
        "count": len(spells),
        "median_s": spells[len(spells) // 2] if spells else 0,
        "p90_s": spells[int(len(spells) * 0.9)] if spells else 0,
        "max_s": spells[-1] if spells else 0,
    }
    rng = random.Random(1)
    span = t[-1] - t[0]

    def chance(f, trials):
        hits = [f() for _ in range(trials)]
        hits = [h for h in hits if h is not None]
        return sum(hits) / max(1, len(hits))

    res["run_wholly_slow"] = {}
    for dur in (0.2, 0.7, 1.5, 3.0):
        def one(dur=dur):
            a = t[0] + rng.uniform(0, span - dur)
            return p5_slow(t, d, best, a, a + dur)
        res["run_wholly_slow"][str(dur)] = chance(one, 1000)
    res["two_runs_both_slow"] = {}
    for gap in (0.0, 1.0, 2.0):
        def two(gap=gap):
            a = t[0] + rng.uniform(0, span - 1.4 - gap)
            x = p5_slow(t, d, best, a, a + 0.7)
            y = p5_slow(t, d, best, a + 0.7 + gap, a + 1.4 + gap)
            return None if x is None or y is None else (x and y)
        res["two_runs_both_slow"][str(gap)] = chance(two, 2000)
    return res


def phase2(traces):
    (t0, d0), (t1, d1) = traces
    b0, b1 = fastest(d0), fastest(d1)
    start, end = max(t0[0], t1[0]), min(t0[-1], t1[-1])
    w0, w1 = windows(t0, d0, b0, start, end), windows(t1, d1, b1, start, end)
    pairs = [(a, b) for a, b in zip(w0, w1) if a is not None and b is not None]
    n = len(pairs)
    s0 = sum(a for a, _ in pairs) / n
    s1 = sum(b for _, b in pairs) / n
    both = sum(1 for a, b in pairs if a and b) / n
    return {"windows": n, "slow_cpu0": s0, "slow_cpu1": s1, "both_slow": both,
            "both_if_independent": s0 * s1, "fastest_us": [b0, b1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/neon-perf")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out", default="target/slow-spells")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load = os.getloadavg()
    one = phase1(*collect(trace(a.bin, a.seconds)))
    procs = [trace(a.bin, a.seconds / 2, cpu) for cpu in (0, 1)]
    two = phase2([collect(p) for p in procs])
    res = {"started": started, "loadavg_at_start": load, "seconds": a.seconds,
           "window_s": WINDOW, "slow_threshold": SLOW, "one_process": one, "pinned_pair": two}
    with open(os.path.join(a.out, "slow-spells.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"one process, {a.seconds:.0f} s: fastest {one['fastest_us']:.1f} us, "
          f"{100 * one['slow_share']:.0f}% of {one['windows']} windows of 100 ms slow")
    print("P(slow at t+lag | slow at t): " + ", ".join(
        f"{k} s {v:.2f}" for k, v in one["p_slow_given_slow"].items()))
    s = one["spells"]
    print(f"spells: {s['count']}, median {s['median_s']:.1f} s, p90 {s['p90_s']:.1f} s, "
          f"max {s['max_s']:.1f} s")
    print("a run of D s wholly slow: " + ", ".join(
        f"{k} s {v:.3f}" for k, v in one["run_wholly_slow"].items()))
    print("two 0.7 s runs, g s apart, both slow: " + ", ".join(
        f"g={k} {v:.3f}" for k, v in one["two_runs_both_slow"].items()))
    print(f"pinned, one per CPU, {a.seconds / 2:.0f} s: slow cpu0 {two['slow_cpu0']:.2f}, "
          f"cpu1 {two['slow_cpu1']:.2f}, both {two['both_slow']:.2f} "
          f"(independent: {two['both_if_independent']:.2f})")


if __name__ == "__main__":
    main()
