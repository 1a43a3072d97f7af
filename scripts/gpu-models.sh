#!/usr/bin/env bash
# The model sweeps on a GPU host, from a binary built elsewhere with
# `--features cuda` (see scripts/cuda-toolchain.sh). Needs no Rust and no
# network on the GPU host: copy the binary, suites/ and this script.
#
#   OUT=/tmp/out scripts/gpu-models.sh            # writes $OUT/models-cuda.json and logs
#   NEON_PERF_BIN=./neon-perf scripts/gpu-models.sh
#
# The binary: $NEON_PERF_BIN, else target/cuda-artefact/neon-perf, else
# target/cuda-artefact/neon-perf.xz (unpacked to a temp dir; 6 MB to carry
# instead of 49 MB), else target/release/neon-perf. Build the artefact with:
#   source target/cuda-toolchain/env.sh && cargo build --release --features cuda
#   mkdir -p target/cuda-artefact && strip -o target/cuda-artefact/neon-perf target/release/neon-perf
#   xz -6 -k target/cuda-artefact/neon-perf
#
# Prints a short table last. Exits with neon-perf's exit code for the CUDA
# suite (0 pass, 1 regression/failed check, 2 setup error, 3 inconclusive).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-target/gpu-models}"
mkdir -p "$OUT"
if [ -n "${NEON_PERF_BIN:-}" ]; then
  BIN="$NEON_PERF_BIN"
elif [ -x target/cuda-artefact/neon-perf ]; then
  BIN=target/cuda-artefact/neon-perf
elif [ -f target/cuda-artefact/neon-perf.xz ]; then
  BIN="$(mktemp -d)/neon-perf"
  xz -dc target/cuda-artefact/neon-perf.xz >"$BIN" && chmod +x "$BIN"
else
  BIN=target/release/neon-perf
fi
echo "gpu-models: binary $BIN ($(sha256sum "$BIN" 2>/dev/null | cut -c1-16))"

# libcudart.so.13 (linked by candle's quantized kernels) and the CUDA 13
# libraries cudarc loads at run time (libcublas, libcublasLt, libcurand, libnvrtc).
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13.0/lib64; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done

echo "== host" | tee "$OUT/host.txt"
{
  date -u +%FT%TZ
  uname -a
  (nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1 || echo "nvidia-smi failed")
  echo "-- ldd $BIN"
  ldd "$BIN" 2>&1
} | tee -a "$OUT/host.txt"

if ! "$BIN" --version >/dev/null 2>&1; then
  echo "gpu-models: $BIN does not start (see ldd above: a missing libcudart.so.13?)" >&2
  exit 2
fi

echo "== doctor"
"$BIN" doctor 2>&1 | tee "$OUT/doctor.txt" || true

echo "== models-cuda"
start=$(date +%s)
"$BIN" run suites/models-cuda.toml --json "$OUT/models-cuda.json" --markdown "$OUT/models-cuda.md" --no-color \
  2>&1 | tee "$OUT/models-cuda.txt"
rc=${PIPESTATUS[0]}
echo "models-cuda: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$OUT/models-cuda.txt"

# Summary table from the JSON (python3 ships with Ubuntu; skipped if absent).
if command -v python3 >/dev/null && [ -s "$OUT/models-cuda.json" ]; then
  python3 - "$OUT/models-cuda.json" <<'PY' | tee "$OUT/summary.txt"
import json, statistics, sys
doc = json.load(open(sys.argv[1]))
def med(m):
    s = m.get("samples") or []
    return statistics.median(s) if s else float("nan")
def fmt(v, unit):
    if v != v:
        return "-"
    if unit == "seconds":
        return f"{v*1e3:.3f} ms"
    if unit == "bytes":
        return f"{v/2**20:.1f} MiB"
    if unit == "per_second":
        return f"{v:,.0f}/s"
    return f"{v:.4g}"
print()
for sc in doc.get("scenarios", []):
    out = sc.get("outcome", {})
    print(f"{sc['suite']}::{sc['scenario']}  [{sc.get('device') or '-'}]  {out.get('status')}"
          + (f": {out.get('reason') or out.get('error')}" if out.get("status") != "ran" else ""))
    ms = {m["key"]: m for m in sc.get("metrics", [])}
    batches = sorted({int(k.split("batch=")[1].rstrip("}")) for k in ms
                      if k.startswith("latency{batch=") and "," not in k})
    if batches:
        print(f"  {'batch':>6} {'p50':>12} {'p99':>12} {'throughput':>14} {'eff':>6} {'mem peak':>12}")
        for b in batches:
            g = lambda n: ms.get(f"{n}{{batch={b}}}")
            row = [fmt(med(g("latency_p50")), "seconds") if g("latency_p50") else "-",
                   fmt(med(g("latency_p99")), "seconds") if g("latency_p99") else "-",
                   fmt(med(g("throughput")), "per_second") if g("throughput") else "-",
                   f"{med(g('scaling_efficiency')):.2f}" if g("scaling_efficiency") else "-",
                   fmt(med(g("memory_peak")), "bytes") if g("memory_peak") else "-"]
            print(f"  {b:>6} {row[0]:>12} {row[1]:>12} {row[2]:>14} {row[3]:>6} {row[4]:>12}")
    for k in ("load_time", "best_batch", "max_batch_under_slo", "harness_overhead",
              "oom_allocated", "leaked", "max_batch"):
        if k in ms:
            print(f"  {k} = {fmt(med(ms[k]), ms[k]['unit'])}")
    for k in sorted(ms):
        if k.startswith("first_inference"):
            print(f"  {k} = {fmt(med(ms[k]), 'seconds')}")
    dts = sorted({k.split("dtype=")[1].rstrip("}") for k in ms if k.startswith("speedup{")})
    if dts:
        print(f"  {'dtype':>6} {'speedup':>9} {'rel_l2_err':>11} {'weights':>11}")
        for d in dts:
            sp, er = ms.get(f"speedup{{dtype={d}}}"), ms.get(f"rel_l2_error{{dtype={d}}}")
            wb = ms.get(f"weights_bytes{{dtype={d}}}")
            print(f"  {d:>6} {med(sp):>8.2f}x {med(er):>11.2e} {fmt(med(wb), 'bytes') if wb else '-':>11}")
    for c in sc.get("checks", []):
        print(f"  check {'PASS' if c['passed'] else 'FAIL'} {c['name']}: {c['evidence']}")
    print()
print("exit code:", doc.get("exit_code"))
PY
fi
exit "$rc"
