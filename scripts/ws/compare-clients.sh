#!/usr/bin/env bash
# Is neon-perf's flood client ever the bottleneck? Runs every client we have
# against the same third-party echo server in the same run, each cell
# REPEATS times with the clients interleaved (neon-perf, lean, node,
# neon-perf, lean, node, ...) so drift hits them alike, and prints a
# Markdown table: per cell and client the median msg/s over the repeats with
# its min–max range, and which client is on top by how much (median ratio),
# or "tie (ranges overlap)". docs/websocket.md has the recorded one.
#
#   bash scripts/ws/compare-clients.sh                  # 10 s per run, 3 repeats
#   SECONDS_EACH=1 REPEATS=2 SERVERS="node" bash scripts/ws/compare-clients.sh
#
# Settings (environment):
#   SECONDS_EACH  measured seconds per run, after a 1 s warm-up (default 10)
#   REPEATS       runs per cell and client (default 3)
#   SERVERS       "node python" (default); CONNS "1 64"; SIZES "64 65536"
#   CLIENTS       "neon-perf lean-rust node-ws" (default), any subset
#   CLIENT_THREADS  client_threads of neon-perf and the lean client
#   OUT           where the raw results go (default target/ws-compare)
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
#   artillery        only when ARTILLERY=/path/to/artillery is set; its msg/s
#                    is not parsed (recorded as failed, see its log)
# Each client process runs under GNU time: its CPU use (cores, and µs per
# message, approximate: over the whole process) is a second table.
# Output: the table on stdout, progress on stderr; raw numbers in $OUT:
# runs.jsonl (one line per run, as it goes) and results.json (settings,
# every run, and the per-cell medians and ranges the table shows).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECONDS_EACH=${SECONDS_EACH:-10}
REPEATS=${REPEATS:-3}
SERVERS=${SERVERS:-"node python"}
CONNS=${CONNS:-"1 64"}
SIZES=${SIZES:-"64 65536"}
CLIENTS=${CLIENTS:-"neon-perf lean-rust node-ws"}${ARTILLERY:+ artillery}
OUT=${OUT:-target/ws-compare}
case $REPEATS in '' | *[!0-9]* | 0) echo "REPEATS must be a whole number ≥ 1, got '$REPEATS'" >&2; exit 2 ;; esac
case $SECONDS_EACH in '' | *[!0-9.]*) echo "SECONDS_EACH must be a number of seconds, got '$SECONDS_EACH'" >&2; exit 2 ;; esac
for c in $CLIENTS; do
  case $c in neon-perf | lean-rust | node-ws | artillery) ;; *) echo "unknown client '$c' in CLIENTS (neon-perf lean-rust node-ws artillery)" >&2; exit 2 ;; esac
done
mkdir -p "$OUT"
: > "$OUT/runs.jsonl"

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
  rm -f "$json"
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
  timed "$NEON" run "$suite" --baselines "$OUT/no-baselines" --json "$json" --no-color > "$OUT/neon-run.log" 2>&1 || true
  python3 - "$json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["scenarios"][0]
    m = {x["key"]: x["samples"] for x in r["metrics"]}
    out = {"client": "neon-perf", "msg_per_s": m["msg_rate_overall"][0],
           "rtt_p50_us": m["rtt_p50"][0] * 1e6, "rtt_p99_us": m["rtt_p99"][0] * 1e6,
           "errors": sum(v[0] for k, v in m.items() if k.startswith("errors")),
           "client_cpu_per_msg_us": m.get("client_cpu_per_msg", [float("nan")])[0] * 1e6,
           "status": r["status"]}
except (OSError, ValueError, KeyError, IndexError) as e:
    out = {"client": "neon-perf", "msg_per_s": None, "error": f"no result ({e!r}); see neon-run.log"}
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

# The client's own CPU time: on 2 cores the client and the server share the
# machine, so a client that burns more CPU per message leaves less to the
# server. GNU time writes the process's wall, user and system seconds.
timed() {
  /usr/bin/time -o "$OUT/time.json" -f '{"wall_s": %e, "user_s": %U, "sys_s": %S}' "$@"
}

# One run of one client: prints its JSON line (with the client process's CPU
# time added), or one with msg_per_s null and the reason when the client
# failed (the table counts it as failed).
server_ticks() { # the server process's CPU time so far (user + system, all threads), in clock ticks
  awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}

