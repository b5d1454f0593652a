#!/usr/bin/env bash
# Benchmark suite of `compress`: every model x every pipeline, measured with build/compress,
# --report-json and ONNX Runtime (tests/ort). Writes one Markdown file (default BENCHMARKS.md).
#
#   bench/run_benchmarks.sh [--quick] [--large] [--out FILE] [--rounds N] [--work DIR] [--compress BIN]
#
#   --quick      only the bundled digits models (about a minute)
#   --large      also the micro-benchmark on a synthetic > 2 GB external-data model
#                (writes ~2.4 GB under /tmp, takes a few minutes, deleted afterwards)
#   --out FILE   Markdown output (default BENCHMARKS.md in the repo root)
#   --rounds N   interleaved latency rounds per pipeline (original, candidate, original, ...; default 5)
#   --work DIR   where outputs and raw measurements go (default /tmp/compress-bench); kept afterwards
#   --compress   the compress binary (default build/compress)
#
# Needs: bash, node + onnxruntime-node (tests/ort/node_modules, or NODE_PATH), /usr/bin/python3
# (json, zlib-free: only reads the JSON files; onnx + numpy only for --large), /usr/bin/time.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

quick=0; large=0; out="BENCHMARKS.md"; rounds=5; work="/tmp/compress-bench"; compress="build/compress"
cmdline="bench/run_benchmarks.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --large) large=1 ;;
    --out) out="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --work) work="$2"; shift ;;
    --compress) compress="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_benchmarks.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
  shift
done

py=/usr/bin/python3
lib="$here/bench_lib.py"
spec="models/cached_models.json"
cache="${COMPRESS_MODEL_CACHE:-$HOME/.cache/compress-models}"
[ -x "$compress" ] || { echo "run_benchmarks.sh: $compress not built (see README: cmake + make compress)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "run_benchmarks.sh: /usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 1; }
if [ ! -d tests/ort/node_modules/onnxruntime-node ] && [ -z "${NODE_PATH:-}" ] && [ -d /tmp/npmtest/node_modules/onnxruntime-node ]; then
  export NODE_PATH=/tmp/npmtest/node_modules
fi
ort_version="$(cd tests/ort && node -e "console.log(require('onnxruntime-node/package.json').version)" 2>/dev/null)" \
  || { echo "run_benchmarks.sh: onnxruntime-node not found (cd tests/ort && npm ci --ignore-scripts, or set NODE_PATH)" >&2; exit 1; }

rm -rf "$work"; mkdir -p "$work"
results="$work/results.jsonl"; : > "$results"
meta="$work/meta.json"

models=(digits_mlp digits_cnn)
[ "$quick" = 1 ] || models+=(ppocr_det_v4 ppocr_rec_v4 ppocr_cls_v2 silero_vad_legacy silero_vad_v5)

has_low_rank=0
"$compress" passes 2>/dev/null | grep -q '^low-rank ' && has_low_rank=1
pipelines=(
  "cleanup"
  "quantize-int8"
  "quantize-int8:mode=dynamic"
  "quantize-int8:mode=dynamic:exclude=[Conv]"
  "quantize-int4"
  "quantize-int4:format=dq"
  "fp16"
  "fp16:weights-only=true"
  "prune-magnitude:sparsity=0.5"
  "prune-magnitude:sparsity=0.9:storage=sparse"
  "prune-channels:ratio=0.25:round-to=8"
  "low-rank:energy=0.95"
  "low-rank:energy=0.95,quantize-int8"
)

model_path() {
  case "$1" in
    digits_*) echo "models/$1.onnx" ;;
    *) echo "$cache/$1.onnx" ;;
  esac
}

if [ "$quick" = 0 ]; then
  need_fetch=0
  for m in "${models[@]}"; do [ -f "$(model_path "$m")" ] || need_fetch=1; done
  [ "$need_fetch" = 1 ] && { models/fetch_models.sh "$cache" >&2 || echo "run_benchmarks.sh: fetch_models.sh failed; missing models get a row saying so" >&2; }
