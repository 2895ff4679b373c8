"""grad, value_and_grad, vjp_graphs and custom_vjp: composable with tracing and compiling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import autodiff
from .builder import Builder, inline
from .passes.dce import dce
from .pytree import flatten, unflatten
from .types import is_float


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


def _check_float(fn, args, nums) -> None:
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
        from bpir.frontends.trace import trace_function

        nums = _argnums(argnums, len(args))
        _check_float(fn, args, nums)
        t = trace_function(fn, args)
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
    """Inline into the enclosing trace, or (outside any trace) run on the NumPy backend."""
    from bpir.frontends import context
    from bpir.frontends.tracer import Tracer, lift, wrap

    if context.current() is not None:
        args = [lift(x) for x in leaves]
        args += list(captured)  # values the inner trace closed over belong to this trace
        return [wrap(v) for v in inline(context.current().builder, graph, args)]
    if captured:
        raise RuntimeError("captured values outside a trace")
    if any(isinstance(x, Tracer) for x in leaves):
        raise RuntimeError("tracer outside its trace")
    return list(_numpy_executable(graph)(*leaves))


@functools.lru_cache(maxsize=64)
def _numpy_executable_cached(text: str):
    from bpir.backends.numpy.backend import compile_graph

    from .parser import parse

    return compile_graph(parse(text))[0]


def _numpy_executable(graph):
    return _numpy_executable_cached(str(graph))


def vjp_graphs(fn: Callable, *example_args, argnums=0, remat: bool = False):
    """(forward, backward): forward returns outputs + residuals; backward takes residuals +
    output cotangents and returns the cotangents of the ``argnums`` arguments' leaves. With
    ``remat`` the backward recomputes cheap elementwise values instead of saving them."""
    from bpir.frontends.trace import trace_function

    nums = _argnums(argnums, len(example_args))
    t = trace_function(fn, example_args)
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
        from bpir.frontends import context

        if context.current() is None or self.fwd is None or self._in_rule:
            return self.fn(*args)
        self._in_rule += 1
        try:
            return self._traced_call(args)
        finally:
            self._in_rule -= 1

    def _traced_call(self, args):
        from bpir.frontends import context
        from bpir.frontends.trace import trace_function
        from bpir.frontends.tracer import lift, wrap

        fwd = trace_function(lambda *a: self.fwd(*a), args, name=self.__name__ + "_fwd")
        if fwd.captured:
            raise NotImplementedError("custom_vjp functions must not close over traced values")
        out_def = fwd.out_tree
        if not (out_def and out_def[0] in ("tuple", "list") and len(out_def[1]) == 2):
            raise TypeError("custom_vjp fwd must return (output, residuals)")
        n_out = _leaves(out_def[1][0])
        res_def = out_def[1][1]
        # bwd: residual leaves + output cotangents -> argument cotangents
        res_types = [v.type for v in fwd.graph.outputs[n_out:]]
        out_types = [v.type for v in fwd.graph.outputs[:n_out]]
        in_types = [v.type for v in fwd.graph.inputs]

        def bwd_fn(*flat):
            res = unflatten(res_def, list(flat[: len(res_types)]))
            ct = unflatten(out_def[1][0], list(flat[len(res_types) :]))
            grads = self.bwd(res, ct)
            if not isinstance(grads, tuple) or len(grads) != len(args):
                raise TypeError(f"custom_vjp bwd must return a tuple of {len(args)} cotangents")
            return grads

        specs = res_types + out_types
        bwd = trace_function(bwd_fn, tuple(specs), name=self.__name__ + "_bwd")
        bwd_graph = _check_cotangents(bwd.graph, in_types)
        leaves, _ = flatten(tuple(args))
        vals = [lift(x) for x in leaves]
        outs = context.current().builder.custom_vjp_call(
            *vals, fwd=fwd.graph, bwd=bwd_graph, num_outputs=n_out
        )
        outs = outs if isinstance(outs, tuple) else (outs,)
        return unflatten(out_def[1][0], [wrap(v) for v in outs[:n_out]])


def _leaves(d) -> int:
    if d == "*":
        return 1
    if d is None:
        return 0
    return sum(_leaves(c) for c in d[-1])


def _check_cotangents(graph, types):
    """Check bwd's cotangents have the arguments' types."""
    got = [v.type for v in graph.outputs]
    if got != types:
        raise TypeError(f"custom_vjp bwd returned {[str(t) for t in got]}, arguments are "
                        f"{[str(t) for t in types]}")  # fmt: skip
    return graph
