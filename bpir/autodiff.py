"""Reverse mode as a graph transformation: each op's VJP rule emits IR into the same graph.

``joint`` builds one graph computing outputs and gradients; ``split`` cuts it into a forward
graph (outputs + saved residuals) and a backward graph (residuals + cotangents -> gradients)."""

from __future__ import annotations

from dataclasses import dataclass

from .builder import Builder
from .ir import Graph, InputInfo, Node, Role, Value
from .location import at
from .passes.dce import dce
from .printer import ValueNames
from .registry import get_op
from .types import TensorType, is_float


def differentiable(t: TensorType) -> bool:
    return is_float(t.dtype)


def backward(b: Builder, graph: Graph, env: dict[Value, Value], wrt: list[Value],
             cotangents: list[Value | None]) -> list[Value | None]:  # fmt: skip
    """Emit into ``b`` the gradients of ``graph``'s outputs (weighted by ``cotangents``) with
    respect to ``wrt``. ``env`` maps graph values to their copies in ``b``."""
    needed = {v for v in wrt if differentiable(v.type)}  # values that depend on a wrt input
    for node in graph.nodes:
        if any(v in needed for v in node.inputs) and get_op(node.op).differentiable:
            needed.update(v for v in node.outputs if differentiable(v.type))
    ct: dict[Value, Value] = {}

    def accumulate(v: Value, g: Value):
        ct[v] = b.add(ct[v], g) if v in ct else g

    for v, g in zip(graph.outputs, cotangents):
        if g is not None and v in needed:
            accumulate(v, g)
    for node in reversed(graph.nodes):
        cts = [ct.get(v) for v in node.outputs]
        if all(c is None for c in cts) or not any(v in needed for v in node.inputs):
            continue
        opdef = get_op(node.op)
        view = Node(node.op, [env[v] for v in node.inputs], node.attrs,
                    [env[v] for v in node.outputs], node.loc)  # fmt: skip
        if opdef.vjp is None:
            raise NotImplementedError(f"op {node.op!r} has no VJP rule")
        with at(node.loc):
            grads = opdef.vjp(b, view, cts)
            for v, g in zip(node.inputs, grads):
                if g is not None and v in needed:
                    accumulate(v, g)
    return [ct.get(v) for v in wrt]


def joint(graph: Graph, wrt: list[int], seed: bool = True) -> Graph:
    """Outputs followed by gradients w.r.t. ``graph.inputs[i] for i in wrt``. With ``seed``
    the (single, scalar) output's cotangent is 1; otherwise one cotangent input per output."""
    b = Builder(graph.name + "_grad")
    env = {v: b.input(v.type, v.name) for v in graph.inputs}
    b.copy_nodes(graph.nodes, env)
    if seed:
        if len(graph.outputs) != 1 or graph.outputs[0].shape != ():
            shapes = [v.shape for v in graph.outputs]
            raise TypeError(f"grad needs a function returning one scalar, got outputs of shapes {shapes}")
        out = graph.outputs[0]
        if not differentiable(out.type):
            raise TypeError(f"grad needs a floating-point output, got {out.dtype}")
        cts = [b.scalar(1.0, out.dtype)]
    else:
        cts = [b.input(v.type, f"ct{i}", InputInfo(Role.COTANGENT)) for i, v in enumerate(graph.outputs)]
    wrt_vals = [graph.inputs[i] for i in wrt]
    grads = backward(b, graph, env, wrt_vals, cts)
    grads = [g if g is not None else b.zeros(v.type) for g, v in zip(grads, wrt_vals)]
    return dce(b.finish([env[v] for v in graph.outputs] + grads))


@dataclass
class Split:
    forward: Graph  # inputs -> outputs + residuals
    backward: Graph  # residuals + cotangents -> gradients
    num_outputs: int

    @property
    def saved_bytes(self) -> int:
        """Bytes the forward keeps alive for the backward (its residual outputs)."""
        return sum(v.type.nbytes for v in self.forward.outputs[self.num_outputs :])


def split(graph: Graph, wrt: list[int], remat: bool = False) -> Split:
    """The forward graph computes what the primal outputs need; the backward graph reads the
    forward values it needs as saved residuals. By default it saves every forward value it
    reads (constants are re-emitted, not saved); with ``remat`` it saves a minimum-bytes cut
    and recomputes cheap elementwise and layout values (see ``bpir.remat``)."""
    from . import remat as policy

    j = joint(graph, wrt, seed=False)
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    cts = j.inputs[n_in:]
    primal = dce(Graph(graph.name, j.inputs, j.nodes, j.outputs[:n_out]))
    fwd_set = set(primal.nodes)
    grad_nodes = [n for n in j.nodes if n not in fwd_set]
    fwd_vals = set(j.inputs[:n_in]) | {v for n in primal.nodes for v in n.outputs}
    reads = [v for n in grad_nodes for v in n.inputs] + j.outputs[n_out:]
    needed = [v for v in dict.fromkeys(reads) if v in fwd_vals]
    if remat:
        saved = policy.min_cut_saved(primal, needed)
    else:
        consts = {n.out for n in primal.nodes if n.op == "constant"}
        saved = {v for v in needed if v not in consts}
    again = policy.recompute_nodes(primal, needed, saved)
    read_again = [v for n in again for v in n.inputs]
    residuals = [v for v in dict.fromkeys(needed + read_again) if v in saved]
    forward = Graph(graph.name + "_fwd", j.inputs[:n_in], primal.nodes, j.outputs[:n_out] + residuals)
    names = ValueNames(forward)
    producers = forward.producers()
    b = Builder(graph.name + "_bwd")
    env = {}
    for k, v in enumerate(residuals):
        p = producers.get(v)
        origin = (f"{names[v]} = {p.op}" + (f" loc({p.loc})" if p.loc else "")) if p else f"input {names[v]}"
        env[v] = b.input(v.type, f"r{k}", InputInfo(Role.RESIDUAL, origin))
    for i, v in enumerate(cts):
        env[v] = b.input(v.type, f"ct{i}", InputInfo(Role.COTANGENT))
    b.copy_nodes(again + grad_nodes, env)
    backward_graph = dce(b.finish([env[v] for v in j.outputs[n_out:]]))
    return Split(forward, backward_graph, n_out)
