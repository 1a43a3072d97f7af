#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh, and the final summary table.

  gpu_check.py torch   --out DIR [--copy-n N] [--saxpy-n N] [--gemm-n N]
      Measures with PyTorch + CUDA events what neon-perf measures, writes DIR/torch.json.
  gpu_check.py summary --out DIR
      Reads DIR/gpu.json (neon-perf run --json), DIR/doctor.json, DIR/torch.json,
      prints a short table and writes DIR/summary.md. Never crashes on missing
      or partial input: a missing number is shown as "n/a" with the reason.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time


# ----------------------------------------------------------------- torch side

def timed(torch, fn):
    """Seconds of one fn() call between its own pair of CUDA events."""
    s = torch.cuda.Event(enable_timing=True)
    e = torch.cuda.Event(enable_timing=True)
    s.record()
    fn()
    e.record()
    e.synchronize()
    return s.elapsed_time(e) / 1e3


def bench(torch, fn, reps, warmup):
    """Median seconds of fn() over reps, each timed with its own CUDA event pair."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        times.append(timed(torch, fn))
    return statistics.median(times)


def bench_for(torch, fn, seconds, warmup_s=0.2):
    """Like bench(), but sustained: warm up for warmup_s, then time every
    repetition for `seconds`, as neon-perf's sampler does (its warm-up is
    200 ms and its budget up to 2 s). Long bf16 GEMM runs meet the card's
    power management, short bursts do not: compare like with like."""
    import time as _t
    end = _t.monotonic() + warmup_s
    while _t.monotonic() < end:
        fn()
    torch.cuda.synchronize()
    times = []
    end = _t.monotonic() + seconds
    while _t.monotonic() < end or len(times) < 10:
        times.append(timed(torch, fn))
    return statistics.median(times)


def run_torch(args):
    res = {"started": time.time()}
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        res["error"] = f"cannot import torch: {e}"
        return res
    res["torch_version"] = torch.__version__
    res["torch_cuda"] = torch.version.cuda
    if not torch.cuda.is_available():
        res["error"] = "torch.cuda.is_available() is False"
        return res
    res["device"] = torch.cuda.get_device_name(0)
    dev = "cuda"
    # Like neon-perf's sgemm: plain FP32, no TF32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    def part(name, fn):
        try:
            res[name] = fn()
        except Exception as e:  # noqa: BLE001
            res[name] = {"error": f"{type(e).__name__}: {e}"}
        torch.cuda.empty_cache()

    def copy():
        n = args.copy_n
        x = torch.rand(n, device=dev)
        y = torch.empty_like(x)
        t = bench(torch, lambda: y.copy_(x), reps=100, warmup=10)
        return {"n": n, "seconds": t, "bytes": 8 * n, "bytes_per_s": 8 * n / t}

    def gemm(dtype):
        n = args.gemm_n
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        c = torch.empty(n, n, device=dev, dtype=dtype)
        reps = 50 if dtype != torch.float32 else 20
        t = bench(torch, lambda: torch.matmul(a, b, out=c), reps=reps, warmup=5)
        ts = bench_for(torch, lambda: torch.matmul(a, b, out=c), seconds=2.0)
        return {"n": n, "seconds": t, "flops_per_s": 2 * n ** 3 / t,
                "sustained_seconds": ts, "sustained_flops_per_s": 2 * n ** 3 / ts}

    def saxpy():
        n = args.saxpy_n
        x = torch.rand(n, device=dev)
        y = torch.rand(n, device=dev)
        z = torch.empty_like(x)
        t = bench(torch, lambda: torch.add(y, x, alpha=2.0, out=z), reps=100, warmup=10)
        return {"n": n, "seconds": t, "bytes_per_s": 12 * n / t}

    part("copy", copy)
    part("gemm_bf16", lambda: gemm(torch.bfloat16))
    part("gemm_f32", lambda: gemm(torch.float32))
    part("saxpy", saxpy)
    res["elapsed_s"] = time.time() - res.pop("started")
    return res


# ----------------------------------------------------------------- summary side

def load(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, f"{os.path.basename(path)} missing"
    except Exception as e:  # noqa: BLE001
        return None, f"{os.path.basename(path)} unreadable: {e}"


def median(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and not math.isnan(x)]
    return statistics.median(xs) if xs else None


def scenarios(gpu):
    if not isinstance(gpu, dict):
        return []
    sc = gpu.get("scenarios")
    return [s for s in sc if isinstance(s, dict)] if isinstance(sc, list) else []


def find_scenario(gpu, name):
    for s in scenarios(gpu):
        if isinstance(s, dict) and s.get("scenario") == name:
            return s
    return None


def metric(scn, name, labels=None):
    """Median of the metric `name{...}` (with the given labels if any) of a scenario."""
    if not scn:
        return None
    for m in scn.get("metrics") or []:
        if not isinstance(m, dict):
            continue
        key = str(m.get("key", ""))
        base, _, rest = key.partition("{")
        if base != name:
            continue
        got = dict(kv.split("=", 1) for kv in rest.rstrip("}").split(",") if "=" in kv)
        if labels and any(got.get(k) != str(v) for k, v in labels.items()):
            continue
        return median(m.get("samples") or [])
    return None


def outcome(scn):
    if not scn:
        return "not in results"
    o = scn.get("outcome") or {}
    status = o.get("status", "?")
    if status == "ignored":
        return f"ignored: {o.get('reason', '')}"
    if status == "failed":
        return f"FAILED: {o.get('error', '')}"
    return status


def check(scn, name):
    for c in (scn or {}).get("checks") or []:
        if isinstance(c, dict) and c.get("name") == name:
            return c
    return None


def fmt(v, scale, unit, digits=1):
    return f"{v / scale:.{digits}f} {unit}" if isinstance(v, (int, float)) else "n/a"


def ratio_row(label, ours, theirs, scale, unit, need, why):
    lo, hi = need
    need_txt = f">= {lo}" if hi is None else f"{lo}..{hi}"
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or theirs == 0:
        return [label, fmt(ours, scale, unit), fmt(theirs, scale, unit), "n/a", need_txt, "n/a (" + str(why) + ")"]
    r = ours / theirs
    ok = (lo is None or r >= lo) and (hi is None or r <= hi)
    return [label, fmt(ours, scale, unit), fmt(theirs, scale, unit), f"{r:.3f}", need_txt, "PASS" if ok else "FAIL"]


def slug(s):
    out = ""
    for c in s:
        if c.isascii() and (c.isalnum() or c == "."):
            out += c.lower()
        elif not out.endswith("-"):
            out += "-"
    return out.strip("-")


def hardware_key(doctor):
    """The baseline folder name: `neon-perf doctor --json` gives it as
    `hardware_dir`; older layouts are rebuilt from the GPU key."""
    if isinstance(doctor, dict) and doctor.get("hardware_dir"):
        return doctor["hardware_dir"]
    try:
        dev = doctor.get("device", doctor)
        g = dev["gpus"][0]["key"]
        return slug(
            f"{g['name']}-{g['memory_bytes'] >> 30}gib-drv{g['driver_major']}-cuda{g['cuda_version'] // 1000}"
            f"{'-mig' if g['mig'] else ''}{'-ecc' if g['ecc'] else ''}-{g['power_limit_w']}w"
        )
    except Exception:  # noqa: BLE001
        return "n/a"


def summary(out_dir):
    gpu, gpu_err = load(os.path.join(out_dir, "gpu.json"))
    torch_res, torch_err = load(os.path.join(out_dir, "torch.json"))
    doctor, _ = load(os.path.join(out_dir, "doctor.json"))
    torch_res = torch_res if isinstance(torch_res, dict) else {}
    t = lambda part, field: (torch_res.get(part) or {}).get(field) if isinstance(torch_res.get(part), dict) else None  # noqa: E731
    why_ours = gpu_err or "metric absent"
    why_torch = torch_err or torch_res.get("error") or "torch number absent"

    rows = []
    copy = find_scenario(gpu, "copy")
    copy_n = t("copy", "n")
    ours_bw = metric(copy, "bandwidth", {"n": copy_n} if copy_n else None)
    rows.append(ratio_row("copy GB/s (read+write)", ours_bw, t("copy", "bytes_per_s"), 1e9, "GB/s", (0.85, None), why_ours if ours_bw is None else why_torch))
    bf = metric(find_scenario(gpu, "bf16gemm"), "flops")
    rows.append(ratio_row("bf16 GEMM TFLOP/s (torch: 50-rep burst)", bf, t("gemm_bf16", "flops_per_s"), 1e12, "TFLOP/s", (0.85, None), why_ours if bf is None else why_torch))
    rows.append(ratio_row("bf16 GEMM TFLOP/s (torch: sustained 2 s, like neon-perf)", bf, t("gemm_bf16", "sustained_flops_per_s"), 1e12, "TFLOP/s", (0.85, None), why_ours if bf is None else why_torch))
    burst = metric(find_scenario(gpu, "bf16gemm"), "device_peak_flops")
    rows.append(ratio_row("bf16 GEMM burst TFLOP/s (neon-perf peak: 10 reps vs torch 50)", burst, t("gemm_bf16", "flops_per_s"), 1e12, "TFLOP/s", (0.85, None), why_ours if burst is None else why_torch))
    sg = metric(find_scenario(gpu, "sgemm"), "flops")
    rows.append(ratio_row("f32 GEMM TFLOP/s", sg, t("gemm_f32", "flops_per_s"), 1e12, "TFLOP/s", (0.85, None), why_ours if sg is None else why_torch))
    sx_n = t("saxpy", "n")
    sx = metric(find_scenario(gpu, "saxpy"), "time", {"n": sx_n} if sx_n else None)
    rows.append(ratio_row(f"saxpy time n={sx_n or '?'}", sx, t("saxpy", "seconds"), 1e-6, "us", (0.95, 1.05), why_ours if sx is None else why_torch))

    samples = 0
    util = 0.0
    unavailable = set()
    for s in scenarios(gpu):
        mon = s.get("monitor")
        mon = mon if isinstance(mon, dict) else {}
        for g in mon.get("gpus") or []:
            if not isinstance(g, dict):
                continue
            try:
                samples += int(g.get("samples") or 0)
                util = max(util, float(g.get("sm_util_max") or 0.0))
            except (TypeError, ValueError):
                pass
        if mon.get("gpu_unavailable"):
            unavailable.add(mon["gpu_unavailable"])
    nvml = f"{samples} samples, max SM util {util:.0f}%"
    if unavailable:
        nvml += " (off: " + "; ".join(sorted(unavailable)) + ")"

    oom = find_scenario(gpu, "oom")
    ret = check(oom, "memory returned")
    clean = check(oom, "OOM was a clean, recoverable error")
    if ret and clean:
        oom_txt = f"{'yes' if (ret.get('passed') and clean.get('passed')) else 'NO'} - {ret.get('evidence', '')}"
    else:
        oom_txt = f"n/a ({outcome(oom)})"

    lines = ["| check | neon-perf | torch | ratio | need | verdict |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append(f"| NVML | {nvml} | | | > 0 | {'PASS' if samples > 0 else 'FAIL'} |")
    lines.append(f"| hardware key | {hardware_key(doctor)} | | | | |")
    lines.append(f"| OOM recovered | {oom_txt} | | | yes | {'PASS' if oom_txt.startswith('yes') else 'FAIL'} |")

    status = []
    for s in scenarios(gpu):
        if not isinstance(s, dict):
            continue
        checks = s.get("checks") or []
        checks = [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []
        failed = [str(c.get("name", "?")) + ": " + str(c.get("evidence", ""))[:160] for c in checks if not c.get("passed")]
        line = f"- {s.get('scenario', '?')}: {outcome(s)[:200]}; checks {len(checks) - len(failed)}/{len(checks)} passed"
        if s.get("invalid_reasons"):
            line += "; INVALID: " + "; ".join(map(str, s["invalid_reasons"]))[:200]
        status.append(line)
        status += [f"    failed check {f}" for f in failed]
    if gpu_err:
        status.append(f"- neon-perf results: {gpu_err}")
    if torch_err or torch_res.get("error"):
        status.append(f"- torch: {torch_err or torch_res.get('error')}")

    text = "## scenarios\n" + "\n".join(status) + "\n\n## gpu-check summary\n" + "\n".join(lines) + "\n"
    try:
        with open(os.path.join(out_dir, "summary.md"), "w") as f:
            f.write(text)
    except OSError as e:
        text += f"\n(could not write summary.md: {e})\n"
    print(text, end="")
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["torch", "summary"])
    p.add_argument("--out", default=os.environ.get("OUT", "./gpu-out"))
    p.add_argument("--copy-n", type=int, default=1 << 28)
    p.add_argument("--saxpy-n", type=int, default=1 << 26)
    p.add_argument("--gemm-n", type=int, default=8192)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.mode == "torch":
        res = run_torch(args)
        with open(os.path.join(args.out, "torch.json"), "w") as f:
            json.dump(res, f, indent=2)
        brief = {k: (v.get("error") if isinstance(v, dict) and "error" in v else "ok") for k, v in res.items() if isinstance(v, dict)}
        print("torch:", res.get("error") or brief)
        return 0
    try:
        return summary(args.out)
    except Exception:  # noqa: BLE001 - the GPU run must always end with a report
        import traceback
        traceback.print_exc()
        print("## gpu-check summary\n(summary failed: see the traceback above; raw files are in " + args.out + ")")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
