#!/usr/bin/env python3
"""SYNTHETIC calibration samples for static quantization of the cached PP-OCR conv nets.

    /usr/bin/python3 models/make_synthetic_calibration.py MODEL OUT_DIR [--count 16] [--seed 0]

MODEL is ppocr_cls_v2 (x: [N,3,48,192], (pixel/255-0.5)/0.5) or ppocr_det_v4 (x: [N,3,320,320],
ImageNet mean/std). There is no real image set in the repository, so each sample is a made-up
"document": a light background with dark horizontal strokes of random length and thickness plus
pixel noise, normalised as the model expects. Ranges calibrated on it are plausible, not
representative: accuracy measured after such a calibration says how the pass behaves, not how a
production calibration would do. Writes OUT_DIR/x.npy (float32).
"""

import argparse
import os

import numpy as np

kShapes = {"ppocr_cls_v2": (48, 192), "ppocr_det_v4": (320, 320)}


def fake_page(rng, h, w):
    img = np.full((h, w), rng.uniform(200, 250), dtype=np.float32)
    for _ in range(int(rng.integers(3, 12))):
        y = int(rng.integers(0, h - 4))
        x0 = int(rng.integers(0, w // 2))
        x1 = int(min(w, x0 + rng.integers(w // 8, w)))
        t = int(rng.integers(2, max(3, h // 12)))
        img[y:y + t, x0:x1] = rng.uniform(0, 80)
    img += rng.normal(0, 8, size=(h, w)).astype(np.float32)
    return np.clip(img, 0, 255)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(kShapes))
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    h, w = kShapes[args.model]
    x = np.zeros((args.count, 3, h, w), dtype=np.float32)
    for n in range(args.count):
        page = fake_page(rng, h, w) / 255.0
        rgb = np.stack([page * rng.uniform(0.9, 1.0) for _ in range(3)])
        if args.model == "ppocr_cls_v2":
            x[n] = (rgb - 0.5) / 0.5
        else:
            mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
            std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
            x[n] = (rgb - mean) / std
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "x.npy"), x)
    print(f"{args.out}/x.npy: {x.shape} (synthetic)")


if __name__ == "__main__":
    main()
