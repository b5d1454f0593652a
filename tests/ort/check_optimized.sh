#!/usr/bin/env bash
# What ONNX Runtime makes of a compressed model: compress MODEL with PIPELINE, let ONNX Runtime
# optimize it (tests/ort/ort_optimized.js, the session options of every other ORT test) and check the
# op counts of the graph it runs, and the stored type of the integer kernels' weights.
#   check_optimized.sh COMPRESS_BIN MODEL PIPELINE WEIGHT_TYPE OP=COUNT...
# WEIGHT_TYPE (int8 | uint8) is what input 3 (the weight) of every QLinearConv/QGemm/QLinearMatMul
# must be; OP=COUNT is an exact count of nodes of that op type (0 = none left).
# Asserts structure, never timings (the machine is shared); the latencies are in BENCHMARKS.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$1 model=$2 pipeline=$3 weight_type=$4
shift 4
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  echo "check_optimized: ONNX Runtime is missing (run: cd tests/ort && npm ci --ignore-scripts)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && "$bin" "models/$model" -o "$work/out.onnx" -q -p "$pipeline") > /dev/null
node "$here/ort_optimized.js" "$work/out.onnx" "$work/optimized.onnx"
/usr/bin/python3 - "$work/optimized.onnx" "$weight_type" "$@" <<'PY'
import collections, sys
import onnx
m = onnx.load(sys.argv[1])
want_type = {"int8": onnx.TensorProto.INT8, "uint8": onnx.TensorProto.UINT8}[sys.argv[2]]
counts = collections.Counter(n.op_type for n in m.graph.node)
print("ONNX Runtime runs:", " ".join(n.op_type for n in m.graph.node))
inits = {t.name: t for t in m.graph.initializer}
failed = False
for n in m.graph.node:
    if n.op_type in ("QLinearConv", "QGemm", "QLinearMatMul"):
        w = inits.get(n.input[3])
        if w is None or w.data_type != want_type:
            print(f"check_optimized: {n.op_type} '{n.name}' weight is not {sys.argv[2]}", file=sys.stderr)
            failed = True
for spec in sys.argv[3:]:
    op, count = spec.split("=")
    if counts[op] != int(count):
        print(f"check_optimized: {counts[op]} {op} nodes, expected {count}", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
PY
