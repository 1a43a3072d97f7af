"""A plain Python `websockets` client that measures what neon-perf's
protocol flood measures, for the side-by-side accuracy check
(scripts/ws/stream-accuracy.sh): N connections, one request in flight on
each, every stream timed from the send to its first token
(time_to_first_reply) and between tokens (inter_reply_gap), until its
"done" frame.

Usage: target/ws-venv/bin/python scripts/ws/stream_client.py URL STREAMS SECONDS TOKENS
Prints one JSON line: counts, replies/s, p50s and the gap's p99 in milliseconds.
"""

import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect


async def one_connection(url, index, deadline, tokens, ttfr, gaps):
    seq = 0
    async with connect(url, compression=None) as ws:
        while time.perf_counter() < deadline:
            rid = f"{index}-{seq}"
            seq += 1
            sent = time.perf_counter()
            await ws.send(json.dumps({"op": "generate", "id": rid, "prompt": "hi",
                                      "max_tokens": tokens}))
            last = None
            while True:
                msg = json.loads(await ws.recv())
                now = time.perf_counter()
                if msg.get("type") == "done":
                    break
                if last is None:
                    ttfr.append(now - sent)
                else:
                    gaps.append(now - last)
                last = now


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else None


async def main(url, streams, seconds, tokens):
    ttfr, gaps = [], []
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(one_connection(url, i, deadline, tokens, ttfr, gaps)
                           for i in range(streams)))
    print(json.dumps({"requests": len(ttfr), "gaps": len(gaps),
                      "replies_per_s": (len(ttfr) + len(gaps)) / seconds,
                      "ttfr_p50_ms": pct(ttfr, 0.5), "gap_p50_ms": pct(gaps, 0.5),
                      "gap_p99_ms": pct(gaps, 0.99)}))


if __name__ == "__main__":
    url, streams, seconds, tokens = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    asyncio.run(main(url, streams, seconds, tokens))