fi

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Latency: ort_bench.js on original and candidate, interleaved A B A B ... for $rounds rounds;
# each call is its own process (load, warmup, runs) and reports its median.
bench_pair() {  # ref cand dir runs
  local ref="$1" cand="$2" dir="$3" runs="$4" r
  : > "$dir/bench_ref.jsonl"; : > "$dir/bench_cand.jsonl"
  for r in $(seq 1 "$rounds"); do
    node tests/ort/ort_bench.js "$ref" --spec "$spec" --threads 1 --runs "$runs" --warmup 3 >> "$dir/bench_ref.jsonl" 2>> "$dir/bench.err" || return 1
    node tests/ort/ort_bench.js "$cand" --spec "$spec" --threads 1 --runs "$runs" --warmup 3 >> "$dir/bench_cand.jsonl" 2>> "$dir/bench.err" || return 2
  done
}

for m in "${models[@]}"; do
  src="$(model_path "$m")"
  if [ ! -f "$src" ]; then
    $py "$lib" missing --model "$m" --reason "model file $src not found (models/fetch_models.sh failed or offline)" >> "$results"
    continue
  fi
  # runs per latency call: about 300 ms of inference per call, 20..500 runs
  cal="$(node tests/ort/ort_bench.js "$src" --spec "$spec" --threads 1 --runs 5 --warmup 2 2>/dev/null)"
  runs="$($py -c 'import json,sys; m=json.loads(sys.argv[1])["median_ms"]; print(max(20, min(500, int(300/max(m,1e-3)))))' "$cal" 2>/dev/null || echo 20)"
  read -r -a shape_flags <<< "$($py "$lib" shapes --spec "$spec" --basename "$(basename "$src")")"
  log "$m: $runs runs per latency call; ${shape_flags[*]}"
  model_pipelines=("${pipelines[@]}")
  # Data-aware pipelines where the repo ships calibration samples for the model.
  [ -d "models/calibration/$m" ] && model_pipelines+=(
    "quantize-int8:mode=static:calibration=models/calibration/$m"
    "quantize-int8:mode=static:calibration=models/calibration/$m:method=entropy")
  for p in "${model_pipelines[@]}"; do
    slug="$(printf '%s' "$p" | tr -c 'A-Za-z0-9=._-' '_' | tr '=' '-')"
    dir="$work/$m/$slug"; mkdir -p "$dir"
    cand="$dir/$(basename "$src")"   # same basename as the original: --spec entries match by basename
    if [[ "$p" == low-rank* ]] && [ "$has_low_rank" = 0 ]; then
      $py "$lib" gap --model "$m" --pipeline "$p" --reason "low-rank is not in \`$compress passes\` on this branch (issue 5 still being merged)" >> "$results"
      continue
    fi
    log "$m: $p"
    /usr/bin/time -v -o "$dir/time.txt" "$compress" "$src" -o "$cand" -p "$p" --force -q "${shape_flags[@]}" \
      --report-json "$dir/report.json" > "$dir/compress.out" 2> "$dir/compress.err"
    echo $? > "$dir/compress.rc"
    if [ "$(cat "$dir/compress.rc")" = 0 ]; then
      if [[ "$m" == digits_* ]]; then
        node tests/ort/ort_compare.js "$src" "$cand" --spec "$spec" --spec-data --json > "$dir/compare.json" 2> "$dir/compare.err"
      else
        node tests/ort/ort_compare.js "$src" "$cand" --spec "$spec" --samples 4 --json > "$dir/compare.json" 2> "$dir/compare.err"
      fi
      echo $? > "$dir/compare.rc"
      bench_pair "$src" "$cand" "$dir" "$runs"; echo $? > "$dir/bench.rc"
    fi
    $py "$lib" record --model "$m" --pipeline "$p" --dir "$dir" --runs "$runs" >> "$results"
  done
done

