#!/usr/bin/python3
"""A small trained character-level language model for `compress auto`'s bits-per-char check (issue 12).

    bench/make_char_lm.py OUT_DIR            (STEPS=1500 by default: ~6 min on 2 cores; numpy only)

Text: Debian's /usr/share/common-licenses (about 300 k characters); the first 90% trains, the rest is
never seen. Model (opset 13, 91 k params): ids [batch, 64] int64 -> Gather(embed [V, 24]) -> a causal
1-D Conv (kernel 8, left-padded) -> Relu -> 1x1 Conv -> Relu -> MatMul + Add to logits [batch, 64, V],
trained with Adam (manual backprop, seeded) on next-character prediction. Writes lm.onnx,
ids.npy / targets.npy (48 windows of unseen text and their next characters) and ids_in.npy /
tg_in.npy (48 windows of the training text).
"""
import glob
import os
import sys

import numpy as np
import onnx
from onnx import helper as H, TensorProto as T, numpy_helper as NH

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
text = ""
for f in sorted(glob.glob("/usr/share/common-licenses/*")):
    if os.path.isfile(f):
        text += open(f, errors="ignore").read()
chars = sorted(set(text))
V = len(chars)
idx = {c: i for i, c in enumerate(chars)}
data = np.array([idx[c] for c in text], np.int64)
print("chars", len(data), "vocab", V)
rng = np.random.default_rng(0)
E, K, Hd, Tlen = 24, 8, 192, 64
emb = rng.standard_normal((V, E)).astype(np.float32) * 0.3
w1 = (rng.standard_normal((Hd, E, K)) / np.sqrt(E * K)).astype(np.float32)
b1 = np.zeros(Hd, np.float32)
w2 = (rng.standard_normal((Hd, Hd)) / np.sqrt(Hd)).astype(np.float32)
b2 = np.zeros(Hd, np.float32)
w3 = (rng.standard_normal((Hd, V)) / np.sqrt(Hd)).astype(np.float32)
b3 = np.zeros(V, np.float32)
params = [emb, w1, b1, w2, b2, w3, b3]
m = [np.zeros_like(p) for p in params]
v = [np.zeros_like(p) for p in params]


def forward(x):
    B = x.shape[0]
    e = emb[x]                                   # B,T,E
    ep = np.concatenate([np.zeros((B, K - 1, E), np.float32), e], 1)  # left pad
    # windows: B,T,E,K  (tap k reads position t - (K-1) + k)
    win = np.stack([ep[:, k:k + x.shape[1], :] for k in range(K)], -1)
    h1p = np.einsum("btek,hek->bth", win, w1) + b1
    h1 = np.maximum(h1p, 0)
    h2p = h1 @ w2.T + b2
    h2 = np.maximum(h2p, 0)
    logits = h2 @ w3 + b3
    return logits, (e, win, h1p, h1, h2p, h2)


def loss_grad(x, y):
    logits, (e, win, h1p, h1, h2p, h2) = forward(x)
    z = logits - logits.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    B, Tn = y.shape
    ce = -np.log(p[np.arange(B)[:, None], np.arange(Tn)[None], y] + 1e-12).mean()
    d = p
    d[np.arange(B)[:, None], np.arange(Tn)[None], y] -= 1
    d /= B * Tn
    g3 = np.einsum("bth,btv->hv", h2, d)
    gb3 = d.sum((0, 1))
    dh2 = d @ w3.T * (h2p > 0)
    g2 = np.einsum("bti,btj->ij", dh2, h1)
    gb2 = dh2.sum((0, 1))
    dh1 = dh2 @ w2 * (h1p > 0)
    g1 = np.einsum("bth,btek->hek", dh1, win)
    gb1 = dh1.sum((0, 1))
    dwin = np.einsum("bth,hek->btek", dh1, w1)
    dep = np.zeros((B, Tn + K - 1, E), np.float32)
    for k in range(K):
        dep[:, k:k + Tn, :] += dwin[..., k]
    de = dep[:, K - 1:, :]
    gemb = np.zeros_like(emb)
    np.add.at(gemb, x, de)
    return ce, [gemb, g1, gb1, g2, gb2, g3, gb3]


