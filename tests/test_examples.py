"""Every example runs (tiny settings) and gives its documented numbers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # examples/ is not installed

pytest.importorskip("sklearn")


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_two_three_one_worked_numbers(backend):
    from examples.two_three_one import run

    r = run(backend)
    np.testing.assert_allclose(r["z1"], [0.19, 0.36, 0.53], atol=1e-12)
    np.testing.assert_allclose(r["a1"], [0.5474, 0.5890, 0.6295], atol=5e-5)
    assert round(r["z2"], 5) == 1.59115 and round(r["loss"], 5) == 0.31296
    assert round(r["output_delta"], 5) == 0.79115
    np.testing.assert_array_equal(np.round(r["hidden_deltas"], 5), [0.07841, 0.09576, 0.11071])
    np.testing.assert_allclose(r["dW1"], np.outer([0.4, 0.5], r["hidden_deltas"]), rtol=1e-12)


def test_apple_orange_gradients():
    from examples.apple_orange import run

    price, grads = run("numpy")
    assert price == pytest.approx(715.0)
    want = {"apple_price": 2.2, "apples": 110.0, "orange_price": 3.3, "oranges": 165.0, "tax": 650.0}
    for k, v in want.items():
        assert grads[k] == pytest.approx(v, rel=1e-12), k


def test_to_784_layout():
    from examples.digits_models import to_784

    x = np.arange(64, dtype=np.float32).reshape(1, 64)
    img = to_784(x).reshape(28, 28)
    assert img[:2].sum() == 0 and img[:, -2:].sum() == 0  # zero frame
    assert (img[2:5, 2:5] == 0).all() and (img[2:5, 5:8] == 1).all() and img[25, 25] == 63


def test_shift_augment():
    from examples.digits_models import shift_augment

    x = np.zeros((2, 64), np.float32)
    x[0, 8 * 3 + 4] = 1  # row 3, column 4
    xa, ya = shift_augment(x, np.array([7, 9]))
    assert xa.shape == (10, 64) and list(ya) == [7, 9] * 5
    imgs = xa.reshape(5, 2, 8, 8)[:, 0]
    assert [tuple(np.argwhere(i)[0]) for i in imgs] == [(3, 4), (4, 4), (2, 4), (3, 5), (3, 3)]


@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm"])
def test_digits_models_train_a_little(model):
    """One short epoch on a small slice, numpy backend: the loss falls and accuracy beats chance."""
    from examples.digits_models import train

    r = train(
        model, "numpy", epochs=2, train_size={"mlp": 320, "cnn": 128, "lstm": 160}[model], progress=False
    )
    assert r["loss"][1] < r["loss"][0] and r["accuracy"] > 0.3, r["accuracy"]


def test_digits_command_line_prints_a_table(tmp_path, capsys):
    from examples.digits_models import main

    main("mlp", ["--backend", "numpy", "--epochs", "1", "--train-size", "64", "--no-progress",
                 "--plot", str(tmp_path / "h.png")])  # fmt: skip
    out = capsys.readouterr().out
    assert "accuracy" in out and "numpy" in out and (tmp_path / "h.png").exists()


def test_gan_runs_and_samples():
    from examples.gan_mixture import quality, run

    r = run("numpy", steps=3)
    assert len(r["losses"]) == 3 and np.isfinite(r["losses"]).all()
    modes = np.array([[1.5, 1.5], [1.5, -1.5], [-1.5, 1.5], [-1.5, -1.5]])
    assert quality(np.repeat(modes, 10, 0)) == (1.0, 4)
    assert quality(np.zeros((40, 2))) == (0.0, 0)


def test_data_parallel_example_on_four_host_devices():
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("XLA_FLAGS", None)  # the example re-launches itself with 4 host devices
    out = subprocess.run([sys.executable, "-m", "examples.data_parallel", "--epochs", "1",
                          "--train-size", "256"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "sharded over 4 devices" in lines[0]
    one, four = (float(line.split()[-3]) for line in lines[2:4])
    assert one == pytest.approx(four, rel=1e-5)


@pytest.mark.parametrize("name", ["two_three_one", "apple_orange"])
def test_examples_run_as_modules(name):
    out = subprocess.run([sys.executable, "-m", f"examples.{name}"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert ("0.79115" in out.stdout) if name == "two_three_one" else ("650" in out.stdout)
