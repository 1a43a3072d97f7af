"""Report metrics from your own program to neon-perf.

A ``kind = "command"`` scenario runs your program and reads the metrics it
prints on stdout, one JSON object per line::

    {"metric": "latency", "value": 12.5, "unit": "ms"}

:func:`emit` prints such a line and flushes stdout, so that the line reaches
neon-perf even if the program is killed on its scenario's timeout. Other
output on stdout is ignored, as long as it is not a JSON object with a
``"metric"`` key.

Example (``suites/bench.py``, run by ``command = ["python3", "{suite_dir}/bench.py"]``)::

    import time
    import neon_perf

    start = time.perf_counter()
    model(batch)
    neon_perf.emit("latency", (time.perf_counter() - start) * 1e3, "ms")
    neon_perf.emit("throughput{batch=8}", 8 / elapsed, "samples/s")

Units neon-perf knows include ``ns``, ``us``, ``ms``, ``s``, ``B``, ``KiB``,
``MiB``, ``GiB``, ``MB/s``, ``GB/s``, ``GFLOP/s``, ``%`` and rates such as
``req/s``; no unit means a count. The unit also gives the direction
(lower is better for times and sizes, higher for rates) unless
``direction`` says otherwise. The names ``wall_time``, ``cpu_time`` and
``peak_rss`` are measured by neon-perf itself and cannot be emitted.

Besides :func:`emit`: :func:`time` times a callable (warm-up, iterations,
synchronized on CUDA), :func:`phase` times a block and reports its memory,
and :func:`check` reports a pass/fail check for neon-perf's checklist.
"""

import json
import math
import numbers
import re
import sys
import time as _time
import tracemalloc

__version__ = "0.1.0"
__all__ = ["emit", "check", "time", "phase", "__version__"]

# The metric key syntax neon-perf parses (src/metric.rs, MetricKey):
# a name of letters, digits and `_ - . /`, optionally with labels in braces,
# `latency{batch=8,dtype=f16}`.
_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")
_RESERVED = ("wall_time", "cpu_time", "peak_rss")
_DIRECTIONS = ("lower", "higher", "neither")


def _check_name(name):
    if not isinstance(name, str):
        raise TypeError(f"neon_perf.emit: name must be a str, got {type(name).__name__}")
    key = name.strip()
    base, brace, rest = key.partition("{")
    if not _NAME.fullmatch(base):
        raise ValueError(
            f"neon_perf.emit: invalid metric name {name!r}: use letters, digits and _ - . / "
            "with optional labels in braces, e.g. 'latency{batch=8}'"
        )
    if brace:
        if not rest.endswith("}"):
            raise ValueError(f"neon_perf.emit: invalid metric name {name!r}: missing closing '}}'")
        for part in rest[:-1].split(","):
            if part.strip() and "=" not in part:
                raise ValueError(
                    f"neon_perf.emit: invalid label {part!r} in {name!r}: expected key=value"
                )
    if key in _RESERVED:
        raise ValueError(
            f"neon_perf.emit: {key!r} is measured by neon-perf itself; emit yours under another name"
        )
    return key


def _check_value(name, value):
    # bool is an int to Python but never a measurement.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"neon_perf.emit: value of {name!r} must be a real number, got {type(value).__name__}"
        )
    try:
        as_float = float(value)
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float):
        raise ValueError(f"neon_perf.emit: value of {name!r} must be finite, got {value!r}")
    # Integers stay integers in the JSON (numpy integers included).
    return int(value) if isinstance(value, numbers.Integral) else as_float


