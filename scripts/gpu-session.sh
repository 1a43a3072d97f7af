#!/usr/bin/env bash
# Everything this project checks on a lent GPU host (no Rust, no network),
# in one call. Build here first, then carry `.gpu/`:
#     bash scripts/gpu-build.sh          # release binary + GPU test binaries → .gpu/
#     OUT=... bash scripts/gpu-session.sh   # on the GPU host
# Works in $GPU_WORK (default: a new folder under /tmp): every step's log
# and JSON. Into $OUT go only session.md (a line per step), all.tgz (the
# whole work folder), and the two summaries when their steps ran
# (gpu-check-summary.md, models-summary.txt): the device tool brings back
# at most 8 files from $OUT, 16 MiB each.
#
# The whole script keeps to BUDGET_S seconds (default 480; the device tool
# allows 600 s a call): each step's own limit is cut to what is left, and a
# step with under 20 s left is skipped and says so. Steps run in order of
# what has never run on a GPU before, so a short session still sees those:
#   0. NVML's PIDs          whether they are this PID namespace's (a few seconds)
#   1. cuda_executors       the executors' GPU tests (#18's splits)
#   2. pytorch example      #20: helper timing/sync/phases, process GPU memory, gpu:F
#   3. ws backend on a GPU  #19: server_gpu_memory, `cancel`'s GPU half
#   4. profilers            #22: which are installed, --profile always of gpu::saxpy
#   5. gpu-models.sh        candle on CUDA, find_max_batch on CUDA (needs the cuda build)
#   6. gpu-check.sh         doctor, bless ×3 + gate of suites/gpu.toml, PyTorch comparison
#                           (ran on H100s before: last, so it takes what time is left)
set -u
DEST="${OUT:-./gpu-out}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
# The steps write under the work folder; OUT names it for them (and for
# gpu-check.sh and gpu-models.sh, which write under $OUT).
made_work=""
[ -n "${GPU_WORK:-}" ] || made_work=1
OUT="${GPU_WORK:-$(mktemp -d /tmp/gpu-session.XXXXXX)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export OUT
# neon-perf's launcher and Python helper are written to, and run from,
# its cache: keep that off $DEST (a mount the tool reads back).
export NEON_PERF_CACHE="${NEON_PERF_CACHE:-$OUT/cache}"
# The driver's JIT cache of candle's PTX, shared by step 5's probe
# processes, in a place known to be writable.
export CUDA_CACHE_PATH="${CUDA_CACHE_PATH:-/tmp/neon-perf-cuda-cache}"
export NEON_PERF_BIN="${NEON_PERF_BIN:-.gpu/neon-perf}"
PY="${PYTHON:-python3}"
BUDGET_S="${BUDGET_S:-480}"
# The device copy of the tree has no .git: scripts/gpu-build.sh records the commit.
[ -f .gpu/COMMIT ] && export NEON_PERF_COMMIT="$(cat .gpu/COMMIT)"
# `websockets` for the example backend, copied by gpu-build.sh (pure Python).
[ -d .gpu/pylib ] && export PYTHONPATH="$PWD/.gpu/pylib${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
# Each step's line goes to $DEST/session.md as it happens, so a call cut
# short still brings back how far it got.
record() { tee -a "$OUT/session.md" "$DEST/session.md"; }
note() { echo "[gpu-session +$(( $(date +%s) - start ))s] $*" | record; }
# The end: all.tgz of the work folder (under 15 MiB: without the profilers'
# reports if need be) and the summaries into $DEST.
finish() {
    (cd "$OUT" && tar czf "$DEST/all.tgz" --exclude=cache . 2>/dev/null) || true
    if [ "$(stat -c %s "$DEST/all.tgz" 2>/dev/null || echo 0)" -gt $((15 << 20)) ]; then
        (cd "$OUT" && tar czf "$DEST/all.tgz" --exclude=cache --exclude='*.nsys-rep' \
            --exclude='*.sqlite' --exclude='*.ncu-rep' --exclude='*.data' . 2>/dev/null) || true
        note "all.tgz over 15 MiB: made again without the profilers' reports ($(du -h "$DEST/all.tgz" | cut -f1))"
    fi
    [ -f "$OUT/summary.md" ] && cp "$OUT/summary.md" "$DEST/gpu-check-summary.md"
    [ -f "$OUT/models/summary.txt" ] && cp "$OUT/models/summary.txt" "$DEST/models-summary.txt"
    # A work folder of its own making is gone once archived.
    [ -n "$made_work" ] && rm -rf "$OUT"
    true
}
trap finish EXIT
trap 'exit 143' TERM INT
# limit WANT → WANT cut to the budget left (10 s kept for the archive); 0 = skip.
limit() {
    local left=$(( BUDGET_S - ($(date +%s) - start) - 10 ))
    local s=$(( $1 < left ? $1 : left ))
    [ "$s" -ge 20 ] && echo "$s" || echo 0
}

