#!/usr/bin/python3
"""Single-op and small-block models across a grid of shapes, each in every format compress writes.

    /usr/bin/python3 bench/target/make_grid.py OUT_DIR [--compress build/compress]

Writes OUT_DIR/<shape>.<format>.onnx and OUT_DIR/grid.json (the list). The fp32 models are made
here (seeded random weights); the other formats are what `compress` makes of them, so the fit sees
the graphs the passes really emit (weight DequantizeLinear, DynamicQuantizeLinear + MatMulInteger,
QDQ with calibrated ranges, MatMulNBits, float16 with Casts at the boundary). Never the real models
(digits, PP-OCR, silero): those are the held-out evaluation set (BENCHMARKS.md).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def weight(name, shape, fan_in):
    return numpy_helper.from_array((RNG.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def matmul(m, k, n):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return helper.make_graph(nodes, "g", [x], [y], [weight("w", [k, n], k)]), {"x": [m, k]}


def gemm(m, k, n):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)]
    return helper.make_graph(nodes, "g", [x], [y], [weight("w", [n, k], k), weight("b", [n], 1)]), {"x": [m, k]}


def conv(cin, cout, hw, k, batch=1):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, cin, hw, hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, cout, hw, hw])
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[k // 2] * 4)]
    return helper.make_graph(nodes, "g", [x], [y], [weight("w", [cout, cin, k, k], cin * k * k),
                                                    weight("b", [cout], 1)]), {"x": [batch, cin, hw, hw]}


def conv_block(cin, cout, hw):
    """Conv -> BatchNormalization -> Relu -> Conv -> Relu -> MaxPool: what conv nets repeat."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw // 2, hw // 2])
    c = cout
    inits = [weight("w1", [c, cin, 3, 3], cin * 9), weight("w2", [c, c, 3, 3], c * 9),
             numpy_helper.from_array(np.ones(c, np.float32), "g"), numpy_helper.from_array(np.zeros(c, np.float32), "be"),
             numpy_helper.from_array(np.zeros(c, np.float32), "mu"), numpy_helper.from_array(np.ones(c, np.float32), "va")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="c1", pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "va"], ["n1"], name="bn"),
             helper.make_node("Relu", ["n1"], ["r1"], name="r1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="c2", pads=[1] * 4),
             helper.make_node("Relu", ["c2"], ["r2"], name="r2"),
             helper.make_node("MaxPool", ["r2"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2])]
    return helper.make_graph(nodes, "g", [x], [y], inits), {"x": [1, cin, hw, hw]}


def mlp_block(m, d, h):
    """MatMul -> Add -> Relu -> MatMul -> Add: a transformer feed-forward."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, d])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, d])
    inits = [weight("w1", [d, h], d), weight("b1", [h], 1), weight("w2", [h, d], h), weight("b2", [d], 1)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"], name="mm1"), helper.make_node("Add", ["a", "b1"], ["ab"], name="add1"),
             helper.make_node("Relu", ["ab"], ["r"], name="relu"), helper.make_node("MatMul", ["r", "w2"], ["o"], name="mm2"),
             helper.make_node("Add", ["o", "b2"], ["y"], name="add2")]
    return helper.make_graph(nodes, "g", [x], [y], inits), {"x": [m, d]}


SHAPES = {}
for m in (1, 16, 64):
    for k, n in ((128, 128), (256, 1024), (768, 768), (1024, 256)):
        SHAPES[f"matmul_{m}x{k}x{n}"] = lambda m=m, k=k, n=n: matmul(m, k, n)
for m in (1, 32):
    SHAPES[f"gemm_{m}x512x512"] = lambda m=m: gemm(m, 512, 512)
# Small spatial sizes too: there ONNX Runtime's fixed cost per kernel and per Transpose dominates.
for cin, cout, hw, k in ((16, 16, 32, 3), (32, 64, 16, 3), (64, 64, 8, 1), (8, 32, 32, 3), (64, 128, 8, 3), (128, 128, 16, 1),
                         (8, 16, 8, 3), (32, 32, 4, 3), (24, 48, 6, 3)):
    SHAPES[f"conv_{cin}x{cout}x{hw}k{k}"] = lambda cin=cin, cout=cout, hw=hw, k=k: conv(cin, cout, hw, k)
SHAPES["convblock_16x32x32"] = lambda: conv_block(16, 32, 32)
SHAPES["convblock_32x64x16"] = lambda: conv_block(32, 64, 16)
SHAPES["convblock_8x24x12"] = lambda: conv_block(8, 24, 12)
SHAPES["mlpblock_8x256x1024"] = lambda: mlp_block(8, 256, 1024)
SHAPES["mlpblock_1x512x2048"] = lambda: mlp_block(1, 512, 2048)

FORMATS = {
    "fp32": None,
    "int8_weight_only": "quantize-int8:min-elements=1",
    "int8_dynamic": "quantize-int8:mode=dynamic:min-elements=1",
    "int8_static": "quantize-int8:mode=static:calibration={cal}",
    "int8_static_u8": "quantize-int8:mode=static:weight-type=uint8:calibration={cal}",
    "fp16": "fp16",
    "fp16_weights_only": "fp16:weights-only=true",
    "int4": "quantize-int4:min-elements=1",
    "int4_dq": "quantize-int4:format=dq:min-elements=1",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--compress", default="build/compress")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    listing = []
    for shape, make in SHAPES.items():
        graph, inputs = make()
        base = os.path.join(args.out, f"{shape}.fp32.onnx")
        save(graph, base)
        cal = os.path.join(args.out, f"cal_{shape}")
        os.makedirs(cal, exist_ok=True)
        for name, dims in inputs.items():
            np.save(os.path.join(cal, f"{name}.npy"), RNG.standard_normal([16] + dims[1:]).astype(np.float32)
                    if dims[0] == 1 else RNG.standard_normal([16 * dims[0]] + dims[1:]).astype(np.float32))
        for fmt, pipeline in FORMATS.items():
            path = os.path.join(args.out, f"{shape}.{fmt}.onnx")
            if pipeline is not None:
                r = subprocess.run([args.compress, base, "-o", path, "--force", "-q", "-p", pipeline.format(cal=cal)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    print(f"skip {shape}.{fmt}: {r.stderr.strip()}", file=sys.stderr)
                    continue
            listing.append({"shape": shape, "format": fmt, "file": os.path.basename(path)})
    with open(os.path.join(args.out, "grid.json"), "w") as f:
        json.dump(listing, f, indent=1)
    print(f"{len(listing)} models in {args.out}")


if __name__ == "__main__":
    main()
