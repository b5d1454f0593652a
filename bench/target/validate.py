#!/usr/bin/python3
"""Predicted vs measured ONNX Runtime latency ratio (after / before) on the real models, which the
profile was never fitted on: every bundled and cached model x int8 weight-only, int8 dynamic,
fp16 and int4.

    /usr/bin/python3 bench/target/validate.py WORK_DIR [--target ort-cpu] [--rounds 5]

Compresses each model with build/compress (--report-json gives the predicted ms before and after),
then times originals and outputs interleaved with bench/target/time_grid.js (1 thread, inputs from
models/cached_models.json; each original is followed by its outputs, so a round measures them side
by side). Measured ratio = median over rounds of output / original. Prints a Markdown table and the
fraction of cells within +-25% of the measured ratio, and with the right direction where ORT differs
from 1 by more than 10%.
"""
import argparse
import json
import os
import shutil
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("COMPRESS_MODEL_CACHE", os.path.expanduser("~/.cache/compress-models"))
MODELS = ["digits_mlp", "digits_cnn", "ppocr_det_v4", "ppocr_rec_v4", "ppocr_cls_v2", "silero_vad_legacy", "silero_vad_v5"]
PIPELINES = {"int8_weight_only": "quantize-int8", "int8_dynamic": "quantize-int8:mode=dynamic", "fp16": "fp16",
             "int4": "quantize-int4"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--target", default="ort-cpu")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget-ms", type=int, default=60)
    ap.add_argument("--predict-only", action="store_true",
                    help="reuse WORK_DIR/timings.json: recompute only the predictions (after a refit)")
    args = ap.parse_args()
    compress = os.path.join(ROOT, "build", "compress")
    spec = json.load(open(os.path.join(ROOT, "models", "cached_models.json")))["models"]
    if not args.predict_only:
        shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(os.path.join(args.work, "fp32"), exist_ok=True)
    grid, cells = [], []
    for model in MODELS:
        src = os.path.join(ROOT, "models", model + ".onnx")
        if not os.path.exists(src):
            src = os.path.join(CACHE, model + ".onnx")
        shutil.copy(src, os.path.join(args.work, "fp32", model + ".onnx"))
        grid.append({"file": f"fp32/{model}.onnx"})
        for name, pipeline in PIPELINES.items():
            os.makedirs(os.path.join(args.work, name), exist_ok=True)
            out = os.path.join(args.work, name, model + ".onnx")
            # The shapes ORT runs with (symbolic dims would otherwise be assumed 1).
            shapes = [f"--input-shape={n}={'x'.join(str(d) for d in i['shape'])}"
                      for n, i in spec[model + ".onnx"].get("inputs", {}).items() if i.get("shape")]
            r = subprocess.run([compress, src, "-o", out, "-q", "-p", pipeline, "--target", args.target, "--force",
                                "--dry-run" if args.predict_only else "--force", "--report-json", out + ".json"] + shapes,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                cells.append({"model": model, "pipeline": name, "error": r.stderr.strip().splitlines()[-1]})
                continue
            rep = json.load(open(out + ".json"))
            grid.append({"file": f"{name}/{model}.onnx"})
            cells.append({"model": model, "pipeline": name, "before_ms": rep["before"]["predicted_latency_ms"],
                          "after_ms": rep["after"]["predicted_latency_ms"]})
    with open(os.path.join(args.work, "grid.json"), "w") as f:
        json.dump(grid, f)
    if args.predict_only:
        timings = json.load(open(os.path.join(args.work, "timings.json")))
    else:
        timings = json.loads(subprocess.run(
            ["node", os.path.join(ROOT, "bench", "target", "time_grid.js"), args.work, "--rounds", str(args.rounds),
             "--budget-ms", str(args.budget_ms), "--spec", os.path.join(ROOT, "models", "cached_models.json")],
            check=True, capture_output=True, text=True).stdout)
        with open(os.path.join(args.work, "timings.json"), "w") as f:
            json.dump(timings, f, indent=1)
    rows, within, direction, direction_n = [], 0, 0, 0
    counted = 0
    for c in cells:
        if "error" in c:
            rows.append(f"| {c['model']} | {c['pipeline']} | - | - | - | - | not made: {c['error']} |")
            continue
        base = np.array(timings["models"][f"fp32/{c['model']}.onnx"])
        cand = np.array(timings["models"][f"{c['pipeline']}/{c['model']}.onnx"])
        measured = float(np.median(cand / base))
        spread = (float(np.min(cand / base)), float(np.max(cand / base)))
        predicted = c["after_ms"] / c["before_ms"]
        ok = abs(predicted / measured - 1) <= 0.25
        within += ok
        counted += 1
        note = ""
        if abs(measured - 1) > 0.10:
            direction_n += 1
            right = (predicted > 1) == (measured > 1)
            direction += right
            note = "direction right" if right else "**direction wrong**"
        rows.append(f"| {c['model']} | {c['pipeline']} | {predicted:.2f}x | {measured:.2f}x ({spread[0]:.2f}..{spread[1]:.2f}) | "
                    f"{c['before_ms']:.3f} / {c['after_ms']:.3f} | {np.median(base) / 1000:.3f} / {np.median(cand) / 1000:.3f} | "
                    f"{'within 25%' if ok else 'off'}; {note} |")
    print(f"CPU: {timings['cpu']}; ONNX Runtime {timings['ort']}; target {args.target}; {args.rounds} interleaved rounds\n")
    print("| model | pipeline | predicted ratio | measured ratio (min..max over rounds) | predicted ms before / after | "
          "measured ms before / after | |")
    print("|---|---|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    print(f"\nwithin +-25% of the measured ratio: {within}/{counted}; direction right where ORT differs from 1 by "
          f"more than 10%: {direction}/{direction_n}")


if __name__ == "__main__":
    main()
