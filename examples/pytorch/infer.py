#!/usr/bin/env python3
"""A team's PyTorch inference script, as neon-perf gates it.

An MLP (1024 -> 4096 -> 1024, GELU) with seeded weights (nothing is
downloaded), in eval mode under ``torch.inference_mode()``, on CUDA when
there is a GPU, else on the CPU. It reports with the ``neon_perf`` helper,
which neon-perf puts on the script's PYTHONPATH:

- ``latency`` per batch, timed by ``neon_perf.time`` (CUDA events and a
  synchronization check on a GPU; the step synchronizes, so it passes);
- ``throughput`` in samples/s;
- each phase's time and memory with ``neon_perf.phase`` (``load``: the
  weights to the device; ``infer``: the timed batches), allocated and
  reserved, current and peak, on CUDA.

    python3 infer.py --batch 8 --iterations 20
    python3 infer.py --batch 8 --iterations 1 --seq 128    # find_max_batch probes

``--device cuda`` (or ``INFER_DEVICE=cuda`` in the environment) makes a
missing or broken CUDA an error instead of a quiet run on the CPU: a GPU
runner's gate should fail, not measure the CPU and call it the model.
"""
import argparse
import os
import sys

import torch

import neon_perf

D_IN, HIDDEN, D_OUT = 1024, 4096, 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, default=1, help="tokens per item")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument(
        "--device",
        choices=["auto", "cuda", "cpu"],
        default=os.environ.get("INFER_DEVICE", "auto"),
        help="auto: CUDA when there is a GPU, else the CPU (default; INFER_DEVICE sets it)",
    )
    args = p.parse_args()
    device = pick_device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(7)
    # CUDA starts inside this phase (PyTorch starts it lazily), so the phase
    # reports the host's memory and the GPU's, peaks counted from CUDA's start.
    with neon_perf.phase("load"):
        model = torch.nn.Sequential(
            torch.nn.Linear(D_IN, HIDDEN),
            torch.nn.GELU(),
            torch.nn.Linear(HIDDEN, D_OUT),
        ).to(device=device, dtype=dtype).eval()
    x = torch.randn(args.batch, args.seq, D_IN, device=device, dtype=dtype)

    def step(batch):
        """One inference step that waits for its work, as a server step does
        before it answers: CUDA calls return before the GPU finishes, so
        without the synchronize the step's host-clock time would be only
        the launch, and neon_perf.time's check `unsynchronized timing:
        latency` (cuda-sync) fails."""
        y = model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return y

    with torch.inference_mode(), neon_perf.phase("infer"):
        times = neon_perf.time(step, x, name="latency", warmup=3, iterations=args.iterations)
    median = sorted(times)[len(times) // 2]
    neon_perf.emit("throughput", args.batch / median, "samples/s")


def pick_device(wanted):
    """The device to run on; exits with the reason when CUDA was asked for
    and PyTorch cannot use it."""
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        sys.exit(
            f"infer.py: --device cuda, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}): "
            "no GPU, no driver, or CUDA failed to start"
        )
    return torch.device(wanted)


if __name__ == "__main__":
    main()
