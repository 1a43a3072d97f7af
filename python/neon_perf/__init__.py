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
"""

import json
import math
import numbers
import re
import sys

__version__ = "0.1.0"
__all__ = ["emit", "__version__"]

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
