#!/usr/bin/env bash
# Issue 10's benchmark: wall time against `cp` and peak RSS against the model's bytes, on the three
# big synthetic models (a 176 MB conv net, a 340 MB BERT-base-shaped encoder, a 2.35 GB
# external-data MatMul model). Prints a Markdown section with the command and the CPU.
#
#   bench/big_models.sh [--compress BIN] [--work DIR] [--rounds N] [--no-large]
#
#   --compress BIN  the binary (default build/compress)
#   --work DIR      where the models and outputs go (default /tmp/compress-big; ~3 GB; kept for reruns)
#   --rounds N      interleaved rounds of cp / quantize-int8 / inspect on the conv net (default 3)
#   --no-large      skip the 2.35 GB model (its generation takes ~1 minute and 2.4 GB of disk)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compress="$here/../build/compress"; work="/tmp/compress-big"; rounds=3; large=1
cmdline="bench/big_models.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --compress) compress="$2"; shift ;;
    --work) work="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --no-large) large=0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "big_models.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
  shift
done
[ -x "$compress" ] || { echo "big_models.sh: $compress not built" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "big_models.sh: GNU /usr/bin/time is needed for peak RSS" >&2; exit 1; }
py=/usr/bin/python3
mkdir -p "$work"
[ -f "$work/conv.onnx" ] || $py "$here/make_conv_net.py" "$work/conv.onnx" > /dev/null
[ -f "$work/enc.onnx" ] || $py "$here/make_encoder_model.py" "$work/enc.onnx" > /dev/null
[ "$large" = 0 ] || [ -f "$work/large.onnx" ] || $py "$here/make_large_model.py" "$work/large.onnx" > /dev/null

model_bytes() { local b; b=$(stat -c %s "$1"); [ -f "$1.data" ] && b=$((b + $(stat -c %s "$1.data"))); echo "$b"; }
# Runs "$@" under GNU time; sets wall (s), rss (KB) and rc (GNU time's last line holds all three).
timed() {
  /usr/bin/time -f "%e %M %x" -o "$work/time.txt" "$@" > /dev/null 2> "$work/stderr.txt"
  read -r wall rss rc < <(tail -1 "$work/time.txt")
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_vnni|avx_vnni)$' | tr '\n' ' ')"
echo "## Big models: wall time against cp, peak RSS against the model (issue 10)"
echo
echo "CPU: $cpu ($(nproc) cores; flags: ${flags:-none of avx2/avx512/vnni}); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Command: \`$cmdline\` (models made by bench/make_conv_net.py, make_encoder_model.py, make_large_model.py)."
echo
conv="$work/conv.onnx"
declare -a cp_t q_t i_t
for ((r = 0; r < rounds; r++)); do
  timed cp "$conv" "$work/copy.onnx"; cp_t+=("$wall"); rm -f "$work/copy.onnx"
  timed "$compress" "$conv" -o "$work/q.onnx" --force -q -p quantize-int8; q_t+=("$wall"); rm -f "$work/q.onnx"
  timed "$compress" inspect "$conv"; i_t+=("$wall")
done
cpm=$(median "${cp_t[@]}"); qm=$(median "${q_t[@]}"); im=$(median "${i_t[@]}")
echo "Conv net ($(model_bytes "$conv") bytes), $rounds interleaved rounds, median:"
echo
echo "| command | wall s per round | median | vs cp |"
echo "|---|---|---:|---:|"
echo "| \`cp\` | ${cp_t[*]} | $cpm | 1x |"
echo "| \`compress -p quantize-int8\` | ${q_t[*]} | $qm | $($py -c "print(f'{$qm/max($cpm,1e-3):.1f}x')") |"
echo "| \`compress inspect\` | ${i_t[*]} | $im | $($py -c "print(f'{$im/max($cpm,1e-3):.1f}x')") |"
echo
echo "Peak RSS per pipeline (\`compress M -o OUT --force -q -p P\`; \`inspect\` is \`compress inspect M\`):"
echo
echo "| model | bytes | pipeline | exit | wall s | peak RSS MB | RSS / model bytes |"
echo "|---|---:|---|---:|---:|---:|---:|"
pipelines=(inspect quantize-int8 quantize-int8:mode=dynamic quantize-int4 fp16 prune-magnitude:sparsity=0.5
           prune-magnitude:sparsity=0.5:scope=global prune-channels:ratio=0.25 low-rank:energy=0.95 fold cleanup)
models=("$conv" "$work/enc.onnx"); [ "$large" = 0 ] || models+=("$work/large.onnx")
for m in "${models[@]}"; do
  bytes=$(model_bytes "$m")
  for p in "${pipelines[@]}"; do
    # Low-rank of a 14000 x 14000 matrix is an SVD of 2e8 elements: not a memory question, skipped.
    [[ "$m" == *large.onnx && "$p" == low-rank* ]] && continue
    if [ "$p" = inspect ]; then timed "$compress" inspect "$m"; else timed "$compress" "$m" -o "$work/out.onnx" --force -q -p "$p"; fi
    rm -f "$work/out.onnx" "$work/out.onnx.data"
    echo "| $(basename "$m") | $bytes | \`$p\` | $rc | $wall | $((rss / 1024)) | $($py -c "print(f'{$rss*1024/$bytes:.2f}x')") |"
  done
done
