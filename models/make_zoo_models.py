#!/usr/bin/env python3
"""Make a zoo of small, randomly weighted models of the families users bring, for robustness QA.

    /usr/bin/python3 models/make_zoo_models.py [OUT_DIR]        (default /tmp/zoo)

onnx 1.12 helper + numpy only, fixed seeds, weights N(0, 1/fan_in) (so activations stay O(1)).
Writes into OUT_DIR (not meant for git), each model < 2 MB:
  transformer_op17.onnx  2-layer encoder, opset 17: int64 ids -> Gather embedding, positional Add,
                         LayerNormalization, Q/K/V MatMuls ([K,N] weights) + bias, heads via
                         Reshape/Transpose, attention MatMul of activations, Softmax, Erf GELU,
                         residual Adds, mean pool, Gemm head (transB=1)
  transformer_op13.onnx  the same at opset 13 with LayerNorm decomposed (ReduceMean/Sub/Pow/Sqrt/Div)
  gru_op14.onnx          GRU on batch_first input (Transpose to time-major, as PyTorch exports;
                         ORT refuses layout=1), initial state input h0, Gemm head
  lstm_op13.onnx         bidirectional LSTM (time-major), Gemm head (transB=1)
  convnet_op14.onnx      Conv auto_pad=SAME_UPPER, BatchNorm, HardSwish, depthwise (group=C) +
                         pointwise, Pad (reflect), ConvTranspose upsampling, Concat skip, Resize
  control_flow.onnx      If whose branches hold their weights in Constant nodes and read x from
                         the outer scope, then a Loop whose body MatMuls an outer-scope weight
  ir3_op9.onnx           IR 3 / opset 9 conv net whose initializers are also graph inputs
  mlp_op11.onnx          opset 11: Pad/Clip with input operands, Conv, GlobalAveragePool, MatMul,
                         Split, Concat, Gemm
  edge_mlp.onnx          exporter corners: unnamed nodes, value_info for initializers and activations,
                         a weight that is also a graph output, a Gather table tied to the Gemm head
  mlp_external.onnx      MLP saved with external data (mlp_external.onnx.data)
  zoo_models.json        how to feed them (tests/ort ort_compare.js --spec; cached_models.json format)
  transformer_ids.npy    8 samples of int64 token ids [8, 16] for the transformers (test_inputs)
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, SEQ, DIM, HEADS, FFN, CLASSES = 100, 16, 64, 4, 128, 5


class Weights:
    """Seeded N(0, 1/fan_in) float32 weights."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, shape, fan_in, scale=1.0):
        return (self.rng.standard_normal(shape) * (scale / np.sqrt(fan_in))).astype(np.float32)

    def bias(self, n, scale=0.1):
        return (self.rng.standard_normal(n) * scale).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(graph, opset, ir_version=None):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="make_zoo_models")
    if ir_version is not None:
        m.ir_version = ir_version
    onnx.checker.check_model(m)
    return m


