#!/usr/bin/env bash
# Offline proxy for the CUDA driver's JIT cost of candle's kernels: compiles
# each PTX module candle-kernels embeds (from a `--features cuda` build) to
# SASS with ptxas, timing each. No GPU needed. See docs/models.md
# ("First inference on CUDA").
#
#   source target/cuda-toolchain/env.sh && scripts/ptx-jit-cost.sh [ARCH]   # ARCH default sm_90a
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
arch="${1:-sm_90a}"
ptxas="${CUDA_HOME:-target/cuda-toolchain/root/nvidia/cu13}/bin/ptxas"
out=$(ls -td target/*/build/candle-kernels-*/out 2>/dev/null | while read -r d; do
  [ -f "$d/binary.ptx" ] && echo "$d" && break; done)
[ -n "$out" ] || { echo "ptx-jit-cost: no candle-kernels PTX under target/*/build (build --features cuda first)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-10s %10s %9s %10s\n' module ptx_bytes seconds cubin_bytes
for f in "$out"/*.ptx; do
  m=$(basename "$f" .ptx)
  s=$(date +%s.%N)
  "$ptxas" -arch="$arch" -O3 "$f" -o "$tmp/$m.cubin"
  e=$(date +%s.%N)
  printf '%-10s %10d %9.2f %10d\n' "$m" "$(stat -c %s "$f")" "$(echo "$e - $s" | bc)" "$(stat -c %s "$tmp/$m.cubin")"
done
