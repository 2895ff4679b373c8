"""numba-cuda backend specifics: real PTX compilation of every generated kernel (no GPU needed,
NVRTC/NVVM wheels), deterministic reductions, device arrays, and real-GPU checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import assert_close

import bpir
import bpir.numpy as bnp
from bpir.pytree import flatten

pytestmark = pytest.mark.skipif("numba-cuda" not in bpir.backends(), reason="numba-cuda not installed")

# Runs in a child process without NUMBA_ENABLE_CUDASIM: builds the programs of a small MLP
# training step and a small CNN and compiles each kernel to PTX for sm_90.
PTX_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    try:
        from numba import cuda
        from numba.cuda.cudadrv import nvrtc, nvvm  # noqa: F401
        nvvm.NVVM()
    except Exception as e:
        print(json.dumps({"skip": f"NVRTC/NVVM not importable: {e}"}))
        sys.exit(0)
    import bpir, bpir.numpy as bnp
    from bpir.backends.cuda import backend as cuda_backend, runtime as cuda_runtime
    from bpir.demo.models import init_mlp, mlp_batch, sgd_step

    def cnn_loss(w1, w2, x, labels):
        h = bnp.max_pool2d(bnp.relu(bnp.conv2d(x, w1, padding=1)), 2)
        return bnp.cross_entropy(h.reshape(x.shape[0], -1) @ w2, labels)

    rng = np.random.default_rng(0)
    params = init_mlp((16, 8, 4))
    x, labels = mlp_batch((16, 8, 4), 8)
    cnn = (rng.standard_normal((4, 2, 3, 3)).astype("f4"), rng.standard_normal((64, 5)).astype("f4"),
           rng.standard_normal((2, 2, 8, 8)).astype("f4"), np.array([1, 3]))
    graphs = {"mlp_sgd_step": bpir.optimize(bpir.trace(sgd_step, params, x, labels)),
              "cnn_grad": bpir.optimize(bpir.trace(bpir.value_and_grad(cnn_loss, (0, 1)), *cnn))}
    report = {}
    for name, graph in graphs.items():
        program = cuda_backend.generate(graph)
        ns = cuda_runtime.program_namespace(program)
        exec(program.source, ns)
        for k in program.kernels:
            ptx, _ = cuda.compile_ptx(ns[k.name].py_func, k.signature(), cc=(9, 0))
            report[f"{name}/{k.name}"] = len(ptx)
    print(json.dumps({"compiled": report}))
""")