def transformer(opset, decomposed_ln):
    w = Weights(17 if not decomposed_ln else 13)
    nodes, inits = [], []
    dh = DIM // HEADS

    def add_init(name, array):
        inits.append(init(name, array))
        return name

    def layer_norm(x, prefix):
        gamma = add_init(prefix + ".gamma", 1.0 + w.bias(DIM))
        beta = add_init(prefix + ".beta", w.bias(DIM))
        out = prefix + ".out"
        if not decomposed_ln:
            nodes.append(helper.make_node("LayerNormalization", [x, gamma, beta], [out], name=prefix,
                                          axis=-1, epsilon=1e-5))
            return out
        if prefix == "l0.ln1":  # shared scalars, added once
            add_init("ln.two", np.array(2.0, np.float32))
            add_init("ln.eps", np.array(1e-5, np.float32))
        p = prefix
        nodes.extend([
            helper.make_node("ReduceMean", [x], [p + ".mean"], name=p + ".mean", axes=[-1], keepdims=1),
            helper.make_node("Sub", [x, p + ".mean"], [p + ".d"], name=p + ".sub"),
            helper.make_node("Pow", [p + ".d", "ln.two"], [p + ".d2"], name=p + ".pow"),
            helper.make_node("ReduceMean", [p + ".d2"], [p + ".var"], name=p + ".var", axes=[-1], keepdims=1),
            helper.make_node("Add", [p + ".var", "ln.eps"], [p + ".vareps"], name=p + ".addeps"),
            helper.make_node("Sqrt", [p + ".vareps"], [p + ".std"], name=p + ".sqrt"),
            helper.make_node("Div", [p + ".d", p + ".std"], [p + ".norm"], name=p + ".div"),
            helper.make_node("Mul", [p + ".norm", gamma], [p + ".scaled"], name=p + ".mul"),
            helper.make_node("Add", [p + ".scaled", beta], [out], name=p + ".add"),
        ])
        return out

    def linear(x, prefix, k, n):
        wname = add_init(prefix + ".weight", w.normal((k, n), k))
        bname = add_init(prefix + ".bias", w.bias(n))
        nodes.append(helper.make_node("MatMul", [x, wname], [prefix + ".mm"], name=prefix + ".matmul"))
        nodes.append(helper.make_node("Add", [prefix + ".mm", bname], [prefix + ".out"], name=prefix + ".add"))
        return prefix + ".out"

    add_init("embed.weight", w.normal((VOCAB, DIM), 1))
    add_init("pos.weight", w.normal((SEQ, DIM), 1, 0.1))
    add_init("heads.shape", np.array([1, SEQ, HEADS, dh], np.int64))
    add_init("merge.shape", np.array([1, SEQ, DIM], np.int64))
    add_init("attn.scale", np.array(1.0 / np.sqrt(dh), np.float32))
    add_init("gelu.sqrt2", np.array(np.sqrt(2.0), np.float32))
    add_init("gelu.one", np.array(1.0, np.float32))
    add_init("gelu.half", np.array(0.5, np.float32))
    nodes.append(helper.make_node("Gather", ["embed.weight", "ids"], ["tok"], name="embed", axis=0))
    nodes.append(helper.make_node("Add", ["tok", "pos.weight"], ["h0"], name="pos_add"))
    h = "h0"
    for layer in range(2):
        p = f"l{layer}"
        x = layer_norm(h, p + ".ln1")
        heads = {}
        for which in "qkv":
            y = linear(x, f"{p}.{which}", DIM, DIM)
            nodes.append(helper.make_node("Reshape", [y, "heads.shape"], [f"{p}.{which}4"], name=f"{p}.{which}.reshape"))
            perm = [0, 2, 3, 1] if which == "k" else [0, 2, 1, 3]
            nodes.append(helper.make_node("Transpose", [f"{p}.{which}4"], [f"{p}.{which}t"], name=f"{p}.{which}.transpose",
                                          perm=perm))
            heads[which] = f"{p}.{which}t"
        nodes += [
            helper.make_node("MatMul", [heads["q"], heads["k"]], [p + ".scores"], name=p + ".qk"),
            helper.make_node("Mul", [p + ".scores", "attn.scale"], [p + ".scaled"], name=p + ".scale"),
            helper.make_node("Softmax", [p + ".scaled"], [p + ".probs"], name=p + ".softmax", axis=-1),
            helper.make_node("MatMul", [p + ".probs", heads["v"]], [p + ".ctx"], name=p + ".pv"),
            helper.make_node("Transpose", [p + ".ctx"], [p + ".ctxt"], name=p + ".ctx.transpose", perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [p + ".ctxt", "merge.shape"], [p + ".merged"], name=p + ".merge"),
        ]
        o = linear(p + ".merged", p + ".o", DIM, DIM)
        nodes.append(helper.make_node("Add", [h, o], [p + ".res1"], name=p + ".res1"))
        x = layer_norm(p + ".res1", p + ".ln2")
        f1 = linear(x, p + ".ffn1", DIM, FFN)
        nodes += [
            helper.make_node("Div", [f1, "gelu.sqrt2"], [p + ".g1"], name=p + ".gelu.div"),
            helper.make_node("Erf", [p + ".g1"], [p + ".g2"], name=p + ".gelu.erf"),
            helper.make_node("Add", [p + ".g2", "gelu.one"], [p + ".g3"], name=p + ".gelu.add"),
            helper.make_node("Mul", [f1, p + ".g3"], [p + ".g4"], name=p + ".gelu.mul"),
            helper.make_node("Mul", [p + ".g4", "gelu.half"], [p + ".gelu"], name=p + ".gelu.half"),
        ]
        f2 = linear(p + ".gelu", p + ".ffn2", FFN, DIM)
        nodes.append(helper.make_node("Add", [p + ".res1", f2], [p + ".out"], name=p + ".res2"))
        h = p + ".out"
    final = layer_norm(h, "final_ln")
    nodes.append(helper.make_node("ReduceMean", [final], ["pooled"], name="pool", axes=[1], keepdims=0))
    add_init("cls.weight", w.normal((CLASSES, DIM), DIM))
    add_init("cls.bias", w.bias(CLASSES))
    nodes.append(helper.make_node("Gemm", ["pooled", "cls.weight", "cls.bias"], ["logits"], name="cls", transB=1))
    graph = helper.make_graph(
        nodes, f"transformer_op{opset}",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, SEQ])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES]),
         helper.make_tensor_value_info(h, TensorProto.FLOAT, [1, SEQ, DIM])],
        inits)
    return model(graph, opset)


