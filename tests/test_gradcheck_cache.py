"""check_grad reuses its compiled functions: a second check of the same function and argument
signature builds nothing (counted at ``bpir.compiled.build``), and still catches a wrong
gradient and uses the new values."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
from bpir import compiled


@pytest.fixture
def builds(monkeypatch):
    count = {"n": 0}
    real = compiled.build

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(compiled, "build", counting)
    return count


def _model(w, x):
    return np.sum(np.tanh(x @ w) ** 2)


def _vector_model(w, x):
    return np.tanh(x @ w)  # not a scalar: checked along a random cotangent


@pytest.mark.parametrize("fn", [_model, _vector_model])
def test_a_second_check_builds_nothing(builds, fn):
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    bpir.check_grad(fn, w, x, backend="numpy")
    assert builds["n"] == 2  # the gradient and the forward (float64 arguments: one signature)
    bpir.check_grad(fn, w * 2, x, backend="numpy", seed=3)
    assert builds["n"] == 2
    bpir.check_grad(fn, w.astype(np.float32), x.astype(np.float32), backend="numpy")
    assert builds["n"] == 3  # a new signature: only the float32 gradient is new


def test_reused_functions_still_see_new_values(builds):
    def wrong(x):
        return x**3

    def wrong_fwd(x):
        return wrong(x), x

    def wrong_bwd(x, g):
        return (g * 3 * x**2 * 1.01,)  # 1% off

    f = bpir.custom_vjp(wrong)
    f.defvjp(wrong_fwd, wrong_bwd)

    def model(x):
        return np.sum(f(x))

    x = np.linspace(0.5, 1.5, 5)
    with pytest.raises(bpir.GradCheckError):
        bpir.check_grad(model, x, backend="numpy")
    n = builds["n"]
    with pytest.raises(bpir.GradCheckError, match="analytic"):
        bpir.check_grad(model, x + 1, backend="numpy")
    assert builds["n"] == n
