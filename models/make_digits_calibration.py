#!/usr/bin/env python3
"""Calibration samples for static quantization of the digits models, from the TRAINING split.

    /usr/bin/python3 models/make_digits_calibration.py [--out models/calibration] [--count 200]

Writes --out/digits_mlp/input.npy (float32 [count, 64]) and --out/digits_cnn/input.npy
(float32 [count, 1, 8, 8]): the first --count rows of the training part of the same split and
preprocessing as models/make_digits_models.py (pixel/16, stratified 25% test split, random_state=0),
so the test images that measure accuracy are never used to calibrate.
"""

import argparse
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

kRepoRoot = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(kRepoRoot, "models", "calibration"))
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, _, _, _ = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    x_cal = np.ascontiguousarray(x_train[: args.count])
    for name, data in (("digits_mlp", x_cal), ("digits_cnn", x_cal.reshape(-1, 1, 8, 8))):
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
        path = os.path.join(args.out, name, "input.npy")
        np.save(path, data)
        print(f"{path}: {data.shape} {data.dtype}")


if __name__ == "__main__":
    main()
