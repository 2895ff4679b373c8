"""Hypothesis strategy for random small well-typed graphs (for round-trip and pass tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from bpir.builder import Builder

UNARY = ["neg", "exp", "tanh", "sin", "cos", "abs", "sigmoid", "sign"]
BINARY = ["add", "sub", "mul", "maximum", "minimum"]


@st.composite
def graphs(draw, max_nodes: int = 12):
    """A graph over f64 inputs of shapes drawn from a small family, mixing elementwise,
    broadcast, layout, reduction and matmul ops (so fusion, CSE and folding have work)."""
    b = Builder("random")
    pool = [b.input(_t((3, 4)), "x"), b.input(_t((4,)), "y"), b.input(_t((3, 4)), "z")]
    n = draw(st.integers(1, max_nodes))
    for _ in range(n):
        kind = draw(
            st.sampled_from(["unary", "binary", "binary", "const", "reduce", "layout", "matmul", "cse"])
        )
        x = draw(st.sampled_from(pool))
        if kind == "unary":
            pool.append(b.emit(draw(st.sampled_from(UNARY)), x))
        elif kind == "binary":
            same = [v for v in pool if v.shape == x.shape]
            y = draw(st.sampled_from(same))
            if draw(st.booleans()) and x.shape == (3, 4):
                src = draw(st.sampled_from([v for v in pool if v.shape in ((4,), (1, 4), ())] or [y]))
                y = b.broadcast_to(src, (3, 4)) if src.shape != () else src
            pool.append(b.emit(draw(st.sampled_from(BINARY)), x, y))
        elif kind == "const":
            c = b.const(draw(st.sampled_from([0.0, 1.0, 0.5, -2.0])), "f64")
            pool.append(b.emit(draw(st.sampled_from(BINARY)), x, c))
        elif kind == "reduce" and x.type.ndim:
            axis = draw(st.integers(0, x.type.ndim - 1))
            op = draw(st.sampled_from(["reduce_sum", "reduce_max"]))
            pool.append(b.emit(op, x, axes=(axis,), keepdims=draw(st.booleans())))
        elif kind == "layout" and x.type.ndim == 2:
            pool.append(b.transpose(x, (1, 0)))
        elif kind == "layout" and x.type.ndim == 1:
            pool.append(b.reshape(x, (1, x.shape[0])))
        elif kind == "matmul" and x.type.ndim == 2:
            w = b.const(np.linspace(-1, 1, x.shape[1] * 2).reshape(x.shape[1], 2), "f64")
            pool.append(b.matmul(x, w))
        elif kind == "cse" and len(b.nodes):
            last = b.nodes[-1]
            if last.op not in ("constant",):
                res = b.emit(last.op, *last.inputs, **last.attrs)
                pool.append(res if not isinstance(res, tuple) else res[0])
    k = draw(st.integers(1, 3))
    outs = draw(st.lists(st.sampled_from(pool[3:] or pool), min_size=1, max_size=k))
    return b.finish(outs)


def _t(shape):
    from bpir.types import TensorType

    return TensorType(shape, "f64")


def random_inputs(graph, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape) for v in graph.inputs]
