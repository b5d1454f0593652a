#!/usr/bin/env bash
# README command 1: install, build, and compress a bundled real model with the default pipeline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
bash "$root/scripts/build.sh"
mkdir -p "$root/build/demo"
"$root/build/compress" "$root/models/digits_cnn.onnx" -o "$root/build/demo/digits_cnn.small.onnx" --force \
  -p cleanup,quantize-int8
