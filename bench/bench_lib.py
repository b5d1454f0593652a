#!/usr/bin/python3
"""Helpers for bench/run_benchmarks.sh: turn the raw files of one run into a JSON row
(record / gap / missing / micro / micro-fail), print --input-shape flags from the spec
(shapes), and render all rows as Markdown (render). Standard library only."""
import argparse
import json
import math
import os
import re
import statistics
import sys

MATMUL_OPS = ("MatMul", "Gemm")


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def read_json(path):
    text = read(path)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_time(path):
    """GNU time -v: wall seconds and peak RSS in MB (10^6 bytes)."""
    text = read(path, "")
    wall = rss = None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        wall = 0.0
        for p in parts:
            wall = wall * 60 + p
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        rss = int(m.group(1)) * 1024 / 1e6
    return wall, rss


def error_line(path):
    lines = [l.strip() for l in read(path, "").splitlines() if l.strip()]
    for l in lines:
        if "error" in l.lower():
            return l
    return lines[-1] if lines else "(no message)"


def record(a):
    d = a.dir
    row = {"model": a.model, "pipeline": a.pipeline, "kind": "run", "runs": a.runs}
    rc = int((read(os.path.join(d, "compress.rc"), "70") or "70").strip())
    row["exit"] = rc
    row["wall_s"], row["peak_mb"] = parse_time(os.path.join(d, "time.txt"))
    if rc != 0:
        row["error"] = error_line(os.path.join(d, "compress.err"))
        print(json.dumps(row))
        return
    rep = read_json(os.path.join(d, "report.json")) or {}
    row["ratios"] = rep.get("ratios", {})
    row["before"] = {k: rep.get("before", {}).get(k) for k in ("file_bytes", "file_zlib_bytes", "weight_bytes", "params", "flops", "macs")}
    row["after"] = {k: rep.get("after", {}).get(k) for k in ("file_bytes", "file_zlib_bytes", "weight_bytes", "params", "flops", "macs")}
    uncounted = [s for s in rep.get("before", {}).get("assumptions", []) if "MACs not counted" in s]
    row["after_weight_bytes_by_dtype"] = rep.get("after", {}).get("weight_bytes_by_dtype", {})
    row["macs_uncounted_before"] = len(uncounted)
    row["macs_uncounted_after"] = len([s for s in rep.get("after", {}).get("assumptions", []) if "MACs not counted" in s])
    # MatMul/Gemm share of the original, and MatMul/Gemm weight bytes before/after
    mm_macs = all_macs = mm_params = all_params = mm_wb_before = mm_wb_after = 0
    mm_uncounted = 0
    for l in rep.get("layers", []):
        b, af = l.get("before") or {}, l.get("after") or {}
        all_macs += b.get("macs", 0) or 0
        all_params += b.get("params", 0) or 0
        if l.get("op_type") in MATMUL_OPS:
            mm_macs += b.get("macs", 0) or 0
            mm_params += b.get("params", 0) or 0
            mm_wb_before += b.get("weight_bytes", 0) or 0
            mm_wb_after += af.get("weight_bytes", 0) or 0
    for s in uncounted:
        if re.search(r"\((MatMul|Gemm)\)", s):
            mm_uncounted += 1
    row["matmul"] = {"macs": mm_macs, "all_macs": all_macs, "params": mm_params, "all_params": all_params,
                     "weight_bytes_before": mm_wb_before, "weight_bytes_after": mm_wb_after,
                     "uncounted_nodes": mm_uncounted}
    passes = []
    for p in rep.get("passes", []):
        passes.append({"name": p.get("name"), "counters": p.get("counters", {}), "warnings": p.get("warnings", []),
                       "seconds": p.get("seconds")})
    row["passes"] = passes
    # ONNX Runtime comparison
    crc = int((read(os.path.join(d, "compare.rc"), "-1") or "-1").strip())
    row["compare_exit"] = crc
    cmp_ = read_json(os.path.join(d, "compare.json"))
    if cmp_ is None:
        row["compare_error"] = error_line(os.path.join(d, "compare.err"))
    else:
        outs = cmp_.get("outputs", {})
        cos = {}
        for name, o in outs.items():
            c = o.get("cosine")
            cos[name] = c if isinstance(c, (int, float)) else None
        row["cosine"] = cos
        row["identical"] = all(o.get("identical") for o in outs.values()) if outs else None
        first = next(iter(outs.values()), {}) if outs else {}
        row["top1"] = first.get("top1_agreement")
        row["top1_output"] = next(iter(outs), None)
        row["accuracy"] = cmp_.get("accuracy")
        row["samples"] = cmp_.get("samples")
    # Latency
    brc = int((read(os.path.join(d, "bench.rc"), "-1") or "-1").strip())
    row["bench_exit"] = brc
    refs = [json.loads(l)["median_ms"] for l in read(os.path.join(d, "bench_ref.jsonl"), "").splitlines() if l.strip()]
    cands = [json.loads(l)["median_ms"] for l in read(os.path.join(d, "bench_cand.jsonl"), "").splitlines() if l.strip()]
    row["lat_ref_ms"], row["lat_cand_ms"] = refs, cands
    if brc != 0:
        row["bench_error"] = error_line(os.path.join(d, "bench.err"))
    print(json.dumps(row))