. scripts/gpu-libs.sh
note "host: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1); $(date -u +%FT%TZ); budget ${BUDGET_S}s; work folder $OUT"
[ -n "$GPU_LIBS_ADDED" ] && note "LD_LIBRARY_PATH += $GPU_LIBS_ADDED"
[ -x "$NEON_PERF_BIN" ] || note "MISSING $NEON_PERF_BIN: run scripts/gpu-build.sh and carry .gpu/"

# 0. Whether NVML names processes by the PIDs seen here (the driver reports
#    host PIDs: in a container with its own PID namespace, process and
#    server GPU memory cannot be attributed, and neon-perf says so). A
#    PyTorch process holds 256 MiB; nvidia-smi lists the PIDs it sees.
if "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && command -v nvidia-smi >/dev/null; then
    timeout 30 "$PY" -c "import os, sys, time, torch; x = torch.empty(256 << 20, dtype=torch.uint8, device='cuda'); torch.cuda.synchronize(); print('pid', os.getpid(), flush=True); time.sleep(6)" \
        > "$OUT/pid-probe.txt" 2>&1 &
    probe=$!
    for _ in $(seq 40); do grep -q '^pid ' "$OUT/pid-probe.txt" && break; sleep 0.5; done
    apps=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>&1 | tr '\n' ';')
    wait "$probe"
    note "0 NVML pids (probe exit $?): python's own $(grep -m1 '^pid ' "$OUT/pid-probe.txt" || echo 'pid: none (see pid-probe.txt)'); nvidia-smi lists: ${apps:-none} (a match: NVML's PIDs are this namespace's)"
fi

# 1. The executors' own GPU tests: every gpu.toml scenario at small sizes, checks must pass.
t=$(limit 100)
if [ ! -x .gpu/cuda_executors ]; then
    note "1 cuda_executors: skipped, .gpu/cuda_executors not built"
elif [ "$t" = 0 ]; then
    note "1 cuda_executors: skipped, out of time"
else
    timeout "$t" .gpu/cuda_executors --test-threads 1 --nocapture > "$OUT/cuda-tests.log" 2>&1
    note "1 cuda_executors: exit $? — $(grep -E '^test result' "$OUT/cuda-tests.log" | tr '\n' ' ')"
    grep -E 'FAILED|panicked' "$OUT/cuda-tests.log" | head -n 10
fi

# 2. The team's own model (#20): the PyTorch example through the CLI — the
#    helper's CUDA-event timing, synchronization check and per-phase CUDA
#    memory, a command sweep, find_max_batch under RLIMIT_DATA with CUDA
#    loaded and under `gpu:0.05`, and process_gpu_memory of each run.
#    With a GPU that PyTorch sees, infer.py must run on it (INFER_DEVICE):
#    a CUDA that fails to start in a probe is then an error, not a quiet
#    CPU run.
t=$(limit 220)
if ! "$PY" -c "import torch" 2>/dev/null; then
    note "2 pytorch example: skipped, $PY cannot import torch"
elif [ "$t" = 0 ]; then
    note "2 pytorch example: skipped, out of time"
else
    cuda=$("$PY" -c "import torch; print(torch.cuda.is_available())" 2>&1 | tail -n 1)
    note "2 pytorch example: torch.cuda.is_available() = $cuda"
    [ "$cuda" = True ] && export INFER_DEVICE=cuda
    timeout "$t" "$NEON_PERF_BIN" run examples/pytorch/pytorch.toml \
        --baselines "$OUT/pytorch-baselines" --json "$OUT/pytorch.json" > "$OUT/pytorch.log" 2>&1
    note "2 pytorch example: exit $? (limit ${t}s)"
    grep -E 'NO-BASELINE|FAILED|IGNORED|check .* failed|max_batch|Summary' "$OUT/pytorch.log" | head -n 20
    "$PY" scripts/gpu_session_metrics.py "$OUT/pytorch.json" process_gpu_memory gpu_allocated max_batch \
        | record
fi

