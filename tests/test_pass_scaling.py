"""The optimizer is near-linear: the default pipeline (verifier on after every pass, as in all
tests) on a long elementwise chain, the shape fusion used to be quadratic on, grows about as
the node count; and the chain still fuses into one group."""

from __future__ import annotations

import time

import numpy as np

from bpir.passes import manager
from examples.bench_passes import chain_graph, synthetic_graph

SMALL, LARGE = 1000, 4000  # 4x the nodes: linear ~4x, quadratic ~16x


def _best_of(make, n: int, repeats: int = 2) -> float:
    """Least time over ``repeats`` runs (the machine is shared; the least is the least noisy)."""
    best = float("inf")
    for _ in range(repeats):
        g = make(n)
        t0 = time.perf_counter()
        manager.optimize(g, verify_each=True)
        best = min(best, time.perf_counter() - t0)
    return best


def test_chain_optimizes_in_near_linear_time():
    small, large = _best_of(chain_graph, SMALL), _best_of(chain_graph, LARGE)
    assert large / small < 8, f"{SMALL} nodes: {small:.3f} s, {LARGE} nodes: {large:.3f} s"


def test_residual_graph_optimizes_in_near_linear_time():
    small, large = _best_of(synthetic_graph, SMALL), _best_of(synthetic_graph, LARGE)
    assert large / small < 8, f"{SMALL} nodes: {small:.3f} s, {LARGE} nodes: {large:.3f} s"


def test_chain_fuses_into_one_group_that_computes_the_chain():
    from bpir.backends.numpy.backend import compile_graph

    g = chain_graph(300)
    out = manager.optimize(g, verify_each=True)
    assert [n.op for n in out.nodes] == ["fused"]
    region = out.nodes[0].attrs["region"]
    assert sum(n.op == "tanh" for n in region.nodes) == sum(n.op == "tanh" for n in g.nodes) == 100
    x = np.linspace(-1, 1, 4, dtype=np.float32)
    (want,) = compile_graph(g)[0](x)
    (got,) = compile_graph(out)[0](x)
    np.testing.assert_array_equal(got, want)
