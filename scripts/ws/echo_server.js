// Node `ws` echo server, a third-party target for neon-perf.
// Usage: NODE_PATH=target/ws-node/node_modules node scripts/ws/echo_server.js PORT
// Prints "listening on PORT" once ready. Library defaults are kept
// (maxPayload 100 MiB, no per-message deflate unless asked).
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => {});
});
wss.on("listening", () => console.log(`listening on ${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => wss.close(() => process.exit(0)));
}
