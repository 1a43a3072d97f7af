#!/usr/bin/env bash
# #21 finding 9: a `command`'s peak_rss against /usr/bin/time -v, for a
# program that touches 1 MiB and one that touches 1 GiB
# (tests/fixtures/rss/touch.c). Prints one row per size: what neon-perf
# reported (median of its runs), what GNU time reported, and the difference.
#   scripts/peak-rss-check.sh [NEON_PERF_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/neon-perf}
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time (Debian: apt install time)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/touch" tests/fixtures/rss/touch.c
cat >"$work/rss.toml" <<TOML
[suite]
name = "rss"

[defaults]
warmup_runs = 0
warmup = "0s"
min_samples = 5
max_samples = 5
max_contention = 1.0

[[scenario]]
name = "touch"
kind = "command"
command = ["$work/touch", "{mib}"]
params = { mib = [1, 1024] }
TOML
"$bin" run "$work/rss.toml" --baselines "$work/baselines" --json "$work/r.json" >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
printf '%-8s %14s %14s %8s\n' "program" "neon-perf" "time -v" "diff"
for mib in 1 1024; do
  ours=$(python3 - "$work/r.json" "$mib" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
for m in r["scenarios"][0]["metrics"]:
    if m["key"] == f"peak_rss{{mib={sys.argv[2]}}}":
        print(int(statistics.median(m["samples"]) / 1024))
PY
)
  theirs=$(/usr/bin/time -f %M "$work/touch" "$mib" 2>&1 >/dev/null | tail -1)
  diff=$(python3 -c "print(f'{100 * ($ours - $theirs) / $theirs:+.1f}%')")
  printf '%-8s %10s KiB %10s KiB %8s\n' "${mib} MiB" "$ours" "$theirs" "$diff"
done
