"""Asks the example backend (examples/ws-backend) for its own timings since
the last reset, and resets them: receipt to first token, token to token.

Usage: target/ws-venv/bin/python scripts/ws/server_stats.py URL
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def main(url):
    async with connect(url) as ws:
        await ws.send(json.dumps({"op": "stats", "reset": True}))
        print(await ws.recv())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
