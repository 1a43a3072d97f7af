"""Summarises the runs of scripts/ws/compare-clients.sh.

Usage: python3 scripts/ws/compare_table.py RUNS_JSONL RESULTS_JSON META_JSON

RUNS_JSONL has one line per measurement:
  {"server":..,"connections":..,"size":..,"client":..,"repeat":..,"order":..,"result":{..}}
Prints the Markdown table on stdout (one row per server × connections ×
size: each client's median msg/s over the repeats with its min–max range,
which client is on top against the runner-up, and neon-perf against
node-ws when more clients ran), then, where the runs recorded it, each
client process's CPU use (median cores and µs per message) and the
server's over the same runs, and writes RESULTS_JSON: the metadata, every
run, and the per-cell summary the table was made from.
"""

import json
import statistics
import sys


def summarise(runs):
    """{(server, conns, size): {client: {"median","min","max","n","failed"}}}, in run order."""
    cells = {}
    for r in runs:
        key = (r["server"], r["connections"], r["size"])
        per = cells.setdefault(key, {}).setdefault(r["client"], {"values": [], "failed": 0})
        v = r["result"].get("msg_per_s")
        if v is None:
            per["failed"] += 1
        else:
            per["values"].append(v)
    out = {}
    for key, clients in cells.items():
        out[key] = {}
        for client, per in clients.items():
            vs = per["values"]
            out[key][client] = {
                "median": statistics.median(vs) if vs else None,
                "min": min(vs) if vs else None,
                "max": max(vs) if vs else None,
                "n": len(vs),
                "failed": per["failed"],
            }
    return out


def versus(a_name, a, b_name, b):
    """Who is ahead of two clients, by their median ratio; a tie when the
    min–max ranges over the repeats overlap."""
    if a is None or b is None or a["median"] is None or b["median"] is None:
        return "–"
    if a["median"] < b["median"]:
        a_name, a, b_name, b = b_name, b, a_name, a
    ratio = f"{a_name} {a['median'] / b['median']:.2f}× {b_name}"
    if a["min"] <= b["max"] and b["min"] <= a["max"]:
        return f"tie (ranges overlap): {ratio}"
    return ratio


def on_top(stats):
    """Which client leads the cell: the top median against the runner-up."""
    ranked = sorted(
        ((s["median"], c) for c, s in stats.items() if s["median"] is not None),
        reverse=True,
    )
    if len(ranked) < 2:
        return "–"
    c1, c2 = ranked[0][1], ranked[1][1]
    return versus(c1, stats[c1], c2, stats[c2])


def fmt_cell(s):
    if s is None or s["median"] is None:
        return "– (failed)" if s and s["failed"] else "–"
    text = f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"
    if s["failed"]:
        text += f", {s['failed']} failed"
    return text


def size_label(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def cpu_summary(runs):
    """{(server, conns, size): {client: (median cores, median µs/msg)}} over
    the runs that recorded the client process's CPU time."""
    cells = {}
    for r in runs:
        res = r["result"]
        if res.get("client_cpu_cores") is None:
            continue
        key = (r["server"], r["connections"], r["size"])
        per = cells.setdefault(key, {}).setdefault(r["client"], ([], [], [], []))
        for i, name in enumerate(["client_cpu_cores", "cpu_us_per_msg_approx",
                                  "server_cpu_cores", "server_cpu_us_per_msg_approx"]):
            if res.get(name) is not None:
                per[i].append(res[name])
    return {
        key: {c: tuple(statistics.median(xs) if xs else None for xs in lists)
              for c, lists in clients.items()}
        for key, clients in cells.items()
    }


def print_cpu_table(runs, clients):
    """The clients' own CPU use: cores, and µs per message (approximate:
    the process's whole CPU time over msg/s × its wall time)."""
    cells = cpu_summary(runs)
    if not cells:
        return
    print()
    def fmt(cores, us):
        return "–" if cores is None else f"{cores:.2f} · {'–' if us is None else f'{us:.1f}'}"

    head = (["server", "connections", "size"] + [f"{c} CPU cores · µs/msg" for c in clients]
            + [f"server with {c}" for c in clients])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for (server, conns, size), stats in cells.items():
        row = [server, str(conns), size_label(size)]
        none = (None, None, None, None)
        row += [fmt(*stats.get(c, none)[:2]) for c in clients]
        row += [fmt(*stats.get(c, none)[2:]) for c in clients]
        print("| " + " | ".join(row) + " |")


def main():
    runs_path, results_path, meta_path = sys.argv[1:4]
    with open(runs_path) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    with open(meta_path) as f:
        meta = json.load(f)
    cells = summarise(runs)
    clients = []
    for r in runs:
        if r["client"] not in clients:
            clients.append(r["client"])
    # The comparison the script exists for: neon-perf against the plain Node client.
    pair = ("neon-perf", "node-ws") if {"neon-perf", "node-ws"} <= set(clients) else None
    head = ["server", "connections", "size"] + [f"{c} msg/s" for c in clients] + ["on top (median ratio)"]
    if pair and len(clients) > 2:
        head.append(f"{pair[0]} vs {pair[1]}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for (server, conns, size), stats in cells.items():
        row = [server, str(conns), size_label(size)]
        row += [fmt_cell(stats.get(c)) for c in clients]
        row.append(on_top(stats))
        if pair and len(clients) > 2:
            row.append(versus(pair[0], stats.get(pair[0]), pair[1], stats.get(pair[1])))
        print("| " + " | ".join(row) + " |")
    print_cpu_table(runs, clients)
    summary = [
        {"server": s, "connections": c, "size": z, "client": client, **st}
        for (s, c, z), stats in cells.items()
        for client, st in stats.items()
    ]
    with open(results_path, "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
