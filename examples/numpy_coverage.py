"""Generate docs/numpy_coverage.md: which NumPy functions, methods and operators trace, with or
without a gradient, and which backends run the traced graph.

The checklist is the Python array API standard's function list (core + ``linalg``, as
array-api-strict 2.6 exports it) spelled as NumPy 2 names, plus NumPy functions, methods and
operators model code uses. For each entry a probe calls it on tiny arrays inside ``bpir.trace``:
it traces, or is refused (a TraceError that names it, or another error, reported verbatim).
For traced float results the gradient of their sum is traced too. A backend runs an entry when
its op table (or the ops' registry decompositions) covers every op of the forward and gradient
graphs; the numbers themselves are checked op by op in tests/op_cases_numpy.py on every backend.

    python -m examples.numpy_coverage           # rewrite docs/numpy_coverage.md
    python -m examples.numpy_coverage --check   # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parent.parent / "docs" / "numpy_coverage.md"
BACKENDS = ("numpy", "numba", "jax", "numba-cuda")

X = np.linspace(-0.9, 0.8, 12).reshape(3, 4)  # values inside every function's domain below
POS = X + 1.5
SQ = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
V = np.linspace(0.1, 0.9, 4)
I = np.arange(12).reshape(3, 4) % 5 + 1  # noqa: E741
B = X > 0
la = np.linalg

# name -> (probe, example arguments). A probe's first argument is traced; None: no array input.
Probe = tuple[Callable, tuple]
CORE: dict[str, Probe] = {
    "asarray": (lambda x: np.asarray(x), (X,)),
    "arange": (lambda x: x + np.arange(4), (X,)),
    "empty": (lambda x: x + np.empty(4) * 0, (X,)),
    "empty_like": (lambda x: np.empty_like(x), (X,)),
    "eye": (lambda x: x[:, :3] @ np.eye(3), (X,)),
    "from_dlpack": (lambda x: x + np.from_dlpack(np.ones(4)), (X,)),
    "full": (lambda x: x + np.full(4, 2.0), (X,)),
    "full_like": (lambda x: np.full_like(x, 2.0) * x, (X,)),
    "linspace": (lambda x: x + np.linspace(0, 1, 4), (X,)),
    "meshgrid": (lambda x: np.meshgrid(x[0], x[1])[0], (X,)),
    "ones": (lambda x: x + np.ones(4), (X,)),
    "ones_like": (lambda x: np.ones_like(x) * x, (X,)),
    "tril": (lambda x: np.tril(x), (X,)),
    "triu": (lambda x: np.triu(x, 1), (X,)),
    "zeros": (lambda x: x + np.zeros(4), (X,)),
    "zeros_like": (lambda x: np.zeros_like(x) + x, (X,)),
    "astype": (lambda x: np.astype(x, np.float32), (X,)),
    "broadcast_arrays": (lambda x: np.broadcast_arrays(x[:1], x)[0], (X,)),
    "broadcast_shapes": (lambda x: x.reshape(np.broadcast_shapes((3, 1), (1, 4))), (X,)),
    "broadcast_to": (lambda x: np.broadcast_to(x[0], (2, 4)), (X,)),
    "can_cast": (lambda x: x * np.can_cast(x.dtype, np.float64), (X,)),
    "finfo": (lambda x: x * np.finfo(x.dtype).eps, (X,)),
    "isdtype": (lambda x: x * np.isdtype(x.dtype, "real floating"), (X,)),
    "iinfo": (lambda x: x * np.iinfo(np.int32).bits, (X,)),
    "result_type": (lambda x: x.astype(np.result_type(x.dtype, np.float32)), (X,)),
    "abs": (np.abs, (X,)),
    "acos": (np.acos, (X,)),
    "acosh": (np.acosh, (POS + 1,)),
    "add": (np.add, (X, X)),
    "asin": (np.asin, (X,)),
    "asinh": (np.asinh, (X,)),
    "atan": (np.atan, (X,)),
    "atan2": (np.atan2, (X, POS)),
    "atanh": (np.atanh, (X,)),
    "bitwise_and": (np.bitwise_and, (I, I)),
    "bitwise_left_shift": (np.bitwise_left_shift, (I, I)),
    "bitwise_invert": (np.bitwise_invert, (I,)),
    "bitwise_or": (np.bitwise_or, (I, I)),
    "bitwise_right_shift": (np.bitwise_right_shift, (I, I)),
    "bitwise_xor": (np.bitwise_xor, (I, I)),
    "ceil": (np.ceil, (X,)),
    "clip": (lambda x: np.clip(x, -0.5, 0.5), (X,)),
    "conj": (np.conj, (X,)),
    "copysign": (np.copysign, (X, X[::-1])),
    "cos": (np.cos, (X,)),
    "cosh": (np.cosh, (X,)),
    "divide": (np.divide, (X, POS)),
    "equal": (np.equal, (X, X)),
    "exp": (np.exp, (X,)),
    "expm1": (np.expm1, (X,)),
    "floor": (np.floor, (X,)),
    "floor_divide": (np.floor_divide, (X, POS)),
    "greater": (np.greater, (X, X)),
    "greater_equal": (np.greater_equal, (X, X)),
    "hypot": (np.hypot, (X, POS)),
    "imag": (np.imag, (X,)),
    "isfinite": (np.isfinite, (X,)),
    "isinf": (np.isinf, (X,)),
    "isnan": (np.isnan, (X,)),
    "less": (np.less, (X, X)),
    "less_equal": (np.less_equal, (X, X)),
    "log": (np.log, (POS,)),
    "log1p": (np.log1p, (POS,)),
    "log2": (np.log2, (POS,)),
    "log10": (np.log10, (POS,)),
    "logaddexp": (np.logaddexp, (X, POS)),
    "logical_and": (np.logical_and, (B, B)),
    "logical_not": (np.logical_not, (B,)),
    "logical_or": (np.logical_or, (B, B)),
    "logical_xor": (np.logical_xor, (B, B)),
    "maximum": (np.maximum, (X, POS)),
    "minimum": (np.minimum, (X, POS)),
    "multiply": (np.multiply, (X, POS)),
    "negative": (np.negative, (X,)),
    "nextafter": (np.nextafter, (X, POS)),
    "not_equal": (np.not_equal, (X, X)),
    "positive": (np.positive, (X,)),
    "pow": (np.pow, (POS, X)),
    "real": (np.real, (X,)),
    "reciprocal": (np.reciprocal, (POS,)),
    "remainder": (np.remainder, (X, POS)),
    "round": (np.round, (X,)),
    "sign": (np.sign, (X,)),
    "signbit": (np.signbit, (X,)),
    "sin": (np.sin, (X,)),
    "sinh": (np.sinh, (X,)),
    "square": (np.square, (X,)),
    "sqrt": (np.sqrt, (POS,)),
    "subtract": (np.subtract, (X, POS)),
    "tan": (np.tan, (X,)),
    "tanh": (np.tanh, (X,)),
    "trunc": (np.trunc, (X,)),
    "take": (lambda x: np.take(x, [2, 0], axis=1), (X,)),
    "take_along_axis": (lambda x: np.take_along_axis(x, np.array([[0], [2], [1]]), axis=1), (X,)),
    "matmul": (np.matmul, (X, X.T)),
    "tensordot": (lambda x: np.tensordot(x, x, axes=([1], [1])), (X,)),
    "matrix_transpose": (np.matrix_transpose, (X,)),
    "vecdot": (np.vecdot, (X, X)),
    "concat": (lambda x: np.concat([x, x], axis=1), (X,)),
    "expand_dims": (lambda x: np.expand_dims(x, 1), (X,)),
    "flip": (lambda x: np.flip(x, 1), (X,)),
    "moveaxis": (lambda x: np.moveaxis(x, 0, 1), (X,)),
    "permute_dims": (lambda x: np.permute_dims(x, (1, 0)), (X,)),
    "repeat": (lambda x: np.repeat(x, 2, axis=1), (X,)),
    "reshape": (lambda x: np.reshape(x, (4, 3)), (X,)),
    "roll": (lambda x: np.roll(x, 1, axis=1), (X,)),
    "squeeze": (lambda x: np.squeeze(x[:1], 0), (X,)),
    "stack": (lambda x: np.stack([x, x]), (X,)),
    "tile": (lambda x: np.tile(x, (1, 2)), (X,)),
    "unstack": (lambda x: np.unstack(x)[1], (X,)),
    "argmax": (lambda x: np.argmax(x, axis=1), (X,)),
    "argmin": (lambda x: np.argmin(x, axis=1), (X,)),
    "nonzero": (np.nonzero, (X,)),
    "count_nonzero": (lambda x: np.count_nonzero(x > 0, axis=1), (X,)),
    "searchsorted": (lambda x: np.searchsorted(V, x), (X,)),
    "where": (lambda x: np.where(x > 0, x, 0.5 * x), (X,)),
    "unique_all": (np.unique_all, (X,)),
    "unique_counts": (np.unique_counts, (X,)),
    "unique_inverse": (np.unique_inverse, (X,)),
    "unique_values": (np.unique_values, (X,)),
    "isin": (lambda x: np.isin(x, V), (X,)),
    "argsort": (lambda x: np.argsort(x, axis=1), (X,)),
    "sort": (lambda x: np.sort(x, axis=1), (X,)),
    "cumulative_sum": (lambda x: np.cumulative_sum(x, axis=1), (X,)),
    "cumulative_prod": (lambda x: np.cumulative_prod(x, axis=1), (X,)),
    "max": (lambda x: np.max(x, axis=1), (X,)),
    "mean": (lambda x: np.mean(x, axis=0), (X,)),
    "min": (lambda x: np.min(x, axis=1), (X,)),
    "prod": (lambda x: np.prod(x, axis=1), (X,)),
    "std": (lambda x: np.std(x, axis=1, correction=1), (X,)),
    "sum": (lambda x: np.sum(x, axis=1), (X,)),
    "var": (lambda x: np.var(x, axis=0), (X,)),
    "all": (lambda x: np.all(x > 0, axis=1), (X,)),
    "any": (lambda x: np.any(x > 0, axis=1), (X,)),
    "diff": (lambda x: np.diff(x, axis=1), (X,)),
}
LINALG: dict[str, Probe] = {
    "cholesky": (lambda a: la.cholesky(a), (SQ,)),
    "cross": (lambda x: la.cross(x[:, :3], x[:, 1:]), (X,)),
    "det": (la.det, (SQ,)),
    "diagonal": (la.diagonal, (X,)),
    "eigh": (lambda a: la.eigh(a)[0], (SQ,)),
    "eigvalsh": (la.eigvalsh, (SQ,)),
    "inv": (la.inv, (SQ,)),
    "matmul": (la.matmul, (X, X.T)),
    "matrix_norm": (lambda x: la.matrix_norm(x, ord="nuc"), (X,)),
    "matrix_power": (lambda a: la.matrix_power(a, 3), (SQ,)),
    "matrix_rank": (la.matrix_rank, (X,)),
    "matrix_transpose": (la.matrix_transpose, (X,)),
    "outer": (la.outer, (V, V)),
    "pinv": (la.pinv, (X,)),
    "qr": (lambda x: la.qr(x.T)[1], (X,)),
    "slogdet": (lambda a: la.slogdet(a)[1], (SQ,)),
    "solve": (la.solve, (SQ, X[:, :3].T)),
    "svd": (lambda x: la.svd(x, full_matrices=False)[1], (X,)),
    "svdvals": (la.svdvals, (X,)),
    "tensordot": (lambda x: la.tensordot(x, x, axes=2), (X,)),
    "trace": (la.trace, (SQ,)),
    "vecdot": (la.vecdot, (X, X)),
    "vector_norm": (lambda x: la.vector_norm(x, axis=1, ord=3), (X,)),
}
EXTRA: dict[str, Probe] = {
    "np.cumsum": (lambda x: np.cumsum(x, axis=1), (X,)),
    "np.cumprod": (lambda x: np.cumprod(x, axis=0), (X,)),
    "np.dot": (np.dot, (X, X.T)),
    "np.einsum('ij,kj->ik')": (lambda x: np.einsum("ij,kj->ik", x, x), (X,)),
    "np.einsum('ii->i')": (lambda a: np.einsum("ii->i", a), (SQ,)),
    "np.outer": (np.outer, (V, V)),
    "np.inner": (np.inner, (X, X)),
    "np.vdot": (np.vdot, (X, X)),
    "np.trace": (np.trace, (SQ,)),
    "np.diagonal": (np.diagonal, (X,)),
    "np.diag": (np.diag, (V,)),
    "np.atleast_1d": (np.atleast_1d, (X,)),
    "np.atleast_2d": (lambda x: np.atleast_2d(x[0]), (X,)),
    "np.atleast_3d": (np.atleast_3d, (X,)),
    "np.hstack": (lambda x: np.hstack([x, x]), (X,)),
    "np.vstack": (lambda x: np.vstack([x, x]), (X,)),
    "np.swapaxes": (lambda x: np.swapaxes(x, 0, 1), (X,)),
    "np.ravel": (np.ravel, (X,)),
    "np.copy": (np.copy, (X,)),
    "np.fliplr": (np.fliplr, (X,)),
    "np.isclose": (lambda x: np.isclose(x, x * 1.0000001), (X,)),
    "np.linalg.norm": (la.norm, (X,)),
    "np.linalg.norm(ord=2)": (lambda x: la.norm(x, 2), (X,)),
    "np.divmod": (lambda x: np.divmod(x, 0.3)[1], (X,)),
    "np.rint": (np.rint, (X,)),
    "np.exp2": (np.exp2, (X,)),
    "np.deg2rad": (np.deg2rad, (X,)),
    "np.fabs": (np.fabs, (X,)),
    "np.pad": (lambda x: np.pad(x, 1), (X,)),
    "np.split": (lambda x: np.split(x, 2, axis=1)[0], (X,)),
    "np.hsplit": (lambda x: np.hsplit(x, 2)[0], (X,)),
    "np.array_split": (lambda x: np.array_split(x, 2, axis=1)[0], (X,)),
    "np.sliding_window_view": (lambda x: np.lib.stride_tricks.sliding_window_view(x, 2, axis=1), (X,)),
    "np.average": (lambda x: np.average(x, axis=0), (X,)),
    "np.nansum": (np.nansum, (X,)),
    "np.fmod": (np.fmod, (X, POS)),
    "np.add.at": (lambda x: np.add.at(x, [0, 0], 1.0), (X,)),
}
METHODS: dict[str, Probe] = {
    f"x.{name}": (probe, (X,))
    for name, probe in {
        "sum": lambda x: x.sum(axis=0), "mean": lambda x: x.mean(), "max": lambda x: x.max(axis=1),
        "min": lambda x: x.min(), "prod": lambda x: x.prod(axis=1), "var": lambda x: x.var(ddof=1),
        "std": lambda x: x.std(), "argmax": lambda x: x.argmax(axis=1), "argmin": lambda x: x.argmin(),
        "all": lambda x: (x > 0).all(), "any": lambda x: (x > 0).any(axis=0), "cumsum": lambda x: x.cumsum(1),
        "cumprod": lambda x: x.cumprod(0), "reshape": lambda x: x.reshape(4, 3), "transpose": lambda x: x.transpose(),
        "T": lambda x: x.T, "swapaxes": lambda x: x.swapaxes(0, 1), "squeeze": lambda x: x[:1].squeeze(),
        "astype": lambda x: x.astype(np.float32), "copy": lambda x: x.copy(), "clip": lambda x: x.clip(-0.5, 0.5),
        "dot": lambda x: x.dot(x.T), "flatten": lambda x: x.flatten(), "ravel": lambda x: x.ravel(),
        "repeat": lambda x: x.repeat(2, axis=0), "take": lambda x: x.take([1, 0]), "argsort": lambda x: x.argsort(),
        "diagonal": lambda x: x.diagonal(), "trace": lambda x: x.trace(), "round": lambda x: x.round(1),
        "searchsorted": lambda x: x[0].searchsorted(0.0), "sort (in place)": lambda x: x.sort(),
        "item": lambda x: x.item(0), "tolist": lambda x: x.tolist(),
    }.items()
}  # fmt: skip
OPERATORS: dict[str, Probe] = {
    f"`{name}`": (probe, args)
    for name, probe, args in [
        ("x + y", lambda x, y: x + y, (X, X)), ("x - y", lambda x, y: x - y, (X, X)),
        ("x * y", lambda x, y: x * y, (X, X)), ("x / y", lambda x, y: x / y, (X, POS)),
        ("x // y", lambda x, y: x // y, (X, POS)), ("x % y", lambda x, y: x % y, (X, POS)),
        ("x ** y", lambda x, y: x**y, (POS, X)), ("x @ y", lambda x, y: x @ y.T, (X, X)),
        ("-x", lambda x: -x, (X,)), ("+x", lambda x: +x, (X,)), ("abs(x)", lambda x: abs(x), (X,)),
        ("x < y", lambda x, y: x < y, (X, X)), ("x == y", lambda x, y: x == y, (X, X)),
        ("i & j", lambda i, j: i & j, (I, I)), ("i | j", lambda i, j: i | j, (I, I)),
        ("i ^ j", lambda i, j: i ^ j, (I, I)), ("~i", lambda i: ~i, (I,)), ("i << j", lambda i, j: i << j, (I, I)),
        ("i >> j", lambda i, j: i >> j, (I, I)), ("divmod(x, y)", lambda x, y: divmod(x, y)[0], (X, POS)),
    ]
}  # fmt: skip


def _supported_sets() -> dict[str, tuple[set, str]]:
    """Each backend's op table."""
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    from bpir.backends.cuda import backend as cuda
    from bpir.backends.jax import backend as jx
    from bpir.backends.numba import backend as nb
    from bpir.backends.numpy import backend as npb

    return {"numpy": npb.SUPPORTED, "numba": nb.SUPPORTED, "jax": jx.SUPPORTED, "numba-cuda": cuda.SUPPORTED}


