"""Each op's reference implementation (``OpDef.impl``) and the reference interpreter
(``bpir.interpret``): every op can run without a backend, and on every op case the interpreter
agrees with the NumPy backend on the same graph (random bits exactly)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from bpir.frontends.sharding import with_sharding_constraint
from bpir.frontends.trace import trace_function
from conftest import assert_close
from op_cases import CASES

import bpir
import bpir.numpy as bnp
from bpir import autodiff, interpret
from bpir.backend_registry import backend_module
from bpir.builder import Builder
from bpir.compiled import check_args
from bpir.errors import ShapeError
from bpir.pytree import flatten
from bpir.registry import OPS, Kind, get_op, ops_without_impl
from bpir.types import TensorType, is_float

get_op("constant")  # registers the op set
EXACT = ("random", "dropout")  # cases whose results must be bit-identical on every path


def test_every_op_runs_in_the_interpreter():
    """An op has a reference implementation or a decomposition the interpreter runs instead."""
    assert [name for name in ops_without_impl() if OPS[name].decompose is None] == []
    # fused alone runs through its decomposition (broadcast, its region's ops, reduce)
    assert set(ops_without_impl()) <= {"fused"}, ops_without_impl()


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if op.kind is Kind.ELEMENTWISE))
def test_float_only_is_what_the_type_rule_enforces(name):
    op = get_op(name)
    if name in ("where", "cast"):
        assert not op.float_only
        return

    def accepts(dtype):
        try:
            op.infer([TensorType((2,), dtype)] * op.arity, dict(op.attrs))
            return True
        except ShapeError:
            return False

    others = [d for d in ("i32", "i64", "bool") if accepts(d)]
    if op.float_only:
        assert accepts("f32") and accepts("f64") and not others, (name, others)
    else:
        assert others, f"{name} accepts no non-float dtype: mark it float_only"


def _same(got, want, dtype, exact):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if exact or got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        assert_close(got, want, dtype)


@pytest.mark.parametrize(("case", "dtype"), [(c, d) for c in CASES for d in c.dtypes],
                         ids=lambda x: getattr(x, "name", x))  # fmt: skip
def test_interpreter_matches_the_numpy_backend(case, dtype, rng):
    """On the optimized graph (fused nodes included) against the NumPy backend's run of it, and
    on the traced graph against the case's own NumPy result."""
    args = case.make(rng, dtype)
    ex = bpir.compile(case.fn, backend="numpy", example_args=args).executable
    leaves = check_args(ex, args)
    exact = case.name.startswith(EXACT)
    for got, want in zip(interpret.run(ex.graph, leaves), ex.run(*leaves)):
        _same(got, want, dtype, exact)
    traced = trace_function(case.fn, tuple(args))
    expected = flatten(case.fn(*args))[0]
    for got, want in zip(interpret.run(traced.graph, leaves), expected):
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            assert_close(got, want, dtype)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad], ids=lambda c: c.name)
def test_interpreter_matches_the_numpy_backend_on_gradient_graphs(case, rng):
    """The joint forward + backward graph (gradient ops such as conv2d_input_grad, fused
    reductions), optimized, with random output cotangents; float64, as the gradient checks."""
    args = case.make(rng, case.grad_dtype)
    traced = trace_function(case.fn, tuple(args))
    graph = traced.graph
    wrt = [i for i, v in enumerate(graph.inputs) if is_float(v.dtype)]
    joint = bpir.optimize(autodiff.joint(graph, wrt, seed=False))
    leaves = [np.asarray(x, v.type.np_dtype) for x, v in zip(flatten(tuple(args))[0], graph.inputs)]
    cts = [rng.standard_normal(v.shape).astype(v.type.np_dtype) for v in graph.outputs]
    run, _ = backend_module("numpy").compile_graph(joint)
    exact = case.name.startswith(EXACT)
    for got, want in zip(interpret.run(joint, leaves + cts), run(*leaves, *cts)):
        _same(got, want, case.grad_dtype, exact)


