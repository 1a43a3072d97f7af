#!/usr/bin/env python3
"""A team's ONNX Runtime inference script, as neon-perf gates it.

The model is built here with ``onnx.helper`` (an MLP: 1024 -> 4096 -> 1024,
ReLU, float32, seeded weights; nothing is downloaded) and run on ONNX
Runtime's CPU provider over a batch of random inputs of ``--seq`` tokens
each. It prints its own
latency per batch and throughput with the ``neon_perf`` helper, which
neon-perf puts on the script's PYTHONPATH.

    python3 infer.py --batch 8 --iterations 20

Needs: onnxruntime, onnx, numpy (``bash scripts/onnx-setup.sh`` installs
them into target/onnx-venv).
"""
import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import neon_perf

D_IN, HIDDEN, D_OUT = 1024, 4096, 1024


def build_model(seed=7):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((D_IN, HIDDEN), dtype=np.float32) * 0.02
    b1 = np.zeros(HIDDEN, dtype=np.float32)
    w2 = rng.standard_normal((HIDDEN, D_OUT), dtype=np.float32) * 0.02
    b2 = np.zeros(D_OUT, dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["y0"]),
        helper.make_node("Add", ["y0", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", D_IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", D_OUT])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, default=1, help="tokens per item")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(build_model(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((args.batch, args.seq, D_IN), dtype=np.float32)
    session.run(None, {"x": x})  # warm-up: the first run allocates
    for _ in range(args.iterations):
        start = time.perf_counter()
        session.run(None, {"x": x})
        elapsed = time.perf_counter() - start
        neon_perf.emit("latency", elapsed * 1e3, "ms")
        neon_perf.emit("throughput", args.batch / elapsed, "samples/s")


if __name__ == "__main__":
    main()
