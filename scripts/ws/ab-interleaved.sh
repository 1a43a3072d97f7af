#!/usr/bin/env bash
# Short interleaved runs of several clients against ONE echo server process,
# for one cell, to compare clients round by round (per-round ratios cancel
# the machine's slow spells better than medians of long runs).
#
#   SRV=python CONNS=64 SIZE=64 R=12 S=2 VARIANTS="neon-perf lean node" \
#     bash scripts/ws/ab-interleaved.sh > rounds.txt
#
# Prints "round client msg/s" lines, then the median per-round ratio of each
# pair of clients with the sorted ratios. `neon-perf@0s` is neon-perf with
# `client_spin = "0s"` (any duration works); `neon-perf@1ms:2` also sets
# `client_threads = 2`. SRVPIN / CLIPIN prefix the server
# and client commands (e.g. SRVPIN="taskset -c 1" CLIPIN="taskset -c 0").
# Needs `bash scripts/ws/setup.sh` and `cargo build --release --bin neon-perf
# --example lean_ws_client` first. Used for docs/websocket.md (Python, 64 × 64 B).
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${R:-12}; S=${S:-2}; CONNS=${CONNS:-64}; SIZE=${SIZE:-64}; SRV=${SRV:-python}
VARIANTS=${VARIANTS:-"neon-perf lean node"}
OUT=${OUT:-target/ws-ab}
mkdir -p "$OUT"
export NODE_PATH=$PWD/target/ws-node/node_modules
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
case $SRV in
  python) ${SRVPIN:-} target/ws-venv/bin/python scripts/ws/echo_server.py "$PORT" > "$OUT/server.log" 2>&1 & ;;
  node) ${SRVPIN:-} node scripts/ws/echo_server.js "$PORT" > "$OUT/server.log" 2>&1 & ;;
  *) echo "SRV must be python or node" >&2; exit 2 ;;
esac
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$OUT/server.log" 2>/dev/null && break; sleep 0.1; done
URL=ws://127.0.0.1:$PORT/
# A throwaway flood: a fresh Python server's allocator warms up on the first client.
target/release/examples/lean_ws_client "$URL" 64 64 1 1 > /dev/null 2>&1 || true
cat > "$OUT/suite.toml" <<T
[[scenario]]
name = "ab"
kind = "websocket_flood"
url = "$URL"
connections = $CONNS
duration = "${S}s"
warmup = "1s"
payload = { size = $SIZE }
T
rate() { python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read())["msg_per_s"]))'; }
: > "$OUT/rounds.txt"
for i in $(seq "$R"); do
  for v in $VARIANTS; do
    case $v in
      neon-perf|neon-perf@*)
        suite=$OUT/suite.toml
        if [[ $v == neon-perf@* ]]; then
          spec=${v#neon-perf@}
          suite=$OUT/suite-${spec/:/-t}.toml
          { cat "$OUT/suite.toml"; echo "client_spin = \"${spec%%:*}\""
            [[ $spec == *:* ]] && echo "client_threads = ${spec#*:}"; } > "$suite"
        fi
        ${CLIPIN:-} target/release/neon-perf run "$suite" --baselines "$OUT/no-baselines" --json "$OUT/np.json" > /dev/null 2>&1 || true
        x=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["scenarios"][0]; print(round(next(m["samples"][0] for m in r["metrics"] if m["key"]=="msg_rate_overall")))' "$OUT/np.json") ;;
      lean) x=$(${CLIPIN:-} target/release/examples/lean_ws_client "$URL" "$CONNS" "$SIZE" "$S" 1 2>/dev/null | rate) ;;
      node) x=$(${CLIPIN:-} node scripts/ws/flood_client.js "$URL" "$CONNS" "$SIZE" "$S" 2>/dev/null | rate) ;;
      *) echo "unknown client $v (neon-perf, neon-perf@SPIN[:THREADS], lean, node)" >&2; exit 2 ;;
    esac
    echo "$i $v $x" | tee -a "$OUT/rounds.txt"
  done
done
python3 - "$OUT/rounds.txt" $VARIANTS <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
clients = sys.argv[2:]
d = {}
for i, v, x in rows:
    d.setdefault(int(i), {})[v] = int(x)
for a in range(len(clients)):
    for b in range(a + 1, len(clients)):
        x, y = clients[b], clients[a]
        r = sorted(d[i][x] / d[i][y] for i in d)
        print(f"{x}/{y}: median {statistics.median(r):.2f} over {len(r)} rounds: "
              + " ".join(f"{v:.2f}" for v in r))
PY
