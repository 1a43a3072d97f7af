#!/usr/bin/env bash
# Installs NVRTC (the CUDA runtime compiler) from PyPI into target/nvrtc-venv so
# kernels can be compiled to PTX on machines without a GPU or CUDA toolkit.
# Prints one line for the caller to eval:
#   export LD_LIBRARY_PATH=<venv>/.../nvidia/cu13/lib:$LD_LIBRARY_PATH
# Usage: eval "$(scripts/nvrtc.sh)"       (progress goes to stderr)
set -euo pipefail

NVRTC_VERSION="${NVRTC_VERSION:-13.0.88}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NVRTC_VENV:-$root/target/nvrtc-venv}"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "nvrtc.sh: creating $venv" >&2
    "$py" -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -m pip show nvidia-cuda-nvrtc 2>/dev/null | grep -q "^Version: $NVRTC_VERSION\$"; then
    echo "nvrtc.sh: installing nvidia-cuda-nvrtc==$NVRTC_VERSION" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvrtc==$NVRTC_VERSION" >&2
fi

# The wheel's layout changed across CUDA majors (nvidia/cuda_nvrtc/lib for 12,
# nvidia/cu13/lib for 13): find the folder that holds libnvrtc.so.*.
lib="$(find "$venv" -name 'libnvrtc.so.*' -not -name '*builtins*' -printf '%h\n' 2>/dev/null | head -n1)"
if [ -z "$lib" ]; then
    echo "nvrtc.sh: libnvrtc.so.* not found under $venv after install" >&2
    exit 1
fi
# cudarc dlopens libnvrtc.so first, then libnvrtc.so.13 / .12 / ... (checked:
# the versioned name alone is found through LD_LIBRARY_PATH); the plain name
# is added for other tools that look for it.
real="$(ls "$lib"/libnvrtc.so.[0-9]* 2>/dev/null | grep -v builtins | sort | tail -n1)"
if [ -n "$real" ] && [ ! -e "$lib/libnvrtc.so" ]; then
    ln -s "$(basename "$real")" "$lib/libnvrtc.so"
fi
echo "export LD_LIBRARY_PATH=$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
