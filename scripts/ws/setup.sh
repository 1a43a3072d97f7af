#!/usr/bin/env bash
# Installs the third-party WebSocket peers neon-perf is tested against, all
# under target/ (nothing global):
#   target/ws-venv  Python `websockets` (server + client), and the web
#                   frameworks examples/ws-backend/frameworks.toml serves
#                   its handlers with: FastAPI on uvicorn (+ wsproto), aiohttp
#   target/ws-node  Node `ws` (server + client)
# Idempotent; prints nothing but progress on stderr. Needs python3, node, npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
WEBSOCKETS_VERSION=15.0.1
WS_VERSION=8.18.3
FRAMEWORKS="fastapi==0.165.0 uvicorn==0.55.0 wsproto==1.3.2 aiohttp==3.14.5"
if [ ! -x target/ws-venv/bin/python ] || ! target/ws-venv/bin/python -c "import websockets,sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
  echo "installing websockets==$WEBSOCKETS_VERSION into target/ws-venv" >&2
  python3 -m venv target/ws-venv
  target/ws-venv/bin/pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
if ! target/ws-venv/bin/python - "$FRAMEWORKS" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1].split())))
PY
then
  echo "installing $FRAMEWORKS into target/ws-venv" >&2
  target/ws-venv/bin/pip install --quiet --disable-pip-version-check $FRAMEWORKS
fi
if [ ! -f target/ws-node/node_modules/ws/package.json ] || ! grep -q "\"version\": \"$WS_VERSION\"" target/ws-node/node_modules/ws/package.json; then
  echo "installing ws@$WS_VERSION into target/ws-node" >&2
  mkdir -p target/ws-node
  (cd target/ws-node && npm install --silent --no-audit --no-fund --prefix . "ws@$WS_VERSION" >/dev/null)
fi
