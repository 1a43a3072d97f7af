#!/usr/bin/env bash
# Builds what scripts/gpu-session.sh runs on a GPU host, into .gpu/ (ignored
# by git; carried by the device tool): the release binary, the executors'
# GPU test binary, the `cuda`-feature binary when that build is set up, and
# the pure-Python `websockets` for the example backend (.gpu/pylib).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
cargo build --release
cp target/release/neon-perf .gpu/neon-perf
test_bin=$(cargo test --release --test cuda_executors --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda_executors":
        print(m["executable"])')
cp "$test_bin" .gpu/cuda_executors
if [ -n "${CUDA_BIN:-}" ]; then
    # A `cuda`-feature binary built elsewhere (e.g. another worktree's
    # target/cuda-artefact/neon-perf): the cold cuda build takes ~25 min on 2 cores.
    cp "$CUDA_BIN" .gpu/neon-perf-cuda
elif [ "${WITH_CUDA_FEATURE:-0}" = 1 ]; then
    # Needs scripts/cuda-toolchain.sh's environment (nvcc from PyPI wheels):
    #   bash scripts/cuda-toolchain.sh && source target/cuda-toolchain/env.sh
    cargo build --release --features cuda --target-dir target/cuda
    cp target/cuda/release/neon-perf .gpu/neon-perf-cuda
fi
# `websockets` for the example backend on the GPU host (no network there):
# the pure-Python package from scripts/ws/setup.sh's venv (its C speedups
# are optional and left out; they would not match the host's Python).
# (`|| true`: without the venv, `ls` fails, and under `set -e` the script
# would end here, silently, before the strip below.)
site=$(ls -d target/ws-venv/lib/python3*/site-packages/websockets 2>/dev/null | head -n 1 || true)
if [ -n "$site" ]; then
    rm -rf .gpu/pylib && mkdir -p .gpu/pylib
    cp -r "$site" .gpu/pylib/ && rm -rf .gpu/pylib/websockets/__pycache__ .gpu/pylib/websockets/*/__pycache__
    rm -f .gpu/pylib/websockets/speedups*.so
else
    echo "note: no target/ws-venv (bash scripts/ws/setup.sh): the session's step 3 needs websockets on the host" >&2
fi
git rev-parse HEAD > .gpu/COMMIT
[ -z "$(git status --porcelain --untracked-files=no)" ] || sed -i "s/$/-dirty/" .gpu/COMMIT
strip .gpu/neon-perf* .gpu/cuda_executors 2>/dev/null || true
# The cuda binary is ~49-55 MiB stripped (candle's PTX and SASS); the device
# tool carries 64 MiB in all, so it travels xz-compressed (~6 MiB).
if [ -f .gpu/neon-perf-cuda ]; then
    rm -f .gpu/neon-perf-cuda.xz && xz -6 .gpu/neon-perf-cuda
fi
ls -la .gpu
