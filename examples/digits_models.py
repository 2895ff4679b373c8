"""The three digits classifiers trained by the examples (MLP, CNN, LSTM), each a pair of
``init(key)`` and ``predict(params, x)`` plus its input layout and training settings.

The CNN trains on the training set plus one-pixel shifts of it (shift_augment), the MLP with
dropout on its hidden layer. The MLP is the classic MNIST 784-128-10: each 8x8 digit is upsampled 3x (nearest neighbour) to
24x24 and zero-padded by 2 on every side to 28x28 = 784 pixels, MNIST's framing of a digit in
the middle of a 28x28 field. The CNN reads the 8x8 images (NCHW); the LSTM reads each image row
by row, 8 time steps of 8 pixels."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import bpir
import bpir.numpy as bnp
from bpir import nn, optim
from bpir import random as brandom


def to_784(x: np.ndarray) -> np.ndarray:
    """``(n, 64)`` 8x8 digits -> ``(n, 784)``: upsample 3x to 24x24, zero-pad to 28x28."""
    img = x.reshape(-1, 8, 8).repeat(3, axis=1).repeat(3, axis=2)
    return np.pad(img, ((0, 0), (2, 2), (2, 2))).reshape(-1, 784)


def mlp_init(key):
    k1, k2 = brandom.split(key)
    return {"h": nn.dense_init(k1, 784, 128, w_init=nn.he_normal), "out": nn.dense_init(k2, 128, 10)}


def mlp_predict(p, x):
    return nn.dense(p["out"], bnp.relu(nn.dense(p["h"], x)))


def mlp_train_logits(p, key, x):
    """The MLP with dropout (rate 0.3) on the hidden layer, for training."""
    return nn.dense(p["out"], nn.dropout(key, bnp.relu(nn.dense(p["h"], x)), 0.3))


def cnn_init(key):
    k = brandom.split(key, 3)
    return {"c1": nn.conv2d_init(k[0], 1, 16, 3), "c2": nn.conv2d_init(k[1], 16, 32, 3),
            "out": nn.dense_init(k[2], 32 * 2 * 2, 10)}  # fmt: skip


def _cnn_features(p, x):
    h = nn.max_pool2d(bnp.relu(nn.conv2d(p["c1"], x, padding=1)), 2)  # 16 x 4 x 4
    h = nn.max_pool2d(bnp.relu(nn.conv2d(p["c2"], h, padding=1)), 2)  # 32 x 2 x 2
    return nn.flatten_batch(h)


def cnn_predict(p, x):
    return nn.dense(p["out"], _cnn_features(p, x))


HIDDEN = 64


def lstm_init(key):
    k1, k2 = brandom.split(key)
    return {"lstm": nn.lstm_init(k1, 8, HIDDEN), "out": nn.dense_init(k2, HIDDEN, 10)}


def lstm_predict(p, x):
    """``x``: ``(n, 8, 8)``, rows as time steps; the last hidden state is classified."""
    (h, _), _ = nn.unroll(nn.lstm_cell, p["lstm"], nn.lstm_carry(x.shape[0], HIDDEN), x)
    return nn.dense(p["out"], h)


def shift_augment(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training set plus four copies shifted by one pixel (up, down, left, right; zero fill)."""
    img = x.reshape(-1, 8, 8)
    shifted = [img]
    for axis, step in ((1, 1), (1, -1), (2, 1), (2, -1)):
        s = np.roll(img, step, axis=axis)
        edge = 0 if step == 1 else -1
        if axis == 1:
            s[:, edge, :] = 0
        else:
            s[:, :, edge] = 0
        shifted.append(s)
    return np.concatenate(shifted).reshape(-1, 64), np.tile(y, len(shifted))


@dataclass
class Model:
    init: object
    predict: object
    layout: object  # (n, 64) float32 -> the model's input
    train_logits: object  # (params, key, x) -> logits with dropout, or None
    optimizer: object  # total steps -> optimizer
    epochs: int
    batch_size: int
    augment: bool = False  # train on shift_augment's five copies of the training set


def _sgd(steps):  # SGD with momentum, cosine-decayed learning rate and a little weight decay
    return optim.chain(
        optim.add_decayed_weights(5e-4), optim.sgd(optim.cosine_decay_schedule(0.05, steps), 0.9)
    )


MODELS = {
    "mlp": Model(mlp_init, mlp_predict, to_784, mlp_train_logits, _sgd, 20, 32),
    "cnn": Model(cnn_init, cnn_predict, lambda x: x.reshape(-1, 1, 8, 8), None,
                 lambda steps: optim.adam(optim.cosine_decay_schedule(3e-3, steps)), 7, 32, augment=True),
    "lstm": Model(lstm_init, lstm_predict, lambda x: x.reshape(-1, 8, 8), None,
                  lambda steps: optim.adam(optim.cosine_decay_schedule(1e-2, steps)), 25, 32),
}  # fmt: skip


def train(name: str, backend: str = "numba", epochs: int | None = None, train_size: int | None = None,
          progress: bool | None = None, seed: int = 0) -> dict:  # fmt: skip
    """Train model ``name`` on the digits train split and evaluate on the test split."""
    m = MODELS[name]
    (xtr, ytr), (xte, yte) = bpir.datasets.digits()
    if train_size is not None:
        xtr, ytr = xtr[:train_size], ytr[:train_size]
    if m.augment:
        xtr, ytr = shift_augment(xtr, ytr)
    params = m.init(brandom.key(seed))

    if m.train_logits is not None:

        def loss(p, key, x, y):
            return bnp.cross_entropy(m.train_logits(p, key, x), y)

    else:

        def loss(p, x, y):
            return bnp.cross_entropy(m.predict(p, x), y)

    epochs = epochs or m.epochs
    batch_size = min(m.batch_size, len(xtr))
    t0 = time.perf_counter()
    r = bpir.train.fit(loss, params, m.optimizer(epochs * (len(xtr) // batch_size)), (m.layout(xtr), ytr),
                       epochs=epochs, batch_size=batch_size, predict_fn=m.predict,
                       eval_data=(m.layout(xte), yte), backend=backend, seed=seed, progress=progress,
                       key=brandom.key(seed + 1) if m.train_logits is not None else None)  # fmt: skip
    h = r.history
    return {"model": name, "backend": backend, "accuracy": h["eval_accuracy"][-1], "loss": h["loss"],
            "compile_time": h["compile_time"], "train_time": sum(h["epoch_time"]),
            "total_time": time.perf_counter() - t0, "history": h, "params": r.params}  # fmt: skip


def main(name: str, argv=None) -> int:
    """Command line of the digits examples: one model on one or more backends, as a table."""
    import argparse

    ap = argparse.ArgumentParser(description=f"train the digits {name.upper()}")
    ap.add_argument("--backend", action="append", choices=bpir.backends(),
                    help="repeat for several (default: numba)")  # fmt: skip
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--plot", default=None, help="write the last backend's history as a PNG")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    rows = [train(name, b, a.epochs, a.train_size, progress=False if a.no_progress else None)
            for b in a.backend or ["numba"]]  # fmt: skip
    print(f"{'model':<6} {'backend':<8} {'accuracy':>8} {'compile s':>9} {'train s':>8}  final loss")
    for r in rows:
        print(f"{r['model']:<6} {r['backend']:<8} {r['accuracy']:>8.4f} {r['compile_time']:>9.1f} "
              f"{r['train_time']:>8.1f}  {r['loss'][-1]:.6f}")  # fmt: skip
    if a.plot:
        bpir.train.plot_history(rows[-1]["history"], a.plot)
    return 0
