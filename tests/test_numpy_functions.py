"""NumPy functions on tracers: keywords and forms bpir does not implement are refused with a
TraceError that names them (never dropped); shapes and dtypes follow NumPy; the generated
coverage table (docs/numpy_coverage.md) is current. Values and gradients of the functions
themselves run through the shared op suite (op_cases_numpy.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import bpir

X = np.arange(12.0).reshape(3, 4) / 7 - 0.5
M = X > 0
SQ = np.eye(3) * 3 + 0.1


def _refused(fn, *args, match):
    with pytest.raises(bpir.TraceError, match=match):
        bpir.trace(fn, *args)


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda x: np.sum(x, out=np.zeros(())), r"np\.sum: the keyword out="),
        (lambda x: np.mean(x, axis=0, out=np.zeros(4)), r"np\.mean: the keyword out="),
        (lambda x: np.max(x, out=np.zeros(())), r"np\.max: the keyword out="),
        (lambda x: np.std(x, out=np.zeros(())), r"np\.std: the keyword out="),
        (lambda x: np.var(x, mean=np.zeros(())), r"np\.var: the keyword mean="),
        (lambda x: np.cumsum(x, out=np.zeros(12)), r"np\.cumsum: the keyword out="),
        (lambda x: np.prod(x, out=np.zeros(())), r"np\.prod: the keyword out="),
        (lambda x: np.argmax(x, out=np.zeros((), np.int64)), r"np\.argmax: the keyword out="),
        (lambda x: np.concatenate([x, x], out=np.zeros((6, 4))), r"np\.concatenate: the keyword out="),
        (lambda x: np.max(x, where=M), r"np\.max: where= needs initial="),
        (lambda x: np.reshape(x, (4, 3), order="F"), r"np\.reshape: order='F'"),
        (lambda x: np.take(x, [0], mode="clip"), r"np\.take: mode='clip'"),
        (lambda x: np.sort(x, order="f"), r"np\.sort: the keyword order="),
        (lambda x: np.exp(x, where=M), r"np\.exp: the keyword\(s\) where="),
        (lambda x: np.add(x, x, casting="unsafe"), r"np\.add: the keyword\(s\) casting="),
        (lambda x: np.einsum("...j->j", x), r"np\.einsum with '\.\.\.'"),
        (lambda x: np.linalg.qr(x, mode="complete"), r"np\.qr: mode='complete'"),
        (lambda x: np.linalg.eigh(x[:3, :3], UPLO="U"), r"np\.eigh: UPLO='U'"),
        (lambda x: np.linalg.svd(x, hermitian=True), r"np\.svd: hermitian=True"),
        (lambda x: np.linalg.svd(x), r"full_matrices=True of a non-square matrix"),
        (lambda x: np.linalg.pinv(x), r"np\.linalg\.pinv is not supported"),
        (lambda x: np.linalg.lstsq(x, x), r"np\.linalg\.lstsq is not supported"),
        (lambda x: np.nonzero(x), r"np\.nonzero of a traced value has a data-dependent shape"),
        (lambda x: np.unique(x), r"np\.unique of a traced value has a data-dependent shape"),
        (lambda x: np.nansum(x), r"np\.nansum is not supported"),
        (lambda x: np.add.reduce(x), r"np\.add\.reduce is not supported"),
        (lambda x: x.sum(foo=1), r"ndarray\.sum: the keyword foo="),
        (lambda x: x.sort(), r"ndarray\.sort\(\) of a traced value is not supported"),
        (lambda x: np.clip(x, 0, 1, out=x), r"np\.clip: the keyword out="),
        (lambda x: np.repeat(x, np.sum(x > 0)), r"np\.repeat: traced repeat counts"),
    ],
)
def test_unsupported_keywords_and_forms_are_refused_by_name(fn, match):
    _refused(fn, X, match=match)


def test_refusal_points_at_the_users_line():
    with pytest.raises(bpir.TraceError, match=r"test_numpy_functions\.py:\d+"):
        bpir.trace(lambda x: np.sum(x, out=np.zeros(())), X)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: np.argmax(x, keepdims=True),  # (1, 1) without an axis, as NumPy
        lambda x: np.argmin(x, axis=1, keepdims=True),
        lambda x: np.reciprocal(np.arange(1, 5)),  # integer in, integer out
        lambda x: np.floor(np.arange(4)),  # NumPy 2: integers stay integers
        lambda x: np.rint(np.arange(4)),  # ...except rint
        lambda x: np.sum(x > 0, axis=0),
        lambda x: np.cumsum(np.arange(4, dtype=np.int32)),
        lambda x: np.prod(x > 0),
        lambda x: np.std(x, axis=1, correction=1, keepdims=True),
        lambda x: np.mean(x, axis=1, where=x > -0.4, keepdims=True),
        lambda x: np.linalg.slogdet(SQ + x[:, :3] * 0.1),
        lambda x: np.linalg.svd(x, compute_uv=False),
        lambda x: np.isnan(np.arange(3)),
        lambda x: divmod(x, 0.3),
    ],
)
def test_shapes_and_dtypes_follow_numpy(fn):
    expected = fn(X)
    got = bpir.compile(fn, backend="numpy", example_args=(X,))(X)
    for g, e in zip(*(v if isinstance(v, tuple) else (v,) for v in (got, expected))):
        assert np.shape(g) == np.shape(e) and np.asarray(g).dtype == np.asarray(e).dtype, (fn, g, e)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_reduction_keywords_change_the_gradient():
    """where= / initial= / ddof= are not dropped: the gradients differ from the plain ones."""
    g_where = bpir.grad(lambda x: np.sum(x * x, where=M))(X)
    np.testing.assert_allclose(g_where, np.where(M, 2 * X, 0))
    g_init = bpir.grad(lambda x: np.max(x, axis=1, initial=0.45).sum())(X)
    np.testing.assert_allclose(g_init, (X == X.max(1, keepdims=True)) & (X > 0.45))
    g_ddof = bpir.grad(lambda x: np.var(x, ddof=1))(X)
    np.testing.assert_allclose(g_ddof, 2 * (X - X.mean()) / (X.size - 1))


def test_coverage_doc_is_current():
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    try:
        coverage = importlib.import_module("examples.numpy_coverage")
    finally:
        sys.path.remove(str(root))
    assert coverage.DOC.read_text() == coverage.generate(), "run: python -m examples.numpy_coverage"
