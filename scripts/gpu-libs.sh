# Sourced by scripts/gpu-check.sh and scripts/gpu-session.sh on a GPU host:
# the libraries a driver install may lack (NVRTC, cuBLAS) are taken from the
# system, then from PyTorch's nvidia-* wheels, then from scripts/nvrtc.sh's
# venv, and added to LD_LIBRARY_PATH (exported). Sets GPU_LIBS_ADDED to what
# it added (empty when the system has both). Needs $PY (default python3).
gpu_libs_have() { ldconfig -p 2>/dev/null | grep -q "$1"; }
GPU_LIBS_ADDED=""
if ! gpu_libs_have 'libnvrtc.so' || ! gpu_libs_have 'libcublas.so'; then
    GPU_LIBS_ADDED=$("${PY:-python3}" - <<'PY' 2>/dev/null
import glob, os
dirs = set()
try:
    import nvidia
    for root in list(nvidia.__path__):
        for pat in ("libnvrtc.so*", "libcublas.so*", "libcublasLt.so*"):
            for f in glob.glob(os.path.join(root, "**", pat), recursive=True):
                dirs.add(os.path.dirname(f))
except Exception:
    pass
try:
    import torch
    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    if glob.glob(os.path.join(lib, "libnvrtc.so*")) or glob.glob(os.path.join(lib, "libcublas.so*")):
        dirs.add(lib)
except Exception:
    pass
print(":".join(sorted(dirs)))
PY
)
    for d in target/nvrtc-venv/lib/python3*/site-packages/nvidia/*/lib; do
        [ -d "$d" ] && GPU_LIBS_ADDED="${GPU_LIBS_ADDED:+$GPU_LIBS_ADDED:}$PWD/$d"
    done
fi
if [ -n "$GPU_LIBS_ADDED" ]; then
    case ":${LD_LIBRARY_PATH:-}:" in
        *":$GPU_LIBS_ADDED:"*) ;;   # already there (sourced twice)
        *) export LD_LIBRARY_PATH="$GPU_LIBS_ADDED${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
    esac
fi
