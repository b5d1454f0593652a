#!/usr/bin/env python3
"""Writes a corpus of malformed ONNX models for tests/robustness/run_corpus.py.

usage: make_corpus.py BASE_MODEL OUT_DIR

Each case is a directory OUT_DIR/<name>/ holding model.onnx (plus any external data files it
names). OUT_DIR/cases.tsv lists `name<TAB>expect<TAB>class` per case, where expect is
  reject  the model is malformed: every run must exit 2 or 3 with one error line,
  any     a blind mutation (bit flip) that may still be a valid model: exit 0, 2 or 3, never a
          signal, a hang or an internal error (70); a non-zero exit leaves one error line, or
  accept  a valid model whose shapes are only partly known (the near miss of a shape error): every
          run must exit 0.
Everything is seeded: the corpus is the same on every run.
"""
import copy
import os
import random
import sys

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
cases = []
# Errors that only show with shapes (an axis past the input's rank, W and R of an RNN that disagree,
# a Reshape target that does not fit) are refused when the model's own shapes prove them
# (src/core/shape_check.cpp); the same models with those shapes unknown must still go through.


def save_bytes(name, expect, klass, data, extra_files=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(data)
    for fname, content in (extra_files or {}).items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(content)
    cases.append((name, expect, klass))


def save(name, klass, model, extra_files=None, expect="reject"):
    save_bytes(name, expect, klass, model.SerializeToString(), extra_files)


def make(nodes, inputs, outputs, inits=(), opset=13, functions=(), ir=8, opsets=None):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    imports = opsets or [helper.make_opsetid("", opset)]
    m = helper.make_model(g, opset_imports=imports, functions=list(functions))
    m.ir_version = ir
    return m


def vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def weight(name, shape, seed=0):
    return numpy_helper.from_array(np.random.RandomState(seed).randn(*shape).astype(np.float32), name)


def conv_model(**attrs):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return make([node], [vi("x", [1, 2, 8, 8])], [vi("y", None)], [weight("w", [4, 2, 3, 3])])


def pool_model(op, **attrs):
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    return make([node], [vi("x", [1, 2, 8, 8])], [vi("y", None)])


def matmul_model(w):
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    return make([node], [vi("x", [1, 64])], [vi("y", None)], [w])


def with_raw(name, dims, raw, dtype=F):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def external(name, dims, kv, dtype=F):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in kv:
        e = t.external_data.add()
        e.key = k
        e.value = v
    return t


def truncations_and_flips(base_bytes):
    n = len(base_bytes)
    for frac in (0.0005, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999):
        save_bytes("truncate_%04d" % int(frac * 1000), "reject", "truncation", base_bytes[: max(1, int(n * frac))])
    save_bytes("truncate_last_byte", "reject", "truncation", base_bytes[:-1])
    save_bytes("garbage_magic", "reject", "truncation", b"\x89PNG\r\n\x1a\n" + base_bytes[8:64])
    rng = random.Random(9)
    for k in range(12):
        data = bytearray(base_bytes)
        for _ in range(1 + k % 3):
            pos = rng.randrange(n)
            data[pos] ^= 1 << rng.randrange(8)
        save_bytes("bitflip_%02d" % k, "any", "bit flip", bytes(data))
    # Flips in the protobuf structure (the first bytes: ir_version, opset, graph header).
    for k in range(8):
        data = bytearray(base_bytes)
        pos = rng.randrange(min(n, 48))
        data[pos] ^= 1 << rng.randrange(8)
        save_bytes("bitflip_header_%02d" % k, "any", "bit flip", bytes(data))


def bad_dims():
    save("dims_negative", "bad dims", matmul_model(with_raw("w", [64, -4], b"\0" * 1024)))
    # 2^32 x 2^32 elements wrap a 64-bit byte count to 0: the empty raw_data must not pass.
    save("dims_overflow_empty_raw", "bad dims", matmul_model(with_raw("w", [2**32, 2**32], b"")))
    save("dims_overflow_bytes", "bad dims", matmul_model(with_raw("w", [2**61, 4], b"")))
    save("dims_huge_product", "bad dims", matmul_model(with_raw("w", [2**31, 2**31, 4], b"")))
    save("raw_data_short", "bad dims", matmul_model(with_raw("w", [64, 16], b"\0" * 100)))
    save("raw_data_long", "bad dims", matmul_model(with_raw("w", [64, 16], b"\0" * 5000)))
    t = helper.make_tensor("w", F, [10], [0.0] * 10)
    t.dims[:] = [64, 16]
    save("typed_data_short", "bad dims", matmul_model(t))
    save("dtype_undefined", "bad dims", matmul_model(with_raw("w", [64, 16], b"\0" * 4096, dtype=0)))
    save("dtype_unknown", "bad dims", matmul_model(with_raw("w", [64, 16], b"\0" * 4096, dtype=77)))
    s = helper.make_tensor("w", TensorProto.STRING, [2], [b"a", b"b"])
    s.raw_data = b"ab"
    save("string_raw_data", "bad dims", matmul_model(s))
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2**40, 2**40, 2**40])], [vi("y", None)])
    save("input_dims_overflow", "bad dims", m, expect="any")
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [-3, 4])], [vi("y", None)])
    save("input_dims_negative", "bad dims", m)
    # A Constant node whose value overflows like an initializer.
    c = helper.make_node("Constant", [], ["w"], value=with_raw("v", [2**32, 2**32], b""))
    m = make([c, helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 64])], [vi("y", None)])
    save("constant_dims_overflow", "bad dims", m)
    # Sparse initializer: an index past the dense size.
    values = numpy_helper.from_array(np.ones(3, np.float32), "w")
    indices = numpy_helper.from_array(np.array([0, 5, 99999], np.int64), "w_idx")
    sp = helper.make_sparse_tensor(values, indices, [64, 16])
    m = make([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 64])], [vi("y", None)])
    m.graph.sparse_initializer.append(sp)
    save("sparse_index_out_of_range", "bad dims", m)
    sp = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([0, 1], np.int64), "i"), [64, 16])
    m = make([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 64])], [vi("y", None)])
    m.graph.sparse_initializer.append(sp)
    save("sparse_index_count_mismatch", "bad dims", m)
    # The same inside an If branch: a subgraph's sparse initializers are validated like the main graph's.
    for name, idx in (("sparse_in_subgraph_index_out_of_range", [0, 5, 99999]), ("sparse_in_subgraph_count_mismatch", [0, 1])):
        branch = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["a"])], "t", [], [vi("a", [1, 16])])
        branch.sparse_initializer.append(
            helper.make_sparse_tensor(values, numpy_helper.from_array(np.array(idx, np.int64), "w_idx"), [64, 16]))
        other = helper.make_graph([helper.make_node("MatMul", ["x", "v"], ["b"], name="mm_else")], "e", [], [vi("b", [1, 16])],
                                  [weight("v", [64, 16])])
        m = make([helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=other)],
                 [vi("c", [], TensorProto.BOOL), vi("x", [1, 64])], [vi("y", [1, 16])])
        save(name, "bad dims", m)


