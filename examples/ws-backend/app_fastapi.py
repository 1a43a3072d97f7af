"""The same streaming handlers (handlers.py) behind FastAPI on uvicorn, the
way many teams serve a model: started by uvicorn's own command line.

    BACKEND_TOKEN=dev-secret python -m uvicorn app_fastapi:app --port 8000

Settings come from the environment (handlers.Settings.from_env). A request
without "Authorization: Bearer $BACKEND_TOKEN" (when it is set) is refused
before the WebSocket is accepted: 401 with a text body where the server
supports ASGI's denial response (uvicorn does), else 403.
"""

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse

from handlers import Settings, Timings, handle, refusal

app = FastAPI()
settings, token = Settings.from_env()
timings = Timings()


class Socket:
    """What handlers.handle uses of a connection, on Starlette's WebSocket."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, data):
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_text(data)

    async def close(self, code=1000, reason=""):
        await self.ws.close(code, reason)

    def __aiter__(self):
        return self.ws.iter_text().__aiter__()


@app.websocket("/ws")
async def stream(ws: WebSocket):
    body = refusal(token, ws.headers.get("authorization", ""))
    if body is not None:
        await ws.send_denial_response(PlainTextResponse(body, status_code=401))
        return
    await ws.accept()
    await handle(Socket(ws), settings, timings)
