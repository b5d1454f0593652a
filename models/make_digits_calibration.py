#!/usr/bin/env python3
"""Calibration samples for the digits models, from the TRAINING split (never the test split).

    /usr/bin/python3 models/make_digits_calibration.py [--out models/calibration] [--count 200]

Same preprocessing (pixel/16, float32) and split (stratified 25% test, random_state=0) as
make_digits_models.py; takes the first --count training images. Writes, for the passes' samples
options (one <input-name>.npy per model input, samples on axis 0):
  <out>/digits_mlp/input.npy  float32 [count, 64]
  <out>/digits_cnn/input.npy  float32 [count, 1, 8, 8]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_digits_models import load_split  # noqa: E402  (one definition of preprocessing and split)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(root, "models", "calibration"))
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    x_train, _x_test, _y_train, _y_test = load_split()
    x = np.ascontiguousarray(x_train[: args.count], dtype=np.float32)
    for stem, shape in (("digits_mlp", (-1, 64)), ("digits_cnn", (-1, 1, 8, 8))):
        d = os.path.join(args.out, stem)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "input.npy"), x.reshape(shape))
        print("wrote %s %s" % (os.path.join(d, "input.npy"), x.reshape(shape).shape))


if __name__ == "__main__":
    main()
