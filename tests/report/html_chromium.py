#!/usr/bin/env python3
"""The HTML report renders in a real browser: headless Chromium (Debian's `chromium`) loads each page
offline, and the test checks the DOM it built and the pixels it painted, not only the file.

    python3 tests/report/html_chromium.py COMPRESS

Pages: digits_cnn through dynamic int8 with --verify and gates; `compress inspect` of digits_cnn;
PP-OCRv4 rec through dynamic int8 (from the model cache; missing is a failure). For each page:
every layer of the JSON report is in the DOM text and the layer table has one row per layer; the
weight-bytes and MACs charts are inline SVG with bars; nothing is loaded from elsewhere (no src or
href attributes, no @import or url()); the screenshot is not blank and shows the charts' blue.
"""
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
models = os.path.join(root, "models")
cache = os.environ.get("COMPRESS_MODEL_CACHE", os.path.expanduser("~/.cache/compress-models"))
kAfterBlue = (0x09, 0x69, 0xDA)  # svg .after fill in src/report/html.cpp
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def chromium(tmp, *args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("FAIL chromium is not installed (scripts/install_deps.sh installs Debian's chromium)")
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={os.path.join(tmp, 'profile')}", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": tmp})
    if run.returncode != 0:
        print(run.stderr[-2000:])
    return run


def check_page(tmp, page, names, label):
    text = open(page, encoding="utf-8").read()
    check(not re.search(r"\b(src|href)\s*=|@import|url\(", text), f"{label}: nothing loaded from elsewhere")
    dom_run = chromium(tmp, "--dump-dom", "file://" + page)
    check(dom_run.returncode == 0, f"{label}: chromium --dump-dom exits 0")
    dom = dom_run.stdout
    plain = html.unescape(re.sub(r"<[^>]+>", "\n", dom))
    lines = set(line.strip() for line in plain.split("\n"))
    missing = [n for n in names if n not in lines]
    check(not missing, f"{label}: all {len(names)} layers in the DOM text" + (f" (missing {missing[:3]})" if missing else ""))
    table = re.search(r'<table class="sortable" id="layers">(.*?)</table>', dom, re.S)
    rows = len(re.findall(r"<tr>", table.group(1))) - 1 if table else -1
    check(rows == len(names), f"{label}: layer table has {rows} rows for {len(names)} layers")
    for chart in ("chart-weight_bytes", "chart-macs"):
        fig = re.search(r'<figure class="chart" id="%s">(.*?)</figure>' % chart, dom, re.S)
        bars = len(re.findall(r"<rect ", fig.group(1))) if fig else 0
        check(fig is not None and "<svg" in fig.group(1) and bars >= 2, f"{label}: {chart} is inline SVG with {bars} bars")
    png = page + ".png"
    shot = chromium(tmp, "--window-size=1280,1600", f"--screenshot={png}", "file://" + page)
    check(shot.returncode == 0 and os.path.exists(png), f"{label}: chromium --screenshot exits 0")
    if os.path.exists(png):
        img = Image.open(png).convert("RGB")
        pixels = list(img.getdata())
        non_white = sum(1 for p in pixels if p != (255, 255, 255)) / len(pixels)
        blue = sum(1 for p in pixels if all(abs(a - b) <= 8 for a, b in zip(p, kAfterBlue)))
        check(img.size == (1280, 1600) and non_white > 0.02, f"{label}: screenshot not blank ({non_white:.1%} non-white)")
        check(blue > 500, f"{label}: screenshot shows chart bars ({blue} blue pixels)")


def compress(*args):
    run = subprocess.run([sys.argv[1], *args], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"FAIL compress {' '.join(args)}: exit {run.returncode}: {run.stderr.strip()}")
    return run.stdout


def main():
    with tempfile.TemporaryDirectory() as tmp:
        cnn = os.path.join(models, "digits_cnn.onnx")
        page, report = os.path.join(tmp, "cnn.html"), os.path.join(tmp, "cnn.json")
        compress(cnn, "-o", os.path.join(tmp, "cnn.onnx"), "-q", "-p", "quantize-int8:mode=dynamic", "--verify",
                 "--input", "input=" + os.path.join(models, "digits_test_x_cnn.npy"), "--labels",
                 os.path.join(models, "digits_test_y.npy"), "--min-cosine", "0.99", "--max-accuracy-drop", "1",
                 "--report-json", report, "--report-html", page)
        names = [l["name"] for l in json.load(open(report))["layers"]]
        check_page(tmp, page, names, "digits_cnn int8")
        dom = chromium(tmp, "--dump-dom", "file://" + page).stdout
        check('id="gates"' in dom and dom.count('class="pass"') == 2, "digits_cnn int8: both gate verdicts shown")
        check('id="verify"' in dom and "logits" in dom, "digits_cnn int8: verify metrics shown")

        page = os.path.join(tmp, "inspect.html")
        inspect = json.loads(compress("inspect", cnn, "--json"))
        compress("inspect", cnn, "--report-html", page)
        check_page(tmp, page, [l["name"] for l in inspect["layers"]], "inspect digits_cnn")

        rec = os.path.join(cache, "ppocr_rec_v4.onnx")
        if not os.path.exists(rec):
            check(False, f"{rec} missing (run models/fetch_models.sh)")
        else:
            page, report = os.path.join(tmp, "rec.html"), os.path.join(tmp, "rec.json")
            compress(rec, "--dry-run", "-q", "-p", "quantize-int8:mode=dynamic", "--report-json", report,
                     "--report-html", page)
            names = [l["name"] for l in json.load(open(report))["layers"]]
            check_page(tmp, page, names, "ppocr_rec_v4 int8")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