def _run_without_simulator(*args: str) -> str:
    """Run ``python *args`` from the repository root in a child process without the CUDA
    simulator; fail with its stderr unless it succeeds; return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, *args], env=env, cwd=root, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def _run_ptx_script() -> dict:
    return json.loads(_run_without_simulator("-c", PTX_SCRIPT).strip().splitlines()[-1])


def test_every_kernel_compiles_to_ptx_for_sm90():
    result = _run_ptx_script()
    if "skip" in result:
        pytest.skip(result["skip"])
    compiled = result["compiled"]
    assert any(k.startswith("mlp_sgd_step/") and "matmul" in k for k in compiled)
    assert any(k.startswith("cnn_grad/") for k in compiled)
    assert all(size > 0 for size in compiled.values())


def test_reductions_deterministic_and_two_pass(rng):
    # one output of 4200 terms: the sum takes the two-pass path (chunks, then partials), on
    # the simulator's tiny blocks and on a real GPU's 256-thread blocks alike
    x = rng.standard_normal((3, 1400)).astype(np.float32)
    f = bpir.compile(lambda x: (np.sum(x * x), np.max(x, axis=1), np.argmax(x, axis=1)), backend="numba-cuda")
    first = f(x)
    assert "sum_pass2" in f.source
    for _ in range(5):
        for a, b in zip(f(x), first):
            np.testing.assert_array_equal(a, b)
    assert_close(first[0], np.sum(x * x), "float32")
    np.testing.assert_array_equal(first[1], x.max(axis=1))
    np.testing.assert_array_equal(first[2], x.argmax(axis=1))


def test_argmax_ties_and_nan_follow_numpy():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 2.0, np.nan, 5.0], [-np.inf] * 4], dtype=np.float32)
    f = bpir.compile(lambda x: np.argmax(x, axis=1), backend="numba-cuda")
    np.testing.assert_array_equal(f(x), np.argmax(x, axis=1))


def test_device_arrays_in_and_out(rng):
    from numba import cuda

    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    f = bpir.compile(lambda a, b: np.maximum(a @ b + 1.0, 0.0), backend="numba-cuda")
    host = f(a, b)
    dev = f(cuda.to_device(a), cuda.to_device(b))
    assert not isinstance(dev, np.ndarray) and hasattr(dev, "copy_to_host")
    np.testing.assert_array_equal(dev.copy_to_host(), host)
    assert_close(host, np.maximum(a @ b + 1.0, 0.0), "float32")


def test_device_results_reused_only_after_the_caller_drops_them(rng):
    from numba import cuda

    def ptr(d):  # device address; the simulator's arrays are NumPy arrays underneath
        iface = getattr(d, "__cuda_array_interface__", None) or d._ary.__array_interface__
        return iface["data"][0]

    f = bpir.compile(lambda x: x * 2.0 + 1.0, backend="numba-cuda")
    xs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    r1 = f(cuda.to_device(xs[0]))
    r2 = f(cuda.to_device(xs[1]))  # r1 is held: a new buffer, r1 untouched
    assert ptr(r1) != ptr(r2)
    np.testing.assert_array_equal(r1.copy_to_host(), xs[0] * 2 + 1)
    view = r1[1:]  # a view keeps the memory of r1 held
    first = ptr(r1)
    del r1
    r3 = f(cuda.to_device(xs[2]))
    third = ptr(r3)
    assert third not in (first, ptr(r2))
    np.testing.assert_array_equal(view.copy_to_host(), (xs[0] * 2 + 1)[1:])
    del view, r3
    r4 = f(cuda.to_device(xs[0]))  # r3's buffer, no longer held, is handed out again
    assert ptr(r4) == third
    np.testing.assert_array_equal(r4.copy_to_host(), xs[0] * 2 + 1)
    np.testing.assert_array_equal(r2.copy_to_host(), xs[1] * 2 + 1)


def test_source_is_readable_kernels_and_epilogue_fusion(rng):
    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.standard_normal(3).astype(np.float32)
    f = bpir.compile(lambda a, b, c: np.tanh(a @ b.T.T + c), backend="numba-cuda", example_args=(a, b, c))
    src = f.source
    assert "@cuda.jit" in src and "def forward(ws, results, a, b, c)" in src
    assert src.count("@cuda.jit") == 1, src  # matmul with the bias + tanh epilogue, no copies
    assert_close(f(a, b, c), np.tanh(a @ b + c), "float32")


def test_mlp_sgd_step_matches_numpy():
    from bpir.demo.models import init_mlp, mlp_batch, sgd_step

    params = init_mlp((12, 16, 5))
    x, labels = mlp_batch((12, 16, 5), 8)
    want = bpir.compile(sgd_step, backend="numpy")(params, x, labels)
    got = bpir.compile(sgd_step, backend="numba-cuda")(params, x, labels)
    assert_close(got[0], want[0], "float32")
    for k in params:
        assert_close(got[1][k], want[1][k], "float32")


def _real_gpu() -> bool:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = "from numba import cuda; print(cuda.is_available())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip() == "True"


@pytest.mark.gpu
def test_gpu_bench_small_on_real_gpu():
    if not _real_gpu():
        pytest.skip("no CUDA GPU available")
    _run_without_simulator("-m", "examples.gpu_bench", "--small")


# Runs on a real GPU (no simulator): large matmuls (plain, transposed operands, broadcast
# batch, with a bias + ReLU epilogue, float64) go to cuBLAS when CuPy is there, smaller ones to
# the tiled kernel; every result is checked against NumPy, also with results held across calls.
CUBLAS_SCRIPT = textwrap.dedent("""
    import importlib.util, json
    import numpy as np
    import bpir
    rng = np.random.default_rng(0)
    def r(*shape, dtype="float32"):
        return rng.standard_normal(shape).astype(dtype)
    cases = [
        ("plain", lambda a, b: a @ b, (r(256, 512), r(512, 384))),
        ("transposed", lambda a, b: a.T @ b.T, (r(512, 256), r(384, 512))),
        ("batch broadcast", lambda a, b: a @ b, (r(3, 128, 256), r(256, 192))),
        ("bias relu", lambda a, b, c: np.maximum(a @ b + c, 0), (r(256, 512), r(512, 384), r(384))),
        ("float64", lambda a, b: a @ b, (r(256, 320, dtype="float64"), r(320, 256, dtype="float64"))),
        ("small", lambda a, b: a @ b, (r(16, 8), r(8, 4))),
    ]
    report = {}
    for name, fn, args in cases:
        f = bpir.compile(fn, backend="numba-cuda", example_args=args)
        want = np.asarray(bpir.compile(fn, backend="numpy")(*args), np.float64)
        got1 = f(*args)
        got2 = f(*args)
        err = max(float(np.max(np.abs(g - want)) / np.max(np.abs(want))) for g in (got1, got2))
        report[name] = {"cublas": "cublas_matmul(" in f.source, "err": err}
    print(json.dumps({"cupy": importlib.util.find_spec("cupy") is not None, "cases": report}))
