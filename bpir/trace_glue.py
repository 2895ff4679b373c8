"""The transformations' tracing glue: how grad, value_and_grad, vjp_graphs and custom_vjp reach
the frontends' tracer (tracing a function, joining an enclosing trace, emitting a
custom_vjp_call). The only part of the transformations that imports ``bpir.frontends``, lazily,
so the core imports no frontend at import time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .builder import inline
from .ir import Graph
from .pytree import flatten, unflatten
from .types import TensorType, is_float


def trace(fn: Callable, args: tuple, name: str | None = None) -> Any:
    """``fn`` traced on ``args``: the frontend's trace (graph, pytree structure, captured values)."""
    from bpir.frontends.trace import trace_function

    return trace_function(fn, args, name=name)


def in_trace() -> bool:
    """Whether a trace is being recorded (a transformation then joins it)."""
    from bpir.frontends import context

    return context.current() is not None


def check_float_args(fn: Callable, args: tuple, nums: tuple[int, ...]) -> None:
    """Differentiating with respect to an integer or bool argument is an error, as in JAX
    (integer leaves inside a pytree argument, such as a step count, get None instead)."""
    from bpir.frontends.trace import arg_names, leaf_type

    names = arg_names(fn, len(args))
    for a in nums:
        leaves, tree = flatten(args[a])
        if tree != "*":
            continue
        t = leaf_type(leaves[0], names[a])
        if not is_float(t.dtype):
            raise TypeError(
                f"grad requires floating-point inputs, but {names[a]} (argnums {a}) is {t}; "
                "pass it as float, or leave it out of argnums"
            )


def inline_into_trace(graph: Graph, leaves: Sequence, captured: Sequence) -> list:
    """Copy ``graph`` into the enclosing trace, reading ``leaves`` then the values the inner
    trace closed over; its outputs as tracers."""
    from bpir.frontends import context
    from bpir.frontends.tracer import lift, wrap

    args = [lift(x) for x in leaves] + list(captured)
    return [wrap(v) for v in inline(context.current().builder, graph, args)]


def check_untraced(leaves: Sequence, captured: Sequence) -> None:
    """Outside any trace nothing may be a tracer or have been captured from one."""
    from bpir.frontends.tracer import Tracer

    if captured:
        raise RuntimeError("captured values outside a trace")
    if any(isinstance(x, Tracer) for x in leaves):
        raise RuntimeError("tracer outside its trace")


def emit_custom_vjp_call(name: str, fwd: Callable, bwd: Callable, args: tuple) -> Any:
    """Trace ``fwd`` and ``bwd`` and record a ``custom_vjp_call`` of them on ``args`` in the
    enclosing trace; the primal outputs, as tracers shaped like ``fwd``'s output."""
    from bpir.frontends import context
    from bpir.frontends.tracer import lift, wrap

    fwd_t = trace(lambda *a: fwd(*a), args, name=name + "_fwd")
    if fwd_t.captured:
        raise NotImplementedError("custom_vjp functions must not close over traced values")
    out_def = fwd_t.out_tree
    if not (out_def and out_def[0] in ("tuple", "list") and len(out_def[1]) == 2):
        raise TypeError("custom_vjp fwd must return (output, residuals)")
    n_out = _leaves(out_def[1][0])
    res_def = out_def[1][1]
    # bwd: residual leaves + output cotangents -> argument cotangents
    res_types = [v.type for v in fwd_t.graph.outputs[n_out:]]
    out_types = [v.type for v in fwd_t.graph.outputs[:n_out]]
    in_types = [v.type for v in fwd_t.graph.inputs]

    def bwd_fn(*flat):
        res = unflatten(res_def, list(flat[: len(res_types)]))
        ct = unflatten(out_def[1][0], list(flat[len(res_types) :]))
        grads = bwd(res, ct)
        if not isinstance(grads, tuple) or len(grads) != len(args):
            raise TypeError(f"custom_vjp bwd must return a tuple of {len(args)} cotangents")
        return grads

    bwd_t = trace(bwd_fn, tuple(res_types + out_types), name=name + "_bwd")
    bwd_graph = _check_cotangents(bwd_t.graph, in_types)
    leaves, _ = flatten(tuple(args))
    outs = context.current().builder.custom_vjp_call(
        *[lift(x) for x in leaves], fwd=fwd_t.graph, bwd=bwd_graph, num_outputs=n_out
    )
    outs = outs if isinstance(outs, tuple) else (outs,)
    return unflatten(out_def[1][0], [wrap(v) for v in outs[:n_out]])


def _leaves(d) -> int:
    if d == "*":
        return 1
    if d is None:
        return 0
    return sum(_leaves(c) for c in d[-1])


def _check_cotangents(graph: Graph, types: list[TensorType]) -> Graph:
    """Check bwd's cotangents have the arguments' types."""
    got = [v.type for v in graph.outputs]
    if got != types:
        raise TypeError(f"custom_vjp bwd returned {[str(t) for t in got]}, arguments are "
                        f"{[str(t) for t in types]}")  # fmt: skip
    return graph
