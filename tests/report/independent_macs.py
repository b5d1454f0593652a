#!/usr/bin/env python3
"""Checks `compress inspect` MACs against an independent count: every value of MODEL becomes a graph
output, ONNX Runtime runs it once (value_shapes.js) and the MACs of Conv, MatMul and Gemm are
counted here from those run-time shapes (ConvTranspose too). Float inputs only (what the PP-OCR models take).

    independent_macs.py COMPRESS_BIN MODEL NAME=1x3x48x320...
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import onnx


def find_model(name):
    """A model file name is looked up in models/ and then in the model cache, like tests/ort."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cache = os.environ.get("COMPRESS_MODEL_CACHE", os.path.expanduser("~/.cache/compress-models"))
    for folder in (os.path.join(root, "models"), cache):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    sys.exit(f"model '{name}' is missing (run models/fetch_models.sh)")


def main():
    binary, model_path, specs = sys.argv[1], find_model(sys.argv[2]), sys.argv[3:]
    model = onnx.load(model_path)
    graph = model.graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    present = {o.name for o in graph.output}
    for node in graph.node:
        for out in node.output:
            if out and out not in present:
                graph.output.add().name = out
                present.add(out)
    with tempfile.TemporaryDirectory() as work:
        probe = os.path.join(work, "probe.onnx")
        onnx.save(model, probe)
        here = os.path.dirname(os.path.abspath(__file__))
        shapes = json.loads(subprocess.check_output(["node", os.path.join(here, "value_shapes.js"), probe] + specs))
    shapes.update({k: v for k, v in dims.items() if k not in shapes})
    macs = 0
    for node in graph.node:
        out = shapes[node.output[0]] if node.op_type in ("Conv", "MatMul", "Gemm") else None
        if node.op_type == "Conv":
            macs += math.prod(out) * math.prod(shapes[node.input[1]][1:])
        elif node.op_type == "MatMul":
            macs += math.prod(out) * shapes[node.input[0]][-1]
        elif node.op_type == "Gemm":
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            a = shapes[node.input[0]]
            macs += math.prod(out) * (a[0] if trans_a else a[1])
        elif node.op_type == "ConvTranspose":  # each input element meets Cout/group x kernel weights
            macs += math.prod(shapes[node.input[0]]) * math.prod(shapes[node.input[1]][1:])
        elif node.op_type in ("LSTM", "GRU", "RNN", "If", "Loop", "Scan"):
            sys.exit(f"independent_macs: {node.op_type} is not counted by this script")
    cmd = [binary, "inspect", model_path, "--json"]
    for spec in specs:
        cmd += ["--input-shape", spec]
    report = json.loads(subprocess.check_output(cmd))
    print(f"compress: {report['macs']} MACs, independent count from ONNX Runtime shapes: {macs}")
    if report["macs"] != macs or report["unknown_shape_nodes"] != 0 or report["assumptions"]:
        sys.exit("independent_macs: mismatch (or unknown shapes / assumed dims left)")


if __name__ == "__main__":
    main()
