#!/usr/bin/env bash
# Robustness of the passes on model families the bundled models lack (transformer encoders at
# opset 17 and 13, GRU, LSTM, a conv net with ConvTranspose/depthwise/Resize/Pad, If and Loop
# subgraphs, IR 3 initializer inputs, opset 11, external data, exporter corners): generates the zoo
# with models/make_zoo_models.py, then for each case compresses, checks the input file is untouched
# and the output byte-identical on a second run, and compares original and output in ONNX Runtime
# with the case's gates.
#   run_zoo.sh COMPRESS_BIN [CASE_FILTER]     (CASE_FILTER: a grep -E pattern on "model pipeline")
# Missing ONNX Runtime (tests/ort/node_modules) or python3 onnx is a failure, never a skip.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$1
filter=${2:-}
if [ ! -d "$root/tests/ort/node_modules/onnxruntime-node" ]; then
  echo "run_zoo: ONNX Runtime is missing (run: cd tests/ort && npm ci --ignore-scripts)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zoo=$work/zoo
if ! /usr/bin/python3 "$root/models/make_zoo_models.py" "$zoo" > "$work/gen.log" 2>&1; then
  echo "run_zoo: models/make_zoo_models.py failed:" >&2
  cat "$work/gen.log" >&2
  exit 1
fi

# model | pipeline | ort_compare gates (cosine floors measured on this zoo, with margin; random
# weights make pruning look worse than on trained models).
cases=(
  "transformer_op17|quantize-int8|--min-cosine 0.999"
  "transformer_op17|quantize-int4|--min-cosine 0.97"
  "transformer_op17|fp16|--min-cosine 0.9995"
  "transformer_op17|prune-channels:ratio=0.25|--min-cosine 0.9"
  "transformer_op17|prune-magnitude:include-gather=true|--min-cosine 0.8"
  "transformer_op13|quantize-int8:mode=dynamic|--min-cosine 0.999"
  "transformer_op13|quantize-int4:format=dq|--min-cosine 0.98"
  "transformer_op13|fp16:weights-only=true|--min-cosine 0.9995"
  "gru_op14|fp16|--min-cosine 0.9995"
  "gru_op14|quantize-int8:min-elements=1|--min-cosine 0.999"
  "gru_op14|quantize-int4:format=dq:min-elements=0|--min-cosine 0.99"
  "lstm_op13|fp16:weights-only=true|--min-cosine 0.9995"
  "lstm_op13|quantize-int4:min-elements=0|--min-cosine 0.99"
  "convnet_op14|quantize-int8:mode=dynamic|--min-cosine 0.999"
  "convnet_op14|quantize-int4:format=dq|--min-cosine 0.99"
  "convnet_op14|fp16|--min-cosine 0.9995"
  "convnet_op14|prune-channels:ratio=0.25|--min-cosine 0.95"
  "convnet_op14|prune-magnitude:storage=sparse:sparsity=0.9|--min-cosine 0.75"
  "control_flow|quantize-int8:min-elements=1|--min-cosine 0.999"
  "control_flow|quantize-int4:format=dq:min-elements=0|--min-cosine 0.98"
  "control_flow|fp16:weights-only=true|--min-cosine 0.9995"
  "control_flow|low-rank:min-elements=0:rank=8|--min-cosine 0.75"
  "control_flow|prune-magnitude:min-elements=0|--min-cosine 0.9"
  "ir3_op9|quantize-int8|--require-identical"
  "ir3_op9|fp16|--min-cosine 0.9995"
  "mlp_op11|quantize-int4:format=dq:min-elements=0|--min-cosine 0.99"
  "mlp_op11|prune-channels:ratio=0.25|--min-cosine 0.9"
  "mlp_external|quantize-int8|--min-cosine 0.999"
  "mlp_external|prune-magnitude:storage=sparse:sparsity=0.9|--min-cosine 0.6"
  "edge_mlp|prune-channels:ratio=0.25|--require-identical"
  "edge_mlp|prune-magnitude:storage=sparse:sparsity=0.9|--min-cosine 0.8"
  "edge_mlp|quantize-int8|--min-cosine 0.999"
  "edge_mlp|fp16|--min-cosine 0.9995"
  "edge_mlp|quantize-int4|--min-cosine 0.98"
  "edge_mlp|low-rank:min-elements=0:max-param-ratio=1:rank=8|--min-cosine 0.7"
)

total=0 failed=0
for c in "${cases[@]}"; do
  IFS='|' read -r model pipeline gates <<< "$c"
  [ -n "$filter" ] && ! grep -qE -- "$filter" <<< "$model $pipeline" && continue
  total=$((total + 1))
  in=$zoo/$model.onnx out=$work/out.onnx
  rm -f "$work"/out*.onnx*
  before=$(cat "$zoo/$model".onnx* | sha256sum)
  "$bin" "$in" -o "$out" -p "$pipeline" --force -q > /dev/null 2> "$work/err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL $model $pipeline: compress exited $rc: $(tail -1 "$work/err")"
    failed=$((failed + 1))
    continue
  fi
  "$bin" "$in" -o "$work/out2.onnx" -p "$pipeline" --force -q > /dev/null 2>&1
  after=$(cat "$zoo/$model".onnx* | sha256sum)
  if [ "$before" != "$after" ]; then
    echo "FAIL $model $pipeline: the input model was modified"
    failed=$((failed + 1))
    continue
  fi
  if ! cmp -s "$out" "$work/out2.onnx"; then
    echo "FAIL $model $pipeline: two runs gave different bytes"
    failed=$((failed + 1))
    continue
  fi
  compare=(node "$root/tests/ort/ort_compare.js" "$in" "$out" --spec "$zoo/zoo_models.json" --samples 4)
  case "$model" in transformer_*) compare=(node "$root/tests/ort/ort_compare.js" "$in" "$out" --spec "$zoo/zoo_models.json" --spec-data) ;; esac
  # shellcheck disable=SC2086
  if ! "${compare[@]}" $gates > "$work/cmp" 2>&1; then
    echo "FAIL $model $pipeline ($gates): $(grep -E 'cosine|error|failed|ort_compare' "$work/cmp" | tr '\n' ' ' | cut -c1-400)"
    failed=$((failed + 1))
    continue
  fi
  echo "ok   $model $pipeline: $(grep -oE 'output [^ ]+ [^ ]+: cosine [0-9.]+' "$work/cmp" | sed 's/output //' | tr '\n' ' ')"
done
echo "run_zoo: $((total - failed))/$total cases passed"
[ "$total" -gt 0 ] && [ "$failed" -eq 0 ]
