#!/usr/bin/env bash
# ASan + UBSan build (clang-14, -O1) of the library, the unit tests and the libFuzzer target, then:
# the unit tests, and a bounded fuzz run over load + checker + stats + cleanup seeded by the
# malformed-model corpus (tests/robustness/make_corpus.py) and the bundled models.
# Called by .ci/run after the main tests. A sanitized build of everything (ONNX Runtime tests, the
# conformance suites) does not fit a 2-core CI budget; this part is sized to ~10-15 minutes there.
#   COMPRESS_SANITIZE_BUILD  build directory (default build-sanitize)
#   COMPRESS_FUZZ_RUNS       libFuzzer -runs (default 3000)
#   COMPRESS_FUZZ_SECONDS    libFuzzer -max_total_time (default 240)
#   COMPRESS_FUZZ_SEED       libFuzzer -seed (default 1: CI runs the same mutations every time, so a
#                            red run is reproducible; set another seed to explore)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${COMPRESS_SANITIZE_BUILD:-$root/build-sanitize}
runs=${COMPRESS_FUZZ_RUNS:-3000}
seconds=${COMPRESS_FUZZ_SECONDS:-240}
seed=${COMPRESS_FUZZ_SEED:-1}
start=$(date +%s)

mkdir -p "$build"
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER=clang++-14 "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer $sanitize -fsanitize=fuzzer-no-link" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitize" -DCOMPRESS_BUILD_FUZZ=ON > "$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target compress_tests compress_fuzz
built=$(date +%s)

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$build/tests/compress_tests" --gtest_brief=1
tested=$(date +%s)

seeds="$build/fuzz-seeds"
rm -rf "$seeds" "$build/fuzz-corpus" "$build/fuzz-work" "$build/fuzz-tmp"
mkdir -p "$seeds" "$build/fuzz-work" "$build/fuzz-tmp"
/usr/bin/python3 "$root/tests/robustness/make_corpus.py" "$root/models/digits_cnn.onnx" "$build/fuzz-corpus" > /dev/null
# Seeds up to 1 MiB (the fuzzer's -max_len); external-data cases fuzz their model file alone.
find "$build/fuzz-corpus" -name model.onnx -size -1024k | while read -r f; do
  cp "$f" "$seeds/$(basename "$(dirname "$f")").onnx"
done
cp "$root"/models/*.onnx "$seeds/"
(cd "$build/fuzz-work" && TMPDIR="$build/fuzz-tmp" "$build/fuzz/compress_fuzz" -seed="$seed" -runs="$runs" -max_total_time="$seconds" \
  -max_len=1048576 -timeout=60 -rss_limit_mb=8192 -print_final_stats=1 "$build/fuzz-work" "$seeds")
# The target writes each input to a file in TMPDIR and must remove it again.
if [ -n "$(ls -A "$build/fuzz-tmp")" ]; then
  echo "sanitize.sh: the fuzz target left files in TMPDIR: $(ls "$build/fuzz-tmp")" >&2
  exit 1
fi
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, unit tests $((tested - built)) s, fuzz $((end - tested)) s, total $((end - start)) s"
