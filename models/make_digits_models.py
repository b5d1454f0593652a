#!/usr/bin/env python3
"""Train two small real models on scikit-learn's bundled digits and export them to ONNX.

    /usr/bin/python3 models/make_digits_models.py [--out models] [--no-ort]

Writes, into --out:
  digits_mlp.onnx        Gemm 64->256, Relu, Gemm 256->128, Relu, Gemm 128->10
  digits_cnn.onnx        3x (Conv 3x3 + BatchNormalization + Relu), MaxPool after the second,
                         GlobalAveragePool, Flatten, Gemm 64->10
  digits_test_x_mlp.npy  float32 [N,64], pixel/16
  digits_test_x_cnn.npy  float32 [N,1,8,8], pixel/16
  digits_test_y.npy      int64 [N]
  digits_models.json     test accuracy by numpy and, when tests/ort is installed, by ONNX Runtime

Everything is deterministic: fixed seeds, one BLAS thread, a fixed stratified 25% test split
(train_test_split random_state=0). Training is plain numpy with hand-written backprop and Adam.
The ONNX models use opset 13 and IR version 8 so ONNX 1.12's checker and ONNX Runtime accept them.
"""

import os

# One BLAS thread: reproducible sums and it keeps to one core.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

kOpset = 13
kIrVersion = 8
kBnEps = 1e-5
kBnMomentum = 0.1
kRepoRoot = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_split():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)


class Adam:
    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params = params
        self.lr = lr
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads, lr):
        self.t += 1
        c1 = 1.0 - self.beta1 ** self.t
        c2 = 1.0 - self.beta2 ** self.t
        for k, g in grads.items():
            self.m[k] = self.beta1 * self.m[k] + (1.0 - self.beta1) * g
            self.v[k] = self.beta2 * self.v[k] + (1.0 - self.beta2) * g * g
            self.params[k] -= (lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)).astype(
                np.float32)