""")


@pytest.mark.gpu
def test_matmuls_on_real_gpu_cublas_when_cupy():
    if not _real_gpu():
        pytest.skip("no CUDA GPU available")
    out = json.loads(_run_without_simulator("-c", CUBLAS_SCRIPT).strip().splitlines()[-1])
    for name, case in out["cases"].items():
        assert case["err"] < (1e-12 if name == "float64" else 1e-5), (name, case)
        assert case["cublas"] == (out["cupy"] and name != "small"), (name, case)


def _gru_step(p, x, h):
    """A GRU cell (PyTorch's gate layout): each gate reads ``x @ W + h @ U + b``."""
    z = bnp.sigmoid(x @ p["Wz"] + h @ p["Uz"] + p["bz"])
    r = bnp.sigmoid(x @ p["Wr"] + h @ p["Ur"] + p["br"])
    n = np.tanh(x @ p["Wn"] + (r * h) @ p["Un"] + p["bn"])
    return (1.0 - z) * n + z * h


def _lstm_step(p, x, h, c):
    gates = x @ p["W"] + h @ p["U"] + p["b"]
    n = h.shape[1]
    i, f = bnp.sigmoid(gates[:, :n]), bnp.sigmoid(gates[:, n : 2 * n])
    g, o = np.tanh(gates[:, 2 * n : 3 * n]), bnp.sigmoid(gates[:, 3 * n :])
    c = f * c + i * g
    return o * np.tanh(c), c


def _rnn_params(rng, n_in, n, gates):
    p = {}
    for g, k in gates:
        p[f"W{g}"] = (rng.standard_normal((n_in, k * n)) * 0.5).astype(np.float32)
        p[f"U{g}"] = (rng.standard_normal((n, k * n)) * 0.5).astype(np.float32)
        p[f"b{g}"] = (rng.standard_normal(k * n) * 0.1).astype(np.float32)
    return p


def _two_steps_loss(cell):
    """Two recurrent steps and a squared-error loss: forward and backward through the cell."""

    def loss(p, xs, state, target):
        for t in range(xs.shape[0]):
            out = cell(p, xs[t], *state)
            state = out if isinstance(out, tuple) else (out,)
        return np.mean((state[0] - target) ** 2)

    return loss


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_cell_forward_and_backward_match_numpy(rng, kind):
    """``x @ W + h @ U + b``: a fused group reading two matmul products (one becomes the
    epilogue of the other's kernel) once failed in code generation."""
    n_in, n, batch = 3, 4, 2
    if kind == "gru":
        p = _rnn_params(rng, n_in, n, [("z", 1), ("r", 1), ("n", 1)])
        cell, state = _gru_step, (rng.standard_normal((batch, n)).astype(np.float32),)
    else:
        p = _rnn_params(rng, n_in, n, [("", 4)])
        cell = _lstm_step
        state = tuple(rng.standard_normal((batch, n)).astype(np.float32) for _ in range(2))
    xs = rng.standard_normal((2, batch, n_in)).astype(np.float32)
    target = rng.standard_normal((batch, n)).astype(np.float32)
    args = (p, xs, state, target)
    step = bpir.value_and_grad(_two_steps_loss(cell), argnums=(0, 2))
    want = bpir.compile(step, backend="numpy")(*args)
    got = bpir.compile(step, backend="numba-cuda")(*args)
    want_leaves, got_leaves = flatten(want)[0], flatten(got)[0]
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert_close(g, w, "float32")