def gap(a):
    print(json.dumps({"model": a.model, "pipeline": a.pipeline, "kind": "gap", "reason": a.reason}))


def missing(a):
    print(json.dumps({"model": a.model, "pipeline": None, "kind": "missing", "reason": a.reason}))


def micro(a):
    runs = []
    for i in range(1, 10):
        t = os.path.join(a.dir, f"time{i}.txt")
        if not os.path.exists(t):
            break
        wall, rss = parse_time(t)
        rc = int((read(os.path.join(a.dir, f"rc{i}"), "70") or "70").strip())
        runs.append({"wall_s": wall, "peak_mb": rss, "exit": rc,
                     "error": error_line(os.path.join(a.dir, f"err{i}.txt")) if rc else None})
    rep = read_json(os.path.join(a.dir, "report.json")) or {}
    before = rep.get("before", {})
    print(json.dumps({"name": a.name, "cmd": a.cmd, "runs": runs, "file_bytes": before.get("file_bytes"),
                      "weight_bytes": before.get("weight_bytes"), "params": before.get("params"),
                      "after_file_bytes": rep.get("after", {}).get("file_bytes"),
                      "after_weight_bytes": rep.get("after", {}).get("weight_bytes"),
                      "pass_seconds": [p.get("seconds") for p in rep.get("passes", [])],
                      "sizes": read(os.path.join(a.dir, "sizes.txt"), "")}))


def micro_fail(a):
    print(json.dumps({"name": a.name, "runs": [], "failed": a.reason}))


def shapes(a):
    """--input-shape flags for the spec entry of a model basename (inputs with a rank >= 1)."""
    spec = json.load(open(a.spec))
    e = spec.get("models", {}).get(a.basename)
    if not e:
        return
    flags = []
    for name, i in e.get("inputs", {}).items():
        if i.get("shape"):
            flags += ["--input-shape", name + "=" + "x".join(str(s) for s in i["shape"])]
    print(" ".join(flags))


# ---------------------------------------------------------------- rendering

def fmt_ratio(r, digits=3):
    if r is None or (isinstance(r, float) and math.isnan(r)):
        return "n/a"
    return f"{r:.{digits}f}x"


def latency(row):
    refs, cands = row.get("lat_ref_ms") or [], row.get("lat_cand_ms") or []
    n = min(len(refs), len(cands))
    if n == 0:
        return None
    refs, cands = refs[:n], cands[:n]
    mr, mc = statistics.median(refs), statistics.median(cands)
    per_round = [c / r for r, c in zip(refs, cands) if r > 0]
    return {"ratio": mc / mr if mr > 0 else None, "ref_ms": mr, "cand_ms": mc, "n": n,
            "lo": min(per_round), "hi": max(per_round),
            "ref_spread": (max(refs) - min(refs)) / mr if mr > 0 else None}


def quality(row):
    acc = row.get("accuracy")
    cos = row.get("cosine") or {}
    parts = []
    if acc:
        parts.append(f"acc {acc['ref'] * 100:.2f}% -> {acc['cand'] * 100:.2f}% (drop {acc['drop_points']:.2f} pts)")
    if cos:
        name, val = min(((k, v) for k, v in cos.items()), key=lambda kv: (kv[1] if kv[1] is not None else -2))
        label = "cos" if len(cos) == 1 else f"min cos ({name})"
        parts.append(f"{label} {val:.6f}" if val is not None else f"{label} NaN")
    if row.get("identical"):
        parts.append("identical")
    return "; ".join(parts) if parts else "n/a"


def flops_cell(row):
    r = row.get("ratios", {}).get("flops")
    s = fmt_ratio(r)
    ub, ua = row.get("macs_uncounted_before", 0), row.get("macs_uncounted_after", 0)
    if ub or ua:
        s += f" (partial: {ub} / {ua} nodes uncounted)"
    return s


