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
# Runs the suite $RUNS times (default 2, fresh processes: the second shows
# what the driver's JIT cache saves on first inference) and prints a short
# table per run last. Exits with neon-perf's first non-zero exit code for the
# CUDA suite (0 pass, 1 regression/failed check, 2 setup error, 3 inconclusive).
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

# The suite runs $RUNS times in a row (default 2), each a fresh process: the
# first pays what no cache covers (the driver JIT-compiles candle's PTX
# modules on first load), the second shows what the driver's JIT cache
# (~/.nv/ComputeCache unless CUDA_CACHE_PATH says otherwise) saves.
RUNS="${RUNS:-2}"
cache_dir="${CUDA_CACHE_PATH:-$HOME/.nv/ComputeCache}"
cache_state() {
  echo "jit cache $cache_dir: $(du -sh "$cache_dir" 2>/dev/null | cut -f1 || echo absent)" \
    "($(find "$cache_dir" -type f 2>/dev/null | wc -l) files);" \
    "CUDA_CACHE_DISABLE=${CUDA_CACHE_DISABLE:-unset} CUDA_CACHE_MAXSIZE=${CUDA_CACHE_MAXSIZE:-unset}" \
    "CUDA_MODULE_LOADING=${CUDA_MODULE_LOADING:-unset}"
}
rc=0
for run in $(seq 1 "$RUNS"); do
  sfx=""; [ "$run" -gt 1 ] && sfx="-run$run"
  echo "== models-cuda run $run of $RUNS"
  cache_state | tee -a "$OUT/jit-cache.txt"
  start=$(date +%s)
  "$BIN" run suites/models-cuda.toml --json "$OUT/models-cuda$sfx.json" --markdown "$OUT/models-cuda$sfx.md" --no-color \
    2>&1 | tee "$OUT/models-cuda$sfx.txt"
  r=${PIPESTATUS[0]}
  echo "models-cuda run $run: exit $r after $(( $(date +%s) - start )) s" | tee -a "$OUT/models-cuda$sfx.txt"
  [ "$rc" -eq 0 ] && rc=$r
done
cache_state | tee -a "$OUT/jit-cache.txt"

# Summary table from the JSON (python3 ships with Ubuntu; skipped if absent).
for run in $(seq 1 "$RUNS"); do
  sfx=""; [ "$run" -gt 1 ] && sfx="-run$run"
  json="$OUT/models-cuda$sfx.json"
  command -v python3 >/dev/null && [ -s "$json" ] || continue
  echo "== summary of run $run" | tee -a "$OUT/summary.txt"
  python3 - "$json" <<'PY' | tee -a "$OUT/summary.txt"
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
    for k in ("device_init", "load_time", "best_batch", "max_batch_under_slo", "harness_overhead",
              "oom_allocated", "leaked", "max_batch", "max_batch_memory", "max_batch_probes",
              "max_batch_search_time"):
        if k in ms:
            print(f"  {k} = {fmt(med(ms[k]), ms[k]['unit'])}")
    for k in sorted(ms):
        if k.startswith(("first_inference", "second_inference")):
            print(f"  {k} = {fmt(med(ms[k]), 'seconds')}")
    for k in ("probe_device_init", "probe_forward"):
        s = (ms.get(k) or {}).get("samples") or []
        if s:
            print(f"  {k}: first probe {s[0]*1e3:.1f} ms, median {statistics.median(s)*1e3:.1f} ms, max {max(s)*1e3:.1f} ms over {len(s)}")
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
done
exit "$rc"
