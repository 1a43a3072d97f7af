#!/usr/bin/env bash
# Installs ONNX Runtime, onnx and numpy from PyPI into target/onnx-venv (nothing
# global), for examples/onnx and tests/onnx_example.rs. Idempotent; progress
# on stderr. Needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=1.20.1
ONNX_VERSION=1.17.0
NUMPY_VERSION=2.1.3
VENV=target/onnx-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "
import sys, onnxruntime, onnx, numpy
sys.exit(onnxruntime.__version__ != '$ORT_VERSION' or onnx.__version__ != '$ONNX_VERSION')" 2>/dev/null; then
  echo "installing onnxruntime==$ORT_VERSION onnx==$ONNX_VERSION numpy==$NUMPY_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "onnxruntime==$ORT_VERSION" "onnx==$ONNX_VERSION" "numpy==$NUMPY_VERSION"
fi
