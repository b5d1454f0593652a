#!/usr/bin/env python3
"""Random single-node models for every op the evaluator implements, to run through `compress verify`.

usage: make_op_models.py OUT_DIR [--per-op N] [--seed S]

Each model is one node of one op at a random opset it exists in, with inputs of random rank (0-5),
dims (0-7), element types and values (huge, NaN, inf, out-of-range indices), some as initializers and
some as float graph inputs (verify --random fills those), optional inputs left out at random, and
random attribute values (negative, zero, 2^40, unknown strings). Most are malformed in some way: the
point is that the loader, ONNX's shape inference and every kernel refuse them with one line instead
of crashing. Seeded: the same arguments give the same files.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto as T, defs, helper, numpy_helper

# The ONNX-domain ops of src/eval/ops_table.cpp (Constant, If, Loop, Scan left out: they need subgraphs
# or make no node to run).
OPS = """Add Sub Mul Div Pow Max Min Mod Sum Mean Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor Not
Where Relu LeakyRelu Sigmoid Tanh Erf Exp Log Sqrt Neg Abs Reciprocal Floor Ceil Sign Elu Selu Softplus Softsign Sin
Cos Round HardSigmoid HardSwish Clip Cast Identity Softmax LogSoftmax ReduceMean ReduceMax ReduceMin ReduceSum
ReduceProd ArgMax ArgMin Gemm MatMul Conv ConvTranspose BatchNormalization LayerNormalization MaxPool AveragePool
GlobalAveragePool GlobalMaxPool Resize LSTM GRU Reshape Flatten Transpose Squeeze Unsqueeze Concat Split Slice Gather
Shape Size ConstantOfShape Expand Range Pad Tile DepthToSpace SpaceToDepth PRelu ThresholdedRelu Celu Shrink Tan Asin
Acos Atan Sinh Cosh Asinh Acosh Atanh IsNaN IsInf Dropout CastLike Hardmax ReduceL1 ReduceL2 ReduceSumSquare
ReduceLogSum ReduceLogSumExp RNN Upsample LRN InstanceNormalization MeanVarianceNormalization LpNormalization
NonMaxSuppression GridSample QuantizeLinear DequantizeLinear DynamicQuantizeLinear MatMulInteger ConvInteger Trilu CumSum
GatherElements GatherND ScatterND ScatterElements TopK NonZero OneHot EyeLike Compress Einsum""".split()

TYPES = [T.FLOAT, T.FLOAT, T.FLOAT, T.INT64, T.INT64, T.INT32, T.BOOL, T.UINT8, T.INT8, T.FLOAT16]
NUMPY = {T.FLOAT: np.float32, T.INT64: np.int64, T.INT32: np.int32, T.BOOL: np.bool_, T.UINT8: np.uint8,
         T.INT8: np.int8, T.FLOAT16: np.float16}
STRINGS = {
    "mode": ["nearest", "linear", "cubic", "DCR", "CRD", "constant", "reflect", "edge", "bilinear", "x"],
    "auto_pad": ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"],
    "direction": ["forward", "reverse", "bidirectional"],
    "coordinate_transformation_mode": ["half_pixel", "asymmetric", "align_corners", "tf_crop_and_resize"],
    "nearest_mode": ["floor", "ceil", "round_prefer_floor"],
    "reduction": ["none", "add", "mul", "max"],
    "equation": ["ij,jk->ik", "ii->i", "...ij,...jk", "bij,bjk->bik", "i,i", "ij->ji", "a,b->ab", "ij,jk", "->", "i..,i"],
}


class Maker:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def dims(self):
        return [int(self.rng.choice([0, 1, 1, 2, 2, 3, 4, 5, 7])) for _ in range(self.rng.choice([0, 1, 1, 2, 2, 3, 4, 4, 5]))]

    def values(self, dtype, shape):
        n = int(np.prod(shape)) if shape else 1
        if dtype in (T.FLOAT, T.FLOAT16):
            v = self.rng.standard_normal(n) * self.rng.choice([1, 1, 100, 1e30])
            if n and self.rng.random() < 0.1:
                v[self.rng.integers(0, n, size=min(n, 2))] = self.rng.choice([np.nan, np.inf, -np.inf])
            with np.errstate(over="ignore"):
                return v.astype(NUMPY[dtype]).reshape(shape)
        if dtype == T.BOOL:
            return (self.rng.random(n) < 0.5).reshape(shape)
        big = int(self.rng.choice([3, 10, 1 << 20, 1 << 40])) if dtype == T.INT64 else 100
        return self.rng.integers(-big, big + 1, size=n).astype(NUMPY[dtype]).reshape(shape)

    def attribute(self, name, kind):
        rng = self.rng
        if name in STRINGS:
            return helper.make_attribute(name, str(rng.choice(STRINGS[name])))
        if kind == onnx.AttributeProto.INT:
            return helper.make_attribute(name, int(rng.choice([-3, -1, 0, 0, 1, 1, 2, 3, 5, 1 << 40])))
        if kind == onnx.AttributeProto.FLOAT:
            return helper.make_attribute(name, float(rng.choice([0.0, 0.5, 1.0, -1.0, 1e-5, 1e30])))
        if kind == onnx.AttributeProto.INTS:
            return helper.make_attribute(name, [int(rng.choice([-2, -1, 0, 1, 1, 2, 3, 1 << 40])) for _ in range(rng.integers(0, 6))])
        if kind == onnx.AttributeProto.FLOATS:
            return helper.make_attribute(name, [float(rng.choice([0.5, 1.0, 2.0, 0.0])) for _ in range(rng.integers(0, 5))])
        if kind == onnx.AttributeProto.STRING:
            return helper.make_attribute(name, "x")
        if kind == onnx.AttributeProto.STRINGS:
            return helper.make_attribute(name, [str(rng.choice(["Tanh", "Sigmoid", "Relu"])) for _ in range(rng.integers(0, 4))])
        return None

    def model(self, op):
        rng = self.rng
        first = defs.get_schema(op, 17).since_version
        opset = max(first, int(rng.choice([first, 9, 11, 13, 17])))
        schema = defs.get_schema(op, opset)
        count = len(schema.inputs)
        if schema.inputs and schema.inputs[-1].option == defs.OpSchema.FormalParameterOption.Variadic:
            count += int(rng.integers(0, 3))
        count = int(rng.integers(schema.min_input, count + 1)) if count > schema.min_input else count
        base = int(rng.choice(TYPES))
        graph_inputs, initializers, names = [], [], []
        for i in range(count):
            name = f"in{i}"
            dtype = base if rng.random() < 0.7 else int(rng.choice(TYPES))
            shape = self.dims()
            if dtype != T.FLOAT or rng.random() < 0.5:
                initializers.append(numpy_helper.from_array(np.asarray(self.values(dtype, shape)), name))
            else:
                graph_inputs.append(helper.make_tensor_value_info(name, dtype, shape))
            names.append(name if i == 0 or rng.random() < 0.93 else "")
        while names and names[-1] == "":
            names.pop()
        node = helper.make_node(op, names, [f"out{i}" for i in range(max(1, len(schema.outputs) if rng.random() < 0.5 else 1))],
                                name="n")
        for name, a in schema.attributes.items():
            if a.required or rng.random() < 0.5:
                attr = self.attribute(name, a.type)
                if attr is not None:
                    node.attribute.append(attr)
        outputs = [helper.make_tensor_value_info(o, T.UNDEFINED, None) for o in node.output]
        graph = helper.make_graph([node], "g", graph_inputs, outputs, initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--per-op", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    maker = Maker(a.seed)
    for op in OPS:
        for k in range(a.per_op):
            onnx.save(maker.model(op), os.path.join(a.out, f"{op}_{k}.onnx"))
    print(f"{len(OPS) * a.per_op} models in {a.out}")


if __name__ == "__main__":
    main()
