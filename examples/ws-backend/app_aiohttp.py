"""The same streaming handlers (handlers.py) behind aiohttp's web server,
which has its own WebSocket implementation.

    BACKEND_TOKEN=dev-secret python app_aiohttp.py 8000

Settings come from the environment (handlers.Settings.from_env). A request
without "Authorization: Bearer $BACKEND_TOKEN" (when it is set) is refused
with 401 and a text body. Prints aiohttp's "Running on ..." once ready.
"""

import sys

from aiohttp import WSMsgType, web

from handlers import Settings, Timings, handle, refusal

settings, token = Settings.from_env()
timings = Timings()


class Socket:
    """What handlers.handle uses of a connection, on aiohttp's WebSocketResponse."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, data):
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def close(self, code=1000, reason=""):
        await self.ws.close(code=code, message=reason.encode())

    async def __aiter__(self):
        async for msg in self.ws:
            if msg.type == WSMsgType.TEXT:
                yield msg.data
            elif msg.type == WSMsgType.BINARY:
                yield msg.data.decode(errors="replace")


async def stream(request):
    body = refusal(token, request.headers.get("Authorization", ""))
    if body is not None:
        raise web.HTTPUnauthorized(text=body)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await handle(Socket(ws), settings, timings)
    return ws


def main():
    app = web.Application()
    app.router.add_get("/ws", stream)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]))


if __name__ == "__main__":
    main()