def gru():
    w = Weights(14)
    T, F, H = 10, 16, 32
    inits = [
        init("gru.W", w.normal((1, 3 * H, F), F)),
        init("gru.R", w.normal((1, 3 * H, H), H)),
        init("gru.B", w.bias(6 * H).reshape(1, 6 * H)),
        init("head.shape", np.array([1, H], np.int64)),
        init("head.weight", w.normal((H, 3), H)),
        init("head.bias", w.bias(3)),
    ]
    # batch_first the way PyTorch exports it: Transpose to time-major (ONNX Runtime 1.30 refuses
    # layout=1 for GRU/LSTM, "Batchwise recurrent operations (layout == 1) are not supported").
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_tm"], name="to_time_major", perm=[1, 0, 2]),
        helper.make_node("GRU", ["x_tm", "gru.W", "gru.R", "gru.B", "", "h0"], ["y", "y_h"], name="gru",
                         hidden_size=H, linear_before_reset=1),
        helper.make_node("Reshape", ["y_h", "head.shape"], ["last"], name="flatten"),
        helper.make_node("Gemm", ["last", "head.weight", "head.bias"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "gru_op14",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, F]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, H])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [T, 1, 1, H])],
        inits)
    return model(graph, 14)


def lstm():
    w = Weights(13)
    T, F, H = 12, 16, 24
    inits = [
        init("lstm.W", w.normal((2, 4 * H, F), F)),
        init("lstm.R", w.normal((2, 4 * H, H), H)),
        init("lstm.B", w.bias(8 * H * 2).reshape(2, 8 * H)),
        init("head.shape", np.array([1, 2 * H], np.int64)),
        init("head.weight", w.normal((4, 2 * H), 2 * H)),
        init("head.bias", w.bias(4)),
    ]
    nodes = [
        helper.make_node("LSTM", ["x", "lstm.W", "lstm.R", "lstm.B"], ["y", "y_h", "y_c"], name="lstm",
                         hidden_size=H, direction="bidirectional"),
        helper.make_node("Transpose", ["y_h"], ["y_ht"], name="ht", perm=[1, 0, 2]),
        helper.make_node("Reshape", ["y_ht", "head.shape"], ["last"], name="flatten"),
        helper.make_node("Gemm", ["last", "head.weight", "head.bias"], ["logits"], name="head", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "lstm_op13",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, 1, F])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("y_c", TensorProto.FLOAT, [2, 1, H])],
        inits)
    return model(graph, 13)