def _runs_on(graphs, supported: set, backend: str) -> str:
    """'yes' when the op table with the registry's decompositions covers every op (through
    the default passes, so fused groups are what the backend sees); else the missing op."""
    from bpir.backends.codegen import decompose_missing

    from bpir import optimize

    host = set()
    for g in graphs:
        try:
            lowered = decompose_missing(optimize(g), supported, backend)
        except NotImplementedError as e:
            return "no: " + str(e).split(" is not supported")[0].replace("op ", "")
        if backend == "numba-cuda":
            from bpir.backends.cuda.host import HOST_OPS

            host |= {n.op for n in lowered.nodes if n.op in HOST_OPS}
            regions = [n.attrs["region"] for n in lowered.nodes if n.op == "fused"]
            from bpir.backends.cuda.kernels import SCALAR_OPS

            missing = {m.op for r in regions for m in r.nodes if m.op not in SCALAR_OPS | {"constant"}}
            if missing:
                return "no: " + ", ".join(sorted(missing))
    return "yes (host: " + ", ".join(sorted(host)) + ")" if host else "yes"


def probe(fn: Callable, args: tuple, supported: dict) -> dict:
    """Trace one probe: status, gradient, per-backend support."""
    import bpir
    from bpir.errors import TraceError
    from bpir.pytree import flatten

    row = {"trace": "", "grad": "", **{b: "" for b in BACKENDS}}
    try:
        g = bpir.trace(fn, *args)
    except TraceError as e:
        row["trace"] = "refused: " + str(e).split(" (at ")[0].split(" at ")[0]
        return row
    except Exception as e:  # noqa: BLE001 (reported verbatim: what a user would see)
        row["trace"] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:90]}"
        return row
    row["trace"] = "yes"
    graphs = [g]
    floats = [i for i, v in enumerate(g.outputs) if v.dtype.startswith("f")]
    if args and np.asarray(args[0]).dtype.kind == "f" and floats:

        def total(*a):
            outs = flatten(fn(*a))[0]
            return sum(np.sum(outs[i]) for i in floats)

        try:
            fwd, bwd = bpir.vjp_graphs(total, *args)
            graphs += [fwd, bwd]
            row["grad"] = "yes"
        except Exception as e:  # noqa: BLE001
            row["grad"] = f"no: {str(e).splitlines()[0][:80]}"
    else:
        row["grad"] = "n/a"
    for b in BACKENDS:
        row[b] = _runs_on(graphs, supported[b], b)
    return row


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _section(
    title: str, probes: dict[str, Probe], prefix: str, supported: dict
) -> tuple[list[str], list[dict]]:
    lines = [f"## {title}", "", "| function | trace | gradient | " + " | ".join(BACKENDS) + " |",
             "|---|---|---|" + "---|" * len(BACKENDS)]  # fmt: skip
    rows = []
    for name, (fn, args) in probes.items():
        row = probe(fn, args, supported)
        rows.append(row)
        cells = [f"`{prefix}{name}`" if prefix is not None else name, row["trace"], row["grad"],
                 *(row[b] for b in BACKENDS)]  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""], rows


