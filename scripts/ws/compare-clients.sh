#!/usr/bin/env bash
# Is neon-perf's flood client ever the bottleneck? Runs every client we have
# against the same third-party echo server, one after the other in the same
# run, and prints a Markdown table of msg/s (docs/websocket.md has the
# recorded one).
#
#   bash scripts/ws/compare-clients.sh            # 10 s per measurement
#   SECONDS_EACH=5 SERVERS="node" bash scripts/ws/compare-clients.sh
#
# Servers (scripts/ws/echo_server.*, library defaults): the Node `ws` package
# and the Python `websockets` package. Clients:
#   neon-perf        this repo's release build, closed loop, in_flight = 1,
#                    every RTT recorded (client_threads: CLIENT_THREADS, default
#                    the built-in default, half the cores)
#   lean-rust        examples/lean_ws_client.rs: tokio-tungstenite, send/await
#                    per connection, counts replies only (the library's ceiling)
#   node-ws          scripts/ws/flood_client.js: plain Node `ws` client, one
#                    in flight, correlates ids and records RTTs
#   artillery        only when ARTILLERY=/path/to/artillery is set
# Output: the table on stdout; raw JSON lines in target/ws-compare/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECONDS_EACH=${SECONDS_EACH:-10}
SERVERS=${SERVERS:-"node python"}
CONNS=${CONNS:-"1 64"}
SIZES=${SIZES:-"64 65536"}
OUT=target/ws-compare
mkdir -p "$OUT"
: > "$OUT/results.jsonl"

bash scripts/ws/setup.sh
echo "building neon-perf and the lean client (release)" >&2
cargo build --release --quiet --bin neon-perf --example lean_ws_client
NEON=$ROOT/target/release/neon-perf
LEAN=$ROOT/target/release/examples/lean_ws_client
export NODE_PATH=$ROOT/target/ws-node/node_modules

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # $1 = node|python; sets SERVER_PID, PORT
  PORT=$(free_port)
  case $1 in
    node) node scripts/ws/echo_server.js "$PORT" > "$OUT/server-$1.log" 2>&1 & ;;
    python) target/ws-venv/bin/python scripts/ws/echo_server.py "$PORT" > "$OUT/server-$1.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$OUT/server-$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server $1 did not start" >&2; cat "$OUT/server-$1.log" >&2; exit 1
}

run_neon() { # url conns size -> msg/s
  local suite=$OUT/suite.toml json=$OUT/neon.json threads=""
  [ -n "${CLIENT_THREADS:-}" ] && threads="client_threads = $CLIENT_THREADS"
  cat > "$suite" <<EOF
[[scenario]]
name = "compare"
kind = "websocket_flood"
url = "$1"
connections = $2
duration = "${SECONDS_EACH}s"
warmup = "1s"
payload = { size = $3 }
$threads
EOF
  "$NEON" run "$suite" --baselines "$OUT/no-baselines" --json "$json" --no-color > "$OUT/neon-run.log" 2>&1 || true
  python3 - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["scenarios"][0]
m = {x["key"]: x["samples"] for x in r["metrics"]}
out = {"client": "neon-perf", "msg_per_s": m["msg_rate_overall"][0],
       "rtt_p50_us": m["rtt_p50"][0] * 1e6, "rtt_p99_us": m["rtt_p99"][0] * 1e6,
       "errors": sum(v[0] for k, v in m.items() if k.startswith("errors")),
       "client_cpu_per_msg_us": m.get("client_cpu_per_msg", [float("nan")])[0] * 1e6,
       "status": r["status"]}
print(json.dumps(out))
EOF
}

run_artillery() { # url conns size
  local cfg=$OUT/artillery.yml
  cat > "$cfg" <<EOF
config:
  target: "$1"
  phases:
    - duration: $SECONDS_EACH
      arrivalCount: $2
scenarios:
  - engine: ws
    flow:
      - loop:
          - send: "$(head -c "$3" /dev/zero | tr '\0' 'x')"
        whileTrue: "true"
EOF
  "$ARTILLERY" run "$cfg" > "$OUT/artillery.log" 2>&1 || true
  echo "{\"client\":\"artillery\",\"msg_per_s\":null,\"note\":\"see $OUT/artillery.log\"}"
}

printf '| server | connections | size | client | msg/s | RTT p50 | RTT p99 |\n|---|---|---|---|---|---|---|\n'
for server in $SERVERS; do
  start_server "$server"
  url="ws://127.0.0.1:$PORT/"
  for conns in $CONNS; do
    for size in $SIZES; do
      for client in neon-perf lean-rust node-ws ${ARTILLERY:+artillery}; do
        case $client in
          neon-perf) line=$(run_neon "$url" "$conns" "$size") ;;
          lean-rust) line=$("$LEAN" "$url" "$conns" "$size" "$SECONDS_EACH" "${CLIENT_THREADS:-1}") ;;
          node-ws) line=$(node scripts/ws/flood_client.js "$url" "$conns" "$size" "$SECONDS_EACH") ;;
          artillery) line=$(run_artillery "$url" "$conns" "$size") ;;
        esac
        echo "{\"server\":\"$server\",\"connections\":$conns,\"size\":$size,\"result\":$line}" >> "$OUT/results.jsonl"
        python3 - "$server" "$conns" "$size" "$line" <<'EOF'
import json, sys
server, conns, size, line = sys.argv[1:]
r = json.loads(line)
f = lambda v, u="": "–" if v is None else (f"{v:,.0f}{u}")
print(f"| {server} | {conns} | {size} B | {r['client']} | {f(r.get('msg_per_s'))} | "
      f"{f(r.get('rtt_p50_us'), ' µs')} | {f(r.get('rtt_p99_us'), ' µs')} |")
EOF
      done
    done
  done
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done
echo "raw results: $OUT/results.jsonl; load during the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
