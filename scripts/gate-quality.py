#!/usr/bin/env python3
"""Gate quality on this machine: false alarms on unchanged code, detection of
injected slowdowns. Reproducible: run from the repo root after
`cargo build --release`:

    python3 scripts/gate-quality.py [--baselines 4] [--runs 5] [--max-time 5s]

For each of B fresh baselines (each blessed once: a bless records 3 runs,
1 s apart; before 2026-11-27 22:30 a bless recorded one run and the script
blessed 3 times, as `--blesses 3 --bless-runs 1` still does), it runs,
interleaved, R times each:
  - A/A: the same code again, tolerance 5%;
  - +10%: the workload does 10% more work, tolerance 5%;
  - +5%: 5% more work, tolerance 3%.
So B*R runs of each kind (20 with the defaults). The scenario is a `command`
scenario running the built-in sort workload (n = 10000 u64, ~100 us per sort
here), gated on the program's own `sort_time` metric (p5 estimator).
Prints a Markdown table and writes every verdict to OUT/gate-quality.json.

With --paired, no baselines are blessed: each run is
`neon-perf run --against BASE` from a head tree whose suite passes
`--slowdown X` to the workload, against a base tree whose suite does not
(paired A/B, docs/paired.md); B*R runs of each kind as above.

With --both, every stored run is followed at once by the same paired run, so
that the two modes are compared in the same machine state (on this VM the
state changes over minutes: measuring one mode after the other compared the
machine as much as the modes).
Since 2026-11-28 08:28 the paired runs of --both are given the stored
baselines of the same run, as perf-gate.yml gives main's: the base side is
then checked against them, and a metric the pairs leave undecided may be
decided by them (docs/paired.md, "When the pairs cannot decide").
--paired-without-baselines measures as before.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SUITE = """\
[suite]
name = "gq"

[defaults]
warmup = "500ms"
max_time = "{max_time}"
min_samples = 20
target_rel_ci = 0.005
tolerance = 0.05
max_contention = {max_contention}

