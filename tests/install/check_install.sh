#!/usr/bin/env bash
# `cmake --install` then a separate project using find_package(compress) builds and runs.
#   check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > /dev/null
cmake -S "$src/tests/install/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/consumer" > /dev/null
bytes=$("$work/consumer/app" "$src/models/digits_mlp.onnx" "$work/out.onnx" 2> /dev/null)
[ -x "$work/prefix/bin/compress" ] || { echo "compress binary not installed" >&2; exit 1; }
# int8 weights + float32 scales/biases of the MLP: fewer bytes than its float32 weights.
[ "$bytes" -gt 0 ] && [ "$bytes" -lt 203304 ] || { echo "unexpected weight bytes '$bytes'" >&2; exit 1; }
echo "installed library quantized digits_mlp to $bytes weight bytes"
