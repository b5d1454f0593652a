#!/usr/bin/env python3
"""Checks `compress inspect --json` against hand-counted numbers (derivations in tests/CMakeLists.txt).

    expect_macs.py COMPRESS_BIN MODEL MACS UNKNOWN_NODES NAME=DIMS...
"""
import json
import subprocess
import sys

from independent_macs import find_model


def main():
    binary, model, macs, unknown, specs = sys.argv[1], find_model(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
    cmd = [binary, "inspect", model, "--json"]
    for spec in specs:
        cmd += ["--input-shape", spec]
    report = json.loads(subprocess.check_output(cmd))
    print(f"compress: {report['macs']} MACs, {report['unknown_shape_nodes']} unknown; expected {macs}, {unknown}")
    if report["macs"] != macs or report["unknown_shape_nodes"] != unknown:
        sys.exit("expect_macs: mismatch")


if __name__ == "__main__":
    main()
