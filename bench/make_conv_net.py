#!/usr/bin/python3
"""Write the synthetic conv net of issue 10's benchmark (BENCHMARKS.md): the op mix of a 176 MB
segmentation net: 119 Conv, 39 Resize, input 1x3x1024x1024, float32 weights in initializers.
Stem Conv 3->C stride 2, then 39 blocks of Conv stride 2, Conv, Resize x2, Conv, residual Add
(Resize alternates constant scales and sizes computed from Shape of the skip tensor, which static
shape analysis must follow), then a 1x1 head Conv. C = 204 gives 43.9M params, 176 MB.

    /usr/bin/python3 bench/make_conv_net.py OUT.onnx [--channels 204] [--blocks 39] [--seed 0]
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--channels", type=int, default=204)
    ap.add_argument("--blocks", type=int, default=39)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    c = a.channels
    inits, nodes = [], []

    def conv(x, out, cin, cout, k=3, stride=1):
        w, b = out + "_w", out + "_b"
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((cout, cin, k, k), dtype=np.float32) / np.float32(np.sqrt(cin * k * k))), w))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), b))
        nodes.append(helper.make_node("Conv", [x, w, b], [out], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        return out

    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales2"))
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "i0"))
    inits.append(numpy_helper.from_array(np.array([2], np.int64), "i2"))
    inits.append(numpy_helper.from_array(np.array([4], np.int64), "i4"))
    x = conv("x", "stem", 3, c, stride=2)
    for i in range(a.blocks):
        p = f"b{i}_"
        down = conv(x, p + "down", c, c, stride=2)
        mid = conv(down, p + "mid", c, c)
        if i % 2 == 0:
            nodes.append(helper.make_node("Resize", [mid, "", "scales2"], [p + "up"], mode="nearest"))
        else:
            nodes.append(helper.make_node("Shape", [x], [p + "shape"]))
            nodes.append(helper.make_node("Slice", [p + "shape", "i0", "i4"], [p + "sizes"]))
            nodes.append(helper.make_node("Resize", [mid, "", "", p + "sizes"], [p + "up"], mode="nearest"))
        out = conv(p + "up", p + "out", c, c)
        nodes.append(helper.make_node("Relu", [out], [p + "relu"]))
        nodes.append(helper.make_node("Add", [x, p + "relu"], [p + "res"]))
        x = p + "res"
    conv(x, "y", c, 2, k=1)
    graph = helper.make_graph(nodes, "conv_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 1024, 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 512, 512])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, a.out)


if __name__ == "__main__":
    main()
