#!/usr/bin/env bash
# Configures and builds compress in Release into build/ (extra CMake flags are passed through).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release "$@" > /dev/null
cmake --build "$root/build" -j "$(nproc)"
