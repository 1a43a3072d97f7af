#!/usr/bin/env bash
# Installs the third-party WebSocket peers neon-perf is tested against, all
# under target/ (nothing global):
#   target/ws-venv  Python `websockets` (server + client)
#   target/ws-node  Node `ws` (server + client)
# Idempotent; prints nothing but progress on stderr. Needs python3, node, npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
WEBSOCKETS_VERSION=15.0.1
WS_VERSION=8.18.3
if [ ! -x target/ws-venv/bin/python ] || ! target/ws-venv/bin/python -c "import websockets,sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
  echo "installing websockets==$WEBSOCKETS_VERSION into target/ws-venv" >&2
  python3 -m venv target/ws-venv
  target/ws-venv/bin/pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
if [ ! -f target/ws-node/node_modules/ws/package.json ] || ! grep -q "\"version\": \"$WS_VERSION\"" target/ws-node/node_modules/ws/package.json; then
  echo "installing ws@$WS_VERSION into target/ws-node" >&2
  mkdir -p target/ws-node
  (cd target/ws-node && npm install --silent --no-audit --no-fund --prefix . "ws@$WS_VERSION" >/dev/null)
fi
