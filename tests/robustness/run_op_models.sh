#!/usr/bin/env bash
# ctest robustness.evaluator_ops: random single-node models of every evaluator op (make_op_models.py,
# seeded) through `compress verify M M --random`, which loads, checks, infers shapes and runs both
# copies in the evaluator. Each run must exit 0, 1 (an int input random data cannot fill), 2 or 3
# within 30 s, never 70 or a signal, and a failing run must print exactly one `compress: error:` line.
# usage: run_op_models.sh COMPRESS_BINARY WORK_DIR [PER_OP] [SEED]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 work=$2 per_op=${3:-4} seed=${4:-1}
rm -rf "$work"
/usr/bin/python3 "$here/make_op_models.py" "$work" --per-op "$per_op" --seed "$seed" || exit 1
total=0 bad=0
declare -A codes
for m in "$work"/*.onnx; do
  total=$((total + 1))
  err=$(timeout 30 "$bin" verify "$m" "$m" --random 2>&1 > /dev/null)
  rc=$?
  codes[$rc]=$((${codes[$rc]:-0} + 1))
  lines=$(grep -c '^compress: error:' <<< "$err")
  if [ "$rc" -gt 3 ] || { [ "$rc" -ne 0 ] && [ "$lines" -ne 1 ]; }; then
    bad=$((bad + 1))
    echo "FAIL $(basename "$m"): exit $rc: $(head -c 400 <<< "$err")"
  fi
done
summary=""
for k in $(printf '%s\n' "${!codes[@]}" | sort -n); do summary+=" exit $k: ${codes[$k]};"; done
echo "run_op_models: $total models,$summary $bad failed"
[ "$bad" -eq 0 ]
