"""Sharded training steps run in a child process with 8 host devices (tests/test_sharding.py).

    python tests/sharding_cases.py recipes        every recipe vs the single-device step
    python tests/sharding_cases.py worker I PORT  process I of 2 in a jax.distributed run
    python tests/sharding_cases.py single         the same step in one process (reference)

Each prints one JSON line."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from bpir.backends.jax import sharding as jsh

import bpir
import bpir.numpy as bnp
import bpir.sharding as recipes

STEPS = 5


def mlp_params(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        p[f"W{i}"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
        p[f"b{i}"] = (rng.standard_normal(b) * 0.1).astype(dtype)
    return p


def mlp_loss(p, x, labels):
    h = np.tanh(x @ p["W1"] + p["b1"])
    return bnp.cross_entropy(h @ p["W2"] + p["b2"], labels)


def adam_step(p, m, v, t, x, labels):
    """Adam written out (the optimizer state is sharded like the parameters under FSDP)."""
    loss, g = bpir.value_and_grad(mlp_loss)(p, x, labels)
    t = t + 1.0
    m = {k: 0.9 * m[k] + 0.1 * g[k] for k in p}
    v = {k: 0.999 * v[k] + 0.001 * g[k] * g[k] for k in p}
    lr = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
    return loss, {k: p[k] - lr * m[k] / (np.sqrt(v[k]) + 1e-8) for k in p}, m, v, t


def attention_loss(p, x, heads=2):
    """Multi-head self-attention block (heads split over "model" under tensor parallelism)."""
    n, d = x.shape
    hd = p["Wq"].shape[1] // heads

    def split(t):  # (n, heads * hd) -> (heads, n, hd)
        return t.reshape(n, heads, hd).transpose(1, 0, 2)

    q, k, v = split(x @ p["Wq"]), split(x @ p["Wk"]), split(x @ p["Wv"])
    a = bnp.softmax(q @ k.transpose(0, 2, 1) / np.sqrt(hd), axis=-1)
    o = (a @ v).transpose(1, 0, 2).reshape(n, heads * hd) @ p["Wo"]
    return np.mean((o - x) ** 2)


def attention_step(p, x):
    loss, g = bpir.value_and_grad(attention_loss)(p, x)
    return loss, {k: p[k] - 0.1 * g[k] for k in p}


def mlp_case(dtype):
    p = mlp_params([16, 32, 8], dtype)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 16)).astype(dtype)
    labels = rng.integers(0, 8, 64)
    zeros = {k: np.zeros_like(w) for k, w in p.items()}
    return (p, zeros, {k: w.copy() for k, w in zeros.items()}, np.zeros((), dtype), x, labels)


def sgd_momentum_step(p, m, v, t, x, labels):
    """SGD with momentum (float32 runs: Adam's m/sqrt(v) turns last-bit differences of tiny
    gradients into order-one updates, so its sharded and unsharded runs differ by more than f32 noise)."""
    loss, g = bpir.value_and_grad(mlp_loss)(p, x, labels)
    m = {k: 0.9 * m[k] + g[k] for k in p}
    return loss, {k: p[k] - 0.05 * m[k] for k in p}, m, v, t + 1.0


def adam_run(f, args):
    p, m, v, t, x, labels = args
    losses = []
    for _ in range(STEPS):
        loss, p, m, v, t = f(p, m, v, t, x, labels)
        losses.append(float(loss))
    return losses, {k: np.asarray(w) for k, w in p.items()}, f


def compare(a, b, rtol):
    la, pa, _ = a
    lb, pb, _ = b
    err = max(abs(x - y) / max(abs(x), 1e-30) for x, y in zip(la, lb))
    for k in pa:
        err = max(err, float(np.max(np.abs(pa[k] - pb[k]) / (np.abs(pa[k]) + 1e-3))))
    return err, err <= rtol


def hlo_facts(f):
    ex = f._current()
    compiled = ex.run.lower().compile()
    mem = compiled.memory_analysis()
    return {"collectives": jsh.collectives(compiled.as_text()), "argument_bytes": mem.argument_size_in_bytes,
            "output_bytes": mem.output_size_in_bytes, "temp_bytes": mem.temp_size_in_bytes}  # fmt: skip


def recipes_main():
    import jax

    assert len(jax.devices()) == 8, jax.devices()
    results = {}
    for dtype, rtol, step in (("float64", 1e-12, adam_step), ("float32", 1e-5, sgd_momentum_step)):
        args = mlp_case(dtype)
        one = adam_run(bpir.compile(step, backend="jax", example_args=args), args)
        p = args[0]
        configs = {
            "dp": ({"data": 8}, recipes.data_parallel(["x", "labels"])),
            "tp": ({"model": 8}, recipes.tensor_parallel_mlp("p", [("W1", "b1"), ("W2", "b2")])
                   | recipes.tensor_parallel_mlp("m", [("W1", "b1"), ("W2", "b2")])
                   | recipes.tensor_parallel_mlp("v", [("W1", "b1"), ("W2", "b2")])),
            "fsdp": ({"data": 8}, recipes.data_parallel(["x", "labels"])
                     | recipes.fully_sharded("p", p, axis_size=8) | recipes.fully_sharded("m", p, axis_size=8)
                     | recipes.fully_sharded("v", p, axis_size=8)),
            "dp_shorthand": (None, None),
        }  # fmt: skip
        for name, (mesh, specs) in configs.items():
            if name == "dp_shorthand":
                f = bpir.compile(step, backend="jax", example_args=args, data_parallel=("x", "labels"))
            else:
                f = bpir.compile(step, backend="jax", example_args=args, mesh=mesh, shardings=specs)
            got = adam_run(f, args)
            err, ok = compare(one, got, rtol)
            facts = hlo_facts(f)
            out_p = f(*args)[1]
            facts["W1_devices"] = len(out_p["W1"].sharding.device_set)
            facts["W1_spec"] = str(getattr(out_p["W1"].sharding, "spec", ""))
            results[f"{name}/{dtype}"] = {"err": err, "ok": ok, **facts}
        results[f"single/{dtype}"] = hlo_facts(bpir.compile(step, backend="jax", example_args=args))
    # tensor-parallel attention, one all-reduce per block in the forward
    rng = np.random.default_rng(2)
    pa = {k: rng.standard_normal((8, 8)) * 0.3 for k in ("Wq", "Wk", "Wv", "Wo")}
    xa = rng.standard_normal((6, 8))
    one = bpir.compile(attention_step, backend="jax", example_args=(pa, xa))
    tp = bpir.compile(attention_step, backend="jax", example_args=(pa, xa), mesh={"model": 2},
                      shardings=recipes.tensor_parallel_attention("p", "Wq", "Wk", "Wv", "Wo"))  # fmt: skip
    a, b = (pa, xa), (pa, xa)
    errs = []
    for _ in range(STEPS):
        la, pa1 = one(*a)
        lb, pb1 = tp(*b)
        errs.append(abs(float(la) - float(lb)) / abs(float(la)))
        a, b = (pa1, xa), (pb1, xa)
    errs.append(max(float(np.max(np.abs(np.asarray(pa1[k]) - np.asarray(pb1[k])))) for k in pa1))
    results["tp_attention/float64"] = {"err": max(errs), "ok": max(errs) <= 1e-12, **hlo_facts(tp)}
    print(json.dumps(results))


def distributed_case():
    p = mlp_params([16, 32, 8], "float64")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 16))
    labels = rng.integers(0, 8, 64)
    return p, x, labels


def sgd_step(p, x, labels):
    loss, g = bpir.value_and_grad(mlp_loss)(p, x, labels)
    return loss, {k: p[k] - 0.1 * g[k] for k in p}


def worker_main(rank: int, port: int):
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=rank,
                               initialization_timeout=60)  # fmt: skip
    assert len(jax.devices()) == 8 and len(jax.local_devices()) == 4
    p, x, labels = distributed_case()
    f = bpir.compile(sgd_step, backend="jax", example_args=(p, x, labels), mesh={"data": 8},
                     shardings=recipes.data_parallel(["x", "labels"]))  # fmt: skip
    from bpir.pytree import unflatten

    ex = f._current()
    half = slice(rank * 32, (rank + 1) * 32)  # this process's batch shard
    local = {"x": x[half], "labels": labels[half], **{f"p[{k!r}]": w for k, w in p.items()}}
    args = jsh.from_local(ex.run, [local[path] for path in ex.in_paths])
    losses = []
    for _ in range(STEPS):
        loss, new = unflatten(ex.out_tree, list(ex.run(*args)))
        now = {"x": args[ex.in_paths.index("x")], "labels": args[ex.in_paths.index("labels")],
               **{f"p[{k!r}]": w for k, w in new.items()}}  # fmt: skip
        args = [now[path] for path in ex.in_paths]
        losses.append(float(np.asarray(loss.addressable_data(0))))  # replicated: the local copy is whole
    w1 = np.asarray(now["p['W1']"].addressable_data(0))
    print(json.dumps({"rank": rank, "losses": losses, "W1_sum": float(np.sum(w1))}))
    jax.distributed.shutdown()


def single_main():
    p, x, labels = distributed_case()
    f = bpir.compile(sgd_step, backend="jax", example_args=(p, x, labels))
    losses = []
    for _ in range(STEPS):
        loss, p = f(p, x, labels)
        losses.append(float(loss))
    print(json.dumps({"losses": losses, "W1_sum": float(np.sum(np.asarray(p["W1"])))}))


def errors_main():
    """Each bad mesh/spec and the error it raises (before anything runs)."""
    p, x, labels = distributed_case()
    args = (p, x, labels)
    cases = {
        "axis": dict(mesh={"data": 8}, shardings={"x": ("batch", None)}),
        "divisible": dict(mesh={"data": 8}, shardings={"p['W2']": (None, "data")}),  # 8 classes: ok
        "not_divisible": dict(mesh={"data": 3}, shardings={"x": ("data", None)}),
        "path": dict(mesh={"data": 8}, shardings={"params['W1']": ("data", None)}),
        "too_many_devices": dict(mesh={"data": 4, "model": 4}, shardings={}),
        "rank": dict(mesh={"data": 8}, shardings={"p['b1']": ("data", None)}),
    }
    out = {}
    for name, options in cases.items():
        try:
            bpir.compile(sgd_step, backend="jax", example_args=args, **options)
            out[name] = "ok"
        except ValueError as e:
            out[name] = str(e)
    print(json.dumps(out))


def aot_main(mode: str, path: str):
    """Save a sharded step (mode "save"), or load it and run it (mode "load")."""
    p, x, labels = distributed_case()
    if mode == "save":
        f = bpir.compile(sgd_step, backend="jax", example_args=(p, x, labels), mesh={"data": 4, "model": 2},
                         shardings=recipes.data_parallel(["x", "labels"])
                         | recipes.tensor_parallel_mlp("p", [("W1", "b1"), ("W2", "b2")]))  # fmt: skip
        f.save(path)
    else:
        f = bpir.load(path)
    loss, new = f(p, x, labels)
    print(json.dumps({"loss": float(loss), "W1_sum": float(np.sum(np.asarray(new["W1"]))),
                      "W1_spec": str(new["W1"].sharding.spec)}))  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    mode = sys.argv[1]
    if mode == "recipes":
        recipes_main()
    elif mode == "worker":
        worker_main(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "errors":
        errors_main()
    elif mode in ("save", "load"):
        aot_main(mode, sys.argv[2])
    else:
        single_main()
