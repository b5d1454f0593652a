#!/usr/bin/env python3
"""Make altered copies of the digits models to exercise tests/ort gates and runtime support.

    /usr/bin/python3 models/make_test_variants.py OUT_DIR [--models models]

Writes into OUT_DIR (not meant for git):
  digits_{mlp,cnn}.perturbed.onnx  every float initializer plus seeded noise of 5% of its std:
                                   close to the original, never bit-identical
  digits_mlp.fp16.onnx             weights float16, Cast in and out: float32 I/O, float16 compute
  digits_mlp.fp16io.onnx           the same with float16 input and output
  digits_mlp.nbits.onnx            fc1 Gemm replaced by com.microsoft MatMulNBits (4-bit, block 32,
                                   no zero points, so 8 is implied) + Add: a contrib-op candidate
  corrupt.onnx                     the first 1000 bytes of digits_mlp.onnx: must fail to load
"""

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def perturbed(model, seed):
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or init.name.endswith("running_var"):
            continue
        noise = rng.standard_normal(arr.shape).astype(np.float32) * (0.05 * float(arr.std()) + 1e-6)
        init.CopyFrom(numpy_helper.from_array(arr + noise, init.name))
    return out


def fp16(model, fp16_io):
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), init.name))
    first, last = g.node[0], g.node[-1]
    if fp16_io:
        g.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
        g.output[0].type.tensor_type.elem_type = TensorProto.FLOAT16
        return out
    first.input[0] = "input_fp16"
    last.output[0] = "logits_fp16"
    g.node.insert(0, helper.make_node("Cast", ["input"], ["input_fp16"], name="cast_in",
                                      to=TensorProto.FLOAT16))
    g.node.append(helper.make_node("Cast", ["logits_fp16"], ["logits"], name="cast_out",
                                   to=TensorProto.FLOAT))
    return out


def matmul_nbits(model, block=32):
    """fc1 (Gemm transB=1, weight [N,K]) -> MatMulNBits + Add, symmetric 4-bit per block."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    w = inits["fc1.weight"]  # [N, K]
    n, k = w.shape
    blocks = w.reshape(n, k // block, block)
    scale = np.abs(blocks).max(axis=2) / 7.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(blocks / scale[:, :, None]), -8, 7).astype(np.int32) + 8  # 0..15
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)  # low nibble first
    keep = [i for i in g.initializer if i.name != "fc1.weight"]
    del g.initializer[:]
    g.initializer.extend(keep)
    g.initializer.append(numpy_helper.from_array(packed, "fc1.weight_q4"))
    g.initializer.append(numpy_helper.from_array(scale.astype(np.float32).reshape(-1),
                                                 "fc1.weight_scales"))
    gemm = next(i for i, node in enumerate(g.node) if node.name == "fc1")
    nodes = list(g.node)
    nodes[gemm:gemm + 1] = [
        helper.make_node("MatMulNBits", ["input", "fc1.weight_q4", "fc1.weight_scales"],
                         ["fc1_mm"], name="fc1_nbits", domain="com.microsoft",
                         K=k, N=n, bits=4, block_size=block),
        helper.make_node("Add", ["fc1_mm", "fc1.bias"], ["fc1_out"], name="fc1_bias"),
    ]
    del g.node[:]
    g.node.extend(nodes)
    out.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--models", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    mlp = onnx.load(os.path.join(args.models, "digits_mlp.onnx"))
    cnn = onnx.load(os.path.join(args.models, "digits_cnn.onnx"))
    variants = {
        "digits_mlp.perturbed.onnx": perturbed(mlp, seed=11),
        "digits_cnn.perturbed.onnx": perturbed(cnn, seed=12),
        "digits_mlp.fp16.onnx": fp16(mlp, fp16_io=False),
        "digits_mlp.fp16io.onnx": fp16(mlp, fp16_io=True),
        "digits_mlp.nbits.onnx": matmul_nbits(mlp),
    }
    for name, model in variants.items():
        # The checker knows no contrib ops; the runtime is the judge for that one.
        if "nbits" not in name:
            onnx.checker.check_model(model, full_check=True)
        onnx.save(model, os.path.join(args.out_dir, name))
    with open(os.path.join(args.models, "digits_mlp.onnx"), "rb") as f:
        head = f.read(1000)
    with open(os.path.join(args.out_dir, "corrupt.onnx"), "wb") as f:
        f.write(head)
    print("\n".join(sorted(list(variants) + ["corrupt.onnx"])))


if __name__ == "__main__":
    main()
