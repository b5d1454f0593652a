#!/usr/bin/python3
"""Fits a target profile's latency costs from grid timings by non-negative least squares.

    /usr/bin/python3 bench/target/make_grid.py /tmp/grid
    node bench/target/time_grid.js /tmp/grid --rounds 5 > /tmp/grid/timings.json
    /usr/bin/python3 bench/target/fit.py /tmp/grid /tmp/grid/timings.json [--compress build/compress]

Each model's latency terms come from `compress inspect --json` (the same classification the
predictor uses, so the fit and the prediction cannot drift apart); its measured latency is the
smallest of its per-round medians (the machine is shared: other jobs only ever add time, so the
least disturbed round is the best estimate of the uncontended latency). Rows are weighted by 1/measured, so the fit minimizes relative
error. Writes targets/ort-cpu.json (fitted) and targets/ort-cpu-vnni.json (derived from it: integer
MAC costs scaled for VNNI, stated in the file) and prints the fit error and the timing noise.
"""
import argparse
import datetime
import json
import os
import subprocess

import numpy as np
from scipy.optimize import nnls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# VNNI (vpdpbusd) does a u8 x s8 4-way dot product in one instruction where AVX2 needs three
# (vpmaddubsw, vpmaddwd, vpaddd); u8 x u8 has no VNNI instruction and is widened first.
VNNI_SCALE = {"u8s8": 0.5, "u8u8": 0.75}


def cpu_name():
    model, flags = "unknown", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    isa = [x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if x in flags]
    return f"{model} ({', '.join(isa)}; {os.cpu_count()} cores)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("grid")
    ap.add_argument("timings")
    ap.add_argument("--compress", default=os.path.join(ROOT, "build", "compress"))
    ap.add_argument("--out", default=os.path.join(ROOT, "targets"))
    args = ap.parse_args()
    timings = json.load(open(args.timings))
    grid = json.load(open(os.path.join(args.grid, "grid.json")))
    rows, measured, noise, names = [], [], [], []
    for g in grid:
        rounds = timings["models"][g["file"]]
        med = float(np.min(rounds))
        out = subprocess.run([args.compress, "inspect", os.path.join(args.grid, g["file"]), "--json", "--target", "generic"],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out)["latency_terms"])
        measured.append(med)
        noise.append((float(np.median(rounds)) - med) / med)
        names.append(g["file"])
    terms = sorted({t for r in rows for t, q in r.items() if q})
    a = np.array([[r.get(t, 0.0) for t in terms] for r in rows])
    y = np.array(measured)
    scale = a.max(axis=0)  # column scaling keeps NNLS well conditioned
    w = 1.0 / y
    coef, _ = nnls((a / scale) * w[:, None], y * w)
    coef = coef / scale
    pred = a @ coef
    rel = pred / y - 1
    print(f"{len(y)} models, {len(terms)} terms; fit |pred/measured - 1|: median {np.median(np.abs(rel)):.3f}, "
          f"p90 {np.quantile(np.abs(rel), 0.9):.3f}; timing noise (median - min)/min over rounds: median "
          f"{np.median(noise):.3f}, p90 {np.quantile(noise, 0.9):.3f}")
    for n, p, m in sorted(zip(names, pred, y), key=lambda t: -abs(t[1] / t[2] - 1))[:8]:
        print(f"  worst: {n}: predicted {p:.1f} us, measured {m:.1f} us")
    cost = {t: float(f"{c:.6g}") for t, c in zip(terms, coef)}
    # Weights of the other integer type than the grid had (int8 for MatMul, uint8 for ConvInteger): the
# same cost, stated in the profile's note.
    # ConvInteger has only uint8 weights in the grid: the int8 form gets its cost the same way.
    for t in list(cost):
        for kind in (".qdq.", ".integer."):
            if kind in t and ".u8." not in t:
                cost.setdefault(t.replace(kind, kind[:-1] + ".u8."), cost[t])
            u8 = kind[:-1] + ".u8."
            if u8 in t:
                cost.setdefault(t.replace(u8, kind), cost[t])
    fitted = {"cpu": cpu_name(), "runtime": f"onnxruntime-node {timings['ort']}, CPU EP, 1 thread, sequential",
              "date": datetime.date.today().isoformat(), "script": "bench/target/make_grid.py, time_grid.js, fit.py",
              "models": len(y), "rounds": timings["rounds"],
              "fit_median_rel_err": round(float(np.median(np.abs(rel))), 4),
              "fit_p90_rel_err": round(float(np.quantile(np.abs(rel), 0.9)), 4),
              "timing_noise_median": round(float(np.median(noise)), 4),
              "note": "costs for the weight type the grid lacked (uint8 MatMulInteger, int8 ConvInteger) are not measured: set equal to the other type's"}
    native = {"qdq_fused": True, "weight_dequantize_fused": False, "matmul_integer": True, "conv_integer": True,
              "matmul_nbits": True, "fp16_kernels": "MatMul/Conv run float16 through MLAS where available, else cast",
              "int8_weights": ["u8s8", "u8u8"]}
    ort = {"name": "ort-cpu",
           "description": "ONNX Runtime CPU execution provider, 1 thread, x86-64 with AVX2 and no VNNI. Weight "
                          "DequantizeLinear is not fused: the float weight is rebuilt every run and the float kernel "
                          "runs; QDQ groups fuse into QLinearConv/QGemm/QLinearMatMul.",
           "fitted_on": fitted, "native": native, "cost_us": cost}
    vnni_cost = {}
    for t, c in cost.items():
        if ".qdq" in t or ".integer" in t:
            c *= VNNI_SCALE["u8u8" if ".u8." in t else "u8s8"]
        vnni_cost[t] = float(f"{c:.6g}")
    vnni = {"name": "ort-cpu-vnni",
            "description": "ONNX Runtime CPU, 1 thread, x86-64 with AVX-512 VNNI or AVX-VNNI. Derived, not measured: "
                           "the ort-cpu costs with integer MAC costs x0.5 for u8s8 (one vpdpbusd instead of three AVX2 "
                           "instructions) and x0.75 for u8u8 (no VNNI form, widened first).",
            "fitted_on": dict(fitted, derived_from="ort-cpu", vnni_scale=VNNI_SCALE),
            "native": dict(native, int8_weights=["u8s8 (fastest)", "u8u8"]), "cost_us": vnni_cost}
    for prof in (ort, vnni):
        with open(os.path.join(args.out, prof["name"] + ".json"), "w") as f:
            json.dump(prof, f, indent=1)
            f.write("\n")
    print(json.dumps(cost, indent=1))


if __name__ == "__main__":
    main()
