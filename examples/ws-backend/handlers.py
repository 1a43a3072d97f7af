"""The request handler of a streaming backend, shaped like a team's
handlers.py: a JSON request in, token frames streamed out with the
request's own id, an end frame with usage, an error frame for a bad
request. No model: each "token" waits a fixed time, so its timings are
known (first reply after FIRST_DELAY, then one every GAP).

Request:  {"op": "generate", "id": "<id>", "prompt": "...", "max_tokens": N}
Replies:  {"id": "<id>", "type": "token", "index": i, "text": "tok3"}   (N of them)
          {"id": "<id>", "type": "done", "usage": {"output_tokens": N}}
Errors:   {"id": "<id>", "type": "error", "message": "..."}

Media (audio or video as binary frames, which carry no id):
Request:  {"op": "media", "id": "<id>", "chunks": N, "chunk_bytes": B, "chunk_ms": M}
Replies:  N binary frames of B bytes, each M ms of audio or video (640
          bytes of 16-bit PCM at 16 kHz mono is 20 ms), the first after
          FIRST_DELAY, then one every GAP
          {"id": "<id>", "type": "done", "usage": {"chunks": N, "seconds": N * M / 1000}}

Prompts that misbehave on purpose (for neon-perf's tests): "fail" (error
frame), "never_end" (tokens, no end frame), "close_mid" (two tokens, then
the connection is closed), "not_json" (one reply that is not JSON first),
"no_id" (one reply without an id first).

A client that goes away mid-stream cancels its streams (`handle`'s
`finally`). With `leak_on_cancel` set, the handler "forgets" that much
memory per cancelled stream, as a handler that keeps per-request state and
never drops it would: neon-perf's `cancel` check must catch it.

On a GPU (server.py --cuda-mib), `Settings.torch` is the `torch` module:
each stream holds its own "KV cache" tensor on the GPU while it runs, and
the leak keeps GPU tensors instead of host bytes, so the same check is
evidence about GPU memory (NVML's view of the server's processes).
"""

import asyncio
import json
import math
import os
import time


class Settings:
    def __init__(self, first_delay, gap, tokens, ids=True, done=True,
                 close_after=False, empty_first=False, leak_on_cancel=0,
                 torch=None, kv_bytes=0, device="cuda", max_streams=0):
        self.first_delay = first_delay      # seconds to the first token
        self.gap = gap                      # seconds between tokens
        self.tokens = tokens                # default max_tokens
        self.ids = ids                      # replies carry the request's id
        self.done = done                    # an end frame closes each stream
        self.close_after = close_after      # close the connection after each stream
        self.empty_first = empty_first      # an empty token first (a keep-alive)
        self.leak_on_cancel = leak_on_cancel  # bytes kept per cancelled stream (a bug)
        self.torch = torch                  # the torch module when serving on a GPU
        self.kv_bytes = kv_bytes            # GPU bytes each running stream holds
        self.device = device                # where those tensors live ("cpu" to test here)
        self.max_streams = max_streams      # streams in flight per connection (0: no cap)

    @classmethod
    def from_env(cls):
        """Settings and the required bearer token (None: no auth) from the
        environment, for servers started by a framework's own command line
        (app_fastapi.py, app_aiohttp.py): BACKEND_FIRST_DELAY_MS (20),
        BACKEND_GAP_MS (5), BACKEND_TOKENS (16), BACKEND_TOKEN,
        BACKEND_LEAK_KIB_PER_CANCEL (0), BACKEND_MAX_STREAMS (0)."""
        env = os.environ.get
        settings = cls(float(env("BACKEND_FIRST_DELAY_MS", 20)) / 1e3,
                       float(env("BACKEND_GAP_MS", 5)) / 1e3,
                       int(env("BACKEND_TOKENS", 16)),
                       leak_on_cancel=int(env("BACKEND_LEAK_KIB_PER_CANCEL", 0)) * 1024,
                       max_streams=int(env("BACKEND_MAX_STREAMS", 0)))
        return settings, env("BACKEND_TOKEN") or None

    def hold(self, nbytes):
        """`nbytes` of memory: a GPU tensor when serving on a GPU, else host bytes."""
        if self.torch is None:
            return b"x" * nbytes
        t = self.torch.empty(nbytes, dtype=self.torch.uint8, device=self.device)
        t.fill_(1)
        return t


def refusal(token, got):
    """The body of a 401 for the Authorization header `got` (`""` when
    absent), or None when it carries the bearer `token` or none is needed."""
    if token is None or got == f"Bearer {token}":
        return None
    return f"invalid credentials: {got or 'no Authorization header'}\n"


# What a leaking handler never gives back (see Settings.leak_on_cancel).
LEAKED = []