def _operands(op, rng):
    """Operands of the first dtype the elementwise op accepts (f64, i64, bool), small and positive."""
    for dtype in ("f64", "i64", "bool"):
        types = [TensorType((2, 3), dtype)] * op.arity
        try:
            op.infer(types, dict(op.attrs))
        except ShapeError:
            continue
        if dtype == "bool":
            return types, [rng.random((2, 3)) > 0.5 for _ in types]
        if dtype == "i64":
            return types, [rng.integers(1, 6, (2, 3)) for _ in types]
        return types, [rng.uniform(0.1, 3.0, (2, 3)) for _ in types]
    raise AssertionError(f"{op.name} accepts none of f64, i64, bool")


@pytest.mark.parametrize(
    "name", sorted(n for n, op in OPS.items() if op.kind is Kind.ELEMENTWISE and n not in ("where", "cast"))
)
def test_every_elementwise_op_matches_the_numpy_backend(name, rng):
    op = get_op(name)
    types, xs = _operands(op, rng)
    b = Builder("g")
    inputs = [b.input(t) for t in types]
    graph = b.finish([b.emit(name, *inputs)])
    run, _ = backend_module("numpy").compile_graph(graph)
    with np.errstate(all="ignore"):  # arccosh / arcsin / arctanh leave their domains here
        got, want = interpret.run(graph, xs), run(*xs)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    assert np.asarray(got[0]).dtype == np.asarray(want[0]).dtype


def test_structural_ops_match_the_numpy_backend(rng):
    """custom_vjp_call runs its fwd graph; stop_gradient and sharding_constraint are identities."""

    @bpir.custom_vjp
    def f(x):
        return np.sin(x) * 2.0

    f.defvjp(lambda x: (f(x), np.cos(x)), lambda c, g: (g * c * 2.0,))

    def fn(x):
        return f(x) + with_sharding_constraint(bnp.stop_gradient(x) * 3.0, ("data", None))

    x = rng.standard_normal((4, 2))
    graph = trace_function(fn, (x,)).graph
    assert {"custom_vjp_call", "stop_gradient", "sharding_constraint"} <= {n.op for n in graph.nodes}
    run, _ = backend_module("numpy").compile_graph(graph)
    np.testing.assert_array_equal(interpret.run(graph, [x])[0], run(x)[0])
    np.testing.assert_allclose(interpret.run(graph, [x])[0], np.sin(x) * 2.0 + x * 3.0, rtol=1e-14)


def test_interpreter_checks_declared_types():
    b = Builder("g")
    x = b.input(TensorType((3,), "f32"))
    g = b.finish([b.exp(x)])
    with pytest.raises(TypeError, match="input 0 of func @g: got f64"):
        interpret.run(g, [np.zeros(3)])
    assert interpret.run(g, [np.zeros(3, np.float32)])[0].dtype == np.float32


def test_folding_and_eager_paths_import_no_backend():
    """Constant folding, bnp's conv2d / pooling on arrays and grad outside a trace run on the
    ops' reference implementations: no backend module is ever imported."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import bpir, bpir.numpy as bnp
        from bpir.passes.fold import fold

        def f(x):
            return x * (np.exp(np.ones(3, np.float32)) + 1.0)

        g = fold(bpir.trace(f, np.ones(3, np.float32)))
        assert [n.op for n in g.nodes] == ["constant", "mul"], [n.op for n in g.nodes]
        x = np.arange(50.0).reshape(1, 2, 5, 5)
        assert bnp.conv2d(x, np.ones((3, 2, 2, 2)), stride=2).shape == (1, 3, 2, 2)
        assert bnp.max_pool2d(x, 2)[0, 0, 0, 0] == 6.0 and bnp.avg_pool2d(x, 2)[0, 0, 0, 0] == 3.0
        dx = bpir.grad(lambda x: np.sum(bnp.conv2d(x, np.ones((3, 2, 2, 2))) ** 2))(x)
        assert dx.shape == x.shape
        loaded = sorted(m for m in sys.modules if m.startswith("bpir.backends"))
        assert loaded == [], loaded
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
