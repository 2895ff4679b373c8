"""Pytree maps for optimizers: several trees walked together, a mismatch named by its path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def tree_map(fn: Callable, tree: Any, *rest: Any, names: tuple[str, ...] = (), none_ok: bool = False) -> Any:
    """``fn`` over the leaves of ``tree`` and the matching leaves of ``rest``; a ``None`` in
    ``tree`` (no gradient, e.g. an integer parameter) stays ``None``, and with ``none_ok`` a
    ``None`` in ``rest`` is passed to ``fn``. Trees that differ in structure raise a ValueError
    naming the first differing path."""
    labels = list(names) + [f"tree {i}" for i in range(len(names), len(rest) + 1)]
    return _map(fn, tree, rest, labels, labels[0], none_ok)


def _map(fn, t, rest, labels, path, none_ok=False):
    if t is None:
        return None
    if isinstance(t, dict):
        for r, lab in zip(rest, labels[1:]):
            if not isinstance(r, dict) or set(r) != set(t):
                _mismatch(labels[0], lab, path, t, r)
        return {k: _map(fn, t[k], [r[k] for r in rest], labels, f"{path}[{k!r}]", none_ok) for k in t}
    if isinstance(t, (list, tuple)):
        for r, lab in zip(rest, labels[1:]):
            if not isinstance(r, (list, tuple)) or len(r) != len(t):
                _mismatch(labels[0], lab, path, t, r)
        out = [_map(fn, c, [r[i] for r in rest], labels, f"{path}[{i}]", none_ok) for i, c in enumerate(t)]
        return tuple(out) if isinstance(t, tuple) else out
    for r, lab in zip(rest, labels[1:]):
        if r is None and none_ok:
            continue
        if r is None or isinstance(r, (dict, list, tuple)):
            _mismatch(labels[0], lab, path, t, r)
        if np.shape(r) != np.shape(t):
            raise ValueError(
                f"{labels[0]} and {lab} differ at {path}: shapes {np.shape(t)} and {np.shape(r)}"
            )
    return fn(t, *rest)


def _kind(x) -> str:
    if isinstance(x, dict):
        return f"a dict with keys {sorted(map(str, x))}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    return "None" if x is None else f"an array of shape {np.shape(x)}"


def _mismatch(a: str, b: str, path: str, x, y):
    raise ValueError(f"{a} and {b} differ in structure at {path}: {_kind(x)} vs {_kind(y)}")


def leaves(tree: Any) -> list:
    """The non-None leaves of ``tree`` in order."""
    out: list = []
    tree_map(out.append, tree)
    return out


def zeros_like(tree: Any, dtype=None) -> Any:
    return tree_map(lambda p: np.zeros_like(p, dtype=dtype), tree)


def full_like(tree: Any, value: float) -> Any:
    return tree_map(lambda p: np.full_like(p, value), tree)


def global_norm(tree: Any):
    """The L2 norm of all leaves together (optax.tree.norm)."""
    total = sum(np.sum(x * x) for x in leaves(tree))
    return np.sqrt(total)
