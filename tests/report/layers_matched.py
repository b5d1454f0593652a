#!/usr/bin/env python3
"""Every layer of the report is paired across every built-in pass, on every bundled and cached model.

    python3 tests/report/layers_matched.py COMPRESS MODEL.onnx...

MODEL.onnx is looked up in models/, then in ${COMPRESS_MODEL_CACHE:-~/.cache/compress-models}.

Runs each pass `compress passes --json` lists (so a new pass is covered without editing this file)
with its defaults on each model (static int8 too, calibrated on seeded random samples of the shapes
in models/cached_models.json: the ranges do not matter here, the graph does) and checks that no
`layers[]` entry of the JSON report lacks its `before` side, nor its `after` side without a
`removed_by` pass. A missing model is a failure.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = json.load(open(os.path.join(root, "models", "cached_models.json")))["models"]


# Pairs the provenance tracer does not explain yet, each with why (listed in the issue notes; remove an
# entry once it pairs). Every other model x pipeline must pair every layer.
KNOWN_GAPS = {
    ("silero_vad_v5", "fold"): "nodes fold removes inside If bodies nested two levels deep are not traced as removed",
    ("silero_vad_v5", "quantize-int8:mode=static"): "runs fold first (same gap)",
}


def calibration(model_path, out_dir):
    """One <input>.npy per input, 2 samples on the leading axis (1 in the spec's shape is the batch)."""
    entry = spec[os.path.basename(model_path)]
    rng = np.random.default_rng(0)
    for name, inp in entry["inputs"].items():
        shape = inp["shape"]
        shape = [2] + shape[1:] if shape and shape[0] == 1 else [2] + shape
        if "value" in inp:
            data = np.full(shape, inp["value"], dtype=inp["dtype"])
        else:
            data = rng.standard_normal(shape).astype(inp["dtype"])
        np.save(os.path.join(out_dir, name + ".npy"), data)


def locate(name):
    cache = os.environ.get("COMPRESS_MODEL_CACHE", os.path.expanduser("~/.cache/compress-models"))
    bundled = os.path.join(root, "models", name)
    return bundled if os.path.exists(bundled) else os.path.join(cache, name)


def main():
    compress, models = sys.argv[1], [locate(m) for m in sys.argv[2:]]
    passes = [p["name"] for p in json.loads(subprocess.check_output([compress, "passes", "--json"]))]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            if not os.path.exists(model):
                print(f"FAIL {model}: missing (run models/fetch_models.sh)")
                failures += 1
                continue
            stem = os.path.splitext(os.path.basename(model))[0]
            calib = os.path.join(tmp, stem)
            os.makedirs(calib)
            calibration(model, calib)
            pipelines = passes + [f"quantize-int8:mode=dynamic", f"quantize-int8:mode=static:calibration={calib}"]
            for pipeline in pipelines:
                run = subprocess.run([compress, model, "--dry-run", "-q", "-p", pipeline, "--report-json", "-"],
                                     capture_output=True, text=True)
                label = f"{stem} {pipeline.split(':calibration=')[0]}"
                if run.returncode == 3:  # the pass cannot handle this model at all: nothing to pair
                    print(f"ok   {label}: exit 3 ({run.stderr.strip()})")
                    continue
                if run.returncode != 0:
                    print(f"FAIL {label}: exit {run.returncode}: {run.stderr.strip()}")
                    failures += 1
                    continue
                layers = json.loads(run.stdout)["layers"]
                bad = [l for l in layers if l["before"] is None or (l["after"] is None and "removed_by" not in l)]
                changed = sum(1 for l in layers if l.get("after_nodes"))
                removed = sum(1 for l in layers if "removed_by" in l)
                print(f"{'FAIL' if bad else 'ok  '} {label}: {len(layers)} layers, {changed} rewritten, "
                      f"{removed} removed, {len(bad)} unpaired")
                for l in bad[:5]:
                    print("     unpaired:", json.dumps(l)[:240])
                if bad and (stem, label.split(" ", 1)[1]) in KNOWN_GAPS:
                    print(f"     known gap, not counted: {KNOWN_GAPS[(stem, label.split(' ', 1)[1])]}")
                    continue
                failures += bool(bad)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
