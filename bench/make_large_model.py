#!/usr/bin/python3
"""Write a synthetic > 2 GB ONNX model with external data for bench/run_benchmarks.sh --large:
x [1, N] -> MatMul W0 -> Relu -> MatMul W1 -> Relu -> MatMul W2 -> y, each W a float32 N x N
initializer (N = 14000 by default: 3 x 784 MB = 2.35 GB), weights in OUT.data.

    /usr/bin/python3 bench/make_large_model.py OUT.onnx [--n 14000] [--seed 0]
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=14000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    n = a.n
    rng = np.random.default_rng(a.seed)
    inits, nodes = [], []
    prev = "x"
    for i in range(3):
        w = (rng.standard_normal((n, n), dtype=np.float32) / np.float32(np.sqrt(n)))
        inits.append(numpy_helper.from_array(w, f"W{i}"))
        del w
        y = "y" if i == 2 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"mm{i}"] if i < 2 else [y], name=f"matmul{i}"))
        if i < 2:
            nodes.append(helper.make_node("Relu", [f"mm{i}"], [y], name=f"relu{i}"))
        prev = y
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_large_model.py")
    model.ir_version = 8
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    onnx.save_model(model, a.out, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(a.out) + ".data", size_threshold=1024)
    total = os.path.getsize(a.out) + os.path.getsize(a.out + ".data")
    print(f"wrote {a.out} (+ .data): {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