def convnet():
    w = Weights(1)
    nodes, inits = [], []

    def conv(x, name, cin, cout, k, group=1, **attrs):
        inits.append(init(name + ".weight", w.normal((cout, cin // group, k, k), cin // group * k * k, np.sqrt(2))))
        inits.append(init(name + ".bias", w.bias(cout)))
        nodes.append(helper.make_node("Conv", [x, name + ".weight", name + ".bias"], [name], name=name,
                                      kernel_shape=[k, k], group=group, **attrs))
        return name

    c = conv("image", "stem", 3, 16, 3, auto_pad="SAME_UPPER", strides=[2, 2])          # 16x16
    inits += [init("bn.scale", 1.0 + w.bias(16)), init("bn.bias", w.bias(16)),
              init("bn.mean", w.bias(16)), init("bn.var", 1.0 + np.abs(w.bias(16)))]
    nodes.append(helper.make_node("BatchNormalization", [c, "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn"], name="bn"))
    nodes.append(helper.make_node("HardSwish", ["bn"], ["act0"], name="act0"))
    dw = conv("act0", "dw1", 16, 16, 3, group=16, pads=[1, 1, 1, 1])
    nodes.append(helper.make_node("HardSwish", [dw], ["act1"], name="act1"))
    skip = conv("act1", "pw1", 16, 32, 1)                                             # 32x16x16
    inits.append(init("pad.pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)))
    nodes.append(helper.make_node("Pad", [skip, "pad.pads"], ["padded"], name="pad", mode="reflect"))
    c = conv("padded", "conv2", 32, 32, 3)                                            # 16x16
    nodes.append(helper.make_node("Relu", [c], ["act2"], name="act2"))
    c = conv("act2", "down", 32, 64, 3, strides=[2, 2], pads=[1, 1, 1, 1])            # 8x8
    nodes.append(helper.make_node("HardSwish", [c], ["act3"], name="act3"))
    dw = conv("act3", "dw2", 64, 64, 3, group=64, auto_pad="SAME_UPPER")
    nodes.append(helper.make_node("Relu", [dw], ["act4"], name="act4"))
    inits.append(init("up.weight", w.normal((64, 32, 2, 2), 64)))
    inits.append(init("up.bias", w.bias(32)))
    nodes.append(helper.make_node("ConvTranspose", ["act4", "up.weight", "up.bias"], ["up"], name="up",
                                  kernel_shape=[2, 2], strides=[2, 2]))                  # 32x16x16
    nodes.append(helper.make_node("Concat", ["up", skip], ["cat"], name="cat", axis=1))    # 64x16x16
    inits.append(init("resize.scales", np.array([1, 1, 2, 2], np.float32)))
    nodes.append(helper.make_node("Resize", ["cat", "", "resize.scales"], ["resized"], name="resize", mode="linear"))
    c = conv("resized", "head1", 64, 16, 3, pads=[1, 1, 1, 1])                           # 32x32
    nodes.append(helper.make_node("Relu", [c], ["act5"], name="act5"))
    # A second upsampling path through a grouped ConvTranspose (group 2).
    inits.append(init("up2.weight", w.normal((16, 4, 3, 3), 16)))
    nodes.append(helper.make_node("ConvTranspose", ["act5", "up2.weight"], ["up2"], name="up2",
                                  kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2))       # 8x32x32
    out = conv("up2", "head2", 8, 2, 1)
    graph = helper.make_graph(
        nodes, "convnet_op14",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 2, 32, 32])],
        inits)
    return model(graph, 14)


def control_flow():
    w = Weights(7)
    F, H = 16, 32
    then_w = w.normal((F, H), F)
    else_w = w.normal((F, H), F)
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["then.w"], name="then.const", value=init("then.w", then_w)),
         helper.make_node("MatMul", ["x", "then.w"], ["then.mm"], name="then.matmul"),
         helper.make_node("Relu", ["then.mm"], ["then.out"], name="then.relu")],
        "then_branch", [], [helper.make_tensor_value_info("then.out", TensorProto.FLOAT, [1, H])])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["else.w"], name="else.const", value=init("else.w", else_w)),
         helper.make_node("MatMul", ["x", "else.w"], ["else.mm"], name="else.matmul"),
         helper.make_node("Tanh", ["else.mm"], ["else.out"], name="else.tanh")],
        "else_branch", [], [helper.make_tensor_value_info("else.out", TensorProto.FLOAT, [1, H])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body.cond"),
         helper.make_node("MatMul", ["h_in", "loop.weight"], ["body.mm"], name="body.matmul"),
         helper.make_node("Add", ["body.mm", "loop.bias"], ["body.add"], name="body.add"),
         helper.make_node("Tanh", ["body.add"], ["h_out"], name="body.tanh")],
        "loop_body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, H])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, H])])
    inits = [
        init("zero", np.array(0.0, np.float32)),
        init("trip", np.array(3, np.int64)),
        init("keep_going", np.array(True)),
        init("loop.weight", w.normal((H, H), H)),
        init("loop.bias", w.bias(H)),
        init("head.weight", w.normal((H, 4), H)),
        init("head.bias", w.bias(4)),
    ]
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], name="sum", keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"], name="positive"),
        helper.make_node("If", ["positive"], ["branch"], name="if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "keep_going", "branch"], ["looped"], name="loop", body=body),
        helper.make_node("Gemm", ["looped", "head.weight", "head.bias"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "control_flow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, F])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        inits)
    return model(graph, 13)


def ir3_op9():
    w = Weights(9)
    inits = [
        init("conv1.weight", w.normal((8, 1, 3, 3), 9, np.sqrt(2))),
        init("conv1.bias", w.bias(8)),
        init("bn.scale", 1.0 + w.bias(8)), init("bn.bias", w.bias(8)),
        init("bn.mean", w.bias(8)), init("bn.var", 1.0 + np.abs(w.bias(8))),
        init("fc.weight", w.normal((10, 8 * 4 * 4), 128)),
        init("fc.bias", w.bias(10)),
        init("fc2.weight", w.normal((10, 10), 10)),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b1"], name="bn"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["g"], name="fc", transB=1),
        helper.make_node("MatMul", ["g", "fc2.weight"], ["logits"], name="fc2"),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, "ir3_op9", inputs,
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    return model(graph, 9, ir_version=3)


def mlp_op11():
    w = Weights(11)
    inits = [
        init("conv.weight", w.normal((16, 3, 3, 3), 27, np.sqrt(2))),
        init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        init("clip.min", np.array(0.0, np.float32)),
        init("clip.max", np.array(6.0, np.float32)),
        init("fc1.weight", w.normal((16, 32), 16)),
        init("fc1.bias", w.bias(32)),
        init("fc2a.weight", w.normal((6, 16), 16)),
        init("fc2b.weight", w.normal((16, 6), 16)),
        init("fc2b.bias", w.bias(6)),
    ]
    nodes = [
        helper.make_node("Pad", ["image", "pads"], ["padded"], name="pad", mode="constant"),
        helper.make_node("Conv", ["padded", "conv.weight"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Clip", ["c", "clip.min", "clip.max"], ["relu6"], name="relu6"),
        helper.make_node("GlobalAveragePool", ["relu6"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "fc1.weight"], ["fc1.mm"], name="fc1"),
        helper.make_node("Add", ["fc1.mm", "fc1.bias"], ["fc1.out"], name="fc1.add"),
        helper.make_node("Split", ["fc1.out"], ["sa", "sb"], name="split", axis=1, split=[16, 16]),
        helper.make_node("Gemm", ["sa", "fc2a.weight"], ["ya"], name="fc2a", transA=0, transB=1),
        helper.make_node("Gemm", ["sb", "fc2b.weight", "fc2b.bias"], ["yb"], name="fc2b", alpha=0.5, beta=2.0),
        helper.make_node("Concat", ["ya", "yb"], ["logits"], name="cat", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "mlp_op11",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 12, 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 12])],
        inits)
    return model(graph, 11)


def mlp_external():
    w = Weights(5)
    inits = [
        init("fc1.weight", w.normal((32, 128), 32)), init("fc1.bias", w.bias(128)),
        init("fc2.weight", w.normal((128, 64), 128)), init("fc2.bias", w.bias(64)),
        init("fc3.weight", w.normal((10, 64), 64)), init("fc3.bias", w.bias(10)),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h1"], name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "fc2.weight"], ["h2"], name="fc2"),
        helper.make_node("Add", ["h2", "fc2.bias"], ["h2b"], name="fc2.add"),
        helper.make_node("Relu", ["h2b"], ["a2"], name="relu2"),
        helper.make_node("Gemm", ["a2", "fc3.weight", "fc3.bias"], ["logits"], name="fc3", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "mlp_external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits)
    return model(graph, 13)


def edge_mlp():
    """The corners exporters produce: unnamed nodes, value_info for initializers and activations,
    a weight that is also a graph output, an embedding table tied to the output Gemm."""
    w = Weights(23)
    inits = [
        init("fc1.weight", w.normal((64, 32), 32, np.sqrt(2))), init("fc1.bias", w.bias(64)),
        init("fc2.weight", w.normal((64, 64), 64, np.sqrt(2))),
        init("table", w.normal((64, 64), 64)),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "fc2.weight"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["a2"]),
        helper.make_node("Gather", ["table", "ids"], ["tok"]),
        helper.make_node("ReduceMean", ["tok"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("Add", ["a2", "pooled"], ["s"]),
        helper.make_node("Gemm", ["s", "table"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "edge_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 64]),
         helper.make_tensor_value_info("fc2.weight", TensorProto.FLOAT, [64, 64])],
        inits)
    m = onnx.shape_inference.infer_shapes(model(graph, 13))
    for t in m.graph.initializer:
        m.graph.value_info.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    onnx.checker.check_model(m)
    return m


def spec_entry(inputs, outputs, note, test_inputs=None):
    entry = {"location": "zoo", "source": "models/make_zoo_models.py", "note": note,
             "inputs": inputs, "outputs": outputs}
    if test_inputs:
        entry["test_inputs"] = test_inputs
    return entry


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/zoo"
    os.makedirs(out_dir, exist_ok=True)
    models = {
        "transformer_op17.onnx": transformer(17, False),
        "transformer_op13.onnx": transformer(13, True),
        "gru_op14.onnx": gru(),
        "lstm_op13.onnx": lstm(),
        "convnet_op14.onnx": convnet(),
        "control_flow.onnx": control_flow(),
        "ir3_op9.onnx": ir3_op9(),
        "mlp_op11.onnx": mlp_op11(),
        "edge_mlp.onnx": edge_mlp(),
    }
    for name, m in models.items():
        onnx.save_model(m, os.path.join(out_dir, name))
    ext = os.path.join(out_dir, "mlp_external.onnx")
    for stale in (ext, ext + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    onnx.save_model(mlp_external(), ext, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="mlp_external.onnx.data", size_threshold=1024)

    ids = np.random.default_rng(3).integers(0, VOCAB, size=(8, SEQ)).astype(np.int64)
    np.save(os.path.join(out_dir, "transformer_ids.npy"), ids)

    f32 = lambda shape, **kw: {"dtype": "float32", "shape": shape, **kw}
    ids_in = {"ids": {"dtype": "int64", "shape": [1, SEQ], "note": "token ids in [0, 100); use test_inputs"}}
    spec = {
        "about": "How to feed the zoo models of models/make_zoo_models.py to tests/ort (--spec; "
                 "--spec-data for the transformers' token ids). Made, not cached: regenerate with the script.",
        "models": {
            "transformer_op17.onnx": spec_entry(ids_in, {"logits": [1, CLASSES]}, "2-layer encoder, opset 17",
                                                {"ids": "transformer_ids.npy"}),
            "transformer_op13.onnx": spec_entry(ids_in, {"logits": [1, CLASSES]}, "decomposed LayerNorm, opset 13",
                                                {"ids": "transformer_ids.npy"}),
            "gru_op14.onnx": spec_entry({"x": f32([1, 10, 16]), "h0": f32([1, 1, 32], value=0)},
                                        {"logits": [1, 3]}, "GRU, batch_first input transposed to time-major"),
            "lstm_op13.onnx": spec_entry({"x": f32([12, 1, 16])}, {"logits": [1, 4]}, "bidirectional LSTM"),
            "convnet_op14.onnx": spec_entry({"image": f32([1, 3, 32, 32])}, {"head2": [1, 2, 32, 32]},
                                            "conv net with upsampling head"),
            "control_flow.onnx": spec_entry({"x": f32([1, 16])}, {"logits": [1, 4]},
                                            "If on sign of sum(x): random samples take both branches"),
            "ir3_op9.onnx": spec_entry({"input": f32([1, 1, 8, 8])}, {"logits": [1, 10]},
                                       "initializers are graph inputs"),
            "mlp_op11.onnx": spec_entry({"image": f32([1, 3, 12, 12])}, {"logits": [1, 12]}, "opset 11"),
            "edge_mlp.onnx": spec_entry({"x": f32([1, 32]), "ids": {"dtype": "int64", "shape": [1, 4], "value": 3}},
                                        {"logits": [1, 64], "fc2.weight": [64, 64]},
                                        "unnamed nodes, value_info for initializers, weight as graph output, tied table"),
            "mlp_external.onnx": spec_entry({"x": f32([2, 32])}, {"logits": [2, 10]}, "external data"),
        },
    }
    with open(os.path.join(out_dir, "zoo_models.json"), "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    for name in sorted(os.listdir(out_dir)):
        print(f"{name}: {os.path.getsize(os.path.join(out_dir, name))} bytes")


if __name__ == "__main__":
    main()
