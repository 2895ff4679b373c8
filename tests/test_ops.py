"""Every op on every backend: forward against NumPy itself, gradients against central
finite differences in float64."""

from __future__ import annotations

import pytest
from conftest import assert_close
from op_cases import CASES

import bpir
from bpir.pytree import flatten


@pytest.mark.parametrize(
    ("case", "dtype"), [(c, d) for c in CASES for d in c.dtypes], ids=lambda x: getattr(x, "name", x)
)
def test_forward_matches_numpy(case, dtype, backend, rng):
    args = case.make(rng, dtype)
    expected = case.fn(*args)
    f = bpir.compile(case.fn, backend=backend, example_args=args)
    got = f(*args)
    for g, e in zip(flatten(got)[0], flatten(expected)[0]):
        assert_close(g, e, dtype)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad], ids=lambda c: c.name)
def test_gradient_matches_finite_differences(case, backend, rng):
    args = case.make(rng, case.grad_dtype)
    report = bpir.check_grad(case.fn, *args, backend=backend, argnums=case.argnums)
    assert report.rows, "no differentiable input was checked"
