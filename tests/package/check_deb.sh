#!/usr/bin/env bash
# The .deb that `cpack` makes installs with apt on this machine, runs from /usr/bin, and removes
# cleanly. Installs into the real system, so it needs root: skipped (exit 77) otherwise.
#   tests/package/check_deb.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: installing a .deb needs root"
  exit 77
fi
# Never clobber a compress that some other package (or a manual install) put in /usr/bin.
if [ -e /usr/bin/compress ] && ! dpkg -S /usr/bin/compress 2>/dev/null | grep -q '^compress:'; then
  echo "FAIL: /usr/bin/compress exists and is not from the compress package; not touching it"
  exit 1
fi
work=$(mktemp -d)
apt_opts=(-y -qq -o DPkg::Lock::Timeout=300)
remove() {
  if dpkg-query -W -f='${Status}' compress 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get purge "${apt_opts[@]}" compress > /dev/null
  fi
}
trap 'remove; rm -rf "$work"' EXIT
remove  # a run killed halfway left it installed: start from a clean system

cpack --config "$build/CPackConfig.cmake" -B "$work" > "$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
debs=("$work"/compress_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || { echo "FAIL: cpack made no single compress_*.deb"; ls "$work"; exit 1; }
deb=${debs[0]}
depends=$(dpkg-deb -f "$deb" Depends)
echo "package: $(basename "$deb"); Depends: $depends"
for lib in libonnx1 libprotobuf32 libc6; do
  [[ "$depends" == *"$lib"* ]] || { echo "FAIL: Depends lacks $lib"; exit 1; }
done

DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" --no-install-recommends "$deb" > "$work/apt.log" 2>&1 ||
  { cat "$work/apt.log"; exit 1; }
dpkg -L compress | grep -qx /usr/bin/compress || { echo "FAIL: the package does not own /usr/bin/compress"; exit 1; }
version=$(/usr/bin/compress --version)
[ "$version" = "compress 0.1.0" ] || { echo "FAIL: --version printed '$version'"; exit 1; }
/usr/bin/compress "$src/models/digits_cnn.onnx" -o "$work/small.onnx" -q -p quantize-int8 --report-json "$work/r.json" > /dev/null
[ -s "$work/small.onnx" ] || { echo "FAIL: the installed compress wrote no model"; exit 1; }
grep -q '"pipeline": "quantize-int8:' "$work/r.json" || { echo "FAIL: no report from the installed compress"; exit 1; }
echo "installed compress ran: $version, $(stat -c %s "$work/small.onnx") bytes written"

remove
[ ! -e /usr/bin/compress ] || { echo "FAIL: /usr/bin/compress still there after apt-get purge"; exit 1; }
echo "removed cleanly"
