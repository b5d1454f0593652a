#!/usr/bin/env bash
# ctest robustness.corpus: writes the malformed-model corpus into the build tree, then runs the binary
# over every case (inspect and five passes) and checks exit codes, the one error line, no leftovers,
# unchanged inputs and bounded time (run_corpus.py says exactly what).
# usage: run.sh COMPRESS_BINARY BASE_MODEL CORPUS_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$3"
/usr/bin/python3 "$here/make_corpus.py" "$2" "$3"
/usr/bin/python3 "$here/run_corpus.py" "$1" "$3" --timeout 30 --jobs 2