class Timings:
    """The server's own view: receipt to first send, and send to send."""

    def __init__(self):
        self.first = []
        self.gaps = []

    def summary(self):
        def pct(xs, q):
            xs = sorted(xs)
            return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else None
        return {"requests": len(self.first), "gaps": len(self.gaps),
                "first_reply_p50_ms": pct(self.first, 0.5), "gap_p50_ms": pct(self.gaps, 0.5),
                "gap_p99_ms": pct(self.gaps, 0.99)}


def frame(settings, rid, **fields):
    if settings.ids:
        fields = {"id": rid, **fields}
    return json.dumps(fields)


class Pace:
    """One stream's schedule: the first reply FIRST_DELAY after the request,
    then one every GAP; each reply's send time goes into the server's own
    timings (receipt to first send, send to send)."""

    def __init__(self, settings, timings):
        self.settings = settings
        self.timings = timings
        self.received = time.perf_counter()
        self.last = None

    async def start(self):
        await asyncio.sleep(self.settings.first_delay)

    async def gap(self, i):
        if i > 0:
            await asyncio.sleep(self.settings.gap)

    def sending(self):
        now = time.perf_counter()
        if self.last is None:
            self.timings.first.append(now - self.received)
        else:
            self.timings.gaps.append(now - self.last)
        self.last = now


async def media(ws, req, settings, timings):
    """An audio or video stream: `chunks` binary frames, then an end frame
    with the media's length. The bytes are a tone, so they are not all
    alike (as compressed frames are not)."""
    rid = req.get("id")
    n = int(req.get("chunks", settings.tokens))
    size = int(req.get("chunk_bytes", 640)) & ~1
    chunk_ms = float(req.get("chunk_ms", 20))
    chunk = b"".join(int(8000 * math.sin(i / 8)).to_bytes(2, "little", signed=True)
                     for i in range(size // 2))
    pace = Pace(settings, timings)
    await pace.start()
    for i in range(n):
        await pace.gap(i)
        pace.sending()
        await ws.send(chunk)
    usage = {"chunks": n, "seconds": n * chunk_ms / 1e3}
    await ws.send(frame(settings, rid, type="done", usage=usage))


async def generate(ws, req, settings, timings):
    rid = req.get("id")
    if req.get("op") == "media":
        await media(ws, req, settings, timings)
        return
    if req.get("op") != "generate" or req.get("prompt") == "fail":
        await ws.send(frame(settings, rid, type="error", message="cannot generate"))
        return
    prompt = req.get("prompt", "")
    n = int(req.get("max_tokens", settings.tokens))
    pace = Pace(settings, timings)
    kv = settings.hold(settings.kv_bytes) if settings.torch is not None and settings.kv_bytes else None
    await pace.start()
    if prompt == "not_json":
        await ws.send("upstream busy, retrying")
    if prompt == "no_id":
        await ws.send(json.dumps({"type": "token", "text": "?"}))
    if settings.empty_first:
        await ws.send(frame(settings, rid, type="token", index=-1, text=""))
    for i in range(n):
        await pace.gap(i)
        if kv is not None:
            kv[i % kv.numel()] = i & 0xFF   # one small GPU write per token
        pace.sending()
        await ws.send(frame(settings, rid, type="token", index=i, text=f"tok{i}"))
        if prompt == "close_mid" and i == 1:
            await ws.close(1011, "backend restarting")
            return
    if settings.done and prompt != "never_end":
        await ws.send(frame(settings, rid, type="done", usage={"output_tokens": n}))
    if settings.close_after:
        await ws.close()


async def handle(ws, settings, timings):
    """One connection: every request streams in its own task, so streams
    of one connection interleave. When the client goes away, its open
    streams are cancelled. With `max_streams`, a client that asks for more
    streams at once (one that sends and never reads, say) is closed with
    1008, so one connection cannot hold the server's memory."""
    tasks = set()
    try:
        async for message in ws:
            try:
                req = json.loads(message)
            except ValueError:
                await ws.send(json.dumps({"type": "error", "message": "request is not JSON"}))
                continue
            if req.get("op") == "stats":
                await ws.send(json.dumps(timings.summary()))
                if req.get("reset"):
                    timings.first.clear()
                    timings.gaps.clear()
                continue
            if settings.max_streams and len(tasks) >= settings.max_streams:
                await ws.close(1008, f"more than {settings.max_streams} streams in flight")
                break
            t = asyncio.create_task(generate(ws, req, settings, timings))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
    finally:
        for t in list(tasks):
            t.cancel()
            if settings.leak_on_cancel:
                LEAKED.append(settings.hold(settings.leak_on_cancel))