def emit(name, value, unit=None, *, direction=None):
    """Print one metric line for neon-perf and flush stdout.

    name: the metric, optionally with labels: ``"latency"``, ``"latency{batch=8}"``.
    value: a finite real number (int, float, or a numpy scalar), in ``unit``.
    unit: ``"ms"``, ``"MiB"``, ``"req/s"``, ... or None for a plain count.
    direction: ``"lower"``, ``"higher"`` or ``"neither"`` (is better) when the
        unit's usual direction is wrong for this metric; None keeps it.

    Raises TypeError or ValueError, before printing anything, for a name that
    is not a valid metric key, a value that is not a finite number, or a unit
    or direction of the wrong kind.
    """
    key = _check_name(name)
    number = _check_value(key, value)
    record = {"metric": key, "value": number}
    if unit is not None:
        if not isinstance(unit, str):
            raise TypeError(
                f"neon_perf.emit: unit of {key!r} must be a str or None, got {type(unit).__name__}"
            )
        record["unit"] = unit
    if direction is not None:
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"neon_perf.emit: direction of {key!r} must be one of {', '.join(_DIRECTIONS)}, "
                f"got {direction!r}"
            )
        record["direction"] = direction
    line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    out = sys.stdout
    out.write(line + "\n")
    out.flush()


_ITEMS = (
    "gpu-memory",
    "cuda-sync",
    "websocket-buffers",
    "batching",
    "memory-cleanup",
    "monitoring",
    "error-handling",
)


def check(name, passed, evidence="", item=None):
    """Print one check line for neon-perf: ``name`` passed or not, with
    ``evidence`` in words, as evidence for the checklist ``item`` (one of
    gpu-memory, cuda-sync, websocket-buffers, batching, memory-cleanup,
    monitoring, error-handling) or None."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError("neon_perf.check: name must be a non-empty str")
    if not isinstance(passed, bool):
        raise TypeError(f"neon_perf.check: passed must be a bool, got {type(passed).__name__}")
    if item is not None and item not in _ITEMS:
        raise ValueError(f"neon_perf.check: item must be one of {', '.join(_ITEMS)}, got {item!r}")
    record = {"check": name.strip(), "passed": passed, "evidence": str(evidence)}
    if item is not None:
        record["item"] = item
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _cuda():
    """PyTorch's CUDA module when the program uses PyTorch on a GPU (never
    imports torch itself)."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda
    except Exception:  # a broken CUDA setup times on the host clock
        return None
    return None


# A call whose host-clock time is below this share of its CUDA-event time
# returned before the GPU finished.
_UNSYNCED_SHARE = 0.5