def bad_attributes():
    save("conv_strides_zero", "bad attribute", conv_model(strides=[0, 0]))
    save("conv_strides_negative", "bad attribute", conv_model(strides=[-1, 1]))
    save("conv_dilations_zero", "bad attribute", conv_model(dilations=[0, 1]))
    save("conv_kernel_shape_zero", "bad attribute", conv_model(kernel_shape=[0, 0]))
    save("conv_group_zero", "bad attribute", conv_model(group=0))
    save("conv_group_negative", "bad attribute", conv_model(group=-2))
    save("conv_pads_negative", "bad attribute", conv_model(pads=[-1, -1, -1, -1]))
    save("conv_strides_float", "bad attribute", conv_model(strides=[1.0, 1.0]))
    save("maxpool_strides_zero", "bad attribute", pool_model("MaxPool", kernel_shape=[2, 2], strides=[0, 0]))
    save("maxpool_no_kernel", "bad attribute", pool_model("MaxPool"))
    save("avgpool_kernel_negative", "bad attribute", pool_model("AveragePool", kernel_shape=[-2, 2]))
    save("lppool_strides_zero", "bad attribute", pool_model("LpPool", kernel_shape=[2, 2], strides=[0, 1]))
    save("depth_to_space_blocksize_zero", "bad attribute", pool_model("DepthToSpace", blocksize=0))
    save("space_to_depth_blocksize_zero", "bad attribute", pool_model("SpaceToDepth", blocksize=0))
    # blocksize^2 wraps to 0 in int64: ONNX 1.12's DepthToSpace inference divided by it (SIGFPE).
    save("depth_to_space_blocksize_huge", "bad attribute", pool_model("DepthToSpace", blocksize=1 << 40))
    # A negative batch_dims: ONNX 1.12's GatherND inference copied dims from before the shape (SIGSEGV).
    save("gather_nd_negative_batch_dims", "bad attribute",
         make([helper.make_node("GatherND", ["x", "i"], ["y"], name="g", batch_dims=-3)], [vi("x", [2, 3])],
              [vi("y", None)], [numpy_helper.from_array(np.zeros((2, 1), np.int64), "i")]))
    # Gather with an axis past the rank of a rank-1 input (evaluator null dereference).
    idx = numpy_helper.from_array(np.array([0], np.int64), "i")
    m = make([helper.make_node("Gather", ["x", "i"], ["y"], axis=3)], [vi("x", [4])], [vi("y", None)], [idx])
    save("gather_axis_out_of_range", "shape", m)
    m = make([helper.make_node("Gather", ["w", "i"], ["y"], axis=-5)], [vi("i0", [1])], [vi("y", None)],
             [weight("w", [4]), idx])
    save("gather_axis_negative_const", "shape", m)
    m = make([helper.make_node("Gather", ["x", "i"], ["y"])], [vi("x", [])], [vi("y", None)], [idx])
    save("gather_scalar_input", "shape", m)
    m = make([helper.make_node("Gather", ["x", "i"], ["y"], axis=3)], [vi("x", None)], [vi("y", None)], [idx])
    save("gather_axis_unknown_rank", "shape", m, expect="accept")
    m = make([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0, 7])], [vi("x", [2, 3, 4])], [vi("y", None)])
    save("transpose_perm_invalid", "bad attribute", m)
    m = make([helper.make_node("Concat", ["x", "x"], ["y"], axis=9)], [vi("x", [2, 3])], [vi("y", None)])
    save("concat_axis_out_of_range", "shape", m)
    m = make([helper.make_node("Softmax", ["x"], ["y"], axis=5)], [vi("x", [2, 3])], [vi("y", None)])
    save("softmax_axis_out_of_range", "shape", m)
    m = make([helper.make_node("Flatten", ["x"], ["y"], axis=7)], [vi("x", [2, 3])], [vi("y", None)])
    save("flatten_axis_out_of_range", "shape", m)
    split = numpy_helper.from_array(np.array([5, -1], np.int64), "s")
    m = make([helper.make_node("Split", ["x", "s"], ["a", "b"], axis=0)], [vi("x", [4, 3])],
             [vi("a", None), vi("b", None)], [split])
    save("split_sizes_negative", "shape", m)
    # GRU with W/R shapes that disagree and no hidden_size (out-of-bounds read in the evaluator).
    W = weight("W", [1, 12, 3])
    R = weight("R", [1, 6, 2], 1)
    m = make([helper.make_node("GRU", ["x", "W", "R"], ["y", "h"])], [vi("x", [2, 1, 3])],
             [vi("y", None), vi("h", None)], [W, R])
    save("gru_inconsistent_w_r", "shape", m)
    m = make([helper.make_node("GRU", ["x", "W", "R"], ["y", "h"], hidden_size=-4)], [vi("x", [2, 1, 3])],
             [vi("y", None), vi("h", None)], [W, R])
    save("gru_hidden_size_negative", "bad attribute", m)
    W = weight("W", [1, 16, 3])
    R = weight("R", [1, 8, 2], 1)
    m = make([helper.make_node("LSTM", ["x", "W", "R"], ["y", "h"])], [vi("x", [2, 1, 3])],
             [vi("y", None), vi("h", None)], [W, R])
    save("lstm_inconsistent_w_r", "shape", m)
    W = weight("W", [1, 4, 3])
    R = weight("R", [1, 2, 2], 1)
    m = make([helper.make_node("RNN", ["x", "W", "R"], ["y", "h"])], [vi("x", [2, 1, 3])],
             [vi("y", None), vi("h", None)], [W, R])
    save("rnn_inconsistent_w_r", "shape", m)
    shape = numpy_helper.from_array(np.array([-1, -1], np.int64), "shape")
    m = make([helper.make_node("Reshape", ["w", "shape"], ["y"])], [], [vi("y", None)], [weight("w", [4, 6]), shape])
    save("reshape_two_minus_one", "shape", m)
    shape = numpy_helper.from_array(np.array([5, 7], np.int64), "shape")
    m = make([helper.make_node("Reshape", ["w", "shape"], ["y"])], [], [vi("y", None)], [weight("w", [4, 6]), shape])
    save("reshape_count_mismatch", "shape", m)
    shape = numpy_helper.from_array(np.array([1, 0], np.int64), "shape")
    m = make([helper.make_node("Reshape", ["x", "shape"], ["y"])], [vi("x", [4])], [vi("y", None)], [shape])
    save("reshape_zero_past_rank", "shape", m)
    # Through an inferred shape: Transpose keeps the 24 elements, a Constant asks for 35.
    shape = helper.make_tensor("v", TensorProto.INT64, [2], [5, 7])
    m = make([helper.make_node("Transpose", ["x"], ["t"]), helper.make_node("Constant", [], ["s"], value=shape),
              helper.make_node("Reshape", ["t", "s"], ["y"])], [vi("x", [4, 6])], [vi("y", None)])
    save("reshape_inferred_count_mismatch", "shape", m)
    shape = numpy_helper.from_array(np.array([4, -1], np.int64), "shape")
    m = make([helper.make_node("Reshape", ["x", "shape"], ["y"])], [vi("x", ["N", 6])], [vi("y", None)], [shape])
    save("reshape_symbolic_dim", "shape", m, expect="accept")
    m = make([helper.make_node("Reshape", ["x", "shape"], ["y"])], [vi("x", [4, 6]), vi("shape", [2], TensorProto.INT64)],
             [vi("y", None)])
    save("reshape_shape_fed", "shape", m, expect="accept")
    m = make([helper.make_node("Concat", ["a", "b"], ["y"], axis=0)], [vi("a", [2, 3]), vi("b", [2, 3, 1])],
             [vi("y", None)])
    save("concat_rank_mismatch", "shape", m)
    m = make([helper.make_node("Concat", ["a", "b"], ["y"], axis=0)], [vi("a", [2, 3]), vi("b", [2, 4])],
             [vi("y", None)])
    save("concat_dim_mismatch", "shape", m)
    m = make([helper.make_node("Concat", ["a", "b"], ["y"], axis=0)], [vi("a", [2, "K"]), vi("b", [2, 4])],
             [vi("y", None)])
    save("concat_symbolic_dim", "shape", m, expect="accept")
    m = make([helper.make_node("LSTM", ["x", "W", "R"], ["y", "h"], direction="bidirectional")], [vi("x", [2, 1, 3])],
             [vi("y", None), vi("h", None)], [weight("W", [1, 8, 3]), weight("R", [1, 8, 2], 1)])
    save("lstm_bidirectional_one_direction", "shape", m)
    m = make([helper.make_node("GRU", ["x", "W", "R"], ["y", "h"], hidden_size=3)], [vi("x", [2, 1, 3])],
             [vi("y", None), vi("h", None)], [weight("W", [1, 6, 3]), weight("R", [1, 6, 2], 1)])
    save("gru_hidden_size_mismatch", "shape", m)
    m = make([helper.make_node("RNN", ["x", "W", "R"], ["y", "h"])], [vi("x", [2, 1, 5])],
             [vi("y", None), vi("h", None)], [weight("W", [1, 2, 3]), weight("R", [1, 2, 2], 1)])
    save("rnn_input_size_mismatch", "shape", m)
    m = make([helper.make_node("RNN", ["x", "W", "R"], ["y", "h"])], [vi("x", ["S", "B", "I"])],
             [vi("y", None), vi("h", None)], [weight("W", [1, 2, 3]), weight("R", [1, 2, 2], 1)])
    save("rnn_symbolic_input", "shape", m, expect="accept")
    # Axes of Squeeze/Unsqueeze/Reduce*: attribute (older opsets), constant input, or Constant value_ints.
    axes = lambda v: numpy_helper.from_array(np.array(v, np.int64), "ax")
    m = make([helper.make_node("Unsqueeze", ["x", "ax"], ["y"])], [vi("x", [2, 3, 4])], [vi("y", None)], [axes([7])])
    save("unsqueeze_axis_out_of_range", "shape", m)
    m = make([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[1, -3])], [vi("x", [2, 3])], [vi("y", None)], opset=11)
    save("unsqueeze_axis_twice", "shape", m)
    m = make([helper.make_node("Constant", [], ["ax"], value_ints=[6]), helper.make_node("Unsqueeze", ["x", "ax"], ["y"])],
             [vi("x", [2, 3, 4])], [vi("y", None)])
    save("unsqueeze_constant_value_ints", "shape", m)
    m = make([helper.make_node("Squeeze", ["x", "ax"], ["y"])], [vi("x", [2, 3, 4])], [vi("y", None)], [axes([1])])
    save("squeeze_dim_not_one", "shape", m)
    m = make([helper.make_node("Squeeze", ["x"], ["y"], axes=[5])], [vi("x", [2, 1, 4])], [vi("y", None)], opset=11)
    save("squeeze_axis_out_of_range", "shape", m)
    m = make([helper.make_node("ReduceSum", ["x", "ax"], ["y"])], [vi("x", [2, 3, 4])], [vi("y", None)], [axes([4])])
    save("reduce_sum_axis_out_of_range", "shape", m)
    m = make([helper.make_node("ReduceMean", ["x"], ["y"], axes=[-5])], [vi("x", [2, 3, 4])], [vi("y", None)], opset=11)
    save("reduce_mean_axis_out_of_range", "shape", m)
    m = make([helper.make_node("Constant", [], ["s"], value_ints=[5, 5]), helper.make_node("Reshape", ["x", "s"], ["y"])],
             [vi("x", [2, 3, 4])], [vi("y", None)])
    save("reshape_constant_value_ints", "shape", m)
    # Conv/pool input ranks that disagree with the weight's or kernel_shape (SIGSEGV in ONNX 1.12's
    # shape inference, found by a byte-flip sweep of libonnx-testdata's test_basic_convinteger).
    m = make([helper.make_node("ConvInteger", ["x", "w"], ["y"])], [vi("x", [1, 3], TensorProto.UINT8)], [vi("y", None)],
             [numpy_helper.from_array(np.ones((1, 1, 2, 2), np.uint8), "w")], opset=10)
    save("convinteger_input_rank_below_weight", "shape", m)
    m = make([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2, 2])], [vi("x", [1, 1, 4, 4])], [vi("y", None)])
    save("maxpool_kernel_shape_rank_mismatch", "shape", m)
    # More reads past a shape in ONNX 1.12's inference (SIGSEGV, found by a sweep of libonnx-testdata
    # models with their inputs as initializers): LayerNormalization axis below -rank with Mean and
    # InvStdDev outputs, MaxUnpool indices of rank 1, STFT of a 1-D signal.
    ln = lambda axis, shape: make([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "m", "v"], axis=axis)],
                                  [vi("x", shape)], [vi("y", None), vi("m", None), vi("v", None)],
                                  [weight("s", [4]), weight("b", [4])], opset=17)
    save("layernorm_axis_below_rank", "shape", ln(-9, [2, 3, 4]))
    save("layernorm_negative_axis", "shape", ln(-1, [2, 3, 4]), expect="accept")
    m = make([helper.make_node("MaxUnpool", ["x", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
             [vi("x", [1, 1, 2, 2])], [vi("y", None)], [numpy_helper.from_array(np.array([5, 7, 13, 15], np.int64), "i")],
             opset=11)
    save("maxunpool_indices_rank_1", "shape", m)
    m = make([helper.make_node("STFT", ["x", "step", "", "len"], ["y"])], [vi("x", [128])], [vi("y", None)],
             [numpy_helper.from_array(np.array(8, np.int64), "step"), numpy_helper.from_array(np.array(16, np.int64), "len")],
             opset=17)
    save("stft_signal_rank_1", "shape", m)
    # Near misses: in range with negative axes, and a squeezed dim only known at run time.
    m = make([helper.make_node("Unsqueeze", ["x", "ax"], ["y"]), helper.make_node("ReduceSum", ["y", "ax"], ["z"])],
             [vi("x", [2, 3])], [vi("z", None)], [axes([-1])])
    save("unsqueeze_reduce_negative_axes", "shape", m, expect="accept")
    m = make([helper.make_node("Squeeze", ["x", "ax"], ["y"])], [vi("x", [2, "B", 4])], [vi("y", None)], [axes([1])])
    save("squeeze_symbolic_dim", "shape", m, expect="accept")
    # Axes from a Constant value_int (a scalar), and the input form of Reduce* at opset 18.
    m = make([helper.make_node("Constant", [], ["ax"], value_int=5), helper.make_node("Unsqueeze", ["x", "ax"], ["y"])],
             [vi("x", [2, 3])], [vi("y", None)])
    save("unsqueeze_constant_value_int", "shape", m)
    m = make([helper.make_node("Constant", [], ["ax"], value_int=-3), helper.make_node("Unsqueeze", ["x", "ax"], ["y"])],
             [vi("x", [2, 3])], [vi("y", None)])
    save("unsqueeze_constant_value_int_negative", "shape", m, expect="accept")
    m = make([helper.make_node("ReduceMax", ["x", "ax"], ["y"])], [vi("x", [2, 3])], [vi("y", None)], [axes([2])], opset=18)
    save("reduce_max_opset18_axis_out_of_range", "shape", m)
    m = make([helper.make_node("ReduceMax", ["x", "ax"], ["y"])], [vi("x", [2, 3])], [vi("y", None)], [axes([-2])], opset=18)
    save("reduce_max_opset18_negative_axis", "shape", m, expect="accept")
    # Broadcasting, MatMul/Gemm inner dims, Conv/BatchNormalization channels, Transpose, Slice, Tile,
    # Gather indices and (De)QuantizeLinear scales that the model's own shapes prove wrong.
    m = make([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [1, 5])], [vi("y", None)], [weight("w", [4, 3])])
    save("add_cannot_broadcast", "shape", m)
    m = make([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 1])], [vi("y", None)], [weight("w", [4, 3])])
    save("add_broadcast_symbolic", "shape", m, expect="accept")
    m = make([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 5])], [vi("y", None)], [weight("w", [4, 3])])
    save("matmul_inner_dims_differ", "shape", m)
    m = make([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", ["B", 7, 4])], [vi("y", None)], [weight("w", [4, 3])])
    save("matmul_batched_symbolic", "shape", m, expect="accept")
    m = make([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], [vi("x", [1, 4])], [vi("y", None)], [weight("w", [4, 3])])
    save("gemm_inner_dims_differ_transb", "shape", m)
    m = make([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], [vi("x", [1, 3])], [vi("y", None)], [weight("w", [4, 3])])
    save("gemm_transb", "shape", m, expect="accept")
    m = make([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [vi("x", [1, 3, 8, 8])], [vi("y", None)],
             [weight("w", [4, 2, 3, 3])])
    save("conv_input_channels_differ", "shape", m)
    m = make([helper.make_node("Conv", ["x", "w", "b"], ["y"])], [vi("x", [1, 2, 8, 8])], [vi("y", None)],
             [weight("w", [4, 2, 3, 3]), weight("b", [3])])
    save("conv_bias_length", "shape", m)
    m = make([helper.make_node("Conv", ["x", "w"], ["y"], group=2)], [vi("x", ["N", 4, "H", "W"])], [vi("y", None)],
             [weight("w", [6, 2, 3, 3])])
    save("conv_grouped_symbolic", "shape", m, expect="accept")
    bn = [weight(n, [3], k) for k, n in enumerate(["s", "b", "mu", "var"])]
    m = make([helper.make_node("BatchNormalization", ["x", "s", "b", "mu", "var"], ["y"])], [vi("x", [1, 4, 2, 2])],
             [vi("y", None)], bn)
    save("batchnorm_params_length", "shape", m)
    m = make([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])], [vi("x", [2, 3, 4])], [vi("y", None)])
    save("transpose_perm_rank", "shape", m)
    ints = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)
    m = make([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], [vi("x", [2, 3])], [vi("y", None)],
             [ints("s", [0]), ints("e", [1]), ints("a", [2])])
    save("slice_axis_out_of_range", "shape", m)
    m = make([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], [vi("x", [2, 3])], [vi("y", None)],
             [ints("s", [0]), ints("e", [1]), ints("a", [1]), ints("st", [0])])
    save("slice_step_zero", "shape", m)
    m = make([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], [vi("x", [2, 3])], [vi("y", None)],
             [ints("s", [0, 0]), ints("e", [1]), ints("a", [0, 1])])
    save("slice_lengths_differ", "shape", m)
    m = make([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], [vi("x", [2, 3])], [vi("y", None)],
             [ints("s", [0]), ints("e", [9]), ints("a", [-1])])
    save("slice_negative_axis_end_past_dim", "shape", m, expect="accept")
    m = make([helper.make_node("Tile", ["x", "r"], ["y"])], [vi("x", [2, 3])], [vi("y", None)], [ints("r", [2])])
    save("tile_repeats_length", "shape", m)
    m = make([helper.make_node("Gather", ["w", "i"], ["y"])], [], [vi("y", None)], [weight("w", [4, 3]), ints("i", [1, 4])])
    save("gather_constant_index_out_of_range", "shape", m)
    m = make([helper.make_node("Gather", ["w", "i"], ["y"])], [], [vi("y", None)], [weight("w", [4, 3]), ints("i", [-4, 3])])
    save("gather_constant_index_negative", "shape", m, expect="accept")
    q = numpy_helper.from_array(np.ones((4, 8), np.int8), "q")
    m = make([helper.make_node("DequantizeLinear", ["q", "s"], ["y"], axis=0)], [], [vi("y", None)],
             [q, numpy_helper.from_array(np.ones(8, np.float32), "s")])
    save("dequantize_per_axis_scale_length", "shape", m)
    m = make([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=0)], [], [vi("y", None)],
             [q, numpy_helper.from_array(np.ones(4, np.float32), "s"), numpy_helper.from_array(np.zeros(1, np.int8), "z")])
    save("dequantize_zero_point_count", "shape", m)
    m = make([helper.make_node("DequantizeLinear", ["q", "s"], ["y"], axis=1, block_size=3)], [], [vi("y", None)],
             [q, numpy_helper.from_array(np.ones((4, 2), np.float32), "s")], opset=21)
    save("dequantize_blocked_scale_shape", "shape", m)
    m = make([helper.make_node("DequantizeLinear", ["q", "s"], ["y"], axis=-1)], [], [vi("y", None)],
             [q, numpy_helper.from_array(np.ones(8, np.float32), "s")])
    save("dequantize_per_axis_negative_axis", "shape", m, expect="accept")
    # The error inside an If branch, on a value of the enclosing graph.
    then_g = helper.make_graph([helper.make_node("Gather", ["x", "i"], ["a"], axis=2)], "t", [], [vi("a", None)])
    else_g = helper.make_graph([helper.make_node("Gather", ["x", "i"], ["b"], axis=0)], "e", [], [vi("b", None)])
    m = make([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
             [vi("c", [], TensorProto.BOOL), vi("x", [4])], [vi("y", None)], [idx])
    save("if_branch_gather_axis", "shape", m)
    m = conv_model()
    a = m.graph.node[0].attribute.add()
    a.name = "strides"
    save("attribute_without_type", "bad attribute", m)
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)])
    m.graph.node[0].attribute.append(helper.make_attribute("", 1))
    save("attribute_empty_name", "bad attribute", m)
    # Scan at opset 9 without its required num_scan_inputs (SIGSEGV in ONNX shape inference).
    body = helper.make_graph([helper.make_node("Add", ["s", "e"], ["s2"]), helper.make_node("Identity", ["s2"], ["o"])],
                             "body", [vi("s", [2]), vi("e", [2])], [vi("s2", [2]), vi("o", [2])])
    m = make([helper.make_node("Scan", ["s0", "xs"], ["sf", "ys"], body=body)], [vi("s0", [2]), vi("xs", [3, 2])],
             [vi("sf", None), vi("ys", None)], opset=9)
    save("scan_opset9_no_num_scan_inputs", "bad attribute", m)
    m = make([helper.make_node("Scan", ["s0", "xs"], ["sf", "ys"], body=body, num_scan_inputs=5)],
             [vi("s0", [2]), vi("xs", [3, 2])], [vi("sf", None), vi("ys", None)], opset=11)
    save("scan_num_scan_inputs_too_many", "bad attribute", m)
    m = make([helper.make_node("Scan", ["s0", "xs"], ["sf", "ys"], body=body, num_scan_inputs=-1)],
             [vi("s0", [2]), vi("xs", [3, 2])], [vi("sf", None), vi("ys", None)], opset=11)
    save("scan_num_scan_inputs_negative", "bad attribute", m)
    m = make([helper.make_node("If", ["c"], ["y"])], [vi("c", [], TensorProto.BOOL)], [vi("y", None)])
    save("if_without_branches", "bad attribute", m)
    m = make([helper.make_node("Loop", ["", "c"], [])], [vi("c", [], TensorProto.BOOL)], [])
    m.graph.output.append(vi("c", []))
    save("loop_without_body", "bad attribute", m)


