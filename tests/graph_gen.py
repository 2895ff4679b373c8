"""Hypothesis strategy for random small well-typed graphs (round-trip, pass and backend fuzzing).

Graphs mix f64, f32, i64 and bool values: elementwise ops (div, pow, log, sqrt on safe
domains built into the graph, where, comparisons), explicit broadcasting, reductions, matmul,
layout ops (transpose, reshape, slice, broadcast_to, concatenate, expand_dims), casts and
constants on either side of a binary op. Every value carries a static bound on its magnitude
and ops whose bound would pass ``LIMIT`` are not drawn, so results stay far from overflow and
backends can be compared with tolerances scaled by that bound."""

from __future__ import annotations

import math
import os

import numpy as np
from hypothesis import strategies as st

from bpir.builder import Builder
from bpir.ir import Graph, Value
from bpir.types import TensorType, to_numpy_dtype

LIMIT = 1e6  # largest magnitude any generated value may reach
INPUT_BOUND = 3.0  # inputs are drawn in [-3, 3]
BOUNDED_UNARY = {"sin": 1.0, "cos": 1.0, "tanh": 1.0, "sigmoid": 1.0, "sign": 1.0}
SAME_BOUND_UNARY = ["neg", "abs"]
BINARY = ["add", "sub", "mul", "maximum", "minimum"]
COMPARE = ["gt", "ge", "lt", "le", "eq", "ne"]
KINDS = ["unary", "unary", "binary", "binary", "binary", "const", "safe", "compare", "where",
         "cast", "reduce", "layout", "layout", "broadcast", "matmul", "concat", "cse", "chain", "chain"]  # fmt: skip


def fuzz_examples(default: int) -> int:
    """Case count for a fuzz test: ``default``, or BPIR_FUZZ_EXAMPLES when that is set."""
    return int(os.environ.get("BPIR_FUZZ_EXAMPLES", default))