measure() { # client url conns size
  local line ticks0
  rm -f "$OUT/time.json"
  ticks0=$(server_ticks)
  case $1 in
    neon-perf) line=$(run_neon "$2" "$3" "$4") ;;
    lean-rust) line=$(timed "$LEAN" "$2" "$3" "$4" "$SECONDS_EACH" "${CLIENT_THREADS:-1}" 2> "$OUT/lean.log") || line="" ;;
    node-ws) line=$(timed node scripts/ws/flood_client.js "$2" "$3" "$4" "$SECONDS_EACH" 2> "$OUT/node-client.log") || line="" ;;
    artillery) line=$(run_artillery "$2" "$3" "$4") ;;
  esac
  python3 - "$1" "$line" "$OUT/time.json" "$OUT" "$(( $(server_ticks) - ticks0 ))" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
client, line, time_file, out = sys.argv[1:5]
server_cpu_s = int(sys.argv[5]) / int(sys.argv[6])
try:
    r = json.loads(line)
except ValueError:
    print(json.dumps({"client": client, "msg_per_s": None, "error": f"no result; see {out}"}))
    sys.exit()
try:
    # GNU time puts "Command exited with non-zero status N" before it.
    t = json.loads([l for l in open(time_file) if l.startswith("{")][-1])
    cpu = t["user_s"] + t["sys_s"]
    # Over the process's whole life (start-up and warm-up included), so per
    # message it is approximate: CPU seconds / (msg/s x wall seconds).
    r["process"] = t
    r["client_cpu_cores"] = cpu / t["wall_s"] if t["wall_s"] > 0 else None
    if r.get("msg_per_s"):
        r["cpu_us_per_msg_approx"] = 1e6 * cpu / (r["msg_per_s"] * t["wall_s"])
    # The server's CPU over the same window (start-up and warm-up included):
    # near 1 core, a single-threaded server is the bottleneck.
    r["server_cpu_cores"] = server_cpu_s / t["wall_s"] if t["wall_s"] > 0 else None
    if r.get("msg_per_s"):
        r["server_cpu_us_per_msg_approx"] = 1e6 * server_cpu_s / (r["msg_per_s"] * t["wall_s"])
except (OSError, ValueError, KeyError, IndexError):
    pass
print(json.dumps(r))
EOF
}

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
order=0
for server in $SERVERS; do
  start_server "$server"
  url="ws://127.0.0.1:$PORT/"
  # A throwaway flood first: a fresh Python server pays for its allocator's
  # warm-up (an mmap, mremap and munmap per recv until glibc raises its
  # mmap threshold; seen with strace), which would otherwise land on
  # whichever client is measured first.
  "$LEAN" "$url" 64 64 1 1 > /dev/null 2>&1 || true
  for conns in $CONNS; do
    for size in $SIZES; do
      for rep in $(seq "$REPEATS"); do
        for client in $CLIENTS; do
          order=$((order + 1))
          line=$(measure "$client" "$url" "$conns" "$size")
          echo "{\"server\":\"$server\",\"connections\":$conns,\"size\":$size,\"client\":\"$client\",\"repeat\":$rep,\"order\":$order,\"result\":$line}" >> "$OUT/runs.jsonl"
          python3 -c 'import json,sys; r=json.loads(sys.argv[2]); v=r.get("msg_per_s"); print(sys.argv[1], "–" if v is None else f"{v:,.0f} msg/s", r.get("error", ""), file=sys.stderr)' \
            "$server, $conns conn, $size B, repeat $rep/$REPEATS, $client:" "$line"
        done
      done
    done
  done
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done
cat > "$OUT/meta.json" <<EOF
{"started": "$STARTED", "finished": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "seconds_each": $SECONDS_EACH, "warmup_s": 1, "repeats": $REPEATS,
 "servers": "$SERVERS", "clients": "$CLIENTS", "client_threads": "${CLIENT_THREADS:-default}",
 "load_start": "$LOAD_START", "load_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "cores": $(nproc), "node": "$(node --version)"}
EOF
python3 scripts/ws/compare_table.py "$OUT/runs.jsonl" "$OUT/results.json" "$OUT/meta.json"
echo "raw results: $OUT/results.json (runs: $OUT/runs.jsonl); load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
