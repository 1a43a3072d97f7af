#!/usr/bin/env bash
# Side by side, against one example backend (examples/ws-backend) with a
# fixed first-reply delay and gap: neon-perf's protocol flood and a plain
# Python `websockets` client (scripts/ws/stream_client.py), one after the
# other, each measuring time to first reply and inter-reply gap at STREAMS
# concurrent streams; after each, the server's own view of the same
# requests. Prints a Markdown table: p50s (ms), replies/s and the gap's p99.
#
#   bash scripts/ws/stream-accuracy.sh          # 20 ms, 5 ms, 8 streams, 5 s each
#   FIRST_MS=20 GAP_MS=5 STREAMS=8 SECONDS_EACH=5 TOKENS=16 ROUNDS=3 bash scripts/ws/stream-accuracy.sh
#
# TOGETHER=1 runs the two clients at the same time instead, each with
# STREAMS streams (the server then serves 2 × STREAMS), so both measure
# the same server in the same window and its drift cannot favour either;
# the server's own figures are then over both clients' streams.
# CLIENT_SPIN sets neon-perf's `client_spin` (default: its own default).
# The clients take turns going first (neon-perf first in odd rounds), so
# neither always meets a server warmed by the other; after the table, a
# summary line compares the gap p99s round by round, raw and as what each
# client adds over the server's own gap p99 in the same window.
# Needs target/ws-venv (bash scripts/ws/setup.sh) and a neon-perf binary
# (NEON_PERF, default target/release/neon-perf, else target/debug/neon-perf).
set -euo pipefail
cd "$(dirname "$0")/../.."
FIRST_MS=${FIRST_MS:-20} GAP_MS=${GAP_MS:-5} STREAMS=${STREAMS:-8}
SECONDS_EACH=${SECONDS_EACH:-5} TOKENS=${TOKENS:-16} ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18799}
PY=target/ws-venv/bin/python
BIN=${NEON_PERF:-target/release/neon-perf}
[ -x "$BIN" ] || BIN=target/debug/neon-perf
OUT=${OUT:-target/ws-stream-accuracy}
mkdir -p "$OUT"
URL="ws://127.0.0.1:$PORT/"

$PY examples/ws-backend/server.py "$PORT" --first-delay-ms "$FIRST_MS" --gap-ms "$GAP_MS" --tokens "$TOKENS" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until grep -q "listening on" "$OUT/server.log"; do sleep 0.1; done