def softmax_xent(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -np.log(p[np.arange(n), y] + 1e-12).mean()
    p[np.arange(n), y] -= 1.0
    return loss, (p / n).astype(np.float32)


def uniform(rng, shape, fan_in):
    # PyTorch's default Linear/Conv initialisation bound, so the export looks like a real one.
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def he_normal(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def train_loop(params, grad_fn, x, y, epochs, batch, lr, seed):
    """Adam with cosine learning-rate decay over shuffled mini-batches."""
    rng = np.random.default_rng(seed)
    opt = Adam(params, lr)
    steps_per_epoch = (len(x) + batch - 1) // batch
    total = epochs * steps_per_epoch
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            grads = grad_fn(x[idx], y[idx])
            opt.step(grads, lr * 0.5 * (1.0 + np.cos(np.pi * step / total)))
            step += 1


# ---------------------------------------------------------------- MLP

def mlp_init(seed):
    rng = np.random.default_rng(seed)
    p = {}
    for i, (n_in, n_out) in enumerate([(64, 256), (256, 128), (128, 10)], start=1):
        p[f"fc{i}.weight"] = he_normal(rng, (n_out, n_in), n_in)  # [out, in], Gemm transB=1
        p[f"fc{i}.bias"] = uniform(rng, (n_out,), n_in)
    return p


def mlp_forward(p, x):
    h1 = np.maximum(x @ p["fc1.weight"].T + p["fc1.bias"], 0.0)
    h2 = np.maximum(h1 @ p["fc2.weight"].T + p["fc2.bias"], 0.0)
    return h2 @ p["fc3.weight"].T + p["fc3.bias"], (x, h1, h2)


def mlp_grads(p, x, y, weight_decay=1e-4):
    logits, (a0, h1, h2) = mlp_forward(p, x)
    _, d = softmax_xent(logits, y)
    g = {}
    g["fc3.weight"] = d.T @ h2
    g["fc3.bias"] = d.sum(axis=0)
    d = (d @ p["fc3.weight"]) * (h2 > 0)
    g["fc2.weight"] = d.T @ h1
    g["fc2.bias"] = d.sum(axis=0)
    d = (d @ p["fc2.weight"]) * (h1 > 0)
    g["fc1.weight"] = d.T @ a0
    g["fc1.bias"] = d.sum(axis=0)
    for k in g:
        if k.endswith("weight"):
            g[k] = g[k] + weight_decay * p[k]
    return g


def mlp_onnx(p):
    nodes = [
        helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["fc1_out"], name="fc1",
                         transB=1),
        helper.make_node("Relu", ["fc1_out"], ["relu1_out"], name="relu1"),
        helper.make_node("Gemm", ["relu1_out", "fc2.weight", "fc2.bias"], ["fc2_out"], name="fc2",
                         transB=1),
        helper.make_node("Relu", ["fc2_out"], ["relu2_out"], name="relu2"),
        helper.make_node("Gemm", ["relu2_out", "fc3.weight", "fc3.bias"], ["logits"], name="fc3",
                         transB=1),
    ]
    inits = [numpy_helper.from_array(p[k], k) for k in sorted(p)]
    return make_model(nodes, inits, "digits_mlp", ["batch", 64])


# ---------------------------------------------------------------- CNN

def im2col3x3(x):
    """x [N,C,H,W] -> columns [N*H*W, C*9] for a 3x3 kernel, stride 1, pad 1 (OIHW order)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, kh:kh + h, kw:kw + w] for kh in range(3) for kw in range(3)], axis=2)
    return cols.transpose(0, 3, 4, 1, 2).reshape(n * h * w, c * 9)


def col2im3x3(dcols, shape):
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 9).transpose(0, 3, 4, 1, 2)
    dxp = np.zeros((n, c, h + 2, w + 2), dtype=np.float32)
    for k in range(9):
        kh, kw = divmod(k, 3)
        dxp[:, :, kh:kh + h, kw:kw + w] += d[:, :, k]
    return dxp[:, :, 1:-1, 1:-1]


def conv_forward(x, wt, b):
    n, _, h, w = x.shape
    cols = im2col3x3(x)
    out = cols @ wt.reshape(wt.shape[0], -1).T + b
    return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2), cols


def conv_backward(dout, cols, wt, x_shape):
    o = wt.shape[0]
    d = dout.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (d.T @ cols).reshape(wt.shape)
    db = d.sum(axis=0)
    dx = col2im3x3(d @ wt.reshape(o, -1), x_shape)
    return dx, dw, db


def bn_train(x, gamma, beta):
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    inv = 1.0 / np.sqrt(var + kBnEps)
    xhat = (x - mean[None, :, None, None]) * inv[None, :, None, None]
    out = gamma[None, :, None, None] * xhat + beta[None, :, None, None]
    return out, (xhat, inv, mean, var)


def bn_backward(dout, cache, gamma):
    xhat, inv, _, _ = cache
    m = dout.shape[0] * dout.shape[2] * dout.shape[3]
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    dxhat = dout * gamma[None, :, None, None]
    dx = (inv[None, :, None, None] / m) * (
        m * dxhat - dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3))[None, :, None, None])
    return dx.astype(np.float32), dgamma, dbeta


def bn_eval(x, gamma, beta, mean, var):
    scale = gamma / np.sqrt(var + kBnEps)
    return x * scale[None, :, None, None] + (beta - mean * scale)[None, :, None, None]


def maxpool2_forward(x):
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def maxpool2_backward(dout, arg, x_shape):
    n, c, h, w = x_shape
    dwin = np.zeros((n, c, h // 2, w // 2, 4), dtype=np.float32)
    np.put_along_axis(dwin, arg[..., None], dout[..., None], axis=-1)
    return dwin.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x_shape)


kCnnChannels = [(1, 16), (16, 32), (32, 64)]


def cnn_init(seed):
    rng = np.random.default_rng(seed)
    p, stats = {}, {}
    for i, (cin, cout) in enumerate(kCnnChannels, start=1):
        p[f"conv{i}.weight"] = he_normal(rng, (cout, cin, 3, 3), cin * 9)
        p[f"conv{i}.bias"] = uniform(rng, (cout,), cin * 9)
        p[f"bn{i}.weight"] = np.ones(cout, dtype=np.float32)
        p[f"bn{i}.bias"] = np.zeros(cout, dtype=np.float32)
        stats[f"bn{i}.running_mean"] = np.zeros(cout, dtype=np.float32)
        stats[f"bn{i}.running_var"] = np.ones(cout, dtype=np.float32)
    p["fc.weight"] = uniform(rng, (10, 64), 64)
    p["fc.bias"] = uniform(rng, (10,), 64)
    return p, stats


def cnn_grads(p, stats, x, y, weight_decay=1e-4):
    caches = []
    a = x
    for i in range(1, 4):
        z, cols = conv_forward(a, p[f"conv{i}.weight"], p[f"conv{i}.bias"])
        bn, bn_cache = bn_train(z, p[f"bn{i}.weight"], p[f"bn{i}.bias"])
        # Running statistics as PyTorch keeps them: unbiased variance, momentum 0.1.
        _, _, mean, var = bn_cache
        m = z.shape[0] * z.shape[2] * z.shape[3]
        stats[f"bn{i}.running_mean"] = ((1 - kBnMomentum) * stats[f"bn{i}.running_mean"]
                                        + kBnMomentum * mean).astype(np.float32)
        stats[f"bn{i}.running_var"] = ((1 - kBnMomentum) * stats[f"bn{i}.running_var"]
                                       + kBnMomentum * var * m / (m - 1)).astype(np.float32)
        r = np.maximum(bn, 0.0)
        pool_arg = None
        out = r
        if i == 2:
            out, pool_arg = maxpool2_forward(r)
        caches.append((a.shape, cols, bn_cache, r, pool_arg))
        a = out
    gap = a.mean(axis=(2, 3))
    logits = gap @ p["fc.weight"].T + p["fc.bias"]
    _, d = softmax_xent(logits, y)

    g = {"fc.weight": d.T @ gap, "fc.bias": d.sum(axis=0)}
    d = d @ p["fc.weight"]
    hw = a.shape[2] * a.shape[3]
    d = np.broadcast_to((d / hw)[:, :, None, None], a.shape).astype(np.float32)
    for i in range(3, 0, -1):
        x_shape, cols, bn_cache, r, pool_arg = caches[i - 1]
        if pool_arg is not None:
            d = maxpool2_backward(d, pool_arg, r.shape)
        d = d * (r > 0)
        d, g[f"bn{i}.weight"], g[f"bn{i}.bias"] = bn_backward(d, bn_cache, p[f"bn{i}.weight"])
        d, g[f"conv{i}.weight"], g[f"conv{i}.bias"] = conv_backward(
            d, cols, p[f"conv{i}.weight"], x_shape)
    for k in g:
        if k.endswith("weight") and not k.startswith("bn"):
            g[k] = g[k] + weight_decay * p[k]
    return g


def cnn_forward_eval(p, stats, x):
    a = x
    for i in range(1, 4):
        z, _ = conv_forward(a, p[f"conv{i}.weight"], p[f"conv{i}.bias"])
        a = np.maximum(bn_eval(z, p[f"bn{i}.weight"], p[f"bn{i}.bias"],
                               stats[f"bn{i}.running_mean"], stats[f"bn{i}.running_var"]), 0.0)
        if i == 2:
            a, _ = maxpool2_forward(a)
    return a.mean(axis=(2, 3)) @ p["fc.weight"].T + p["fc.bias"]


def cnn_onnx(p, stats):
    nodes = []
    prev = "input"
    for i in range(1, 4):
        nodes.append(helper.make_node(
            "Conv", [prev, f"conv{i}.weight", f"conv{i}.bias"], [f"conv{i}_out"], name=f"conv{i}",
            kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1))
        nodes.append(helper.make_node(
            "BatchNormalization",
            [f"conv{i}_out", f"bn{i}.weight", f"bn{i}.bias", f"bn{i}.running_mean",
             f"bn{i}.running_var"],
            [f"bn{i}_out"], name=f"bn{i}", epsilon=kBnEps, momentum=1.0 - kBnMomentum))
        nodes.append(helper.make_node("Relu", [f"bn{i}_out"], [f"relu{i}_out"], name=f"relu{i}"))
        prev = f"relu{i}_out"
        if i == 2:
            nodes.append(helper.make_node("MaxPool", [prev], ["pool_out"], name="pool",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            prev = "pool_out"
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gap_out"], name="gap"),
        helper.make_node("Flatten", ["gap_out"], ["flat_out"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat_out", "fc.weight", "fc.bias"], ["logits"], name="fc",
                         transB=1),
    ]
    tensors = dict(p)
    tensors.update(stats)
    inits = [numpy_helper.from_array(tensors[k], k) for k in sorted(tensors)]
    return make_model(nodes, inits, "digits_cnn", ["batch", 1, 8, 8])


# ---------------------------------------------------------------- export and check

def make_model(nodes, inits, name, input_shape):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", kOpset)],
                              producer_name="compress-models/make_digits_models.py",
                              producer_version="1")
    model.ir_version = kIrVersion
    onnx.checker.check_model(model, full_check=True)
    return model


def accuracy(logits, y):
    return float((logits.argmax(axis=1) == y).mean())


def ort_check(out_dir, model_file, x_file, y_file, numpy_logits):
    """Accuracy by ONNX Runtime through tests/ort, and the largest gap to the numpy logits."""
    harness = os.path.join(kRepoRoot, "tests", "ort", "ort_compare.js")
    if not os.path.isdir(os.path.join(kRepoRoot, "tests", "ort", "node_modules", "onnxruntime-node")):
        return None, "tests/ort not installed (cd tests/ort && npm ci --ignore-scripts)"
    model = os.path.join(out_dir, model_file)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["node", harness, model, model, "--input", "input=" + os.path.join(out_dir, x_file),
               "--labels", os.path.join(out_dir, y_file), "--threads", "1", "--json",
               "--save-outputs", tmp]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            return None, "ort_compare failed: " + (run.stderr or run.stdout).strip()
        report = json.loads(run.stdout)
        ort_logits = np.load(os.path.join(tmp, "cand_logits.npy"))
    return {
        "accuracy": report["accuracy"]["cand"],
        "max_abs_diff_vs_numpy": float(np.abs(ort_logits - numpy_logits).max()),
    }, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(kRepoRoot, "models"))
    ap.add_argument("--no-ort", action="store_true", help="skip the ONNX Runtime accuracy check")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    x_train, x_test, y_train, y_test = load_split()
    x_train_cnn = x_train.reshape(-1, 1, 8, 8)
    x_test_cnn = x_test.reshape(-1, 1, 8, 8)

    t0 = time.perf_counter()
    mlp = mlp_init(seed=1)
    train_loop(mlp, lambda xb, yb: mlp_grads(mlp, xb, yb), x_train, y_train,
               epochs=60, batch=64, lr=1e-3, seed=2)
    mlp_seconds = time.perf_counter() - t0
    mlp_logits = mlp_forward(mlp, x_test)[0]

    t0 = time.perf_counter()
    cnn, cnn_stats = cnn_init(seed=3)
    train_loop(cnn, lambda xb, yb: cnn_grads(cnn, cnn_stats, xb, yb), x_train_cnn, y_train,
               epochs=25, batch=64, lr=3e-3, seed=4)
    cnn_seconds = time.perf_counter() - t0
    cnn_logits = cnn_forward_eval(cnn, cnn_stats, x_test_cnn)

    onnx.save(mlp_onnx(mlp), os.path.join(args.out, "digits_mlp.onnx"))
    onnx.save(cnn_onnx(cnn, cnn_stats), os.path.join(args.out, "digits_cnn.onnx"))
    np.save(os.path.join(args.out, "digits_test_x_mlp.npy"), x_test)
    np.save(os.path.join(args.out, "digits_test_x_cnn.npy"), x_test_cnn)
    np.save(os.path.join(args.out, "digits_test_y.npy"), y_test)

    summary = {
        "dataset": "sklearn.datasets.load_digits, x = pixel/16, "
                   "train_test_split(test_size=0.25, stratify=y, random_state=0)",
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "models": {},
    }
    for name, logits, x_file, seconds, params in [
            ("digits_mlp", mlp_logits, "digits_test_x_mlp.npy", mlp_seconds, mlp),
            ("digits_cnn", cnn_logits, "digits_test_x_cnn.npy", cnn_seconds, cnn)]:
        entry = {
            "file": name + ".onnx",
            "test_inputs": {"input": x_file},
            "test_labels": "digits_test_y.npy",
            "trainable_params": int(sum(v.size for v in params.values())),
            "accuracy_numpy": round(accuracy(logits, y_test), 6),
        }
        if not args.no_ort:
            ort, why = ort_check(args.out, name + ".onnx", x_file, "digits_test_y.npy", logits)
            if ort is None:
                print(f"warning: {name}: no ONNX Runtime accuracy: {why}", file=sys.stderr)
                entry["accuracy_ort"] = None
            else:
                entry["accuracy_ort"] = round(ort["accuracy"], 6)
                entry["ort_max_abs_diff_vs_numpy"] = float(f"{ort['max_abs_diff_vs_numpy']:.3g}")
        summary["models"][name] = entry
        print(f"{name}: trained in {seconds:.1f} s: {json.dumps(entry)}")
    with open(os.path.join(args.out, "digits_models.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
