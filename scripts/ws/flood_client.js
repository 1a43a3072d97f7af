// A plain closed-loop flood client on the Node `ws` package: the
// "fastest existing client" neon-perf is compared with (docs/websocket.md).
//
// Usage: NODE_PATH=target/ws-node/node_modules node scripts/ws/flood_client.js \
//          URL CONNECTIONS SIZE_BYTES SECONDS [IN_FLIGHT]
// Each connection keeps IN_FLIGHT (default 1) binary messages of SIZE_BYTES
// in flight and sends the next one when a reply arrives. The first 8 bytes
// carry a little-endian counter (neon-perf's wire format), so replies are
// correlated by id like neon-perf does, and RTTs are recorded (not just
// counted) to keep the comparison fair. After a 1 s warm-up it counts
// replies for SECONDS and prints one JSON line:
//   {"client":"node-ws","msgs":N,"seconds":S,"msg_per_s":R,"rtt_p50_us":..,"rtt_p99_us":..}
const WebSocket = require("ws");

const [url, connsArg, sizeArg, secondsArg, inFlightArg] = process.argv.slice(2);
const conns = Number(connsArg);
const size = Math.max(8, Number(sizeArg));
const seconds = Number(secondsArg);
const inFlight = Number(inFlightArg || 1);
const WARMUP_MS = 1000;

const body = Buffer.alloc(size);
for (let i = 8; i < size; i++) body[i] = (i * 31) & 0xff;

let measuring = false;
let stopped = false;
let count = 0;
const rtts = [];
let open = 0;

function start(ws) {
  let seq = 0n;
  const sent = new Map();
  const send = () => {
    const msg = Buffer.from(body); // a fresh buffer per message, like neon-perf
    msg.writeBigUInt64LE(seq, 0);
    sent.set(seq, process.hrtime.bigint());
    seq++;
    ws.send(msg, { binary: true });
  };
  ws.on("message", (data) => {
    const id = data.readBigUInt64LE(0);
    const t = sent.get(id);
    sent.delete(id);
    if (measuring && t !== undefined) {
      count++;
      rtts.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    if (!stopped) send();
  });
  for (let i = 0; i < inFlight; i++) send();
}

for (let c = 0; c < conns; c++) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on("open", () => {
    ws._socket.setNoDelay(true);
    start(ws);
    open++;
    if (open === conns) begin();
  });
  ws.on("error", (e) => {
    console.error(`connection ${c}: ${e.message}`);
    process.exit(1);
  });
}

function begin() {
  setTimeout(() => {
    measuring = true;
    const t0 = process.hrtime.bigint();
    setTimeout(() => {
      measuring = false;
      stopped = true;
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      rtts.sort((a, b) => a - b);
      const q = (p) => (rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))] : null);
      console.log(
        JSON.stringify({
          client: "node-ws",
          msgs: count,
          seconds: s,
          msg_per_s: count / s,
          rtt_p50_us: q(0.5),
          rtt_p99_us: q(0.99),
        }),
      );
      process.exit(0);
    }, seconds * 1000);
  }, WARMUP_MS);
}