class _Gen:
    """One graph under construction: the builder, the pool of values and their bounds."""

    def __init__(self, draw):
        self.draw = draw
        self.b = Builder("random")
        self.bound: dict[Value, float] = {}
        self.pool: list[Value] = []
        for shape, dtype, name in [((3, 4), "f64", "x"), ((4,), "f64", "y"), ((3, 4), "f32", "z"),
                                   ((3, 4), "i64", "i"), ((4, 3), "f64", "w")]:  # fmt: skip
            self._add(self.b.input(TensorType(shape, dtype), name), INPUT_BOUND)

    def _add(self, v, bound: float):
        if isinstance(v, tuple):
            v = v[0]
        self.bound[v] = bound
        self.pool.append(v)
        return v

    def pick(self, pred=lambda v: True, prefer: Value | None = None) -> Value | None:
        """A pool value satisfying ``pred``: ``prefer`` when it does, else a random one."""
        if prefer is not None and pred(prefer):
            return prefer
        cands = [v for v in self.pool if pred(v)]
        return self.draw(st.sampled_from(cands)) if cands else None

    def const_like(self, v: Value, values=(0.0, 1.0, 0.5, -2.0, 3.0)) -> tuple[Value, float]:
        """A constant of ``v``'s dtype: a scalar, or an array of ``v``'s shape."""
        if v.dtype == "bool":
            c = self.draw(st.booleans())
            return self.b.const(c, "bool"), 1.0
        vals = [int(x) for x in values] if v.dtype.startswith("i") else list(values)
        if self.draw(st.booleans()) or v.shape == ():
            c = self.draw(st.sampled_from(vals))
            return self.b.const(c, v.dtype), abs(float(c))
        arr = np.resize(np.array(vals, to_numpy_dtype(v.dtype)), v.shape)
        arr = np.roll(arr, self.draw(st.integers(0, len(vals))))
        return self.b.const(arr, v.dtype), float(np.max(np.abs(arr)))

    def step(self) -> None:
        kind = self.draw(st.sampled_from(KINDS))
        getattr(self, "_" + kind)()

    # -- elementwise ---------------------------------------------------------------------------

    def _unary(self, prefer: Value | None = None):
        x = self.pick(lambda v: v.dtype != "bool", prefer)
        if x.dtype.startswith("f"):
            op = self.draw(st.sampled_from([*BOUNDED_UNARY, *SAME_BOUND_UNARY, "exp"]))
        else:
            op = self.draw(st.sampled_from(["neg", "abs", "sign"]))
        if op == "exp":
            if self.bound[x] > math.log(LIMIT):
                x = self._add(self.b.tanh(x), 1.0)
            self._add(self.b.exp(x), math.exp(self.bound[x]))
        else:
            self._add(self.b.emit(op, x), BOUNDED_UNARY.get(op, self.bound[x]))

    def _partner(self, x: Value) -> tuple[Value, float]:
        """A second operand for ``x``: a value of its type, a broadcast of a smaller one, a scalar."""
        choice = self.draw(st.sampled_from(["same", "broadcast", "scalar"]))
        if choice == "broadcast" and x.shape:
            small = self.pick(lambda v: v.dtype == x.dtype and 0 < v.type.size < x.type.size
                              and _broadcastable(v.shape, x.shape))  # fmt: skip
            if small is not None:
                return self._broadcast_value(small, x.shape), self.bound[small]
        if choice == "scalar":
            s = self.pick(lambda v: v.dtype == x.dtype and v.shape == ())
            if s is not None:
                return s, self.bound[s]
        y = self.pick(lambda v: v.type == x.type)
        return y, self.bound[y]

    def _broadcast_value(self, v: Value, shape) -> Value:
        lead = len(shape) - v.type.ndim
        if lead:
            v = self.b.reshape(v, (1,) * lead + v.shape)
        return self.b.broadcast_to(v, shape)

    def _binary(self, prefer: Value | None = None):
        x = self.pick(lambda v: v.dtype != "bool", prefer)
        y, by = self._partner(x)
        op = self.draw(st.sampled_from(BINARY))
        bx = self.bound[x]
        bound = bx * by if op == "mul" else bx + by if op in ("add", "sub") else max(bx, by)
        if bound <= LIMIT:
            args = (x, y) if self.draw(st.booleans()) else (y, x)
            self._add(self.b.emit(op, *args), bound)

    def _const(self, prefer: Value | None = None):
        """A binary op with a constant on either side."""
        x = self.pick(lambda v: v.dtype != "bool", prefer)
        c, bc = self.const_like(x)
        op = self.draw(st.sampled_from(BINARY))
        bx = self.bound[x]
        bound = bx * bc if op == "mul" else bx + bc if op in ("add", "sub") else max(bx, bc)
        if bound <= LIMIT:
            args = (x, c) if self.draw(st.booleans()) else (c, x)
            self._add(self.b.emit(op, *args), bound)

    def _positive(self, x: Value) -> tuple[Value, float]:
        """|x| + 0.5 in the graph: a safe operand for log, sqrt, pow and div."""
        half = self.b.const(0.5, x.dtype)
        return self.b.add(self.b.abs(x), half), self.bound[x] + 0.5

    def _safe(self, prefer: Value | None = None):
        """div, pow, log, sqrt (and rsqrt, reciprocal) on domains where they are finite."""
        x = self.pick(lambda v: v.dtype.startswith("f"), prefer)
        op = self.draw(st.sampled_from(["div", "pow", "pow_tensor", "log", "sqrt", "rsqrt", "reciprocal"]))
        p, bp = self._positive(x)
        if op == "div":
            y = self.pick(lambda v: v.type == x.type)
            num, bound = (y, self.bound[y] * 2) if self.draw(st.booleans()) else (p, 2 * bp)
            den, _ = self._positive(self.pick(lambda v: v.type == x.type))
            if bound <= LIMIT:
                self._add(self.b.div(num, den), bound)
        elif op == "pow":
            e = self.draw(st.sampled_from([-1.0, 0.5, 2.0, 3.0, -0.5]))
            bound = bp**e if e > 0 else 2.0**-e  # p >= 0.5
            if bound <= LIMIT:
                self._add(self.b.pow(p, self.b.const(e, x.dtype)), bound)
        elif op == "pow_tensor":  # exponent tanh(y) in [-1, 1]
            y = self.pick(lambda v: v.type == x.type)
            self._add(self.b.pow(p, self.b.tanh(y)), bp + 2.0)
        elif op == "log":
            self._add(self.b.log(p), max(math.log(2.0), math.log(bp)))
        elif op == "sqrt":
            self._add(self.b.sqrt(p), math.sqrt(bp))
        else:
            self._add(self.b.emit(op, p), 2.0)

    def _compare(self):
        x = self.pick(lambda v: v.dtype != "bool")
        y, _ = self._partner(x) if self.draw(st.booleans()) else self.const_like(x)
        args = (x, y) if self.draw(st.booleans()) else (y, x)
        v = self.b.emit(self.draw(st.sampled_from(COMPARE)), *args)
        self._add(v, 1.0)
        if self.draw(st.booleans()):  # combine with another mask
            m = self.pick(lambda u: u.type == v.type)
            op = self.draw(st.sampled_from(["logical_and", "logical_or", "logical_not"]))
            self._add(self.b.logical_not(v) if op == "logical_not" else self.b.emit(op, v, m), 1.0)

    def _where(self, prefer: Value | None = None):
        c = self.pick(lambda v: v.dtype == "bool" and v.shape != (), prefer)
        if c is None:
            return self._compare()
        x = self.pick(lambda v: v.shape == c.shape and v.dtype != "bool")
        if x is None:
            return
        y, by = self._partner(x) if self.draw(st.booleans()) else self.const_like(x)
        self._add(self.b.where(c, x, y), max(self.bound[x], by))

    def _cast(self):
        x = self.pick()
        targets = {"f64": ["f32"], "f32": ["f64"], "i64": ["f64", "f32"], "bool": ["f64", "i64", "f32"]}
        self._add(self.b.cast(x, self.draw(st.sampled_from(targets[x.dtype]))), self.bound[x])

    # -- reductions, contraction, layout -------------------------------------------------------

    def _reduce(self, prefer: Value | None = None):
        x = self.pick(lambda v: v.type.ndim and v.dtype != "bool", prefer)
        if x is None:
            return
        axes = self.draw(st.lists(st.integers(0, x.type.ndim - 1), min_size=1, unique=True))
        op = self.draw(st.sampled_from(["reduce_sum", "reduce_max"]))
        n = math.prod(x.shape[a] for a in axes)
        bound = self.bound[x] * (n if op == "reduce_sum" else 1)
        if bound <= LIMIT and min(x.shape[a] for a in axes) > 0:
            self._add(self.b.emit(op, x, axes=tuple(sorted(axes)), keepdims=self.draw(st.booleans())), bound)

    def _matmul(self):
        x = self.pick(lambda v: v.type.ndim == 2 and v.dtype.startswith("f"))
        if x is None:
            return
        k = x.shape[1]
        w = self.pick(lambda v: v.dtype == x.dtype and v.type.ndim == 2 and v.shape[0] == k)
        if w is None or self.draw(st.booleans()):
            n = self.draw(st.integers(1, 3))
            w = self.b.const(np.linspace(-1, 1, k * n).reshape(k, n), x.dtype)
            bw = 1.0
        else:
            bw = self.bound[w]
        bound = self.bound[x] * bw * k
        if bound <= LIMIT:
            args = (x, w)
            self._add(self.b.matmul(*args), bound)

    def _layout(self):
        x = self.pick(lambda v: v.shape != ())
        op = self.draw(st.sampled_from(["transpose", "reshape", "slice", "expand_dims"]))
        b, bound = self.b, self.bound[x]
        if op == "transpose" and x.type.ndim >= 2:
            perm = self.draw(st.permutations(range(x.type.ndim)))
            self._add(b.transpose(x, tuple(perm)), bound)
        elif op == "reshape":
            shape = self.draw(st.sampled_from(_factorizations(x.type.size)))
            self._add(b.reshape(x, shape), bound)
        elif op == "slice":
            start, stop, step = [], [], []
            for d in x.shape:
                lo = self.draw(st.integers(0, d - 1))
                start.append(lo)
                stop.append(self.draw(st.integers(lo + 1, d)))
                step.append(self.draw(st.integers(1, 2)))
            self._add(b.slice(x, start=tuple(start), stop=tuple(stop), step=tuple(step)), bound)
        elif op == "expand_dims":
            axis = self.draw(st.integers(0, x.type.ndim))
            self._add(b.expand_dims(x, axes=(axis,)), bound)

    def _broadcast(self):
        x = self.pick(lambda v: v.type.size <= 12)
        shape = self.draw(st.sampled_from([s for s in _TARGETS if _broadcastable(x.shape, s)] or [x.shape]))
        self._add(self._broadcast_value(x, shape), self.bound[x])

    def _concat(self):
        x = self.pick(lambda v: v.shape != ())
        axis = self.draw(st.integers(0, x.type.ndim - 1))
        same = [v for v in self.pool if v.dtype == x.dtype and v.type.ndim == x.type.ndim
                and all(a == c for i, (a, c) in enumerate(zip(v.shape, x.shape)) if i != axis)]  # fmt: skip
        parts = self.draw(st.lists(st.sampled_from(same), min_size=1, max_size=3))
        self._add(self.b.concatenate(x, *parts, axis=axis), max(self.bound[v] for v in [x, *parts]))

    def _chain(self):
        """A run of elementwise steps on the newest values (fusion's work; with a reduction
        at the end, a fused reduction)."""
        v = self.pick()
        for _ in range(self.draw(st.integers(2, 4))):
            kind = self.draw(st.sampled_from(["unary", "binary", "const", "safe", "where"]))
            if v.dtype == "bool" and kind != "where":
                v = self._add(self.b.cast(v, "f64"), 1.0)
            getattr(self, "_" + kind)(prefer=v)
            v = self.pool[-1]
        if self.draw(st.booleans()):
            self._reduce(prefer=v)

    def _cse(self):
        """Re-emit the last node (a common subexpression for CSE to find)."""
        last = self.b.nodes[-1] if self.b.nodes else None
        if last is not None and last.op != "constant":
            res = self.b.emit(last.op, *last.inputs, **last.attrs)
            self._add(res, self.bound.get(last.outputs[0], LIMIT))


