#!/usr/bin/env bash
# GPU check of the gate itself (not the executors): on a lent GPU host, after
# carrying .gpu/ (release binary + COMMIT):
#   1. the stored-baseline gate of suites/gpu.toml against the committed H100
#      baseline, with the HTML report (real NVML timelines);
#   2. paired A/B (`run --against`) of four kernels against an identical copy
#      of the tree (A/A);
#   3. paired A/B against a base tree whose saxpy kernel reads a third input
#      (a slower base: the head should come out `improved`);
#   4. `calibrate` of three kernels, 5 runs each.
# Everything lands under $OUT; every step has its own time limit.
set -u
OUT="${OUT:-./gpu-out}"
BIN="${NEON_PERF_BIN:-.gpu/neon-perf}"
mkdir -p "$OUT"
[ -f .gpu/COMMIT ] && export NEON_PERF_COMMIT="$(cat .gpu/COMMIT)"
start=$(date +%s)
note() { echo "[gpu-paired +$(( $(date +%s) - start ))s] $*"; }
note "host: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1); $(date -u +%FT%TZ); commit ${NEON_PERF_COMMIT:-?}"

"$BIN" doctor > "$OUT/doctor.txt" 2>&1
note "doctor: exit $?"

timeout 150 "$BIN" run suites/gpu.toml --json "$OUT/gate.json" --html "$OUT/gate.html" \
    --markdown "$OUT/gate.md" > "$OUT/gate.log" 2>&1
note "gate vs committed baseline: exit $?"
grep -E '^ +[A-Z-]+ \[' "$OUT/gate.log" | cut -c1-200

KERNELS=(-f gpu::copy -f gpu::saxpy -f gpu::sgemm -f gpu::bf16gemm --exact)
rm -rf /tmp/np-base-aa && mkdir -p /tmp/np-base-aa && cp -r suites /tmp/np-base-aa/
timeout 150 "$BIN" run suites/gpu.toml --against /tmp/np-base-aa "${KERNELS[@]}" \
    --json "$OUT/paired-aa.json" --html "$OUT/paired-aa.html" > "$OUT/paired-aa.log" 2>&1
note "paired A/A: exit $?"
grep -E '^ +[A-Z-]+ \[' "$OUT/paired-aa.log" | cut -c1-200

rm -rf /tmp/np-base-slow && mkdir -p /tmp/np-base-slow && cp -r suites /tmp/np-base-slow/
python3 - /tmp/np-base-slow/suites/kernels/saxpy.cu <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = "        float4 yv = reinterpret_cast<const float4*>(y)[i];\n"
new = old + ("        // base tree only: one more read (of x, far away) per element,\n"
             "        // added as 0*w so the result is unchanged for finite inputs.\n"
             "        float4 w = reinterpret_cast<const float4*>(x)[(i + n4 / 2) % n4];\n"
             "        yv.x = fmaf(0.0f, w.x, yv.x); yv.y = fmaf(0.0f, w.y, yv.y);\n"
             "        yv.z = fmaf(0.0f, w.z, yv.z); yv.w = fmaf(0.0f, w.w, yv.w);\n")
assert old in s
open(p, "w").write(s.replace(old, new, 1))
PY
timeout 100 "$BIN" run suites/gpu.toml --against /tmp/np-base-slow -f gpu::saxpy --exact \
    --json "$OUT/paired-slow-base.json" > "$OUT/paired-slow-base.log" 2>&1
note "paired against a slower base saxpy: exit $?"
grep -E '^ +[A-Z-]+ \[' "$OUT/paired-slow-base.log" | cut -c1-200

timeout 150 "$BIN" calibrate suites/gpu.toml -f gpu::copy -f gpu::saxpy -f gpu::bf16gemm --exact \
    --runs 5 --json "$OUT/calibrate.json" --markdown "$OUT/calibrate.md" > "$OUT/calibrate.log" 2>&1
note "calibrate: exit $?"
cat "$OUT/calibrate.md"
note "done"