def render(a):
    meta = json.load(open(a.meta))
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    micro_rows = [json.loads(l) for l in open(a.micro) if l.strip()] if os.path.exists(a.micro) else []
    out = []
    w = out.append
    w("# compress benchmarks\n")
    w("Generated by `bench/run_benchmarks.sh` (see bench/README.md). Every number below was measured by that run; "
      "nothing is edited by hand.\n")
    w(f"- Command: `{meta['command']}`")
    w(f"- Date: {meta['date']}")
    w(f"- Machine: nproc {meta['nproc']}, CPU `{meta['cpu']}`, {meta['mem']} RAM (shared with other users: latency is noisy, see below)")
    w(f"- ONNX Runtime: onnxruntime-node {meta['ort']} (CPU, 1 intra-op thread, sequential, graph optimisation `all`)")
    w(f"- compress: `{meta['compress']}`, git `{meta['git']}`, Release build")
    w(f"- Raw files (reports, ORT JSON, time -v): `{meta['work']}`\n")
    w("## How each column is measured\n")
    w("- **exit**: exit code of `build/compress MODEL -o WORK/PIPELINE/MODEL.onnx -p PIPELINE --force --report-json R.json "
      "--input-shape ...` (input shapes from `models/cached_models.json`, batch 1). A pipeline the model cannot take "
      "shows its exit code and the one-line error instead of numbers.")
    w("- **file / zlib / weight bytes / FLOPs ratio**: `ratios` of the `--report-json` report (after / before). "
      "FLOPs come from compress's shape inference (ONNX 1.12); where it cannot infer a node's shapes the node's MACs are "
      "not counted and the cell says `partial: B / A nodes uncounted` (before / after), so that ratio covers only the counted nodes.")
    w("- **accuracy or cosine**: `node tests/ort/ort_compare.js ORIG CAND --spec models/cached_models.json --json`, "
      "with `--spec-data` for the digits models (450 labeled test images: test accuracy before -> after, drop in points) "
      "and `--samples 4` (seeded N(0,1) inputs, fixed values for states/sample rate) for the others. Cosine of the flattened "
      "outputs over all samples; for models with several outputs the smallest cosine and its output.")
    w("- **top-1**: `top1_agreement` of the first output (argmax along the last axis; n/a when that axis has size 1).")
    w(f"- **ORT latency ratio**: `node tests/ort/ort_bench.js MODEL --spec models/cached_models.json --threads 1` run on "
      f"the original and the candidate interleaved (A B A B ..., {meta['rounds']} rounds, each call a fresh process with 3 warmup "
      "runs and enough runs for ~300 ms of inference, 20..500). Ratio = median of candidate round medians / median of "
      "original round medians; in brackets the min..max of the per-round ratios (the noise), then the original's median ms.")
    w("- **compress wall s / peak MB**: `/usr/bin/time -v` of the compress call (wall clock, maximum RSS; includes load, "
      "passes, checker, report and write).\n")

    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for model, mrows in by_model.items():
        w(f"## {model}\n")
        miss = [r for r in mrows if r["kind"] == "missing"]
        if miss:
            w(f"Not measured: {miss[0]['reason']}\n")
            continue
        base = next((r for r in mrows if r["kind"] == "run" and r.get("before")), None)
        if base:
            b = base["before"]
            mm = base["matmul"]
            w(f"Original: {b['file_bytes']:,} bytes, {b['params']:,} params, weight bytes {b['weight_bytes']:,}, "
              f"{b['macs']:,} MACs counted ({base.get('macs_uncounted_before', 0)} nodes uncounted); "
              f"MatMul/Gemm hold {mm['params']:,} of {mm['all_params']:,} layer params and {mm['macs']:,} of the counted MACs.\n")
        w("| pipeline | exit | file ratio | zlib ratio | weight bytes ratio | FLOPs ratio | accuracy or cosine | top-1 | ORT latency ratio | compress wall s | peak MB |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        notes = []
        for r in mrows:
            p = f"`{r['pipeline']}`"
            if r["kind"] == "gap":
                w(f"| {p} | - | GAP: not measured | | | | | | | | |")
                notes.append(f"`{r['pipeline']}`: {r['reason']}")
                continue
            wall = f"{r['wall_s']:.2f}" if r.get("wall_s") is not None else "n/a"
            peak = f"{r['peak_mb']:.1f}" if r.get("peak_mb") is not None else "n/a"
            if r["exit"] != 0:
                err = r["error"].replace("|", "\\|")
                w(f"| {p} | {r['exit']} | cannot run: {err} | | | | | | | {wall} | {peak} |")
                continue
            rt = r.get("ratios", {})
            if "cosine" in r:
                q = quality(r)
                t1 = r.get("top1")
                t1s = f"{t1:.4f}" if isinstance(t1, (int, float)) else "n/a"
            else:
                q = f"ORT failed (exit {r.get('compare_exit')}): {r.get('compare_error', '')}".replace("|", "\\|")
                t1s = "n/a"
            lat = latency(r)
            if lat and r.get("bench_exit") == 0:
                ls = f"{lat['ratio']:.3f}x ({lat['lo']:.2f}..{lat['hi']:.2f}; orig {lat['ref_ms']:.3f} ms)"
            elif r.get("bench_error"):
                ls = f"failed: {r['bench_error']}".replace("|", "\\|")
            else:
                ls = "n/a"
            w(f"| {p} | 0 | {fmt_ratio(rt.get('file_bytes'))} | {fmt_ratio(rt.get('file_zlib_bytes'))} | "
              f"{fmt_ratio(rt.get('weight_bytes'))} | {flops_cell(r)} | {q} | {t1s} | {ls} | {wall} | {peak} |")
            for ps in r.get("passes", []):
                for wtxt in ps.get("warnings", []):
                    notes.append(f"`{r['pipeline']}` warning from {ps['name']}: {wtxt}")
            done = {k: v for ps in r.get("passes", []) for k, v in ps["counters"].items()
                    if not k.startswith("weight_bytes") and not k.startswith("bytes")}
            if done:
                notes.append(f"`{r['pipeline']}` counters: " + ", ".join(f"{k}={v}" for k, v in sorted(done.items())))
        # latency noise of the original across all pipelines of this model
        refs = [x for r in mrows if r["kind"] == "run" for x in (r.get("lat_ref_ms") or [])]
        if refs:
            w("")
            w(f"Latency noise: the original's per-call median over all {len(refs)} calls of this model ranged "
              f"{min(refs):.3f}..{max(refs):.3f} ms (median {statistics.median(refs):.3f} ms, spread "
              f"{(max(refs) - min(refs)) / statistics.median(refs) * 100:.0f}% of the median), so latency ratios within "
              "about that band of 1.0 are not distinguishable from noise.")
        if notes:
            w("")
            w("<details><summary>Pass counters and notes</summary>\n")
            for n in notes:
                w(f"- {n}")
            w("\n</details>")
        w("")

    # ------------------------------------------------------------ targets
    w("## Targets (issue 3)\n")
    w("Computed from the rows above by `bench/bench_lib.py render`.\n")
    runs = [r for r in rows if r["kind"] == "run"]
    ok = [r for r in runs if r["exit"] == 0]

    def find(model, pipe):
        return next((r for r in runs if r["model"] == model and r["pipeline"] == pipe), None)

    models = list(dict.fromkeys(r["model"] for r in runs))
    w("### int8 weight-only file <= 0.27x of fp32 for weight-dominated models\n")
    w("Weight-dominated: weight bytes >= 90% of the original file. Pipeline `quantize-int8`.\n")
    w("| model | weight share of file | file ratio | target | result | why (what stayed larger than int8) |")
    w("|---|---|---|---|---|---|")
    for m in models:
        r = find(m, "quantize-int8")
        if not r:
            continue
        if r["exit"] != 0:
            w(f"| {m} | n/a | exit {r['exit']} | <= 0.27x | not measurable: {r['error']} |")
            continue
        share = r["before"]["weight_bytes"] / r["before"]["file_bytes"]
        fr = r["ratios"]["file_bytes"]
        if share < 0.9:
            w(f"| {m} | {share * 100:.1f}% | {fr:.4f}x | not weight-dominated | not applicable |")
            continue
        res = "met" if fr <= 0.27 else f"MISSED by {fr - 0.27:.4f}x ({(fr / 0.27 - 1) * 100:.1f}% over)"
        bd = r.get("after_weight_bytes_by_dtype", {})
        tot = sum(bd.values()) or 1
        left = ", ".join(f"{k} {v:,} B ({v / tot * 100:.1f}%)" for k, v in sorted(bd.items()) if k != "int8" and v)
        c = {k: v for ps in r["passes"] for k, v in ps["counters"].items() if k.startswith("skipped")}
        why = f"output weight bytes not int8: {left or 'none'}" + (f"; {', '.join(f'{k}={v}' for k, v in sorted(c.items()))}" if c else "")
        w(f"| {m} | {share * 100:.1f}% | {fr:.4f}x | <= 0.27x | {res} | {why} |")
    w("")
    w("### int4 block 32: MatMul weights <= 0.16x\n")
    w("Pipeline `quantize-int4` (MatMulNBits, block 32). MatMul/Gemm weight bytes = sum of the report's per-layer weight "
      "bytes (weight + scales + zero points) over the MatMul/Gemm layers of the original, after / before; the quantized "
      "column counts only the weights the pass converted (its `weight_bytes_before/after` counters).\n")
    w("| model | all MatMul/Gemm weights | quantized ones only | target | result |")
    w("|---|---|---|---|---|")
    for m in models:
        r = find(m, "quantize-int4")
        if not r:
            continue
        if r["exit"] != 0:
            w(f"| {m} | exit {r['exit']} | | <= 0.16x | not measurable: {r['error']} |")
            continue
        mm = r["matmul"]
        c = {k: v for ps in r["passes"] for k, v in ps["counters"].items()}
        if not c.get("weight_bytes_before"):
            sk = ", ".join(f"{k}={v}" for k, v in sorted(c.items()) if k.startswith("skipped"))
            w(f"| {m} | {mm['weight_bytes_after'] / mm['weight_bytes_before']:.4f}x | none quantized | <= 0.16x | "
              f"not applicable: no MatMul/Gemm weight was eligible ({sk or 'no MatMul/Gemm weights'}) |"
              if mm["weight_bytes_before"] else f"| {m} | no constant MatMul/Gemm weights | | <= 0.16x | not applicable |")
            continue
        if mm["weight_bytes_before"] == 0:
            w(f"| {m} | no constant MatMul/Gemm weights | | <= 0.16x | not applicable |")
            continue
        allr = mm["weight_bytes_after"] / mm["weight_bytes_before"]
        q = (c.get("weight_bytes_after") / c["weight_bytes_before"]) if c.get("weight_bytes_before") else None
        qs = f"{q:.4f}x" if q is not None else "none quantized"
        res = "met" if allr <= 0.16 else f"MISSED by {allr - 0.16:.4f}x"
        if q is not None and allr > 0.16:
            res += " (quantized ones: " + ("met" if q <= 0.16 else f"missed by {q - 0.16:.4f}x") + ")"
        w(f"| {m} | {allr:.4f}x | {qs} | <= 0.16x | {res} |")
    w("")
    w("### int8 dynamic latency below fp32 on MatMul-heavy models\n")
    w("MatMul-heavy: MatMul/Gemm >= 50% of the counted MACs of the original (if MatMul/Gemm nodes have uncounted MACs, "
      ">= 50% of layer params instead, and the table says so). Pipeline `quantize-int8:mode=dynamic`; also listed for the "
      "other models, for information.\n")
    w("| model | MatMul share | MatMul-heavy | latency ratio (per-round range) | target | result |")
    w("|---|---|---|---|---|---|")
    for m in models:
        r = find(m, "quantize-int8:mode=dynamic")
        if not r:
            continue
        if r["exit"] != 0:
            w(f"| {m} | | | exit {r['exit']} | < 1.0x | not measurable: {r['error']} |")
            continue
        mm = r["matmul"]
        if mm["uncounted_nodes"]:
            share = mm["params"] / mm["all_params"] if mm["all_params"] else 0
            sdesc = f"{share * 100:.1f}% of params ({mm['uncounted_nodes']} MatMul nodes without MACs)"
        else:
            share = mm["macs"] / mm["all_macs"] if mm["all_macs"] else 0
            sdesc = f"{share * 100:.1f}% of MACs"
        heavy = share >= 0.5
        lat = latency(r)
        if not lat or r.get("bench_exit") != 0:
            w(f"| {m} | {sdesc} | {'yes' if heavy else 'no'} | not measured: {r.get('bench_error', 'n/a')} | < 1.0x | not measurable |")
            continue
        ls = f"{lat['ratio']:.3f}x ({lat['lo']:.2f}..{lat['hi']:.2f})"
        if heavy:
            res = "met" if lat["ratio"] < 1.0 else f"MISSED by {lat['ratio'] - 1.0:.3f}x"
            if lat["lo"] < 1.0 < lat["hi"]:
                res += " (within noise: per-round ratios straddle 1.0)"
        else:
            res = "not applicable (not MatMul-heavy)"
        w(f"| {m} | {sdesc} | {'yes' if heavy else 'no'} | {ls} | < 1.0x | {res} |")
    w("")
    w("### Labeled-model accuracy drop: <= 0.5 points int8, <= 2 points int4\n")
    w("| model | pipeline | accuracy before -> after | drop (points) | target | result |")
    w("|---|---|---|---|---|---|")
    for r in runs:
        pipe = r["pipeline"]
        if pipe.startswith("quantize-int8") or (pipe.startswith("low-rank") and "quantize-int8" in pipe):
            limit = 0.5
        elif pipe.startswith("quantize-int4"):
            limit = 2.0
        else:
            continue
        if not r["model"].startswith("digits"):
            continue
        if r["exit"] != 0:
            w(f"| {r['model']} | `{pipe}` | exit {r['exit']} | | <= {limit} | not measurable: {r['error']} |")
            continue
        acc = r.get("accuracy")
        if not acc:
            w(f"| {r['model']} | `{pipe}` | ORT failed | | <= {limit} | not measurable |")
            continue
        d = acc["drop_points"]
        res = "met" if d <= limit + 1e-9 else f"MISSED by {d - limit:.2f} points"
        note = " (int8 target applied to low-rank + int8: the drop includes the low-rank error)" if pipe.startswith("low-rank") else ""
        w(f"| {r['model']} | `{pipe}` | {acc['ref'] * 100:.2f}% -> {acc['cand'] * 100:.2f}% | {d:.2f} | <= {limit} | {res}{note} |")
    w("")
    gaps = [r for r in rows if r["kind"] == "gap"]
    if gaps:
        w("### Gaps\n")
        for g in sorted({(g["pipeline"], g["reason"]) for g in gaps}):
            w(f"- `{g[0]}`: {g[1]}")
        w("")

    # ------------------------------------------------------------ micro
    w("## Micro-benchmark: compress load + write\n")
    if not micro_rows:
        w("Not run (the full run measures the largest cached model; `--large` adds the synthetic > 2 GB model).\n")
    for mr in micro_rows:
        w(f"### {mr['name']}\n")
        if mr.get("failed"):
            w(f"Not measured: {mr['failed']}\n")
            continue
        w(f"Command: `{mr['cmd']}` (`/usr/bin/time -v`)\n")
        if mr.get("file_bytes") is not None:
            w(f"Input: {mr['file_bytes']:,} bytes on disk (model + external data), {mr['params']:,} params, "
              f"{mr['weight_bytes']:,} weight bytes; output {mr.get('after_file_bytes') or 0:,} bytes. "
              f"Pass seconds (from the report): {mr.get('pass_seconds')}.\n")
        w("| run | exit | wall s | peak RSS MB | peak RSS / input size |")
        w("|---|---|---|---|---|")
        for i, run in enumerate(mr["runs"], 1):
            ratio = (f"{run['peak_mb'] * 1e6 / mr['file_bytes']:.2f}x"
                     if run.get("peak_mb") and mr.get("file_bytes") else "n/a")
            err = f" ({run['error']})" if run.get("error") else ""
            w(f"| {i} | {run['exit']}{err} | {run['wall_s']:.2f} | {run['peak_mb']:.1f} | {ratio} |")
        if mr.get("sizes"):
            w("\nFiles (`du -b`):\n")
            w("```")
            w(mr["sizes"].rstrip())
            w("```")
        w("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="sub", required=True)
    s = sub.add_parser("record"); s.add_argument("--model"); s.add_argument("--pipeline"); s.add_argument("--dir"); s.add_argument("--runs", type=int)
    s = sub.add_parser("gap"); s.add_argument("--model"); s.add_argument("--pipeline"); s.add_argument("--reason")
    s = sub.add_parser("missing"); s.add_argument("--model"); s.add_argument("--reason")
    s = sub.add_parser("micro"); s.add_argument("--name"); s.add_argument("--dir"); s.add_argument("--cmd")
    s = sub.add_parser("micro-fail"); s.add_argument("--name"); s.add_argument("--reason")
    s = sub.add_parser("shapes"); s.add_argument("--spec"); s.add_argument("--basename")
    s = sub.add_parser("render"); s.add_argument("--meta"); s.add_argument("--results"); s.add_argument("--micro")
    a = ap.parse_args()
    {"record": record, "gap": gap, "missing": missing, "micro": micro, "micro-fail": micro_fail,
     "shapes": shapes, "render": render}[a.sub](a)


if __name__ == "__main__":
    main()
