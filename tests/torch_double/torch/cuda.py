"""A TEST DOUBLE of ``torch.cuda`` (see __init__.py): one simulated GPU whose
work runs on a simulated stream in real time.

- ``double_kernel(seconds)`` launches "work" of that length and returns at
  once, as a CUDA launch does: the stream is busy until the later of now
  and the end of the work queued before, plus ``seconds``.
- ``Event.record()`` completes when the stream reaches it;
  ``Event.synchronize()`` and ``synchronize()`` sleep until then;
  ``Event.elapsed_time`` is in milliseconds and, as PyTorch's, raises when
  either event was not recorded or the end has not completed.
- ``double_alloc(nbytes)`` / ``double_free(handle)`` move
  ``memory_allocated``; the caching allocator's ``memory_reserved`` grows in
  2 MiB blocks and is never given back (``empty_cache`` releases what is
  not allocated). Peaks are reset by ``reset_peak_memory_stats``.
- CUDA is available; it is initialized by the first kernel, allocation or
  ``init()``, as PyTorch initializes lazily.
"""

import time as _time

_BLOCK = 2 << 20


class _State:
    initialized = False
    busy_until = 0.0
    allocated = 0
    reserved = 0
    peak_allocated = 0
    peak_reserved = 0
    handles = {}
    next_handle = 1


_s = _State()


def _now():
    return _time.perf_counter()


def _sleep_until(t):
    left = t - _now()
    if left > 0:
        _time.sleep(left)


def _init():
    _s.initialized = True


def is_available():
    return True


def is_initialized():
    return _s.initialized


def init():
    _init()


def double_kernel(seconds):
    """Queue ``seconds`` of work on the stream and return at once."""
    _init()
    _s.busy_until = max(_now(), _s.busy_until) + seconds


def synchronize():
    _init()
    _sleep_until(_s.busy_until)


class Event:
    def __init__(self, enable_timing=False):
        self._timing = enable_timing
        self._at = None

    def record(self, stream=None):
        _init()
        self._at = max(_now(), _s.busy_until)

    def query(self):
        return self._at is not None and _now() >= self._at

    def synchronize(self):
        if self._at is not None:
            _sleep_until(self._at)

    def elapsed_time(self, end):
        if not (self._timing and end._timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self._at is None or end._at is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        if not end.query():
            raise RuntimeError("CUDA error: device not ready")
        return (end._at - self._at) * 1e3


def double_alloc(nbytes):
    """Allocate ``nbytes`` of "device memory"; returns a handle."""
    _init()
    _s.allocated += nbytes
    if _s.allocated > _s.reserved:
        _s.reserved = -(-_s.allocated // _BLOCK) * _BLOCK
    _s.peak_allocated = max(_s.peak_allocated, _s.allocated)
    _s.peak_reserved = max(_s.peak_reserved, _s.reserved)
    handle = _s.next_handle
    _s.next_handle += 1
    _s.handles[handle] = nbytes
    return handle


def double_free(handle):
    _s.allocated -= _s.handles.pop(handle)


def empty_cache():
    _s.reserved = -(-_s.allocated // _BLOCK) * _BLOCK


def memory_allocated(device=None):
    return _s.allocated


def max_memory_allocated(device=None):
    return _s.peak_allocated


def memory_reserved(device=None):
    return _s.reserved


def max_memory_reserved(device=None):
    return _s.peak_reserved


def reset_peak_memory_stats(device=None):
    _init()
    _s.peak_allocated = _s.allocated
    _s.peak_reserved = _s.reserved