[[scenario]]
name = "sort"
kind = "command"
command = ["{{neon_perf}}", "workload", "--kind", "sort", "--n", "10000", "--samples", "50"{extra}]
primary = "sort_time"
metric."wall_time" = {{ gate = false }}
metric."cpu_time" = {{ gate = false }}
metric."peak_rss" = {{ gate = false }}
"""


def neon(binary, args, env_extra, cwd=None):
    env = dict(os.environ)
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.update(env_extra)
    start = time.monotonic()
    p = subprocess.run([binary] + args, env=env, capture_output=True, text=True, cwd=cwd)
    return p, time.monotonic() - start


def one_run(binary, suite, base, out_json, slowdown, tolerance, paired=None, paired_baselines=None):
    args = ["run", suite, "--baselines", base, "--json", out_json, "--tolerance", str(tolerance)]
    if paired:
        # paired = (head_dir, base_dir, max_contention): the head suite
        # carries the slowdown as an argument, the base suite has none.
        head_dir, base_dir, mc = paired
        suite = os.path.join(head_dir, "gq.toml")
        with open(suite, "w") as f:
            f.write(SUITE.format(max_time=PAIRED_MAX_TIME[0], max_contention=mc,
                                 extra=f', "--slowdown", "{slowdown}"'))
        args = ["run", "gq.toml", "--against", base_dir, "--json", out_json,
                "--tolerance", str(tolerance)]
        if paired_baselines:
            # The stored baselines of the same run (--both): as perf-gate.yml
            # runs paired mode, with main's baselines present.
            args += ["--baselines", os.path.abspath(paired_baselines)]
        p, wall = neon(os.path.abspath(binary), args, {}, cwd=head_dir)
    else:
        p, wall = neon(binary, args, {"NEON_PERF_SLOWDOWN": str(slowdown)})
    if p.returncode not in (0, 1, 3):
        sys.exit(f"neon-perf run failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    with open(out_json) as f:
        report = json.load(f)
    scn = report["scenarios"][0]
    v = next(x for x in scn["verdicts"] if x["key"] == "sort_time")
    samples = next(m for m in scn["metrics"] if m["key"] == "sort_time")["samples"]
    return {
        "verdict": v["verdict"],
        "change": v["change"],
        "ci": v["ci"],
        "current": v["current"],
        "baseline": v["baseline"],
        "samples": len(samples),
        "scenario_wall_s": scn["wall_time_s"],
        "process_wall_s": wall,
        "other_cpu_cores": scn["monitor"]["host"].get("other_cpu_cores"),
        "invalid_reasons": scn["invalid_reasons"],
        "not_paired": [w for w in scn["warnings"] if w.startswith("not paired")],
        "first_run_regressed_unconfirmed": any(
            "independent second run" in w or "confirmation pairs did not" in w
            or "but the confirmation runs did not" in w
            for w in scn["warnings"]),
        "note": v.get("note"),
        # The slow-state rule (docs/gate-design.md, "A run's shape") made
        # this verdict inconclusive.
        "slow_state": "slow state of the machine" in (v.get("note") or ""),
        # Paired mode: the pairs could not decide, the stored baseline did.
        "decided_by_baseline": "decided against the stored baseline" in (v.get("note") or ""),
        "pairs": v.get("pairs", []),
    }


PAIRED_MAX_TIME = ["5s"]


def recorded_runs(baselines_dir):
    """The sort_time run estimates a baseline folder holds, and their centre."""
    import glob
    import tomllib
    for path in glob.glob(os.path.join(baselines_dir, "*", "gq.toml")):
        with open(path, "rb") as f:
            m = tomllib.load(f)["scenario"]["sort"]["metric"]["sort_time"]
        return {"runs": m["runs"], "estimate": m["estimate"]}
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/neon-perf")
    ap.add_argument("--baselines", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--blesses", type=int, default=1)
    ap.add_argument("--bless-runs", type=int, default=None,
                    help="runs per bless (default: the tool's, 3)")
    ap.add_argument("--max-time", default="5s")
    ap.add_argument("--out", default="target/gate-quality")
    ap.add_argument("--max-contention", type=float, default=0.5,
                    help="the suite's max_contention (1 = never invalid)")
    ap.add_argument("--paired", action="store_true",
                    help="paired A/B against a base tree instead of blessed baselines")
    ap.add_argument("--both", action="store_true",
                    help="stored and paired, each run of one right after the same run of "
                         "the other, so that both see the same machine state")
    ap.add_argument("--paired-without-baselines", action="store_true",
                    help="with --both: paired runs without the stored baselines (before "
                         "2026-11-28 08:28 they always ran so; with them, as perf-gate.yml "
                         "runs, a pairing the pairs cannot decide goes to the baseline)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="gq-")
    suite = os.path.join(work, "gq.toml")
    with open(suite, "w") as f:
        f.write(SUITE.format(max_time=a.max_time, max_contention=a.max_contention, extra=""))
    modes = ["stored", "paired"] if a.both else ["paired"] if a.paired else ["stored"]
    paired = None
    if "paired" in modes:
        PAIRED_MAX_TIME[0] = a.max_time
        head_dir, base_dir = os.path.join(work, "head"), os.path.join(work, "base")
        os.makedirs(head_dir)
        os.makedirs(base_dir)
        with open(os.path.join(base_dir, "gq.toml"), "w") as f:
            f.write(SUITE.format(max_time=a.max_time, max_contention=a.max_contention, extra=""))
        paired = (head_dir, base_dir, a.max_contention)

    kinds = [("aa", 0.0, 0.05), ("slow10", 0.10, 0.05), ("slow5", 0.05, 0.03)]
    results = {m: {k: [] for k, _, _ in kinds} for m in modes}
    blesses = []
    bless_log = []
    recorded = {}
    t0 = time.monotonic()
    for b in range(a.baselines):
        base = os.path.join(work, f"baselines-{b}")
        for i in range(a.blesses if "stored" in modes else 0):
            runs = ["--runs", str(a.bless_runs)] if a.bless_runs else []
            p, wall = neon(a.bin, ["bless", suite, "--baselines", base, "--reason", f"gq {b}.{i}"] + runs, {})
            if p.returncode != 0:
                sys.exit(f"bless failed:\n{p.stdout}\n{p.stderr}")
            blesses.append(wall)
            # What each bless did ("replaced", "refused"), for the record.
            bless_log.append({"baseline_set": b, "bless": i,
                              "summary": [l.strip() for l in p.stdout.splitlines()
                                          if l.strip().startswith(("refused", "replaced"))],
                              # Extra runs past a slow state (docs/gate-design.md).
                              "slow_state": [l.strip() for l in (p.stdout + p.stderr).splitlines()
                                             if "slow state" in l],
                              # Extra runs because the runs disagreed (agreement rule).
                              "disagree": [l.strip() for l in (p.stdout + p.stderr).splitlines()
                                           if "bless runs disagreed" in l or "still disagree" in l]})
        if "stored" in modes:
            recorded[b] = recorded_runs(base)
        for r in range(a.runs):
            for kind, slow, tol in kinds:
                for mode in modes:
                    res = one_run(a.bin, suite, base, os.path.join(work, "r.json"), slow, tol,
                                  paired if mode == "paired" else None,
                                  base if mode == "paired" and a.both and not a.paired_without_baselines
                                  else None)
                    res.update(baseline_set=b, run=r)
                    results[mode][kind].append(res)
                    ch = "n/a" if res["change"] is None else f"{res['change']:+.4f}"
                    ci = "n/a" if not res["ci"] else f"[{res['ci'][0]:+.4f}, {res['ci'][1]:+.4f}]"
                    print(f"[{time.monotonic() - t0:6.0f}s] baseline {b} run {r} {kind:6} {mode:6}: "
                          f"{res['verdict']:12} change {ch} ci {ci} "
                          f"({res['samples']} samples, {res['scenario_wall_s']:.1f} s, "
                          f"others {res['other_cpu_cores'] or 0:.2f} cores)",
                          file=sys.stderr, flush=True)

    n = a.baselines * a.runs
    labels = {"aa": "A/A (unchanged)", "slow10": "+10% work", "slow5": "+5% work"}
    table = []
    for mode in modes:
        def count(kind, verdict):
            return sum(1 for x in results[mode][kind] if x["verdict"] == verdict)

        table += [
            f"\n{mode}:\n",
            "| runs | tolerance | regressed | improved | pass | inconclusive | invalid | median change "
            "| median process wall time | max scenario wall time |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for kind, slow, tol in kinds:
            xs = results[mode][kind]
            changes = sorted(x["change"] for x in xs if x["change"] is not None) or [float("nan")]
            walls = sorted(x["process_wall_s"] for x in xs)
            table.append(
                f"| {labels[kind]} ×{n} | {tol:.0%} | {count(kind, 'regressed')} | "
                f"{count(kind, 'improved')} | {count(kind, 'pass')} | {count(kind, 'inconclusive')} | "
                f"{count(kind, 'invalid')} | {changes[len(changes) // 2]:+.2%} | "
                f"{walls[len(walls) // 2]:.2f} s | "
                f"{max(x['scenario_wall_s'] for x in xs):.1f} s |"
            )
        unconfirmed = sum(1 for k in results[mode] for x in results[mode][k]
                          if x["first_run_regressed_unconfirmed"])
        table.append(f"\nFirst runs that regressed but were not confirmed: {unconfirmed}")
        slow_state = sum(1 for k in results[mode] for x in results[mode][k] if x.get("slow_state"))
        table.append(f"Verdicts the slow-state rule made inconclusive: {slow_state}")
        if mode == "paired":
            by_base = sum(1 for k in results[mode] for x in results[mode][k]
                          if x.get("decided_by_baseline"))
            table.append(f"Verdicts the pairs left undecided and the stored baseline decided: {by_base}")
    walls = [x["scenario_wall_s"] for m in modes for k in results[m] for x in results[m][k]]
    summary = {
        "baselines": a.baselines,
        "runs_per_baseline": a.runs,
        "blesses_per_baseline": a.blesses if "stored" in modes else 0,
        "runs_per_bless": a.bless_runs or 3,
        "max_time": a.max_time,
        "max_contention": a.max_contention,
        "paired": a.paired,
        "paired_with_baselines": a.both and not a.paired_without_baselines,
        "modes": modes,
        "median_bless_wall_s": sorted(blesses)[len(blesses) // 2] if blesses else None,
        "bless_log": bless_log,
        "recorded_runs": recorded,
        "max_scenario_wall_s": max(walls),
        "total_wall_s": time.monotonic() - t0,
        # One mode: its results by kind, as before; both: by mode, then kind.
        "results": results if a.both else results[modes[0]],
    }
    with open(os.path.join(a.out, "gate-quality.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n".join(table))
    bless_text = f"median bless {summary['median_bless_wall_s']:.1f} s" if blesses else "no blesses"
    print(f"\nTotal {summary['total_wall_s']:.0f} s; {bless_text}; "
          f"results in {a.out}/gate-quality.json")


if __name__ == "__main__":
    main()