n_train = int(len(data) * 0.9)
lr, b1a, b2a = 3e-3, 0.9, 0.999
steps = int(os.environ.get("STEPS", "1500"))
for step in range(1, steps + 1):
    starts = rng.integers(0, n_train - Tlen - 1, 32)
    x = np.stack([data[s:s + Tlen] for s in starts])
    y = np.stack([data[s + 1:s + Tlen + 1] for s in starts])
    ce, grads = loss_grad(x, y)
    for i, (p, g) in enumerate(zip(params, grads)):
        m[i] = b1a * m[i] + (1 - b1a) * g
        v[i] = b2a * v[i] + (1 - b2a) * g * g
        p -= lr * (m[i] / (1 - b1a ** step)) / (np.sqrt(v[i] / (1 - b2a ** step)) + 1e-8)
    if step % 250 == 0:
        print(step, "bpc", ce / np.log(2), flush=True)

# held-out text samples (not seen in training)
starts = np.arange(n_train, len(data) - Tlen - 1, (len(data) - n_train - Tlen - 1) // 48)[:48]
ids = np.stack([data[s:s + Tlen] for s in starts])
tg = np.stack([data[s + 1:s + Tlen + 1] for s in starts])
logits, _ = forward(ids)
z = logits - logits.max(-1, keepdims=True)
lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
print("held-out bpc (numpy)", -lp[np.arange(48)[:, None], np.arange(Tlen)[None], tg].mean() / np.log(2))
np.save(os.path.join(out, "ids.npy"), ids)
np.save(os.path.join(out, "targets.npy"), tg)
starts = np.random.default_rng(7).integers(0, n_train - Tlen - 1, 48)
np.save(os.path.join(out, "ids_in.npy"), np.stack([data[s:s + Tlen] for s in starts]))
np.save(os.path.join(out, "tg_in.npy"), np.stack([data[s + 1:s + Tlen + 1] for s in starts]))

# ONNX: Gather -> Transpose to [B,E,T] -> Pad left K-1 -> Conv(w1) -> Relu -> Conv1x1(w2) -> Relu
# -> Transpose [B,T,H] -> MatMul w3 + b3
nodes = [
    H.make_node("Gather", ["embed", "ids"], ["e"], name="embed"),
    H.make_node("Transpose", ["e"], ["et"], perm=[0, 2, 1]),
    H.make_node("Conv", ["et", "w1", "b1"], ["c1"], name="causal_conv", pads=[K - 1, 0]),
    H.make_node("Relu", ["c1"], ["r1"]),
    H.make_node("Conv", ["r1", "w2c", "b2"], ["c2"], name="mix"),
    H.make_node("Relu", ["c2"], ["r2"]),
    H.make_node("Transpose", ["r2"], ["r2t"], perm=[0, 2, 1]),
    H.make_node("MatMul", ["r2t", "w3"], ["lg"], name="head"),
    H.make_node("Add", ["lg", "b3"], ["logits"]),
]
g = H.make_graph(nodes, "charlm", [H.make_tensor_value_info("ids", T.INT64, ["batch", Tlen])],
                 [H.make_tensor_value_info("logits", T.FLOAT, ["batch", Tlen, V])],
                 [NH.from_array(emb, "embed"), NH.from_array(w1, "w1"), NH.from_array(b1, "b1"),
                  NH.from_array(w2.reshape(Hd, Hd, 1), "w2c"), NH.from_array(b2, "b2"),
                  NH.from_array(w3, "w3"), NH.from_array(b3, "b3")])
model = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, os.path.join(out, "lm.onnx"))
