"""Python `websockets` echo server, a third-party target for neon-perf.

Usage: target/ws-venv/bin/python scripts/ws/echo_server.py PORT
Prints "listening on PORT" once ready. Library defaults are kept on purpose
(max_size 1 MiB, so an oversize message gets close 1009), so what the
robustness checks see is what users of the package get.
"""

import asyncio
import signal
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(echo, "127.0.0.1", port, compression=None):
        print(f"listening on {port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
