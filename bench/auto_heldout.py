#!/usr/bin/python3
"""Checks `compress auto` in ONNX Runtime on its own held-out samples (index % 4 == 3, the split auto
reports): runs auto, then tests/ort/ort_compare.js on the float and the chosen model with only the
held-out rows, and prints one Markdown row: model, budget, objective, held-out cosine in ORT (and, with
--ctc, the fraction of text lines whose greedy CTC decoding is unchanged; with --bpc, bits per
character of a language model's logits [N, T, V] against the next characters [N, T]), size ratio, wall time.

    bench/auto_heldout.py COMPRESS MODEL.onnx WORK_DIR --input NAME=X.npy [--input ...]
        [--auto-args "--min-cosine 0.995 --objective size"] [--ctc] [--bpc TARGETS.npy]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "..", "tests", "ort", "ort_compare.js")


def ctc_lines(probs):
    """Greedy CTC: argmax per step, repeats collapsed, blank (0) dropped; one tuple per sample."""
    out = []
    for row in probs.argmax(axis=-1):
        line, prev = [], -1
        for c in row:
            if c != prev and c != 0:
                line.append(int(c))
            prev = c
        out.append(tuple(line))
    return out


def bits_per_char(logits, targets):
    """Mean cross-entropy in bits of the next characters under softmax(logits)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[..., None].astype(np.int64), axis=-1)
    return float(-picked.mean() / np.log(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("compress")
    ap.add_argument("model")
    ap.add_argument("work")
    ap.add_argument("--input", action="append", required=True)
    ap.add_argument("--auto-args", default="--min-cosine 0.995")
    ap.add_argument("--ctc", action="store_true")
    ap.add_argument("--bpc", help="next-character targets [N, T] for a language model's logits")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    out = os.path.join(a.work, "auto.onnx")
    report = os.path.join(a.work, "auto.json")
    cmd = [a.compress, "auto", a.model, "-o", out, "--force", "-q", "--report-json", report]
    for spec in a.input:
        cmd += ["--input", spec]
    cmd += shlex.split(a.auto_args)
    t0 = time.time()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    wall = time.time() - t0
    auto = json.load(open(report))
    if rc != 0:
        print(f"| {os.path.basename(a.model)} | `{a.auto_args}` | exit {rc} | | | {wall:.1f} |")
        return 0
    held = []
    for spec in a.input:
        name, path = spec.split("=", 1)
        x = np.load(path)
        rows = [k for k in range(x.shape[0]) if k % 4 == 3] or [x.shape[0] - 1]
        p = os.path.join(a.work, f"held_{name}.npy")
        np.save(p, x[rows])
        held += ["--input", f"{name}={p}"]
    saved = os.path.join(a.work, "outputs")
    r = subprocess.run(["node", COMPARE, a.model, out, "--json", "--save-outputs", saved] + held,
                       capture_output=True, text=True)
    cmp = json.loads(r.stdout)
    cos = min(o["cosine"] for o in cmp["outputs"].values()) if isinstance(cmp["outputs"], dict) else \
        min(o["cosine"] for o in cmp["outputs"])
    extra = ""
    if a.ctc or a.bpc:
        files = sorted(os.listdir(saved))
        ref = np.load(os.path.join(saved, [f for f in files if f.startswith("ref_")][0]))
        cand = np.load(os.path.join(saved, [f for f in files if f.startswith("cand_")][0]))
    if a.ctc:
        same = sum(x == y for x, y in zip(ctc_lines(ref), ctc_lines(cand)))
        extra = f"; CTC lines unchanged {same}/{ref.shape[0]}"
    if a.bpc:
        targets = np.load(a.bpc)
        targets = targets[[k for k in range(targets.shape[0]) if k % 4 == 3] or [targets.shape[0] - 1]]
        before, after = bits_per_char(ref, targets), bits_per_char(cand, targets)
        extra = f"; bits per char {before:.4f} -> {after:.4f} ({100 * (after / before - 1):+.2f}%)"
    ratio = os.path.getsize(out) / os.path.getsize(a.model)
    chosen = {}
    for layer in auto["auto"]["layers"]:
        key = layer["chosen"] or "float"
        chosen[key] = chosen.get(key, 0) + 1
    cost = auto["auto"].get("objective_cost", {})
    cost_text = f"{cost['chosen'] / cost['float']:.3f}x" if "chosen" in cost else "kept float"
    print(f"| {os.path.basename(a.model)} | `{a.auto_args}` | {auto['auto']['samples']['held_out']} held out: "
          f"ORT min cosine {cos:.6f}{extra} (auto's evaluator: {auto['auto'].get('held_out', {}).get('min_cosine', 1):.6f}) "
          f"| {', '.join(f'{k} x{v}' for k, v in sorted(chosen.items()))} | file {ratio:.3f}x, objective {cost_text} | {wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
