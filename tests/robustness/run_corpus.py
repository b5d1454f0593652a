#!/usr/bin/env python3
"""Runs the built binary over the malformed-model corpus (make_corpus.py) and checks every run.

usage: run_corpus.py COMPRESS_BINARY CORPUS_DIR [--timeout SECONDS] [--jobs N]

Per case: `compress inspect` and `compress MODEL -o OUT -p PASS` for each pass below. Each run must
  - end by itself within the timeout and not by a signal;
  - exit 2 or 3 (cases marked `reject`), 0, 2 or 3 (cases marked `any`, blind mutations) or 0
    (cases marked `accept`, valid models with partly unknown shapes); never 70 (internal error);
  - after a non-zero exit: print exactly one stderr line starting `compress: error:`, free of
    control characters, and leave no file in the output directory (no model, no temp file);
  - leave the case's input files byte-identical, with nothing added beside them.
Prints one line per failure and a summary; exits 1 if anything failed.
"""
import argparse
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

PASSES = ["cleanup", "quantize-int8", "fp16", "prune-magnitude", "low-rank"]


def snapshot(directory):
    result = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                result[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return result


def run_one(binary, case_dir, expect, label, pass_name, timeout):
    model = os.path.join(case_dir, "model.onnx")
    out_dir = tempfile.mkdtemp(prefix="corpus-out-")
    try:
        if pass_name is None:
            argv = [binary, "inspect", model]
        else:
            argv = [binary, model, "-o", os.path.join(out_dir, "out.onnx"), "-p", pass_name]
        start = time.monotonic()
        try:
            proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            return ["%s: timed out after %ss" % (label, timeout)]
        seconds = time.monotonic() - start
        problems = []
        rc = proc.returncode
        stderr = proc.stderr.decode("utf-8", "replace")
        allowed = {"reject": (2, 3), "any": (0, 2, 3), "accept": (0,)}[expect]
        if rc < 0:
            problems.append("%s: killed by signal %d" % (label, -rc))
        elif rc not in allowed:
            problems.append("%s: exit %d, expected one of %s" % (label, rc, allowed))
        if rc != 0:
            errors = [line for line in stderr.split("\n") if line.startswith("compress: error:")]
            if len(errors) != 1:
                problems.append("%s: %d error lines, expected 1: %r" % (label, len(errors), stderr[-300:]))
            elif any(ord(c) < 0x20 or c == "\x7f" for c in errors[0]):
                problems.append("%s: control characters in the error line: %r" % (label, errors[0]))
            left = os.listdir(out_dir)
            if left:
                problems.append("%s: left %s after exit %d" % (label, left, rc))
        return problems, seconds, rc
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def check_case(binary, corpus, name, expect, timeout):
    case_dir = os.path.join(corpus, name)
    before = snapshot(case_dir)
    problems = []
    codes = []
    slowest = 0.0
    for pass_name in [None] + PASSES:
        label = "%s [%s]" % (name, pass_name or "inspect")
        result = run_one(binary, case_dir, expect, label, pass_name, timeout)
        if isinstance(result, list):
            problems += result
            continue
        p, seconds, rc = result
        problems += p
        codes.append(rc)
        slowest = max(slowest, seconds)
    if snapshot(case_dir) != before:
        problems.append("%s: input files changed or files were added beside them" % name)
    return name, problems, codes, slowest


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("corpus")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    cases = []
    with open(os.path.join(args.corpus, "cases.tsv")) as f:
        for line in f:
            name, expect, klass = line.rstrip("\n").split("\t")
            cases.append((name, expect, klass))
    failures = 0
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(check_case, args.binary, args.corpus, n, e, args.timeout) for n, e, _ in cases]
        for (name, expect, klass), future in zip(cases, futures):
            _, problems, codes, slowest = future.result()
            status = "FAIL" if problems else "ok"
            print("%-4s %-36s %-6s %-15s exits %s (slowest %.1fs)" % (status, name, expect, klass, codes, slowest))
            for p in problems:
                print("     " + p)
            failures += bool(problems)
    print("%d cases x %d runs, %d failing, %.0fs" % (len(cases), 1 + len(PASSES), failures, time.monotonic() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
