#!/usr/bin/env bash
# One-shot GPU check on a CUDA host without a Rust toolchain or network
# (e.g. a lent H100). Run from the repo root after copying the release binary
# to target/release/neon-perf:
#     OUT=./gpu-out scripts/gpu-check.sh
# Blesses suites/gpu.toml three times into $OUT/baselines, then gates against
# that baseline. Writes doctor.txt/json, gpu.json (the first bless),
# bless-2/3.json, gate.json, torch.json, logs and summary.md under $OUT, and
# prints the summary table last. Every step has its own time limit (doctor
# 2 x 20 s, bless 3 x 120 s, gate 150 s, torch 100 s, summary 20 s: at most
# 670 s in all; the 60 s fallback runs only when there is no gpu.json within
# the first 150 s) and a failing step never stops the next one: no `set -e`.
set -u

OUT="${OUT:-./gpu-out}"
BIN="${NEON_PERF_BIN:-target/release/neon-perf}"
PY="${PYTHON:-python3}"
COPY_N=268435456   # suites/gpu.toml: copy
SAXPY_N=67108864   # suites/gpu.toml: saxpy (largest n)
mkdir -p "$OUT"
start=$(date +%s)
note() { echo "[gpu-check +$(( $(date +%s) - start ))s] $*"; }

# NVRTC and cuBLAS where the driver install lacks them (LD_LIBRARY_PATH).
. "$(dirname "${BASH_SOURCE[0]}")/gpu-libs.sh"
[ -n "$GPU_LIBS_ADDED" ] && note "LD_LIBRARY_PATH += $GPU_LIBS_ADDED"

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv; nvidia-smi; } \
    > "$OUT/nvidia-smi.txt" 2>&1

if [ ! -x "$BIN" ]; then
    note "MISSING $BIN: copy the release binary there (built with cargo build --release)"
else
    timeout 20 "$BIN" doctor > "$OUT/doctor.txt" 2> "$OUT/doctor.err"
    note "doctor: exit $? ($(grep -c . "$OUT/doctor.txt" 2>/dev/null || echo 0) lines)"
    timeout 20 "$BIN" doctor --json > "$OUT/doctor.json" 2>> "$OUT/doctor.err"
    note "doctor --json: exit $?"
    # Bless (measures and records this GPU's baseline), then gate against it:
    # the same suite twice on unchanged code must pass.
    # Three blessed runs, so the baseline knows the run-to-run spread
    # (docs/gate-design.md): one bless with `--runs 1` each time, three
    # times (a binary from before 2026-11-27 22:00 has no --runs and
    # records one run per bless anyway); the first one's JSON is kept.
    runs=()
    "$BIN" bless --help 2>/dev/null | grep -q -- '--runs' && runs=(--runs 1)
    for i in 1 2 3; do
        json="$OUT/gpu.json"; [ "$i" = 1 ] || json="$OUT/bless-$i.json"
        timeout 120 "$BIN" bless suites/gpu.toml --baselines "$OUT/baselines" \
            --reason "${BLESS_REASON:-gpu-check} (run $i of 3)" "${runs[@]}" --json "$json" > "$OUT/run-$i.log" 2>&1
        note "bless $i suites/gpu.toml: exit $? (0 pass, 1 failed check, 2 setup error; 124 timeout)"
    done
    cp "$OUT/run-1.log" "$OUT/run.log"
    timeout 150 "$BIN" run suites/gpu.toml --baselines "$OUT/baselines" \
        --json "$OUT/gate.json" > "$OUT/gate.log" 2>&1
    note "run suites/gpu.toml against that baseline: exit $? — $(grep -E '^Summary' "$OUT/gate.log" | cut -c1-300)"
    if [ ! -s "$OUT/gpu.json" ]; then
        note "no gpu.json; last lines of run.log:"
        tail -n 25 "$OUT/run.log"
    fi
fi

# Fallback when `run` produced nothing: the executors' own test binary (built
# elsewhere with `cargo test --release --test cuda_executors --no-run` and
# copied to target/gpu-tests/cuda_executors) runs every suites/gpu.toml
# scenario at small sizes and asserts every check passes.
FALLBACK="${NEON_PERF_FALLBACK_TEST:-target/gpu-tests/cuda_executors}"
if [ ! -s "$OUT/gpu.json" ] && [ -x "$FALLBACK" ] && [ $(( $(date +%s) - start )) -lt 150 ]; then
    timeout 60 "$FALLBACK" --test-threads 1 --nocapture > "$OUT/fallback.log" 2>&1
    note "fallback executor test: exit $? — $(grep -E 'test result|panicked' "$OUT/fallback.log" | head -n 3 | tr '\n' ' ' | cut -c1-600)"
fi

timeout 100 "$PY" scripts/gpu_check.py torch --out "$OUT" --copy-n "$COPY_N" --saxpy-n "$SAXPY_N" \
    > "$OUT/torch.log" 2>&1
note "torch: exit $? — $(tail -n 1 "$OUT/torch.log" 2>/dev/null | cut -c1-300)"

cat "$OUT/doctor.txt" 2>/dev/null | head -n 30
timeout 20 "$PY" scripts/gpu_check.py summary --out "$OUT"
note "done in $(( $(date +%s) - start ))s; files in $OUT"
