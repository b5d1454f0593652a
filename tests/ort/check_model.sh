#!/usr/bin/env bash
# One runtime-equivalence case: compress MODEL with PIPELINE, then compare original and output in
# ONNX Runtime with the given gates (ort_compare.js flags).
#   check_model.sh COMPRESS_BIN MODEL PIPELINE [ort_compare gate flags...]
# MODEL is a file name looked up in models/ and then in the model cache
# (${COMPRESS_MODEL_CACHE:-$HOME/.cache/compress-models}). An empty PIPELINE is a round trip.
# Missing runtime or model is a failure, never a skip: CI must have both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$1 model=$2 pipeline=$3
shift 3

cache=${COMPRESS_MODEL_CACHE:-$HOME/.cache/compress-models}
if [ -f "$root/models/$model" ]; then path=$root/models/$model
elif [ -f "$cache/$model" ]; then path=$cache/$model
else
  echo "check_model: model '$model' is missing (run models/fetch_models.sh)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  echo "check_model: ONNX Runtime is missing (run: cd tests/ort && npm ci --ignore-scripts)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/out.onnx
# Extra compress flags (e.g. --input-shape x=1x3x48x320) come from COMPRESS_ARGS; with
# CALIBRATION_SHAPES="NAME=4x3x48x320 ..." seeded N(0,1) samples are written to a directory that
# replaces @CALIBRATION@ in PIPELINE (models without bundled calibration data).
if [ -n "${CALIBRATION_SHAPES:-}" ]; then
  mkdir "$work/calibration"
  /usr/bin/python3 -c "
import sys, numpy as np
rng = np.random.default_rng(0)
for spec in sys.argv[2:]:
    name, dims = spec.split('=')
    np.save(sys.argv[1] + '/' + name + '.npy', rng.standard_normal([int(d) for d in dims.split('x')]).astype(np.float32))
" "$work/calibration" $CALIBRATION_SHAPES
  pipeline=${pipeline//@CALIBRATION@/$work/calibration}
fi
args=("$path" -o "$out" -q --report-json "$work/report.json")
[ -n "$pipeline" ] && args+=(-p "$pipeline")
# shellcheck disable=SC2206
[ -n "${COMPRESS_ARGS:-}" ] && args+=($COMPRESS_ARGS)
before=$(sha256sum "$path" | cut -d' ' -f1)
"$bin" "${args[@]}" > /dev/null
after=$(sha256sum "$path" | cut -d' ' -f1)
[ "$before" = "$after" ] || { echo "check_model: input model was modified" >&2; exit 1; }

compare=(node "$here/ort_compare.js" "$path" "$out" --spec "$root/models/cached_models.json")
case "$model" in digits_*) compare+=(--spec-data) ;; esac
"${compare[@]}" "$@"
/usr/bin/python3 -c "
import json, sys
r = json.load(open('$work/report.json'))
b, a = r['before'], r['after']
print('sizes: file %.3fx weights %.3fx flops %.3fx' % (a['file_bytes'] / b['file_bytes'],
      a['weight_bytes'] / max(b['weight_bytes'], 1), a['flops'] / max(b['flops'], 1)))
"
