"""What only the JAX backend does: device arrays in and out, StableHLO and XLA cost
inspection, jax.export artifacts for other platforms, and data-parallel sharding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bpir
from bpir.demo.models import init_mlp, mlp_batch, sgd_step

jax = pytest.importorskip("jax")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def problem(batch=8):
    params = init_mlp([4, 8, 3])
    x, labels = mlp_batch([4, 8, 3], batch)
    return params, x, labels


def test_accepts_and_returns_device_arrays():
    args = problem()
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    loss, new = f(*args)
    assert isinstance(loss, jax.Array)
    # feed the device-resident update straight back in: no host round trip needed
    with jax.enable_x64(True):  # int64 labels as a device array need 64-bit types on
        x, labels = jax.device_put(args[1]), jax.device_put(args[2])
    loss2, _ = f(new, x, labels)
    ref = bpir.compile(sgd_step, backend="numpy", example_args=args)
    np.testing.assert_allclose(float(loss2), float(ref(ref(*args)[1], *args[1:])[0]), rtol=1e-5)


def test_float64_and_int64_stay_exact_without_touching_global_config():
    x = np.linspace(0, 1, 5)
    f = bpir.compile(lambda x, i: (x * (1 + 1e-12), i * 3), backend="jax", example_args=(x, np.arange(3)))
    y, i = f(x, np.arange(3))
    assert y.dtype == np.float64 and i.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(y), x * (1 + 1e-12))
    assert not jax.config.jax_enable_x64


def test_stablehlo_and_cost():
    args = problem()
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    from bpir.backends.jax.backend import cost, stablehlo

    text = stablehlo(f.executable)
    assert "stablehlo.dot_general" in text and "func.func public @main" in text
    cost = cost(f.executable)
    assert cost["flops"] > 2 * 8 * 4 * 8  # at least the first layer's matmul


def test_tpu_and_cuda_export_on_a_cpu_machine(tmp_path):
    args = problem()
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    path = str(tmp_path / "step")
    f.save(path, platforms=("cpu", "cuda", "tpu"))
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["backend"] == "jax"
    assert manifest["backend_files"]["platforms"] == ["cpu", "cuda", "tpu"]
    assert manifest["in_types"] == ["f32[4,8]", "f32[8]", "f32[8,3]", "f32[3]", "f32[8,4]", "i64[8]"]
    assert manifest["out_types"][0] == "f32[]"
    mlir = open(os.path.join(path, "stablehlo.mlir")).read()
    assert "tensor<8x4xf32>" in mlir and "tensor<8xi64>" in mlir
    loaded = bpir.load(path)  # cpu is among the platforms: runs here
    np.testing.assert_allclose(float(loaded(*args)[0]), float(f(*args)[0]), rtol=1e-6)


def test_loading_on_another_platform_is_a_clear_error(tmp_path):
    args = problem()
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    path = str(tmp_path / "tpu_only")
    f.save(path, platforms=("tpu",))
    with pytest.raises(RuntimeError, match=r"exported for \['tpu'\].*runs 'cpu'"):
        bpir.load(path)


def test_corrupt_export_is_refused(tmp_path):
    args = problem()
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    path = str(tmp_path / "step")
    f.save(path)
    blob = os.path.join(path, "model.jax_export")
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(blob, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="corrupt artifact"):
        bpir.load(path)


def test_data_parallel_step_equals_single_device_step():
    script = textwrap.dedent("""
        import numpy as np, jax, bpir
        from bpir.demo.models import init_mlp, mlp_batch, sgd_step
        assert len(jax.devices()) == 4, jax.devices()
        params = init_mlp([4, 8, 3], dtype="float64")
        x, labels = mlp_batch([4, 8, 3], 16, dtype="float64")
        one = bpir.compile(sgd_step, backend="jax", example_args=(params, x, labels))
        dp = bpir.compile(sgd_step, backend="jax", data_parallel=("x", "labels"),
                          example_args=(params, x, labels))
        (l1, p1), (l2, p2) = one(params, x, labels), dp(params, x, labels)
        assert len(p2["W1"].sharding.device_set) == 4
        np.testing.assert_allclose(float(l2), float(l1), rtol=1e-12)
        for k in p1:
            np.testing.assert_allclose(np.asarray(p2[k]), np.asarray(p1[k]), rtol=1e-12, atol=1e-15)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": ROOT, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_data_parallel_names_must_be_arguments():
    args = problem()
    with pytest.raises(ValueError, match="data_parallel names"):
        bpir.compile(sgd_step, backend="jax", data_parallel=("inputs",), example_args=args)


@pytest.mark.parametrize(
    "pool", [dict(kernel_size=(2, 3)), dict(kernel_size=3, stride=2, padding=1)], ids=["tiles", "overlaps"]
)
def test_max_pool_gradient_keeps_the_tie_and_nan_rule(pool):
    """Tiling windows take the jax kernel (reshapes + argmax), others the decomposition; both
    send a window's cotangent to its first maximum, a NaN counting as maximal (np.argmax)."""
    import bpir.numpy as bnp

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 3, 6, 9)).astype(np.float64)  # many ties
    x[0, 0, 0, 0] = x[1, 2, 3, 4] = x[1, 2, 3, 5] = np.nan

    def loss(x):
        y = bnp.max_pool2d(x, **pool)
        return np.sum(y * np.arange(y.size, dtype=np.float64).reshape(y.shape))

    f = bpir.compile(bpir.grad(loss), backend="jax", example_args=(x,))
    tiled = "k.max_pool2d_grad(" in f.source
    assert tiled == ("stride" not in pool)
    want = bpir.compile(bpir.grad(loss), backend="numpy", example_args=(x,))(x)
    for backend in ("jax", "numba"):
        np.testing.assert_array_equal(
            bpir.compile(bpir.grad(loss), backend=backend, example_args=(x,))(x), want
        )
