"""A TEST DOUBLE of PyTorch, for harness logic only.

It is the part of ``torch.cuda`` that the ``neon_perf`` helper calls
(python/neon_perf), so that the tests can drive the helper's CUDA paths
(CUDA-event timing, the synchronization check, GPU memory per phase) on a
machine without a GPU. It is never what users run, and nothing it reports is
a GPU measurement. The real PyTorch example is examples/pytorch.

Only ``torch.cuda`` exists here; see cuda.py for what it pretends.
"""

from . import cuda  # noqa: F401

__version__ = "0.0.0+test-double"