def bad_structure():
    m = make([helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["b"], ["a"])], [vi("x", [2])],
             [vi("b", None)])
    save("cycle_two_nodes", "cycle", m)
    m = make([helper.make_node("Add", ["x", "y"], ["y"])], [vi("x", [2])], [vi("y", None)])
    save("cycle_self_loop", "cycle", m)
    nodes = [helper.make_node("Relu", ["v%d" % ((i + 1) % 50)], ["v%d" % i]) for i in range(50)]
    save("cycle_long", "cycle", make(nodes, [vi("x", [2])], [vi("v0", None)]))
    m = make([helper.make_node("Relu", ["nope"], ["y"])], [vi("x", [2])], [vi("y", None)])
    save("input_undefined", "missing input", m)
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("z", None)])
    save("output_undefined", "missing input", m)
    m = make([helper.make_node("Conv", ["x"], ["y"])], [vi("x", [1, 2, 8, 8])], [vi("y", None)])
    save("conv_missing_weight", "missing input", m)
    m = make([helper.make_node("Gemm", ["x", "w", "b", "x"], ["y"])], [vi("x", [2, 2])], [vi("y", None)],
             [weight("w", [2, 2]), weight("b", [2])])
    save("gemm_too_many_inputs", "missing input", m)
    m = make([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])],
             [vi("y", None)])
    save("duplicate_output_name", "missing input", m)
    m = make([helper.make_node("Relu", ["x"], [""])], [vi("x", [2])], [vi("x", None)])
    save("empty_output_name", "missing input", m, expect="any")
    m = make([helper.make_node("Relu", [""], ["y"])], [vi("x", [2])], [vi("y", None)])
    save("empty_required_input", "missing input", m)
    m = make([helper.make_node("Relu", ["x"], ["x"])], [vi("x", [2])], [vi("x", None)])
    save("node_overwrites_graph_input", "missing input", m)
    m = make([helper.make_node("NoSuchOp", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)])
    save("unknown_op", "missing input", m, expect="any")
    # Names are bytes from the file: a form feed and an escape sequence must not reach the error line raw.
    m = make([helper.make_node("Gather", ["x", "i"], ["y"], name="g\x0cath\x1b[2Jer", axis=3)], [vi("x", [4])],
             [vi("y", None)], [numpy_helper.from_array(np.array([0], np.int64), "i")])
    save("control_characters_in_name", "name", m)
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)])
    m.ClearField("opset_import")
    save("no_opset", "model header", m)
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)])
    m.ir_version = 0
    save("ir_version_zero", "model header", m)
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)], opset=0)
    save("opset_zero", "model header", m)
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)], opset=-3)
    save("opset_negative", "model header", m)
    m = make([], [], [])
    save("empty_graph", "model header", m)


