"""Gradient checking: compiled reverse-mode gradients against central finite differences
computed in float64, per element for small inputs and along random directions for large ones."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from .errors import GradCheckError
from .pytree import flatten, leaf_paths, unflatten

# analytic dtype -> (rtol, atol) for |analytic - numeric| <= atol + rtol * |numeric|
TOLERANCES = {"float64": (1e-6, 1e-8), "float32": (2e-3, 2e-4), "float16": (5e-2, 5e-2)}
STEP = 1e-6  # central differences in float64: truncation O(h^2), rounding O(eps / h)


@dataclass
class Row:
    path: str
    mode: str  # "elementwise" or "directions=K"
    max_abs_err: float
    max_rel_err: float
    rtol: float
    atol: float


@dataclass
class GradCheckReport:
    backend: str
    rows: list[Row] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"gradient check on backend {self.backend!r} (central differences, h={STEP}, float64)"]
        for r in self.rows:
            lines.append(f"  {r.path:<24} {r.mode:<14} max abs err {r.max_abs_err:.2e}  "
                         f"max rel err {r.max_rel_err:.2e}  (rtol {r.rtol:g}, atol {r.atol:g})")  # fmt: skip
        return "\n".join(lines)


def _projected(fn):
    """<v, fn(...)> with the cotangents v as the first argument (so one compile serves any v)."""

    def projected(vs, *a):
        outs, _ = flatten(fn(*a))
        return sum(np.sum(o * v.astype(o.dtype)) for o, v in zip(outs, vs))

    return projected


# fn -> {(backend, argnums, projected): (compiled gradient, compiled forward)}: like jax.jit, a
# function is traced once per argument signature, so repeated checks compile nothing new
_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_pair(fn, backend: str, nums: tuple, projected: bool):
    """The compiled gradient and forward of ``fn`` (projected when it returns no scalar), reused
    across calls with the same function, backend and argnums."""
    from . import compile as bpir_compile
    from .transforms import grad

    key = (backend, nums, projected)
    try:
        pairs = _compiled.setdefault(fn, {})
    except TypeError:  # not weakly referable: compiled for this call only
        pairs = {}
    if key not in pairs:
        scalar_fn = _projected(fn) if projected else fn
        wrt = tuple(n + 1 for n in nums) if projected else nums
        pairs[key] = (
            bpir_compile(grad(scalar_fn, wrt), backend=backend),
            bpir_compile(scalar_fn, backend=backend),
        )
    return pairs[key]


def check_grad(fn, *args, backend: str = "numpy", argnums=0, max_elements: int = 64,
               directions: int = 8, rtol: float | None = None, atol: float | None = None,
               seed: int = 0) -> GradCheckReport:  # fmt: skip
    """Raise GradCheckError on the first mismatch; return a report otherwise. The compiled
    functions are reused by later checks of the same ``fn`` (traced once per signature)."""
    rng = np.random.default_rng(seed)
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    with np.errstate(all="ignore"):
        out_leaves, _ = flatten(fn(*args))
    projected = not (len(out_leaves) == 1 and np.shape(out_leaves[0]) == ())
    grad_fn, forward = _compiled_pair(fn, backend, nums, projected)
    pre: tuple = ()
    if projected:  # fn returns no scalar: check <v, fn(...)> for a fixed random cotangent v
        pre = ([rng.standard_normal(np.shape(o)) for o in out_leaves],)
    analytic = grad_fn(*pre, *args)
    as64 = [_to_float64(a) for a in args]
    report = GradCheckReport(backend)
    names = _arg_names(fn, len(args))
    for k, a in enumerate(nums):
        leaves, tree = flatten(args[a])
        g_leaves, _ = flatten(analytic[k], is_leaf=lambda x: x is None)
        paths = leaf_paths(tree, names[a])
        for j, (leaf, g, path) in enumerate(zip(leaves, g_leaves, paths)):
            dt = np.asarray(leaf).dtype
            if dt.kind != "f":
                continue
            r, t = TOLERANCES.get(dt.name, TOLERANCES["float32"])
            r, t = rtol or r, atol or t

            def f_at(x, a=a, j=j):
                leaves64, tree64 = flatten(as64[a])
                leaves64 = list(leaves64)
                leaves64[j] = x
                call = list(as64)
                call[a] = unflatten(tree64, leaves64)
                return float(np.asarray(forward(*pre, *call), dtype=np.float64))

            x0 = np.asarray(flatten(as64[a])[0][j], dtype=np.float64)
            g = np.asarray(g, dtype=np.float64)
            report.rows.append(_check_leaf(f_at, x0, g, path, r, t, backend, max_elements, directions, rng))
    return report


def _check_leaf(f_at, x0, g, path, rtol, atol, backend, max_elements, directions, rng) -> Row:
    if x0.size <= max_elements:
        mode = "elementwise"
        numeric = np.zeros_like(x0)
        for idx in np.ndindex(x0.shape):
            e = np.zeros_like(x0)
            e[idx] = STEP
            numeric[idx] = (f_at(x0 + e) - f_at(x0 - e)) / (2 * STEP)
        analytic, labels = g, list(np.ndindex(x0.shape))
        analytic, numeric = analytic.ravel(), numeric.ravel()
    else:
        mode = f"directions={directions}"
        us = [rng.standard_normal(x0.shape) for _ in range(directions)]
        numeric = np.array([(f_at(x0 + STEP * u) - f_at(x0 - STEP * u)) / (2 * STEP) for u in us])
        analytic = np.array([np.sum(g * u) for u in us])
        labels = [f"direction {i}" for i in range(directions)]
    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    worst = int(np.argmax(err - bound)) if err.size else 0
    if err.size and (not np.all(np.isfinite(analytic)) or err[worst] > bound[worst]):
        raise GradCheckError(
            f"gradient mismatch for {path} at {labels[worst]} on backend {backend!r}: analytic "
            f"{analytic[worst]:.10g}, numeric {numeric[worst]:.10g} (abs err {err[worst]:.3g}, "
            f"allowed {bound[worst]:.3g} = atol {atol:g} + rtol {rtol:g} * |numeric|)"
        )
    rel = err / np.maximum(np.abs(numeric), 1e-300)
    return Row(path, mode, float(err.max(initial=0)), float(rel.max(initial=0)), rtol, atol)


def _to_float64(tree):
    leaves, t = flatten(tree)
    conv = [np.asarray(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else x for x in leaves]
    return unflatten(t, conv)


def _arg_names(fn, n):
    from bpir.frontends.trace import arg_names

    return arg_names(fn, n)
