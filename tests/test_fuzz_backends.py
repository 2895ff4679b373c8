"""Differential fuzzing: random well-typed graphs (tests/graph_gen.py) run on every backend,
unoptimized and optimized (fused), against the NumPy backend on the unoptimized graph.

Case counts are modest by default (seeded, so a run is reproducible); BPIR_FUZZ_EXAMPLES
raises them and draws fresh examples."""

from __future__ import annotations

import os
import warnings

import numpy as np
from graph_gen import fuzz_examples, graphs, random_inputs
from hypothesis import HealthCheck, given, settings

import bpir
from bpir.backend_registry import backend_module
from bpir.ir import Graph

# compiles per example are cheap on numpy and jax, seconds on numba and the CUDA simulator
DEFAULT_EXAMPLES = {"numpy": 60, "jax": 25, "numba": 6, "numba-cuda": 8}
TOLERANCE = {"f64": 1e-9, "f32": 2e-4}


def run_graph(graph: Graph, backend: str, *arg_sets: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Compile ``graph`` as it is (no passes) for ``backend``; its outputs on each argument set."""
    run, _ = backend_module(backend).compile_graph(graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf and friends in NumPy
        return [[np.asarray(r) for r in run(*[a.copy() for a in args])] for args in arg_sets]


def assert_matches(got: list, want: list, graph: Graph, bounds: list[float], what: str) -> None:
    assert len(got) == len(want), what
    for k, (g, w, v, bound) in enumerate(zip(got, want, graph.outputs, bounds)):
        where = f"{what}, output {k} ({v.type})\n{graph}"
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype, where)
        if w.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w, err_msg=where)
        else:
            tol = TOLERANCE[v.dtype]
            np.testing.assert_allclose(
                g, w, rtol=tol, atol=tol * max(1.0, bound), err_msg=where, equal_nan=True
            )


def _settings(backend: str):
    fresh = "BPIR_FUZZ_EXAMPLES" in os.environ
    return settings(max_examples=fuzz_examples(DEFAULT_EXAMPLES[backend]), deadline=None,
                    derandomize=not fresh, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip


def _check_backend(backend: str, graph: Graph) -> None:
    """Finite inputs, then inputs with NaN, +-inf and +-0 sprinkled in (IEEE semantics agree)."""
    args = [random_inputs(graph, seed=1), random_inputs(graph, seed=2, special=0.2)]
    want = run_graph(graph, "numpy", *args)
    for name, g in (("unoptimized", graph), ("optimized", bpir.optimize(graph))):
        for got, w, kind in zip(run_graph(g, backend, *args), want, ("finite", "special")):
            assert_matches(got, w, graph, graph.bounds, f"{backend}, {name}, {kind} inputs")


def test_random_graphs_agree_with_the_numpy_backend(backend):
    check = given(graphs(max_nodes=14))(lambda graph: _check_backend(backend, graph))
    _settings(backend)(check)()
