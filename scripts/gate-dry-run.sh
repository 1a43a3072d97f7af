#!/usr/bin/env bash
# A dry run of the perf-gate job (.github/workflows/perf-gate.yml) on this
# machine: the job's own steps (scripts/perf-gate.sh build, gate, paired,
# comment, verdict), with GITHUB_OUTPUT and GITHUB_STEP_SUMMARY pointed at
# files and GITHUB_ACTIONS=true, so the annotations, the step summary, the
# comment body and the artifacts appear as they would on a runner.
#
# To show a regression without a GPU, it first blesses the example suite
# into a scratch baselines folder for this hardware, then runs the gate with
# the built-in workload slowed down by NEON_PERF_SLOWDOWN (default 0.3: 30%
# more work per sample). Only the example suite runs (NEON_PERF_SUITES), to
# keep it short, in the copy tests/fixtures/ci/dry-run.toml, which allows
# CPU contention (a shared build machine makes every CPU run `invalid`
# otherwise) and reports the OS timings ungated. Everything lands in
# target/gate-dry-run/.
set -euo pipefail
cd "$(dirname "$0")/.."

root="$PWD/target/gate-dry-run"
rm -rf "$root"
mkdir -p "$root"
export REPORTS="$root/neon-perf"
export GITHUB_ACTIONS=true
export GITHUB_WORKSPACE="$PWD"
export GITHUB_OUTPUT="$root/github-output.txt"
export GITHUB_STEP_SUMMARY="$root/step-summary.md"
export NEON_PERF_SUITES="${NEON_PERF_SUITES:-$PWD/tests/fixtures/ci/dry-run.toml}"
export NEON_PERF_BASELINES="$root/baselines"
# The pull request's base: the commit this tree is on.
export BASE_SHA="${BASE_SHA:-$(git rev-parse HEAD)}"
export RUNNER_TEMP="$root"
slowdown="${NEON_PERF_SLOWDOWN:-0.3}"
unset NEON_PERF_SLOWDOWN
touch "$GITHUB_OUTPUT" "$GITHUB_STEP_SUMMARY"

step() { echo; echo "=== $*"; }

step "build (scripts/perf-gate.sh build)"
scripts/perf-gate.sh build

step "setup, not a job step: bless $NEON_PERF_SUITES into $NEON_PERF_BASELINES"
GITHUB_STEP_SUMMARY=/dev/null NEON_BLESS=1 NEON_BLESS_REASON="gate dry run" \
  NEON_PERF_ANNOTATIONS=none cargo test --release --locked --test perf >"$root/bless.log" 2>&1 ||
  { cat "$root/bless.log"; exit 1; }
tail -n 3 "$root/bless.log"

step "gate with the workload ${slowdown} slower (scripts/perf-gate.sh gate)"
NEON_PERF_SLOWDOWN="$slowdown" scripts/perf-gate.sh gate 2>&1 | tee "$root/gate.log"

step "paired A/B (scripts/perf-gate.sh paired)"
scripts/perf-gate.sh paired 2>&1 | tee "$root/paired.log"

step "comment body (scripts/perf-gate.sh comment)"
scripts/perf-gate.sh comment

step "verdict (scripts/perf-gate.sh verdict)"
set +e
scripts/perf-gate.sh verdict
verdict=$?
set -e

step "what the job produced"
echo "annotations (workflow commands in the gate's output):"
grep -E '^::(error|warning)' "$root/gate.log" "$root/paired.log" || echo "  none"
echo "GITHUB_OUTPUT:"
sed 's/^/  /' "$GITHUB_OUTPUT"
echo "artifacts ($REPORTS):"
ls -l "$REPORTS" | sed 's/^/  /'
echo "step summary: $GITHUB_STEP_SUMMARY ($(wc -c <"$GITHUB_STEP_SUMMARY") bytes)"
echo "comment body: $REPORTS/comment.md"
echo "verdict step exit: $verdict (the job fails when it is not 0)"
