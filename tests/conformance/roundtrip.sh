#!/usr/bin/env bash
# Every model of ONNX's backend conformance suite (Debian libonnx-testdata, 1000+ graphs covering
# every standard op) must load, round-trip byte-identically with no passes, and pass `cleanup`
# with the ONNX checker still satisfied (compress checks its output when the input passed).
#   roundtrip.sh COMPRESS_BIN
set -uo pipefail
bin=$1
data=/usr/share/libonnx-testdata/data
if [ ! -d "$data" ]; then
  echo "roundtrip: $data is missing (apt-get install libonnx-testdata)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total=0 failed=0
for model in "$data"/*/*/model.onnx; do
  total=$((total + 1))
  name=${model#"$data"/}
  if ! "$bin" "$model" -o "$work/rt.onnx" --force -q > /dev/null 2> "$work/err"; then
    echo "FAIL round trip: $name: $(cat "$work/err")"
    failed=$((failed + 1))
    continue
  fi
  if ! cmp -s "$model" "$work/rt.onnx"; then
    echo "FAIL round trip not byte-identical: $name"
    failed=$((failed + 1))
  fi
  if ! "$bin" "$model" -o "$work/clean.onnx" --force -q -p cleanup > /dev/null 2> "$work/err"; then
    echo "FAIL cleanup: $name: $(cat "$work/err")"
    failed=$((failed + 1))
  fi
done
echo "$((total - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
