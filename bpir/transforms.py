"""The transformations' public API: grad, value_and_grad, vjp_graphs and custom_vjp, composable
with tracing and compiling. Inside a trace a transformation's graph joins the enclosing one
(``trace_glue``); outside it runs on the reference interpreter (``interpret``, the eager
executor), which needs no backend."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import autodiff, interpret, trace_glue
from .builder import Builder
from .passes.dce import dce
from .pytree import flatten, unflatten
from .types import is_float

__all__ = ["custom_vjp", "grad", "value_and_grad", "vjp_graphs"]


def _argnums(argnums, n: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"argnums {argnums} out of range for {n} positional arguments")
    return tuple(a % n for a in nums)


def _wrt_leaves(args, nums) -> tuple[list[int], list]:
    """Indices into the flat argument leaves of every leaf of the differentiated arguments."""
    leaves, tree = flatten(tuple(args))
    counts = [len(flatten(a)[0]) for a in args]
    starts = [sum(counts[:i]) for i in range(len(args))]
    return [starts[a] + k for a in nums for k in range(counts[a])], leaves


def _grad_tree(args, nums, grads, wrt_types):
    """Put flat gradients back into the shapes of the differentiated arguments (None for
    integer leaves inside pytrees, which have no gradient)."""
    it = iter(zip(grads, wrt_types))
    out = []
    for a in nums:
        leaves, tree = flatten(args[a])
        vals = [g if is_float(t.dtype) else None for g, t in (next(it) for _ in leaves)]
        out.append(unflatten(tree, vals))
    return out


def value_and_grad(fn: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``fn``'s value and gradient; inside a trace the joint graph is inlined into it. With
    ``has_aux`` ``fn`` returns ``(value, aux)`` and the result is ``((value, aux), grads)``."""

    @functools.wraps(fn)
    def wrapped(*args):
        nums = _argnums(argnums, len(args))
        trace_glue.check_float_args(fn, args, nums)
        t = trace_glue.trace(fn, args)
        wrt, leaves = _wrt_leaves(args, nums)
        if has_aux:
            aux_def = _aux_tree(t.out_tree)
            joint = _joint_seeding_first(t.graph, wrt)
        else:
            joint = autodiff.joint(t.graph, wrt, seed=True)
        n_out = len(t.graph.outputs)
        outs = _run(joint, leaves, t.captured)
        value = (
            (outs[0], unflatten(aux_def, outs[1:n_out])) if has_aux else unflatten(t.out_tree, outs[:n_out])
        )
        wrt_types = [t.graph.inputs[i].type for i in wrt]
        grads = _grad_tree(args, nums, outs[n_out:], wrt_types)
        return value, grads[0] if isinstance(argnums, int) else tuple(grads)

    return wrapped


def _aux_tree(out_tree):
    """The aux part of a ``(value, aux)`` output tree; the value must be one array."""
    if not (
        out_tree and out_tree[0] in ("tuple", "list") and len(out_tree[1]) == 2 and out_tree[1][0] == "*"
    ):
        raise TypeError("with has_aux=True the function must return a pair (scalar value, aux)")
    return out_tree[1][1]


def _joint_seeding_first(graph, wrt: list[int]):
    """``autodiff.joint`` for ``(value, *aux)`` outputs: only the scalar value is differentiated."""
    value, aux = graph.outputs[0], graph.outputs[1:]
    if value.shape != () or not autodiff.differentiable(value.type):
        raise TypeError(f"grad needs a floating-point scalar value, got {value.type} (has_aux=True)")
    b = Builder(graph.name + "_grad")
    env = {v: b.input(v.type, v.name) for v in graph.inputs}
    b.copy_nodes(graph.nodes, env)
    wrt_vals = [graph.inputs[i] for i in wrt]
    grads = autodiff.backward(b, graph, env, wrt_vals, [b.scalar(1.0, value.dtype)] + [None] * len(aux))
    grads = [g if g is not None else b.zeros(v.type) for g, v in zip(grads, wrt_vals)]
    return dce(b.finish([env[v] for v in graph.outputs] + grads))


def grad(fn: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The gradient of ``fn`` (with ``has_aux``: ``(grads, aux)``, as JAX)."""
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapped(*args):
        value, grads = vg(*args)
        return (grads, value[1]) if has_aux else grads

    return wrapped


def _run(graph, leaves, captured) -> list:
    """Inline into the enclosing trace, or (outside any trace) run on the reference interpreter."""
    if trace_glue.in_trace():
        return trace_glue.inline_into_trace(graph, leaves, captured)
    trace_glue.check_untraced(leaves, captured)
    return interpret.run(graph, leaves)


def vjp_graphs(fn: Callable, *example_args, argnums=0, remat: bool = False):
    """(forward, backward): forward returns outputs + residuals; backward takes residuals +
    output cotangents and returns the cotangents of the ``argnums`` arguments' leaves. With
    ``remat`` the backward recomputes cheap elementwise values instead of saving them."""
    nums = _argnums(argnums, len(example_args))
    t = trace_glue.trace(fn, example_args)
    wrt, _ = _wrt_leaves(example_args, nums)
    s = autodiff.split(t.graph, wrt, remat=remat)
    return s.forward, s.backward


class custom_vjp:  # noqa: N801 (JAX's name)
    """A function with a user-given VJP: ``f.defvjp(fwd, bwd)`` where ``fwd(*args)`` returns
    ``(out, residuals)`` and ``bwd(residuals, cotangent)`` returns a tuple, one per argument."""

    def __init__(self, fn: Callable):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.fwd = self.bwd = None
        self._in_rule = 0  # > 0 while fwd/bwd are traced: calls of f inside them are the primal

    def defvjp(self, fwd: Callable, bwd: Callable) -> custom_vjp:
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args) -> Any:
        if not trace_glue.in_trace() or self.fwd is None or self._in_rule:
            return self.fn(*args)
        self._in_rule += 1
        try:
            return trace_glue.emit_custom_vjp_call(self.__name__, self.fwd, self.bwd, args)
        finally:
            self._in_rule -= 1
