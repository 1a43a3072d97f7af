#!/usr/bin/env bash
# The HTML report in a real browser: a real run (the example suite and the
# MLP batch sweep, blessed then gated against a fresh baselines folder) and
# the recorded-H100 fixture page (kernel samples from the committed H100
# baseline, synthetic NVML timeline: src/report/html/fixture.rs), each opened
# in headless Chromium; fails on any console error, page error or network
# request, and writes full-page and per-scenario screenshots.
#
#   scripts/html-check.sh [OUT]     # default OUT: target/html-check
#
# Needs: /usr/bin/chromium (Debian: `apt-get install -y chromium`; installed
# here when missing and run as root), node + npm (playwright-core is
# installed under OUT/node, nothing global), a release build of neon-perf
# (built when missing; NEON_PERF_BIN picks another). About a minute after
# the build. Opt-in: CI does not run it (docs/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/html-check}
BIN=${NEON_PERF_BIN:-target/release/neon-perf}
PLAYWRIGHT_VERSION=1.65.1
mkdir -p "$OUT"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
  else
    echo "error: /usr/bin/chromium not found; install it with: sudo apt-get install -y chromium" >&2
    exit 2
  fi
fi
if [ ! -f "$OUT/node/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$OUT/node/node_modules/playwright-core/package.json"; then
  echo "installing playwright-core@$PLAYWRIGHT_VERSION into $OUT/node" >&2
  mkdir -p "$OUT/node"
  (cd "$OUT/node" && npm install --silent --no-audit --no-fund --prefix . "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null)
fi
if [ ! -x "$BIN" ]; then
  cargo build --release --bin neon-perf
fi

# A real run: bless into a fresh folder, then gate against it. The suites are
# copied with `max_contention = 1`: this checks the report, not the machine,
# and on a busy shared host the contention guard would (rightly) refuse to
# bless. Absolute paths: `{suite_dir}` in a command must resolve from anywhere.
rm -rf "$OUT/suites" && cp -r suites "$OUT/suites"
sed -i 's/^\[defaults\]$/[defaults]\nmax_contention = 1.0/' "$OUT/suites/examples.toml" "$OUT/suites/models.toml"
SEL=("$PWD/$OUT/suites/examples.toml" "$PWD/$OUT/suites/models.toml" -f examples:: -f models::mlp-sweep)
rm -rf "$OUT/baselines"
"$BIN" bless "${SEL[@]}" --baselines "$OUT/baselines" --max-time 500ms --warmup 100ms \
  --reason "html-check" --no-color >"$OUT/bless.log" 2>&1 || { cat "$OUT/bless.log"; exit 2; }
rc=0
"$BIN" run "${SEL[@]}" --baselines "$OUT/baselines" --max-time 500ms --warmup 100ms \
  --html "$OUT/run.html" --json "$OUT/run.json" --no-color >"$OUT/run.log" 2>&1 || rc=$?
# 1 (a regression) and 3 (inconclusive only) are verdicts, not errors of the check.
if [ "$rc" = 2 ]; then cat "$OUT/run.log"; exit 2; fi
echo "run: exit $rc ($(wc -c <"$OUT/run.html") bytes of HTML)"

# The recorded-H100 fixture page (and the synthetic one) from the unit test.
NEON_PERF_HTML_FIXTURE_DIR="$PWD/$OUT" cargo test --quiet --lib \
  report::html::tests::recorded_h100_page_has_timelines_and_comparisons >/dev/null

# A profiled regression (issue #22): tests/fixtures/profile/work.c as the
# base (`work 1`) and the head (`work 2`), paired, `--profile`; the page
# embeds the differential flame graph. Skipped where perf cannot record.
PAGES=("$OUT/run.html" "$OUT/gpu-fixture.html" "$OUT/synthetic.html")
if command -v perf >/dev/null && perf record -q -o /dev/null -- true 2>/dev/null; then
  P="$PWD/$OUT/profile-trees" && rm -rf "$P" && mkdir -p "$P/base/suites" "$P/head/suites"
  cc -O1 -g -fno-omit-frame-pointer -o "$P/work" tests/fixtures/profile/work.c
  for f in 1 2; do
    side=$([ "$f" = 1 ] && echo base || echo head)
    printf '%s\n' '[suite]' 'name = "prof"' '[defaults]' 'warmup_runs = 0' 'min_samples = 2' \
      'max_time = "300ms"' 'max_contention = 1.0' '[[scenario]]' 'name = "work"' 'kind = "command"' \
      'command = ["sh", "{suite_dir}/run.sh"]' 'primary = "m"' \
      'metric."wall_time" = { gate = false }' 'metric."cpu_time" = { gate = false }' \
      'metric."peak_rss" = { gate = false }' >"$P/$side/suites/prof.toml"
    printf '%s %s\necho %s\n' "$P/work" "$f" "'{\"metric\": \"m\", \"value\": $((4 + f)), \"unit\": \"ms\"}'" \
      >"$P/$side/suites/run.sh"
  done
  bin_abs=$(realpath "$BIN")
  (cd "$P/head" && NEON_PERF_REPORTS_DIR="$P/head/reports" "$bin_abs" run suites/prof.toml \
    --against ../base --pairs 3 --profile --html "$P/../profile.html" --no-color >"$P/../profile.log" 2>&1) || true
  PAGES+=("$OUT/profile.html")
else
  echo "profile page skipped: perf cannot record here" >&2
fi

PLAYWRIGHT_MODULES="$PWD/$OUT/node/node_modules" node scripts/html-check.mjs "${PAGES[@]}"
