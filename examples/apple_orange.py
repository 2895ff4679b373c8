"""The apple-and-orange shop as a computational graph (the "Mul/Add layers" example):
2 apples at 100 and 3 oranges at 150, tax 1.1, total 715. Backpropagation gives how the
total moves with each input: d/d apple_price = 2.2, d/d apples = 110, d/d orange_price = 3.3,
d/d oranges = 165, d/d tax = 650. bpir differentiates the plain function; no layer classes.

Run: python -m examples.apple_orange [--backend numba]"""

from __future__ import annotations

import argparse

import numpy as np

import bpir

INPUTS = {"apple_price": 100.0, "apples": 2.0, "orange_price": 150.0, "oranges": 3.0, "tax": 1.1}


def total(v):
    apple = v["apple_price"] * v["apples"]  # Mul layer
    orange = v["orange_price"] * v["oranges"]  # Mul layer
    return (apple + orange) * v["tax"]  # Add layer, then Mul layer


def run(backend: str = "numpy") -> tuple[float, dict]:
    args = {k: np.float64(x) for k, x in INPUTS.items()}
    price, grads = bpir.compile(bpir.value_and_grad(total), backend)(args)
    return float(price), {k: float(g) for k, g in grads.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy", choices=bpir.backends())
    price, grads = run(ap.parse_args(argv).backend)
    print(f"total = {price:g}")
    for k, g in grads.items():
        print(f"  d total / d {k:<12} = {g:g}")


if __name__ == "__main__":
    main()
