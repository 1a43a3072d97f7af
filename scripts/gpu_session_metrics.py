"""For scripts/gpu-session.sh: the median of every metric whose key starts
with one of PREFIXES, per scenario, from a neon-perf results JSON, one line
each (bytes in MiB), and each scenario's outcome, warnings and checks. Never fails:
a missing or unreadable file is one line saying so.

Usage: python3 scripts/gpu_session_metrics.py RESULTS.json PREFIX [PREFIX ...]
"""

import json
import statistics
import sys


def show(m):
    v = statistics.median(m["samples"])
    if m.get("unit") == "bytes":
        return f"{v / 2**20:.1f} MiB"
    return f"{v:.6g}"


def main(path, prefixes):
    try:
        r = json.load(open(path))
    except Exception as e:
        print(f"{path}: no results ({e})")
        return
    for s in r.get("scenarios", []):
        name = f"{s.get('suite')}::{s.get('scenario')}"
        print(f"{name}: {s.get('status')}, outcome {json.dumps(s.get('outcome'))[:200]}")
        for w in s.get("warnings", []):
            print(f"  warning: {w[:400]}")
        for c in s.get("checks", []):
            mark = "PASS" if c.get("passed") else "FAIL"
            print(f"  check {mark} {c.get('name')}: {c.get('evidence', '')[:500]}")
        rows = [m for m in s.get("metrics", []) if m["key"].startswith(tuple(prefixes)) and m.get("samples")]
        for m in rows[:16]:
            print(f"  {m['key']} median {show(m)} ({len(m['samples'])} samples)")
        if not rows:
            print(f"  no metric starting with {', '.join(prefixes)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