def _count(rows: list[dict]) -> str:
    traced = sum(r["trace"] == "yes" for r in rows)
    named = sum(r["trace"].startswith("refused") for r in rows)
    grad = sum(r["grad"] == "yes" for r in rows)
    per = ", ".join(f"{b} {sum(r[b].startswith('yes') for r in rows)}" for b in BACKENDS)
    return f"{traced} of {len(rows)} trace ({grad} with a gradient), {named} refused by a TraceError; run on: {per}"


def generate() -> str:
    import warnings

    supported = _supported_sets()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        core, core_rows = _section(
            "Array API standard: core functions (as NumPy 2 names)", CORE, "np.", supported
        )
        lin, lin_rows = _section("Array API standard: linalg extension", LINALG, "np.linalg.", supported)
        extra, extra_rows = _section("More NumPy functions model code uses", EXTRA, None, supported)
        meth, meth_rows = _section("Array methods", METHODS, None, supported)
        ops, op_rows = _section("Operators", OPERATORS, None, supported)
    head = [
        "# NumPy coverage",
        "",
        "Generated by `python -m examples.numpy_coverage` (tests/test_numpy_functions.py checks it is",
        "current). Each entry is called on tiny arrays inside `bpir.trace`. *trace*: `yes`, or the",
        "TraceError that refuses it (or the error a user would see). *gradient*: the gradient of the",
        "sum of its float results traces (`n/a`: integer or bool inputs/results; zero-gradient ops such",
        "as floor count as traced). A backend column says whether the backend's op table, with the",
        "registry's decompositions, covers every op of the forward and gradient graphs; `host:` names",
        "linear-algebra ops the CUDA backend runs through NumPy on the host. Values and gradients are",
        "checked against NumPy and finite differences on every backend by tests/op_cases_numpy.py.",
        "",
        f"- Array API core ({len(CORE)}): {_count(core_rows)}",
        f"- Array API linalg ({len(LINALG)}): {_count(lin_rows)}",
        f"- Array API total: {_count(core_rows + lin_rows)}",
        f"- More NumPy functions ({len(EXTRA)}): {_count(extra_rows)}",
        f"- Methods ({len(METHODS)}): {_count(meth_rows)}",
        f"- Operators ({len(OPERATORS)}): {_count(op_rows)}",
        "",
    ]
    return "\n".join(head + core + lin + extra + meth + ops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/numpy_coverage.md is stale")
    opts = parser.parse_args(argv)
    text = generate()
    if opts.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is stale: run python -m examples.numpy_coverage", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