def time(fn, *args, name="latency", warmup=3, iterations=20, **kwargs):
    """Time ``fn(*args, **kwargs)``: ``warmup`` untimed calls, then
    ``iterations`` timed ones, each emitted as ``name`` in ms. Returns the
    times in seconds.

    With PyTorch on CUDA, each call is timed with CUDA events around it
    (what the GPU did, however asynchronous the call) and synchronized
    after. Whether CUDA is in use is asked after the warm-up, and again
    after each call timed without it, since PyTorch starts CUDA lazily; a
    call that started CUDA is timed on the host clock up to a synchronize.
    If the calls return on the host clock in under half their
    CUDA-event time, the work is asynchronous, and a check
    ``unsynchronized timing: <name>`` fails for the checklist item
    cuda-sync: timing such calls with a host clock and no synchronize
    measures the launch, not the work. Without CUDA: ``time.perf_counter``.
    """
    if not isinstance(warmup, int) or warmup < 0 or not isinstance(iterations, int) or iterations < 1:
        raise ValueError("neon_perf.time: warmup must be >= 0 and iterations >= 1 (ints)")
    _check_name(name)
    for _ in range(warmup):
        fn(*args, **kwargs)
    # Asked after the warm-up: PyTorch starts CUDA lazily, often in the
    # first call.
    cuda = _cuda()
    if cuda is not None:
        cuda.synchronize()
    times, host, timed = [], [], []
    for _ in range(iterations):
        if cuda is not None:
            start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
            start.record()
            h0 = _time.perf_counter()
            fn(*args, **kwargs)
            host.append(_time.perf_counter() - h0)
            end.record()
            end.synchronize()
            elapsed = start.elapsed_time(end) / 1e3
            timed.append(elapsed)
        else:
            t0 = _time.perf_counter()
            fn(*args, **kwargs)
            elapsed = _time.perf_counter() - t0
            cuda = _cuda()
            if cuda is not None:  # this call started CUDA: wait for its work
                cuda.synchronize()
                elapsed = _time.perf_counter() - t0
        times.append(elapsed)
        emit(name, elapsed * 1e3, "ms")
    if host:
        _sync_check(name, sorted(host)[len(host) // 2], sorted(timed)[len(timed) // 2])
    return times


def _sync_check(name, host, event):
    early = event > 1e-4 and host < _UNSYNCED_SHARE * event
    if early:
        evidence = (
            f"the call returns after {host * 1e3:.3g} ms on the host clock but the GPU works "
            f"{event * 1e3:.3g} ms (CUDA events, medians): it is asynchronous, so host-clock "
            "timings without torch.cuda.synchronize() measure the launch, not the work"
        )
    else:
        evidence = (
            f"host clock {host * 1e3:.3g} ms against {event * 1e3:.3g} ms on CUDA events "
            "(medians): the call waits for its work"
        )
    check(f"unsynchronized timing: {name}", not early, evidence, "cuda-sync")


def _statm_rss():
    try:
        import os

        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class phase:
    """``with neon_perf.phase("prefill"):`` times the block and reports its
    memory, every metric labelled ``{phase=prefill}``:

    - ``phase_time`` (ms; synchronized first and last on CUDA);
    - with PyTorch on CUDA: ``gpu_allocated`` and ``gpu_reserved`` at the
      end, and ``gpu_allocated_peak``, ``gpu_reserved_peak`` within the
      phase (the peaks are reset when it starts);
    - when CUDA was not started at the phase's start: ``rss`` at the end
      and ``rss_peak`` within the phase (VmHWM, reset when it starts;
      Linux), and ``python_heap`` and ``python_heap_peak`` from
      ``tracemalloc`` (started for the phase when nothing traces already;
      it slows allocation-heavy code).

    A phase in which PyTorch starts CUDA (``model.to("cuda")`` in a
    ``load`` phase) reports both: the host figures, and the GPU figures
    with peaks counted from CUDA's start.
    """

    def __init__(self, name):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
            raise ValueError(f"neon_perf.phase: name must be letters, digits or _ . - /, got {name!r}")
        self.name = name

    def __enter__(self):
        self._cuda = _cuda()
        if self._cuda is not None:
            self._cuda.synchronize()
            self._cuda.reset_peak_memory_stats()
        else:
            self._hwm = _reset_hwm()
            self._traced = not tracemalloc.is_tracing()
            if self._traced:
                tracemalloc.start()
            tracemalloc.reset_peak()
        self._t0 = _time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        # CUDA may have started inside the phase (PyTorch starts it lazily):
        # its peaks then count from its start, which is within the phase.
        cuda = self._cuda or _cuda()
        if cuda is not None:
            cuda.synchronize()
        elapsed = _time.perf_counter() - self._t0
        label = f"{{phase={self.name}}}"
        emit(f"phase_time{label}", elapsed * 1e3, "ms")
        if cuda is not None:
            emit(f"gpu_allocated{label}", cuda.memory_allocated(), "B")
            emit(f"gpu_allocated_peak{label}", cuda.max_memory_allocated(), "B")
            emit(f"gpu_reserved{label}", cuda.memory_reserved(), "B")
            emit(f"gpu_reserved_peak{label}", cuda.max_memory_reserved(), "B")
        if self._cuda is None:
            current, peak = tracemalloc.get_traced_memory()
            if self._traced:
                tracemalloc.stop()
            rss = _statm_rss()
            if rss is not None:
                emit(f"rss{label}", rss, "B")
            hwm = _hwm() if self._hwm else None
            if hwm is not None:
                emit(f"rss_peak{label}", hwm, "B")
            emit(f"python_heap{label}", current, "B")
            emit(f"python_heap_peak{label}", peak, "B")
        return False