def functions():
    def fn(name, body_op, domain="local"):
        node = helper.make_node(body_op, ["a"], ["b"], domain=domain if body_op in ("f", "g") else "")
        return helper.make_function(domain, name, ["a"], ["b"], [node],
                                    [helper.make_opsetid("", 13), helper.make_opsetid(domain, 1)])
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("local", 1)]
    call = helper.make_node("f", ["x"], ["y"], domain="local")
    m = make([call], [vi("x", [2])], [vi("y", None)], functions=[fn("f", "f")], opsets=opsets)
    save("function_recursive", "function", m)
    m = make([call], [vi("x", [2])], [vi("y", None)], functions=[fn("f", "g"), fn("g", "f")], opsets=opsets)
    save("function_mutually_recursive", "function", m)
    chain = [fn("f", "g"), fn("g", "h"), fn("h", "f")]
    chain[2].node[0].op_type = "f"
    chain[2].node[0].domain = "local"
    chain[1].node[0].op_type = "h"
    chain[1].node[0].domain = "local"
    m = make([call], [vi("x", [2])], [vi("y", None)], functions=chain, opsets=opsets)
    save("function_recursive_three", "function", m)
    body = helper.make_node("Relu", ["nope"], ["b"])
    f = helper.make_function("local", "f", ["a"], ["b"], [body], [helper.make_opsetid("", 13)])
    m = make([call], [vi("x", [2])], [vi("y", None)], functions=[f], opsets=opsets)
    save("function_body_undefined_input", "function", m)
    # A function called from inside an If branch that recurses.
    branch = helper.make_graph([helper.make_node("f", ["x"], ["z"], domain="local")], "then", [], [vi("z", None)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    m = make([node], [vi("c", [], TensorProto.BOOL), vi("x", [2])], [vi("y", None)], functions=[fn("f", "f")],
             opsets=opsets)
    save("function_recursive_in_branch", "function", m)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field: nested graphs are spliced as bytes, in time linear in the
    result (building them as Python messages copies every level again and takes minutes)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def graph_attr(name, graph_bytes):
    return field(1, name.encode()) + field(6, graph_bytes) + varint(20 << 3) + varint(AttributeProto.GRAPH)


def nested_if_model(depth, leaf_nodes, both_branches):
    """depth levels of If; level L's then branch is level L-1 (and its else branch too when
    both_branches, giving 2^depth leaves), each level adding x to its result."""
    leaf = helper.make_graph(leaf_nodes, "leaf", [], [vi("r0", None)]).SerializeToString()
    inner, body = leaf, b""
    for level in range(1, depth + 1):
        node = helper.make_node("If", ["c"], ["t%d" % level]).SerializeToString()
        node += field(5, graph_attr("then_branch", inner))
        node += field(5, graph_attr("else_branch", inner if both_branches else leaf))
        add = helper.make_node("Add", ["t%d" % level, "x"], ["r%d" % level]).SerializeToString()
        body = field(1, node) + field(1, add)
        inner = helper.make_graph([], "g%d" % level, [], [vi("r%d" % level, None)]).SerializeToString() + body
    shell = make([], [vi("c", [], TensorProto.BOOL), vi("x", [1, 4])], [vi("r%d" % depth, None)],
                 [numpy_helper.from_array(np.ones((4, 4), np.float32), "W")])
    # A second occurrence of ModelProto.graph (field 7) merges into the first: appends the nodes.
    return shell.SerializeToString() + field(7, body)


def nesting():
    # 12 levels of If whose two branches are the level below: 2^12 leaf graphs, each with a Constant
    # and reading an outer weight. Valid; every pass must stay about linear in the model's size (fp16
    # was quadratic: each new name probed every earlier suffix; tests/core/model_test.cpp pins that).
    k = numpy_helper.from_array(np.ones((4, 4), np.float32), "k")
    leaf = [helper.make_node("Constant", [], ["k0"], value=k), helper.make_node("MatMul", ["x", "W"], ["m0"]),
            helper.make_node("MatMul", ["m0", "k0"], ["r0"])]
    save_bytes("nesting_12_if_weights", "any", "deep nesting", nested_if_model(12, leaf, True))
    # Deeper than protobuf's parser allows (100 messages): refused as corrupt, not a stack overflow.
    relu = [helper.make_node("Relu", ["x"], ["r0"])]
    for depth in (40, 300, 3000):
        save_bytes("nesting_%d_if" % depth, "reject", "deep nesting", nested_if_model(depth, relu, False))
    # Graph attributes nested on a node that takes none (the checker never looks inside).
    inner = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "x", [], [vi("y", None)]).SerializeToString()
    for _ in range(400):
        node = helper.make_node("Relu", ["x"], ["y"]).SerializeToString() + field(5, graph_attr("sub", inner))
        inner = helper.make_graph([], "x", [], [vi("y", None)]).SerializeToString() + field(1, node)
    shell = make([], [vi("x", [2])], [vi("y", None)])
    node = helper.make_node("Relu", ["x"], ["y"]).SerializeToString() + field(5, graph_attr("sub", inner))
    save_bytes("nesting_400_graph_attr", "reject", "deep nesting", shell.SerializeToString() + field(7, field(1, node)))


def bad_external_data():
    w = np.ones((64, 16), np.float32).tobytes()
    def ext_model(kv, dims=(64, 16)):
        return matmul_model(external("w", list(dims), kv))
    save("ext_missing_file", "external data", ext_model([("location", "w.bin")]))
    save("ext_short_file", "external data", ext_model([("location", "w.bin")]), {"w.bin": w[:100]})
    save("ext_absolute", "external data", ext_model([("location", "/etc/passwd")]))
    save("ext_escape", "external data", ext_model([("location", "../../w.bin")]))
    save("ext_no_location", "external data", ext_model([("offset", "0")]))
    save("ext_offset_length_overflow", "external data",
         ext_model([("location", "w.bin"), ("offset", str(2**63 - 8)), ("length", "4096")]), {"w.bin": w})
    save("ext_offset_huge", "external data",
         ext_model([("location", "w.bin"), ("offset", str(2**62))]), {"w.bin": w})
    save("ext_offset_negative", "external data", ext_model([("location", "w.bin"), ("offset", "-4")]), {"w.bin": w})
    save("ext_offset_not_number", "external data", ext_model([("location", "w.bin"), ("offset", "12x")]),
         {"w.bin": w})
    save("ext_offset_out_of_range", "external data",
         ext_model([("location", "w.bin"), ("offset", "99999999999999999999999")]), {"w.bin": w})
    save("ext_length_mismatch", "external data", ext_model([("location", "w.bin"), ("length", "12")]), {"w.bin": w})
    save("ext_dims_overflow", "external data", ext_model([("location", "w.bin")], dims=(2**32, 2**32)), {"w.bin": w})
    save("ext_location_directory", "external data", ext_model([("location", ".")]))
    save("ext_location_empty", "external data", ext_model([("location", "")]))


def main():
    global OUT
    base_path, OUT = sys.argv[1], sys.argv[2]
    os.makedirs(OUT, exist_ok=True)
    with open(base_path, "rb") as f:
        truncations_and_flips(f.read())
    bad_dims()
    bad_attributes()
    bad_structure()
    functions()
    nesting()
    bad_external_data()
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        for name, expect, klass in cases:
            f.write("%s\t%s\t%s\n" % (name, expect, klass))
    print("%d cases in %s" % (len(cases), OUT))


if __name__ == "__main__":
    main()
