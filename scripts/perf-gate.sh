#!/usr/bin/env bash
# The steps of the perf-gate job (.github/workflows/perf-gate.yml), one per
# verb, so the workflow and scripts/gate-dry-run.sh run the same commands.
#
#   scripts/perf-gate.sh build     build the CLI and the gate harness (release)
#   scripts/perf-gate.sh gate      cargo test --release --test perf, reports in $REPORTS
#   scripts/perf-gate.sh paired    neon-perf run --against "$BASE_DIR" (merge base worktree)
#   scripts/perf-gate.sh comment   the pull-request comment body: $REPORTS/comment.md
#   scripts/perf-gate.sh verdict   exit non-zero when the gate or the paired run failed
#
# Environment: REPORTS (folder for every report; required), BASE_SHA (the
# pull request's base commit, for `paired`), GITHUB_OUTPUT / GITHUB_STEP_SUMMARY
# (set by Actions; the dry run points them at files).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${REPORTS:?set REPORTS to the folder for reports}"
out="${GITHUB_OUTPUT:-/dev/null}"
bin=target/release/neon-perf

case "${1:-}" in
build)
  cargo build --release --locked
  cargo test --release --locked --test perf --no-run
  "$bin" doctor
  ;;
gate)
  mkdir -p "$REPORTS"
  set +e
  NEON_PERF_JSON="$REPORTS/gate.json" \
  NEON_PERF_JUNIT="$REPORTS/gate.junit.xml" \
  NEON_PERF_MARKDOWN="$REPORTS/gate.md" \
  NEON_PERF_BMF="$REPORTS/gate.bmf.json" \
  NEON_PERF_ANNOTATIONS=github \
  NEON_PERF_PROFILE=on-regression \
  NEON_PERF_REPORTS_DIR="$REPORTS/gate" \
    cargo test --release --locked --test perf
  code=$?
  set -e
  echo "gate_exit=$code" >>"$out"
  echo "$code" >"$REPORTS/gate.exit"
  ;;
paired)
  mkdir -p "$REPORTS"
  if ! "$bin" run --help | grep -q -- '--against'; then
    echo "paired A/B skipped: this neon-perf has no \`run --against\`" | tee "$REPORTS/paired.md"
    echo "paired_exit=0" >>"$out"
    echo 0 >"$REPORTS/paired.exit"
    exit 0
  fi
  : "${BASE_SHA:?set BASE_SHA to the base commit of the pull request}"
  BASE_DIR="${BASE_DIR:-${RUNNER_TEMP:-/tmp}/neon-perf-base}"
  base=$(git merge-base "$BASE_SHA" HEAD)
  rm -rf "$BASE_DIR"
  git worktree prune
  git worktree add --detach "$BASE_DIR" "$base"
  set +e
  NEON_PERF_REPORTS_DIR="$REPORTS/paired" \
  "$bin" run --against "$BASE_DIR" --profile \
    --json "$REPORTS/paired.json" --junit "$REPORTS/paired.junit.xml" \
    --markdown "$REPORTS/paired.md" --annotations github
  code=$?
  set -e
  echo "paired_exit=$code" >>"$out"
  echo "$code" >"$REPORTS/paired.exit"
  ;;
comment)
  # One comment per pull request, found again by its first line.
  {
    echo "<!-- neon-perf -->"
    found=0
    for md in "$REPORTS/gate.md" "$REPORTS/paired.md"; do
      if [ -s "$md" ]; then
        cat "$md"
        echo
        found=1
      fi
    done
    if [ "$found" = 0 ]; then
      echo "neon-perf wrote no report: see the job log."
    fi
    if [ -n "${GITHUB_RUN_ID:-}" ]; then
      echo "<sub>Reports (JSON, JUnit, BMF; profiles of regressed scenarios under gate/profiles and paired/profiles): artifacts of [run ${GITHUB_RUN_ID}](${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}/actions/runs/${GITHUB_RUN_ID}).</sub>"
    fi
  } >"$REPORTS/comment.md"
  echo "comment body: $REPORTS/comment.md ($(wc -c <"$REPORTS/comment.md") bytes)"
  ;;
verdict)
  gate=$(cat "$REPORTS/gate.exit" 2>/dev/null || echo missing)
  paired=$(cat "$REPORTS/paired.exit" 2>/dev/null || echo 0)
  echo "gate exit: $gate; paired exit: $paired"
  [ "$gate" = 0 ] && [ "$paired" = 0 ]
  ;;
*)
  echo "usage: scripts/perf-gate.sh build|gate|paired|comment|verdict" >&2
  exit 2
  ;;
esac
