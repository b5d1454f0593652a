#!/usr/bin/env bash
# README command 2 (and CI): install everything, build with -Werror, run every test with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_deps.sh"
(cd "$root/tests/ort" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
bash "$root/models/fetch_models.sh"
bash "$root/scripts/build.sh" -DCOMPRESS_WERROR=ON
cd "$root/build"
ctest --output-on-failure -j "$(nproc)"
