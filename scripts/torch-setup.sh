#!/usr/bin/env bash
# Installs PyTorch (and numpy) from PyPI into target/torch-venv (nothing
# global), for examples/pytorch and tests/pytorch_example.rs on a machine
# without a GPU: PyPI's Linux wheel is the CUDA build, so this is about
# 5.4 GiB with its nvidia-* libraries (they load on a CPU-only machine too;
# torch cannot be imported without them). Not part of CI for that reason.
# Idempotent; progress on stderr. Needs python3 with venv. Then:
#   PATH=$PWD/target/torch-venv/bin:$PATH NEON_PERF_REQUIRE_TORCH=1 cargo test --test pytorch_example
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.15.0
NUMPY_VERSION=2.4.6
VENV=target/torch-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "
import sys, torch
sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
  echo "installing torch==$TORCH_VERSION and numpy==$NUMPY_VERSION into $VENV (about 5.4 GiB)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION"
fi