_TARGETS = [(3, 4), (2, 3, 4), (4, 4), (3, 1), (2, 1, 4), (4,), (2, 4)]


def _broadcastable(small, shape) -> bool:
    if len(small) > len(shape):
        return False
    return all(s in (1, d) for s, d in zip(small[::-1], shape[::-1])) and tuple(small) != tuple(shape)


def _factorizations(n: int) -> list[tuple[int, ...]]:
    out = [(n,)]
    for a in range(1, n + 1):
        if n % a == 0:
            out.append((a, n // a))
            for c in range(1, n // a + 1):
                if (n // a) % c == 0:
                    out.append((a, c, n // a // c))
    return out


@st.composite
def graphs(draw, max_nodes: int = 12) -> Graph:
    """A random well-typed graph over f64 / f32 / i64 inputs (see the module docstring)."""
    g = _Gen(draw)
    target = draw(st.integers(1, max_nodes))
    for _ in range(4 * max_nodes):
        if len(g.b.nodes) >= target:
            break
        g.step()
    made = [v for v in g.pool if v not in g.b.inputs] or g.pool
    extra = draw(st.lists(st.sampled_from(made), max_size=2))
    outs = list(dict.fromkeys([made[-1], *extra]))
    graph = g.b.finish(outs)
    graph.bounds = [g.bound[v] for v in outs]  # magnitude bound per output, for tolerances
    return graph


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])


def random_inputs(graph: Graph, seed: int = 0, special: float = 0.0) -> list[np.ndarray]:
    """Inputs in [-3, 3] of each input's dtype (integers -3..3, bools half true); with
    ``special`` > 0, that fraction of float elements is NaN, +-inf or +-0."""
    rng = np.random.default_rng(seed)
    out = []
    for v in graph.inputs:
        dt = to_numpy_dtype(v.dtype)
        if dt.kind == "b":
            out.append(rng.random(v.shape) < 0.5)
        elif dt.kind in "iu":
            out.append(rng.integers(-3, 4, size=v.shape).astype(dt))
        else:
            x = np.clip(rng.standard_normal(v.shape), -INPUT_BOUND, INPUT_BOUND)
            hit = rng.random(v.shape) < special
            x[hit] = rng.choice(SPECIAL, size=int(hit.sum()))
            out.append(x.astype(dt))
    return out
