#!/usr/bin/env python3
"""A stand-in for a team's inference script: a small MLP in pure Python
(no packages needed), run over batches of requests. It prints one JSON line
per metric sample, the format neon-perf reads from any program:

    {"metric": "latency", "value": 1.9, "unit": "ms"}
"""
import argparse
import json
import random
import sys
import time


def make_layer(rng, n_in, n_out):
    return [[rng.uniform(-0.1, 0.1) for _ in range(n_in)] for _ in range(n_out)]


def forward(layers, x):
    for i, w in enumerate(layers):
        x = [sum(a * b for a, b in zip(row, x)) for row in w]
        if i + 1 < len(layers):
            x = [v if v > 0 else 0.0 for v in x]
    return x


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--width", type=int, default=64)
    args = p.parse_args()
    if args.batch < 1:
        print("batch must be >= 1", file=sys.stderr)
        return 2
    rng = random.Random(7)
    layers = [make_layer(rng, args.width, args.width) for _ in range(3)]
    inputs = [[rng.uniform(-1, 1) for _ in range(args.width)] for _ in range(args.batch)]
    for _ in range(args.requests):
        start = time.perf_counter()
        for x in inputs:
            forward(layers, x)
        elapsed = time.perf_counter() - start
        print(json.dumps({"metric": "latency", "value": elapsed * 1e3, "unit": "ms"}))
        print(json.dumps({"metric": "throughput", "value": args.batch / elapsed,
                          "unit": "samples/s"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