# Micro-benchmark of compress itself: load + write (no passes), wall time and peak RSS.
micro="$work/micro.jsonl"; : > "$micro"
if [ "$quick" = 0 ]; then
  largest="$(ls -S "$cache"/*.onnx 2>/dev/null | head -1)"
  if [ -n "$largest" ]; then
    d="$work/micro/largest"; mkdir -p "$d"
    log "micro: round trip of $largest"
    for i in 1 2 3; do
      /usr/bin/time -v -o "$d/time$i.txt" "$compress" "$largest" -o "$d/$(basename "$largest")" --force -q \
        --report-json "$d/report.json" > /dev/null 2> "$d/err$i.txt"; echo $? > "$d/rc$i"
    done
    $py "$lib" micro --name "round trip, no passes: $(basename "$largest")" --dir "$d" --cmd "$compress $largest -o OUT --force" >> "$micro"
  fi
fi
if [ "$large" = 1 ]; then
  big="/tmp/compress-bench-large"; rm -rf "$big"; mkdir -p "$big"
  log "micro: writing the synthetic > 2 GB model into $big"
  gen_start=$(date +%s.%N)
  if $py "$here/make_large_model.py" "$big/large.onnx" > "$big/gen.out" 2>&1; then
    gen_s=$($py -c "import sys; print(round($(date +%s.%N)-$gen_start, 1))")
    d="$work/micro/large"; mkdir -p "$d"
    log "micro: round trip of the large model"
    mkdir -p "$big/out"
    /usr/bin/time -v -o "$d/time1.txt" "$compress" "$big/large.onnx" -o "$big/out/large.onnx" --external-data --force -q \
      --report-json "$d/report.json" > /dev/null 2> "$d/err1.txt"; echo $? > "$d/rc1"
    du -b "$big/large.onnx" "$big"/large.onnx.data* "$big/out"/* > "$d/sizes.txt" 2>/dev/null
    $py "$lib" micro --name "round trip, no passes: synthetic 3 x MatMul 14000x14000 float32, external data (generated in ${gen_s} s)" \
      --dir "$d" --cmd "$compress $big/large.onnx -o $big/out/large.onnx --external-data --force" >> "$micro"
    rm -rf "$big/out"; mkdir -p "$big/out"
    d="$work/micro/large_int8"; mkdir -p "$d"
    log "micro: quantize-int8 of the large model"
    /usr/bin/time -v -o "$d/time1.txt" "$compress" "$big/large.onnx" -o "$big/out/large.onnx" --external-data -p quantize-int8 --force -q \
      --report-json "$d/report.json" > /dev/null 2> "$d/err1.txt"; echo $? > "$d/rc1"
    $py "$lib" micro --name "quantize-int8 of the same synthetic model" \
      --dir "$d" --cmd "$compress $big/large.onnx -o $big/out/large.onnx --external-data -p quantize-int8 --force" >> "$micro"
  else
    $py "$lib" micro-fail --name "synthetic > 2 GB model" --reason "generator failed: $(tail -1 "$big/gen.out")" >> "$micro"
  fi
  rm -rf "$big"
fi

# The integer kernels ONNX Runtime picks depend on these flags (u8 x s8 saturates without VNNI).
cpu_flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx_vnni' | tr '\n' ' ')"
cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') [${cpu_flags% }]"
$py - "$meta" <<PYEOF
import json, sys
json.dump({"command": """$cmdline""", "date": "$(date -u '+%Y-%m-%d %H:%M:%S UTC')", "nproc": "$(nproc)",
           "cpu": """$cpu""", "mem": "$(free -g | awk '/Mem:/{print $2}') GiB", "ort": "$ort_version",
           "compress": "$("$compress" --version 2>&1 | head -1)", "git": "$(git rev-parse --short HEAD 2>/dev/null)",
           "rounds": $rounds, "quick": $quick, "large": $large, "has_low_rank": $has_low_rank,
           "work": "$work"}, open(sys.argv[1], "w"))
PYEOF
$py "$lib" render --meta "$meta" --results "$results" --micro "$micro" > "$out" || exit 1
log "wrote $out (raw files in $work)"
