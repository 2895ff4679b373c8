"""Forward/backward split policies: "save what the backward reads" and the min-cut
rematerialisation; both must give the same gradients, remat must save no more bytes and
must never recompute matmuls, convolutions or reductions."""

from __future__ import annotations

import numpy as np
import pytest
from bpir.backends.numpy.backend import compile_graph

import bpir
import bpir.numpy as bnp
from bpir.demo.models import init_mlp, mlp_batch, mlp_loss
from bpir.registry import Kind, get_op


def small_cnn_loss(params, x, labels):
    h = np.maximum(bnp.conv2d(x, params["k"], params["kb"], padding=1), 0)
    h = bnp.max_pool2d(np.tanh(h) * 0.5 + h, 2)
    return bnp.cross_entropy(h.reshape(h.shape[0], -1) @ params["W"], labels)


def cnn_args():
    rng = np.random.default_rng(0)
    params = {
        "k": rng.standard_normal((4, 2, 3, 3)) * 0.3,
        "kb": np.zeros(4),
        "W": rng.standard_normal((36, 3)),
    }
    return params, rng.standard_normal((2, 2, 6, 6)), np.array([0, 2])


def mlp_args():
    params = init_mlp([6, 8, 8, 3], dtype="float64")
    x, labels = mlp_batch([6, 8, 8, 3], 5, dtype="float64")
    return params, x, labels


MODELS = {"mlp": (mlp_loss, mlp_args), "cnn": (small_cnn_loss, cnn_args)}


def run_split(fwd, bwd, args):
    from bpir.pytree import flatten

    leaves, _ = flatten(tuple(args))
    outs = compile_graph(fwd)[0](*leaves)
    n_out = len(fwd.outputs) - (len(bwd.inputs) - 1)
    residuals = outs[n_out:]
    return outs[:n_out], compile_graph(bwd)[0](*residuals, np.ones(()))


def heavy_ops(graph) -> list[str]:
    return sorted(n.op for n in graph.nodes if get_op(n.op).kind in (Kind.CONTRACTION, Kind.REDUCTION))


@pytest.mark.parametrize("model", sorted(MODELS))
def test_remat_gives_the_same_gradients_and_saves_fewer_bytes(model):
    fn, make = MODELS[model]
    args = make()
    saved = bpir.vjp_graphs(fn, *args)
    remat = bpir.vjp_graphs(fn, *args, remat=True)
    (loss_a,), grads_a = run_split(*saved, args)
    (loss_b,), grads_b = run_split(*remat, args)
    assert loss_a == loss_b
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-14)
    want = bpir.grad(fn)(*args)
    from bpir.pytree import flatten

    for a, w in zip(grads_b, flatten(want)[0]):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-14)
    nbytes = [sum(v.type.nbytes for v in bwd.inputs if v.type.shape) for _, bwd in (saved, remat)]
    assert nbytes[1] < nbytes[0]
    # remat recomputes only elementwise / broadcast / layout work
    assert heavy_ops(remat[1]) == heavy_ops(saved[1])


def test_remat_recomputes_the_relu_instead_of_saving_it():
    args = mlp_args()
    _, bwd_save = bpir.vjp_graphs(mlp_loss, *args)
    _, bwd_remat = bpir.vjp_graphs(mlp_loss, *args, remat=True)
    origins = lambda g: [info.origin for info in g.input_info.values() if info.role == "residual"]  # noqa: E731
    assert any("= maximum" in o for o in origins(bwd_save))
    assert not any("= maximum" in o for o in origins(bwd_remat))
    assert any(n.op == "maximum" for n in bwd_remat.nodes)
