"""A small GAN that learns a 2-D mixture of four Gaussians (modes at (+-1.5, +-1.5), std 0.1).

Generator and discriminator are 2-64-64 MLPs; one compiled step updates the discriminator and
then the generator (non-saturating loss), drawing its noise from a ``bpir.random`` key that is
an argument of the step, so every step sees fresh noise. Success is measured on 2000 samples:
the share within 3 std of some mode, and how many modes hold at least 10% of the samples.

Run: python -m examples.gan_mixture [--backend numba] [--steps 3000]"""

from __future__ import annotations

import argparse
import time

import numpy as np

import bpir
from bpir import nn, optim
from bpir import random as brandom

MODES = np.array([[1.5, 1.5], [1.5, -1.5], [-1.5, 1.5], [-1.5, -1.5]], np.float32)
STD = 0.1
BATCH = 128


def mlp_init(key, sizes):
    keys = brandom.split(key, len(sizes) - 1)
    return [nn.dense_init(k, a, b, w_init=nn.he_normal) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp(p, x):
    for layer in p[:-1]:
        x = np.maximum(nn.dense(layer, x), 0.2 * nn.dense(layer, x))  # leaky ReLU
    return nn.dense(p[-1], x)


def softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sample_real(rng, n):
    return (MODES[rng.integers(0, len(MODES), n)] + STD * rng.standard_normal((n, 2))).astype(np.float32)


def make_step(g_opt, d_opt):
    def step(g, d, g_state, d_state, key, real):
        k1, k2 = brandom.split(key)

        def d_loss(d):
            fake = mlp(g, brandom.normal(k1, (BATCH, 2)))
            return np.mean(softplus(-mlp(d, real))) + np.mean(softplus(mlp(d, fake)))

        def g_loss(g):
            return np.mean(softplus(-mlp(d, mlp(g, brandom.normal(k2, (BATCH, 2))))))

        dl, dg = bpir.value_and_grad(d_loss)(d)
        upd, d_state = d_opt.update(dg, d_state, d)
        d = optim.apply_updates(d, upd)
        gl, gg = bpir.value_and_grad(g_loss)(g)
        upd, g_state = g_opt.update(gg, g_state, g)
        return optim.apply_updates(g, upd), d, g_state, d_state, dl, gl

    return step


def quality(samples: np.ndarray) -> tuple[float, int]:
    """(share of samples within 3 std of a mode, modes holding >= 10% of the samples)."""
    dist = np.linalg.norm(samples[:, None, :] - MODES[None], axis=-1)
    near = dist.min(1) < 3 * STD
    counts = np.bincount(dist.argmin(1)[near], minlength=len(MODES))
    return float(near.mean()), int((counts >= 0.1 * len(samples)).sum())


def run(backend: str = "numba", steps: int = 3000, seed: int = 0) -> dict:
    kg, kd, key = brandom.split(brandom.key(seed), 3)
    g, d = mlp_init(kg, [2, 64, 64, 2]), mlp_init(kd, [2, 64, 64, 1])
    g_opt, d_opt = optim.adam(1e-3, b1=0.5), optim.adam(1e-3, b1=0.5)
    g_state, d_state = g_opt.init(g), d_opt.init(d)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    step = bpir.compile(make_step(g_opt, d_opt), backend,
                        example_args=(g, d, g_state, d_state, key, sample_real(rng, BATCH)))  # fmt: skip
    sample = bpir.compile(lambda g, k: mlp(g, brandom.normal(k, (2000, 2))), backend, example_args=(g, key))
    t1 = time.perf_counter()
    losses = []
    for _ in range(steps):
        key, sub = brandom.split(key)
        g, d, g_state, d_state, dl, gl = step(g, d, g_state, d_state, sub, sample_real(rng, BATCH))
        losses.append((float(dl), float(gl)))
    t2 = time.perf_counter()
    near, modes = quality(np.asarray(sample(g, brandom.key(seed + 1))))
    return {
        "near_mode": near,
        "modes_covered": modes,
        "losses": losses,
        "compile_time": t1 - t0,
        "train_time": t2 - t1,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numba", choices=bpir.backends())
    ap.add_argument("--steps", type=int, default=3000)
    a = ap.parse_args(argv)
    r = run(a.backend, a.steps)
    print(f"{a.backend}: {r['near_mode']:.1%} of samples within 3 std of a mode, {r['modes_covered']}/4 modes "
          f"covered; compile {r['compile_time']:.1f} s, {a.steps} steps {r['train_time']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