cat >"$OUT/suite.toml" <<TOML
[suite]
name = "stream-accuracy"
[[scenario]]
name = "streams"
kind = "websocket_flood"
url = "$URL"
connections = $STREAMS
in_flight = 1
duration = "${SECONDS_EACH}s"
warmup = "500ms"
${CLIENT_SPIN:+client_spin = \"$CLIENT_SPIN\"}
[scenario.protocol]
request = { text = '{"op":"generate","id":"{id}","prompt":"hi","max_tokens":$TOKENS}' }
match = { json = "/id" }
end = { json = "/type", equals = "done" }
TOML

metric() { # results.json, metric key → value in ms
  $PY -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['scenarios'][0]; m=[x for x in s['metrics'] if x['key']==sys.argv[2]]; print('%.3f' % (m[0]['samples'][0]*1e3))" "$1" "$2"
}
field() { $PY -c "import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print('%.3f' % v)" "$1" "$2"; }

echo "| round | client | requests | replies/s | TTFR p50 (client) | TTFR p50 (server) | gap p50 (client) | gap p50 (server) | gap p99 (client) | gap p99 (server) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
neon_round() { # round → table row; its gap p99 appended to $OUT/p99-neon
  local round=$1 s n rps
  $PY scripts/ws/server_stats.py "$URL" >/dev/null
  "$BIN" run "$OUT/suite.toml" --baselines "$OUT/none" --json "$OUT/neon-$round.json" >"$OUT/neon-$round.log" 2>&1 || true
  s=$($PY scripts/ws/server_stats.py "$URL")
  n=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['scenarios'][0]; print(len([x for x in s['metrics'] if x['key']=='stream_time'][0]['samples']))" "$OUT/neon-$round.json")
  rps=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['scenarios'][0]; print('%.0f' % [x for x in s['metrics'] if x['key']=='msg_rate_overall'][0]['samples'][0])" "$OUT/neon-$round.json")
  metric "$OUT/neon-$round.json" inter_reply_gap_p99 >>"$OUT/p99-neon"
  field "$s" gap_p99_ms >>"$OUT/p99-server-neon"
  echo "| $round | neon-perf | $n | $rps | $(metric "$OUT/neon-$round.json" time_to_first_reply_p50) | $(field "$s" first_reply_p50_ms) | $(metric "$OUT/neon-$round.json" inter_reply_gap_p50) | $(field "$s" gap_p50_ms) | $(metric "$OUT/neon-$round.json" inter_reply_gap_p99) | $(field "$s" gap_p99_ms) |"
}
python_round() { # round → table row; its gap p99 appended to $OUT/p99-python
  local round=$1 c s
  c=$($PY scripts/ws/stream_client.py "$URL" "$STREAMS" "$SECONDS_EACH" "$TOKENS")
  s=$($PY scripts/ws/server_stats.py "$URL")
  field "$c" gap_p99_ms >>"$OUT/p99-python"
  field "$s" gap_p99_ms >>"$OUT/p99-server-python"
  echo "| $round | python websockets | $(field "$c" requests | cut -d. -f1) | $(field "$c" replies_per_s | cut -d. -f1) | $(field "$c" ttfr_p50_ms) | $(field "$s" first_reply_p50_ms) | $(field "$c" gap_p50_ms) | $(field "$s" gap_p50_ms) | $(field "$c" gap_p99_ms) | $(field "$s" gap_p99_ms) |"
}
: >"$OUT/p99-neon"
: >"$OUT/p99-python"
: >"$OUT/p99-server-neon"
: >"$OUT/p99-server-python"
together_round() { # round → two table rows, both clients in one window
  local round=$1 s c n rps pyc
  $PY scripts/ws/server_stats.py "$URL" >/dev/null
  # The Python client runs over neon-perf's warm-up and window (+0.7 s).
  $PY scripts/ws/stream_client.py "$URL" "$STREAMS" "$(python3 -c "print($SECONDS_EACH + 0.7)")" "$TOKENS" >"$OUT/py-$round.json" &
  pyc=$!
  "$BIN" run "$OUT/suite.toml" --baselines "$OUT/none" --json "$OUT/neon-$round.json" >"$OUT/neon-$round.log" 2>&1 || true
  wait "$pyc"
  c=$(cat "$OUT/py-$round.json")
  s=$($PY scripts/ws/server_stats.py "$URL")
  n=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['scenarios'][0]; print(len([x for x in s['metrics'] if x['key']=='stream_time'][0]['samples']))" "$OUT/neon-$round.json")
  rps=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['scenarios'][0]; print('%.0f' % [x for x in s['metrics'] if x['key']=='msg_rate_overall'][0]['samples'][0])" "$OUT/neon-$round.json")
  metric "$OUT/neon-$round.json" inter_reply_gap_p99 >>"$OUT/p99-neon"
  field "$c" gap_p99_ms >>"$OUT/p99-python"
  field "$s" gap_p99_ms >>"$OUT/p99-server-neon"
  field "$s" gap_p99_ms >>"$OUT/p99-server-python"
  echo "| $round | neon-perf (together) | $n | $rps | $(metric "$OUT/neon-$round.json" time_to_first_reply_p50) | $(field "$s" first_reply_p50_ms) | $(metric "$OUT/neon-$round.json" inter_reply_gap_p50) | $(field "$s" gap_p50_ms) | $(metric "$OUT/neon-$round.json" inter_reply_gap_p99) | $(field "$s" gap_p99_ms) |"
  echo "| $round | python websockets (together) | $(field "$c" requests | cut -d. -f1) | $(field "$c" replies_per_s | cut -d. -f1) | $(field "$c" ttfr_p50_ms) | (same) | $(field "$c" gap_p50_ms) | (same) | $(field "$c" gap_p99_ms) | (same) |"
}
for round in $(seq 1 "$ROUNDS"); do
  if [ "${TOGETHER:-0}" = 1 ]; then
    together_round "$round"
  elif [ $((round % 2)) -eq 1 ]; then
    neon_round "$round"; python_round "$round"
  else
    python_round "$round"; neon_round "$round"
  fi
done
$PY - "$OUT/p99-neon" "$OUT/p99-python" "$OUT/p99-server-neon" "$OUT/p99-server-python" <<'PY'
import statistics, sys
neon, py, srv_neon, srv_py = ([float(x) for x in open(f)] for f in sys.argv[1:5])
lower = sum(a <= b for a, b in zip(neon, py))
ratios = [a / b for a, b in zip(neon, py) if b > 0]
print(f"\ngap p99, neon-perf vs Python client: neon-perf no worse in {lower} of {len(neon)} rounds; "
      f"median ratio {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")
# What each client adds to the server's own gap p99 in the same window: the
# server's state drifts between the two halves of a round, this does not.
add_neon = [a - s for a, s in zip(neon, srv_neon)]
add_py = [b - s for b, s in zip(py, srv_py)]
fewer = sum(a <= b for a, b in zip(add_neon, add_py))
print(f"gap p99 added over the server's own (ms): neon-perf median {statistics.median(add_neon):.3f} "
      f"(range {min(add_neon):.3f} to {max(add_neon):.3f}), Python client median {statistics.median(add_py):.3f} "
      f"(range {min(add_py):.3f} to {max(add_py):.3f}); neon-perf adds no more in {fewer} of {len(neon)} rounds")
PY
