"""``bpir compile`` and ``bpir run``: an artifact round-trips through .npz files keyed by argument path."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from cli_run import MODELS, bpir, model

import bpir as bp


def _example(name: str):
    sys.path.insert(0, MODELS)
    try:
        module = __import__(name)
    finally:
        sys.path.remove(MODELS)
    return module


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_compile_then_run_matches_a_direct_call(tmp_path, backend):
    if backend not in bp.backends():
        pytest.skip(f"{backend} not installed")
    art = tmp_path / "art"
    done = bpir("compile", model("adam:step"), "--backend", backend, "-o", str(art),
                *(["--platforms", "cpu"] if backend == "jax" else []))  # fmt: skip
    assert "w: f32[3,2]" in done.stdout and "y: f32[5,2]" in done.stdout
    adam = _example("adam")
    args = adam.example_args()
    names = ["w", "m", "v", "x", "y"]
    inputs = tmp_path / "in.npz"
    np.savez(inputs, **{n: a + 0.5 for n, a in zip(names, args)})
    out = tmp_path / "out.npz"
    shown = bpir("run", str(art), "--inputs", str(inputs), "-o", str(out)).stdout
    assert "out[0]: float32[]" in shown
    want = bp.compile(adam.step, backend="numpy")(*(a + 0.5 for a in args))
    with np.load(out) as got:
        assert sorted(got.files) == ["out[0]", "out[1]", "out[2]", "out[3]"]
        for k, w in enumerate(want):
            np.testing.assert_allclose(got[f"out[{k}]"], w, rtol=1e-5, atol=1e-6)
    loaded = bp.load(str(art))
    assert [p for p, _ in loaded.signature.inputs] == names
    assert "w: f32[3,2]" in repr(loaded) and f"backend={backend!r}" in repr(loaded)


def test_run_names_missing_and_nested_paths(tmp_path):
    art = tmp_path / "art"
    bpir("compile", model("mlp:loss"), "-o", str(art))
    listing = bpir("run", str(art)).stdout
    assert "params['W1']: f32[6,8]" in listing and "labels: i64[4]" in listing
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 6), np.float32), extra=np.zeros(1))
    err = bpir("run", str(art), "--inputs", str(bad), expect=2).stderr
    assert "missing params['W1']" in err and "unexpected extra" in err and "Traceback" not in err
    mlp = _example("mlp")
    params, x, labels = mlp.example_args()
    good = tmp_path / "good.npz"
    np.savez(good, **{f"params[{k!r}]": v for k, v in params.items()}, x=x, labels=labels)
    shown = bpir("run", str(art), "--inputs", str(good)).stdout
    value = float(shown.split("=")[-1])
    assert value == pytest.approx(float(bp.compile(mlp.loss)(params, x, labels)), rel=1e-6)
    err = bpir("run", str(tmp_path), expect=2).stderr
    assert "not a bpir artifact" in err
