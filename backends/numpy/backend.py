"""NumPy backend: the graph becomes one readable Python function of NumPy calls.

Elementwise results are written into dying input buffers (``out=``) as the memory plan allows.
This backend is the reference every other backend is checked against."""

from __future__ import annotations

import numpy as np

from bpir.ir import Graph, Node
from bpir.passes.memory import MemoryPlan, plan

from ..array_api import attr, dtype_of, elementwise_calls, expressions, literal, matmul_operands
from ..codegen import Emitter, Rule, decompose_missing

UFUNCS = elementwise_calls("np", sigmoid="k.sigmoid", rsqrt="k.rsqrt", erf="k.erf")


# op -> f(node, args) -> Python expression
EXPRESSIONS = expressions("np") | {
    "cast": lambda n, a: f"np.asarray({a[0]}).astype({dtype_of(n.attrs['dtype'])})",
    "matmul": lambda n, a: "np.matmul({}, {})".format(*matmul_operands(n, a)),
    "iota": lambda n, a: f"k.iota({attr(n, 'shape')}, {attr(n, 'axis')}, {dtype_of(n.attrs['dtype'])})",
    "random_uniform": lambda n, a: (
        f"k.random_uniform({a[0]}, {attr(n, 'shape')}, {dtype_of(n.attrs['dtype'])})"
    ),
    "random_split": lambda n, a: f"k.random_split({a[0]}, {attr(n, 'num')})",
    "cholesky": lambda n, a: f"np.linalg.cholesky({a[0]})",
    "eigh": lambda n, a: f"np.linalg.eigh({a[0]})",
}
SUPPORTED = set(UFUNCS) | set(EXPRESSIONS) | {"constant"}


def generate(graph: Graph, plan_memory: bool = True) -> tuple[str, dict]:
    """Python source defining ``graph.name`` and the globals (constants) it needs."""
    graph = decompose_missing(graph, SUPPORTED, "numpy")
    mem = plan(graph) if plan_memory else MemoryPlan()
    em = Emitter(graph, header="from bpir.backends.numpy import kernels as k")
    em.emit_nodes(rules(em, mem))
    return em.finish(), em.globals


def rules(em: Emitter, mem: MemoryPlan) -> dict[str, Rule]:
    """op -> this backend's rule for ``em``'s graph: an elementwise op writes into a dying input
    where the memory plan allows (``out=``); a constant is a literal or a named global."""
    inplace = {em.graph.nodes[i]: v for i, v in mem.inplace.items()}

    def ufunc(fn: str) -> Rule:
        def rule(node: Node, args: list[str]) -> str:
            out = f", out={em.name(inplace[node])}" if node in inplace else ""
            return f"{fn}({', '.join(args)}{out})"

        return rule

    ufuncs = {op: ufunc(fn) for op, fn in UFUNCS.items()}
    return EXPRESSIONS | ufuncs | {"constant": lambda n, a: constant_source(em, n)}


def constant_source(em: Emitter, node: Node) -> str:
    """A constant node as source: a typed scalar literal, or a named global holding the array."""
    value = node.attrs["value"]
    if value.ndim == 0:
        return f"{dtype_of(node.out.dtype)}({literal(value.item())})"
    return em.constant(value)


def compile_graph(graph: Graph, plan_memory: bool = True):
    """Return (callable taking and returning NumPy arrays, source)."""
    source, consts = generate(graph, plan_memory)
    namespace = {"np": np, **consts}
    exec(compile(source, f"<bpir-numpy:{graph.name}>", "exec"), namespace)
    return namespace[Emitter.function_name(graph)], source
