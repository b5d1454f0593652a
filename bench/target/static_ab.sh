#!/usr/bin/env bash
# fp32 vs static int8 of a model in ONNX Runtime, interleaved (bench/target/time_grid.js: every round
# times each model once, so machine noise hits all alike); ratio = median over rounds of variant / fp32
# in the same round. Variants: the default static output and its weight-type alternatives.
#   bench/target/static_ab.sh MODEL.onnx CALIBRATION_DIR INPUT_NAME SHAPE_WITHOUT_BATCH [BATCH...]
#   e.g. bench/target/static_ab.sh models/digits_cnn.onnx models/calibration/digits_cnn input 1x8x8 1 32
# Env: ROUNDS (60), BUDGET_MS (5), COMPRESS (build/compress).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=$1 cal=$2 input=$3 shape=$4
shift 4
batches=("${@:-1}")
bin=${COMPRESS:-$root/build/compress}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$model" "$work/fp32.onnx"
for wt in auto uint8 int8; do
  "$bin" "$model" -o "$work/static_$wt.onnx" -q -p "quantize-int8:mode=static:weight-type=$wt:calibration=$cal" > /dev/null
done
grep -m1 'model name' /proc/cpuinfo
grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_vnni|avx_vnni)$' | tr '\n' ' '; echo
uptime
for b in "${batches[@]}"; do
  /usr/bin/python3 - "$work" "$b" "$input" "$shape" <<'PY'
import json, os, sys
d, b, name, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3], [int(x) for x in sys.argv[4].split("x")]
files = sorted(f for f in os.listdir(d) if f.endswith(".onnx"))
json.dump([{"file": f} for f in files], open(os.path.join(d, "grid.json"), "w"))
json.dump({"models": {f: {"inputs": {name: {"dtype": "float32", "shape": [b] + shape}}} for f in files}},
          open(os.path.join(d, "spec.json"), "w"))
PY
  node "$root/bench/target/time_grid.js" "$work" --rounds "${ROUNDS:-60}" --budget-ms "${BUDGET_MS:-5}" --spec "$work/spec.json" > "$work/t.json"
  /usr/bin/python3 - "$work/t.json" "$b" <<'PY'
import json, statistics, sys
t = json.load(open(sys.argv[1]))
m = t["models"]
base = m["fp32.onnx"]
print(f"batch {sys.argv[2]}: {t['rounds']} rounds, onnxruntime-node {t['ort']}")
for k in sorted(m):
    r = sorted(a / b for a, b in zip(m[k], base))
    print(f"  {k:22s} median {statistics.median(m[k]):8.1f} us  ratio {statistics.median(r):.3f} "
          f"(p10..p90 {r[len(r) // 10]:.2f}..{r[(9 * len(r)) // 10]:.2f})")
PY
done
