#!/usr/bin/python3
"""Write a BERT-base-shaped encoder for the low-rank and memory benchmarks (BENCHMARKS.md):
x [1, 128, 768] -> L layers of Q/K/V/O MatMuls 768x768 and a 768x3072 / 3072x768 FFN with Relu and
residual Adds; float32 Gaussian weights (full rank, like trained BERT for energy=0.95: no layer
pays). L = 12 gives 85M params, 340 MB.

    /usr/bin/python3 bench/make_encoder_model.py OUT.onnx [--layers 12] [--seed 0]
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    d, ff = 768, 3072
    inits, nodes = [], []

    def weight(name, rows, cols):
        inits.append(numpy_helper.from_array(rng.standard_normal((rows, cols), dtype=np.float32) / np.float32(np.sqrt(rows)), name))
        return name

    x = "x"
    for i in range(a.layers):
        p = f"l{i}_"
        for part in "qkv":
            nodes.append(helper.make_node("MatMul", [x, weight(p + part, d, d)], [p + part + "_out"]))
        nodes.append(helper.make_node("Sum", [p + "q_out", p + "k_out", p + "v_out"], [p + "qkv"]))
        nodes.append(helper.make_node("MatMul", [p + "qkv", weight(p + "o", d, d)], [p + "attn"]))
        nodes.append(helper.make_node("Add", [x, p + "attn"], [p + "res1"]))
        nodes.append(helper.make_node("MatMul", [p + "res1", weight(p + "ff1", d, ff)], [p + "h"]))
        nodes.append(helper.make_node("Relu", [p + "h"], [p + "hr"]))
        nodes.append(helper.make_node("MatMul", [p + "hr", weight(p + "ff2", ff, d)], [p + "ffn"]))
        nodes.append(helper.make_node("Add", [p + "res1", p + "ffn"], [p + "out"]))
        x = p + "out"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128, d])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, a.out)


if __name__ == "__main__":
    main()
