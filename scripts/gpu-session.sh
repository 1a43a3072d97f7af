#!/usr/bin/env bash
# Everything this project checks on a lent GPU host (no Rust, no network),
# in one call. Build here first, then carry `.gpu/`:
#     bash scripts/gpu-build.sh          # release binary + GPU test binaries → .gpu/
#     OUT=... bash scripts/gpu-session.sh   # on the GPU host
# Writes under $OUT: summary.md (the table), all.tgz (every log and JSON).
set -u
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT"
export OUT
export NEON_PERF_BIN="${NEON_PERF_BIN:-.gpu/neon-perf}"
# The device copy of the tree has no .git: scripts/gpu-build.sh records the commit.
[ -f .gpu/COMMIT ] && export NEON_PERF_COMMIT="$(cat .gpu/COMMIT)"
start=$(date +%s)
note() { echo "[gpu-session +$(( $(date +%s) - start ))s] $*"; }

note "host: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1); $(date -u +%FT%TZ)"

# 1. The executors' own GPU tests: every gpu.toml scenario at small sizes, checks must pass.
if [ -x .gpu/cuda_executors ]; then
    timeout 150 .gpu/cuda_executors --test-threads 1 --nocapture > "$OUT/cuda-tests.log" 2>&1
    note "cuda_executors tests: exit $? — $(grep -E '^test result' "$OUT/cuda-tests.log" | tr '\n' ' ')"
    grep -E 'FAILED|panicked' "$OUT/cuda-tests.log" | head -n 10
fi

# 2. doctor, bless + gate of suites/gpu.toml, PyTorch comparison, summary table.
bash scripts/gpu-check.sh > "$OUT/gpu-check.log" 2>&1
note "gpu-check.sh: exit $?"
grep -E '^\[gpu-check' "$OUT/gpu-check.log" | cut -c1-400

# 3. candle models on CUDA, when the `cuda` feature build was carried.
if [ -f .gpu/neon-perf-cuda.xz ] && [ ! -x .gpu/neon-perf-cuda ]; then
    xz -dc .gpu/neon-perf-cuda.xz > .gpu/neon-perf-cuda && chmod +x .gpu/neon-perf-cuda
fi
if [ -x .gpu/neon-perf-cuda ] && [ -f scripts/gpu-models.sh ]; then
    NEON_PERF_BIN=.gpu/neon-perf-cuda timeout 420 bash scripts/gpu-models.sh > "$OUT/models.log" 2>&1
    note "gpu-models.sh: exit $?"
    tail -n 60 "$OUT/models.log"
fi

# 4. The team's own model (issue #20): the PyTorch example through the CLI —
#    the helper's CUDA-event timing, synchronization check and per-phase CUDA
#    memory, a command sweep and find_max_batch under RLIMIT_DATA with CUDA
#    loaded. Never run on a GPU before this script.
if python3 -c "import torch" 2>/dev/null; then
    NEON_PERF_CACHE="$OUT/cache" timeout 300 "$NEON_PERF_BIN" run examples/pytorch/pytorch.toml \
        --baselines "$OUT/pytorch-baselines" --json "$OUT/pytorch.json" > "$OUT/pytorch.log" 2>&1
    note "pytorch example: exit $?"
    grep -E 'NO-BASELINE|FAILED|IGNORED|check .* failed|Summary' "$OUT/pytorch.log" | head -n 20
    # process_gpu_memory{at=start|peak|end} of each command run (NVML, the
    # program's process tree by its NEON_PERF_TREE tag): never run on a GPU.
    python3 - "$OUT/pytorch.json" <<'PY' | tee -a "$OUT/summary.md"
import json, statistics, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"process_gpu_memory: no results ({e})"); sys.exit(0)
rows = [(s["scenario"], m["key"], statistics.median(m["samples"]))
        for s in r["scenarios"] for m in s["metrics"] if m["key"].startswith("process_gpu_memory")]
print(f"process_gpu_memory: {len(rows)} series")
for sc, k, v in rows[:12]:
    print(f"  {sc} {k} median {v / 2**20:.1f} MiB")
PY
else
    note "pytorch example: skipped, python3 cannot import torch"
fi
# Profilers for issue #22: which are installed, and `--profile always` of
# one gpu_kernel scenario (perf of its host side; with nsys, the CUDA kernel
# table and a .nsys-rep). Never run on a GPU before this script.
note "profilers: nsys=$(command -v nsys || echo absent) ncu=$(command -v ncu || echo absent) perf=$(command -v perf || echo absent)"
# A copy of the suite with `profile_kernels = true` (ncu's figures too).
sed 's/^\[defaults\]$/[defaults]\nprofile_kernels = true/' suites/gpu.toml > suites/gpu-profile.toml
NEON_PERF_REPORTS_DIR="$OUT/profile" NEON_PERF_CACHE="$OUT/cache" timeout 120 "$NEON_PERF_BIN" run suites/gpu-profile.toml \
    --exact -f gpu::saxpy --smoke --profile always --baselines "$OUT/profile-baselines" \
    --json "$OUT/profile.json" > "$OUT/profile.log" 2>&1
note "--profile always of gpu::saxpy: exit $?"
rm -f suites/gpu-profile.toml
sed -n '/profile (/,/^$/p' "$OUT/profile.log" | head -n 30 | tee -a "$OUT/summary.md"

(cd "$OUT" && tar czf all.tgz --exclude=all.tgz . 2>/dev/null)
note "done in $(( $(date +%s) - start ))s"
echo "================ summary ================"
cat "$OUT/summary.md" 2>/dev/null || tail -n 30 "$OUT/gpu-check.log"
