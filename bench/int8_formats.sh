#!/usr/bin/env bash
# Integer weight formats vs the CPU: the one-node MatMulInteger saturation probe, then ONNX Runtime
# SNR/cosine of quantize-int8 dynamic/static with weight-type=uint8 and int8 against the float model.
#   bench/int8_formats.sh [build/compress]
# Needs tests/ort/node_modules (npm ci) and the model cache (models/fetch_models.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/compress}
cache=${COMPRESS_MODEL_CACHE:-$HOME/.cache/compress-models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') [$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni' | tr '\n' ' ')]"

/usr/bin/python3 - "$work" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
for name, value, zp, dtype in [("int8", 127, 0, np.int8), ("uint8", 255, 128, np.uint8)]:
    g = h.make_graph([h.make_node("MatMulInteger", ["A", "B", "az", "bz"], ["Y"])], "probe",
                     [h.make_tensor_value_info("A", T.UINT8, [1, 64])], [h.make_tensor_value_info("Y", T.INT32, [1, 4])],
                     [nh.from_array(np.full((64, 4), value, dtype), "B"), nh.from_array(np.array(0, np.uint8), "az"),
                      nh.from_array(np.full((4,), zp, dtype), "bz")])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, f"{sys.argv[1]}/probe_{name}.onnx")
PY
NODE_PATH="$root/tests/ort/node_modules" node -e '
const ort = require("onnxruntime-node");
(async () => {
  for (const t of ["int8", "uint8"]) {
    const s = await ort.InferenceSession.create(process.argv[1] + "/probe_" + t + ".onnx");
    const r = await s.run({ A: new ort.Tensor("uint8", new Uint8Array(64).fill(255), [1, 64]) });
    console.log(`probe B ${t}: ORT ${r.Y.data[0]}, exact 2072640`);
  }
})();' "$work"

compare() {  # model pipeline
  local path=$root/models/$1
  [ -f "$path" ] || path=$cache/$1
  "$bin" "$path" -o "$work/out.onnx" -q --force -p "$2" > /dev/null
  local extra=(--samples 4)
  case $1 in digits_*) extra=(--spec-data) ;; esac
  node "$root/tests/ort/ort_compare.js" "$path" "$work/out.onnx" --spec "$root/models/cached_models.json" "${extra[@]}" |
    grep -o 'output [^ ]* \[[^]]*\]: cosine [0-9.]*  snr_db [0-9.-]*' | sed "s|^|$1 $2: |"
}
for wt in uint8 int8; do
  compare digits_mlp.onnx "quantize-int8:mode=dynamic:weight-type=$wt"
  compare digits_cnn.onnx "quantize-int8:mode=dynamic:weight-type=$wt"
  compare digits_mlp.onnx "quantize-int8:mode=static:weight-type=$wt:calibration=$root/models/calibration/digits_mlp"
  compare digits_cnn.onnx "quantize-int8:mode=static:weight-type=$wt:calibration=$root/models/calibration/digits_cnn"
  compare ppocr_rec_v4.onnx "quantize-int8:mode=dynamic:weight-type=$wt:exclude=[Conv]"
done