# 3. A streaming backend holding GPU memory (#19): server_gpu_memory{at=peak}
#    and the `cancel` check's GPU half, clean (must pass) and leaking 1 MiB
#    of GPU memory per cancelled stream (its cancel check must fail: exit 1).
if ! "$PY" -c "import torch, websockets" 2>/dev/null; then
    note "3 ws backend on a GPU: skipped, $PY cannot import torch and websockets"
else
    for sc in gpu-stream gpu-leak; do
        t=$(limit 60)
        [ "$t" = 0 ] && { note "3 ws-backend-gpu::$sc: skipped, out of time"; continue; }
        NEON_PERF_REPORTS_DIR="$OUT/ws-$sc" timeout "$t" "$NEON_PERF_BIN" run \
            examples/ws-backend/gpu.toml -f "ws-backend-gpu::$sc" --exact \
            --baselines "$OUT/ws-baselines" --json "$OUT/ws-$sc.json" > "$OUT/ws-$sc.log" 2>&1
        note "3 ws-backend-gpu::$sc: exit $? (gpu-stream expects 0, gpu-leak 1)"
        grep -E 'cancel|server_gpu_memory|FAILED' "$OUT/ws-$sc.log" | head -n 6 | cut -c1-600 | record
        "$PY" scripts/gpu_session_metrics.py "$OUT/ws-$sc.json" server_gpu_memory server_rss | record
    done
fi

# 4. Profilers (#22): which are installed, and `--profile always` of one
#    gpu_kernel scenario (perf of its host side; with nsys, the CUDA kernel
#    table and a .nsys-rep; with ncu and profile_kernels, % of peak).
note "4 profilers: nsys=$(command -v nsys || echo absent) ncu=$(command -v ncu || echo absent) perf=$(command -v perf || echo absent)"
t=$(limit 90)
if [ "$t" = 0 ]; then
    note "4 --profile always of gpu::saxpy: skipped, out of time"
else
    # A copy of the suite with `profile_kernels = true`, under $OUT: kernel
    # sources made absolute, so nothing is written into suites/.
    sed -e 's/^\[defaults\]$/[defaults]\nprofile_kernels = true/' \
        -e "s|^source = \"kernels/|source = \"$PWD/suites/kernels/|" suites/gpu.toml > "$OUT/gpu-profile.toml"
    NEON_PERF_REPORTS_DIR="$OUT/profile" timeout "$t" "$NEON_PERF_BIN" run "$OUT/gpu-profile.toml" \
        --exact -f gpu::saxpy --smoke --profile always --baselines "$OUT/profile-baselines" \
        --json "$OUT/profile.json" > "$OUT/profile.log" 2>&1
    note "4 --profile always of gpu::saxpy: exit $?"
    sed -n '/profile (/,/^$/p' "$OUT/profile.log" | head -n 30 | record
fi

# 5. candle models on CUDA and find_max_batch on CUDA, when the `cuda`
#    feature build was carried: one run of the suite (RUNS=1; a second
#    would show what the JIT cache saves, when time allows another call).
if [ -f .gpu/neon-perf-cuda.xz ] && [ ! -x .gpu/neon-perf-cuda ]; then
    xz -dc .gpu/neon-perf-cuda.xz > .gpu/neon-perf-cuda && chmod +x .gpu/neon-perf-cuda
fi
t=$(limit 240)
if [ ! -x .gpu/neon-perf-cuda ]; then
    note "5 gpu-models.sh: skipped, no .gpu/neon-perf-cuda (WITH_CUDA_FEATURE=1 or CUDA_BIN for gpu-build.sh)"
elif [ "$t" = 0 ]; then
    note "5 gpu-models.sh: skipped, out of time"
else
    RUNS="${MODEL_RUNS:-1}" NEON_PERF_BIN=.gpu/neon-perf-cuda OUT="$OUT/models" timeout "$t" bash scripts/gpu-models.sh > "$OUT/models.log" 2>&1
    note "5 gpu-models.sh: exit $? (limit ${t}s)"
    tail -n 60 "$OUT/models.log"
fi

# 6. doctor, bless ×3 + gate of suites/gpu.toml, PyTorch comparison, summary table.
t=$(limit 300)
if [ "$t" = 0 ]; then
    note "6 gpu-check.sh: skipped, out of time"
else
    timeout "$t" bash scripts/gpu-check.sh > "$OUT/gpu-check.log" 2>&1
    note "6 gpu-check.sh: exit $? (limit ${t}s)"
    grep -E '^\[gpu-check' "$OUT/gpu-check.log" | cut -c1-400
fi

note "done"
