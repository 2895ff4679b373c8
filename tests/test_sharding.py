"""Sharding through XLA (jax backend): recipes equal the single-device step on 8 host devices, the
compiled HLO holds the collectives each recipe implies, per-device memory shrinks as promised,
two processes coordinated by jax.distributed equal one, sharded artifacts reload, bad specs fail
early. Each runs tests/sharding_cases.py in a child process (the device count is fixed at start)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax")

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "sharding_cases.py")


def run_cases(*argv, devices=8, timeout=300) -> dict:
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, CASES, *argv], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def recipes():
    return run_cases("recipes")


@pytest.mark.parametrize("name", ["dp", "tp", "fsdp", "dp_shorthand"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_recipe_equals_single_device_over_five_steps(recipes, name, dtype):
    r = recipes[f"{name}/{dtype}"]
    assert r["ok"], f"relative error {r['err']:.3g} over 5 steps"
    assert r["W1_devices"] == 8


def test_outputs_are_sharded_like_the_parameters_they_update(recipes):
    assert recipes["dp/float64"]["W1_spec"] == "P()"
    assert recipes["tp/float64"]["W1_spec"] == "P(None, 'model')"
    assert recipes["fsdp/float64"]["W1_spec"] == "P('data',)"


def test_collectives_are_the_ones_each_recipe_implies(recipes):
    # DP: the gradients (one combined tuple) are all-reduced, nothing gathered
    assert recipes["dp/float64"]["collectives"] == {"all-reduce": 1}
    # TP (Megatron MLP): one all-reduce for the column/row pair
    assert recipes["tp/float64"]["collectives"] == {"all-reduce": 1}
    assert recipes["tp_attention/float64"]["collectives"] == {"all-reduce": 1}
    assert recipes["tp_attention/float64"]["ok"]
    # FSDP: parameters all-gathered where used; XLA's CPU pipeline reduces the gradients with an
    # all-reduce and keeps each device's slice (it forms reduce-scatter only on GPU/TPU)
    fsdp = recipes["fsdp/float64"]["collectives"]
    assert set(fsdp) <= {"all-gather", "all-reduce", "reduce-scatter"} and fsdp.get("all-gather", 0) >= 2
    assert recipes["single/float64"]["collectives"] == {}


def test_per_device_memory_shrinks_as_each_sharding_promises(recipes):
    single = recipes["single/float64"]["argument_bytes"]
    dp, tp, fsdp = (recipes[f"{n}/float64"]["argument_bytes"] for n in ("dp", "tp", "fsdp"))
    assert dp < single  # the batch is split
    assert tp < dp  # the weights and optimizer state are split too
    assert fsdp * 4 < single  # everything split 8 ways (biases and scalars stay whole)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one():
    port = _free_port()
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, CASES, "worker", str(rank), str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]  # fmt: skip
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, f"worker exited with {p.returncode}:\n{err[-3000:]}"
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    single = run_cases("single", devices=1)
    for o in outs:
        np.testing.assert_allclose(o["losses"], single["losses"], rtol=1e-12)
        np.testing.assert_allclose(o["W1_sum"], single["W1_sum"], rtol=1e-12)


def test_sharded_artifact_reloads_with_its_mesh_and_refuses_another(tmp_path):
    path = str(tmp_path / "step")
    saved = run_cases("save", path)
    loaded = run_cases("load", path)
    assert loaded == saved and saved["W1_spec"] == "P(None, 'model')"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, CASES, "load", path], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode != 0
    assert "needs 8 devices; 4 are present" in out.stderr


def test_bad_specs_fail_before_anything_runs():
    errors = run_cases("errors")
    assert errors["divisible"] == "ok"
    assert "x: axis 'batch' is not an axis of the mesh" in errors["axis"]
    assert "x: dimension 0" in errors["not_divisible"] and "'data'" in errors["not_divisible"]
    assert "matches no argument" in errors["path"] and "p['W1']" in errors["path"]
    assert "needs 16 devices; 8 are present" in errors["too_many_devices"]
    assert "p['b1']" in errors["rank"]


def test_sharding_constraint_is_printed_and_is_the_identity_elsewhere(backend):
    import bpir
    import bpir.numpy as bnp

    def f(x, w):
        h = bnp.with_sharding_constraint(np.tanh(x @ w), ("data", None))
        return (h * h).sum()

    x, w = np.linspace(-1, 1, 32).reshape(8, 4), np.linspace(-0.5, 0.5, 12).reshape(4, 3)
    assert 'sharding_constraint %1 {spec=("data", "")}' in str(bpir.trace(f, x, w))
    g = bpir.compile(bpir.grad(f, argnums=1), backend=backend, example_args=(x, w))
    np.testing.assert_allclose(
        np.asarray(g(x, w)), 2 * x.T @ (np.tanh(x @ w) * (1 - np.tanh(x @ w) ** 2)), rtol=1e-10
    )
    with pytest.raises(TypeError, match="is not None, an axis name"):
        bpir.trace(lambda x: bnp.with_sharding_constraint(x, (1,)), x)


def test_show_sharded_prints_each_values_sharding_and_the_collectives():
    bpir_cli = os.path.join(os.path.dirname(sys.executable), "bpir")
    model = os.path.join(HERE, "cli_models", "mlp.py")
    argv = [bpir_cli, "show", f"{model}:loss", "--stage", "sharded", "--devices", "4", "--mesh", "data=2,model=2",
            "--shard", "x=data", "--shard", "params['W1']=None,model"]  # fmt: skip
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"}
    )
    assert out.returncode == 0, out.stderr
    assert "in  params['W1']             f32[6,8]         (None, 'model')" in out.stdout
    assert "in  x                        f32[4,6]         ('data',)" in out.stdout
    assert "collectives: all-reduce" in out.stdout and "per-device bytes" in out.stdout
    bad = subprocess.run([*argv[:-4], "--shard", "x=batch"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "axis 'batch' is not an axis of the mesh" in bad.stderr
