"""A streaming WebSocket backend for neon-perf to flood (see handlers.py).

Usage: target/ws-venv/bin/python examples/ws-backend/server.py PORT [options]
  --first-delay-ms MS  time to the first token (env BACKEND_FIRST_DELAY_MS, default 20)
  --gap-ms MS          time between tokens (env BACKEND_GAP_MS, default 5)
  --tokens N           tokens per request unless it says max_tokens (env
                       BACKEND_TOKENS, default 16)
  --token SECRET       require "Authorization: Bearer SECRET" (env BACKEND_TOKEN);
                       otherwise 401 with a text body
  --token-env NAME     the same, with the secret read from the variable NAME
  --no-ids             replies carry no id (match them by order)
  --no-done            no end frame (end streams by count or idleness)
  --close-after-stream close the connection after each stream
  --empty-first        an empty token before the first real one
  --tls-cert PEM --tls-key PEM  serve wss:// with this certificate chain and key
  --leak-kib-per-cancel KIB  (env BACKEND_LEAK_KIB_PER_CANCEL) a bug on purpose: keep KIB of memory for every
                       stream its client cancelled (for neon-perf's `cancel` check)
  --cuda-mib MIB       serve on a GPU: hold MIB of "weights" on it (needs PyTorch
                       with CUDA); the leak above then keeps GPU memory
  --kv-kib-per-stream KIB  with --cuda-mib: GPU memory each running stream holds
  --torch-device DEV   where --cuda-mib's tensors live (default cuda; cpu runs
                       the same PyTorch path on a machine without a GPU)
Prints "listening on PORT" once ready; stops on SIGTERM.
"""

import argparse
import asyncio
import functools
import http
import os
import signal
import ssl

from websockets.asyncio.server import serve

from handlers import Settings, Timings, handle, refusal


def check_auth(token, connection, request):
    body = refusal(token, request.headers.get("Authorization", ""))
    return None if body is None else connection.respond(http.HTTPStatus.UNAUTHORIZED, body)


def parse_args():
    # Defaults from the environment, as the framework apps read it.
    d, token = Settings.from_env()
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--first-delay-ms", type=float, default=d.first_delay * 1e3)
    p.add_argument("--gap-ms", type=float, default=d.gap * 1e3)
    p.add_argument("--tokens", type=int, default=d.tokens)
    p.add_argument("--token", default=token)
    p.add_argument("--token-env")
    p.add_argument("--no-ids", action="store_true")
    p.add_argument("--no-done", action="store_true")
    p.add_argument("--close-after-stream", action="store_true")
    p.add_argument("--empty-first", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--leak-kib-per-cancel", type=int, default=d.leak_on_cancel // 1024)
    p.add_argument("--cuda-mib", type=int, default=0)
    p.add_argument("--kv-kib-per-stream", type=int, default=0)
    p.add_argument("--torch-device", default="cuda")
    return p.parse_args()


def on_gpu(mib, device):
    """The torch module and MIB of weights on `device`; exits with the
    reason when there is no PyTorch or no CUDA device."""
    try:
        import torch
    except ImportError as e:
        raise SystemExit(f"--cuda-mib needs PyTorch: {e}")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--cuda-mib needs a CUDA device: torch.cuda.is_available() is False")
    weights = torch.ones(mib << 20, dtype=torch.uint8, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return torch, weights


async def main():
    a = parse_args()
    if a.token_env:
        a.token = os.environ.get(a.token_env)
        if not a.token:
            raise SystemExit(f"--token-env {a.token_env}: the variable is not set")
    torch, weights = on_gpu(a.cuda_mib, a.torch_device) if a.cuda_mib else (None, None)
    settings = Settings(a.first_delay_ms / 1e3, a.gap_ms / 1e3, a.tokens, ids=not a.no_ids,
                        done=not a.no_done, close_after=a.close_after_stream,
                        empty_first=a.empty_first,
                        leak_on_cancel=a.leak_kib_per_cancel * 1024,
                        torch=torch, kv_bytes=a.kv_kib_per_stream * 1024,
                        device=a.torch_device)
    timings = Timings()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    handler = functools.partial(handle, settings=settings, timings=timings)
    auth = functools.partial(check_auth, a.token)
    tls = None
    if a.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key)
    async with serve(handler, "127.0.0.1", a.port, compression=None, process_request=auth,
                     ssl=tls):
        print(f"listening on {a.port}", flush=True)
        await stop
    del weights


if __name__ == "__main__":
    asyncio.run(main())
