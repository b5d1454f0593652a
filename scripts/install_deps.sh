#!/usr/bin/env bash
# Installs the Debian 12 packages compress builds and tests with. Run as root (or with sudo).
set -euo pipefail
packages=(
  cmake g++ make pkg-config dpkg-dev
  libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler libeigen3-dev libcli11-dev libspdlog-dev
  nlohmann-json3-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3-onnx python3-numpy python3-sklearn
  chromium python3-pil  # tests/report/html_chromium.py renders the HTML report
  clang-14 libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (e.g. NodeSource, whose nodejs ships npm): only Debian's when absent.
command -v node > /dev/null || missing+=(nodejs)
command -v npm > /dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
