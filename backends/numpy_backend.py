"""NumPy backend: the graph becomes one readable Python function of NumPy calls.

Elementwise results are written into dying input buffers (``out=``) as the memory plan allows.
This backend is the reference every other backend is checked against."""

from __future__ import annotations

import numpy as np

from bpir.ir import Graph, Node
from bpir.passes.memory import MemoryPlan, plan
from bpir.types import to_numpy_dtype

from .codegen import Emitter, decompose_missing

UFUNCS = {
    "neg": "np.negative", "exp": "np.exp", "log": "np.log", "log1p": "np.log1p",
    "expm1": "np.expm1", "tanh": "np.tanh", "sqrt": "np.sqrt", "abs": "np.abs",
    "sign": "np.sign", "sin": "np.sin", "cos": "np.cos", "reciprocal": "np.reciprocal",
    "sigmoid": "k.sigmoid", "rsqrt": "k.rsqrt", "erf": "k.erf", "logical_not": "np.logical_not",
    "add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.divide",
    "pow": "np.power", "maximum": "np.maximum", "minimum": "np.minimum", "gt": "np.greater",
    "ge": "np.greater_equal", "lt": "np.less", "le": "np.less_equal", "eq": "np.equal",
    "ne": "np.not_equal", "logical_and": "np.logical_and", "logical_or": "np.logical_or",
}  # fmt: skip


def _dt(name: str) -> str:
    return f"np.{to_numpy_dtype(name).name}"


def _literal(value) -> str:
    """Python source for an attribute value; non-finite floats spelled so they evaluate."""
    if isinstance(value, float) and not np.isfinite(value):
        return f"float('{value}')"
    return repr(value)


def _kw(node: Node, *names: str) -> str:
    return ", ".join(f"{n}={_literal(node.attrs[n])}" for n in names)


def _pool(node: Node) -> str:
    return _kw(node, "kernel", "stride", "padding")


def _index(node: Node) -> str:
    a = node.attrs
    parts = [f"{s}:{e}" + (f":{st}" if st != 1 else "") for s, e, st in zip(a["start"], a["stop"], a["step"])]
    return "[" + ", ".join(parts) + "]" if parts else "[()]"


# op -> f(node, args) -> Python expression
EXPRESSIONS = {
    "where": lambda n, a: f"np.where({a[0]}, {a[1]}, {a[2]})",
    "cast": lambda n, a: f"np.asarray({a[0]}).astype({_dt(n.attrs['dtype'])})",
    "broadcast_to": lambda n, a: f"np.broadcast_to({a[0]}, {n.attrs['shape']})",
    "reshape": lambda n, a: f"np.reshape({a[0]}, {n.attrs['shape']})",
    "squeeze": lambda n, a: f"np.reshape({a[0]}, {n.out.shape})",
    "expand_dims": lambda n, a: f"np.reshape({a[0]}, {n.out.shape})",
    "transpose": lambda n, a: f"np.transpose({a[0]}, {n.attrs['perm']})",
    "slice": lambda n, a: f"{a[0]}{_index(n)}",
    "pad": lambda n, a: f"k.pad({a[0]}, {_kw(n, 'lo', 'hi', 'interior', 'value')})",
    "concatenate": lambda n, a: f"np.concatenate([{', '.join(a)}], axis={n.attrs['axis']})",
    "reduce_sum": lambda n, a: f"np.sum({a[0]}, axis={n.attrs['axes']}, keepdims={n.attrs['keepdims']})",
    "reduce_max": lambda n, a: f"np.max({a[0]}, axis={n.attrs['axes']}, keepdims={n.attrs['keepdims']})",
    "argmax": lambda n, a: f"np.argmax({a[0]}, axis={n.attrs['axis']}, keepdims={n.attrs['keepdims']})",
    "matmul": lambda n, a: f"np.matmul({a[0]}, {a[1]})",
    "conv2d": lambda n, a: f"k.conv2d({a[0]}, {a[1]}, {_kw(n, 'stride', 'padding', 'dilation', 'groups')})",
    "conv2d_input_grad": lambda n, a: f"k.conv2d_input_grad({a[0]}, {a[1]}, "
    f"{_kw(n, 'stride', 'padding', 'dilation', 'groups', 'input_hw')})",
    "conv2d_weight_grad": lambda n, a: f"k.conv2d_weight_grad({a[0]}, {a[1]}, "
    f"{_kw(n, 'stride', 'padding', 'dilation', 'groups', 'kernel_hw')})",
    "max_pool2d": lambda n, a: f"k.max_pool2d({a[0]}, {_pool(n)})",
    "max_pool2d_grad": lambda n, a: f"k.max_pool2d_grad({a[0]}, {a[1]}, {_pool(n)})",
    "avg_pool2d": lambda n, a: f"k.avg_pool2d({a[0]}, {_pool(n)})",
    "avg_pool2d_grad": lambda n, a: f"k.avg_pool2d_grad({a[0]}, {_pool(n)}, {_kw(n, 'input_hw')})",
    "take_along_axis": lambda n, a: f"np.take_along_axis({a[0]}, {a[1]}, axis={n.attrs['axis']})",
    "scatter_add_along_axis": lambda n, a: f"k.scatter_add_along_axis({a[0]}, {a[1]}, "
    f"{_kw(n, 'axis', 'dim')})",
    "one_hot": lambda n, a: f"k.one_hot({a[0]}, {n.attrs['num_classes']}, {_dt(n.attrs['dtype'])})",
    "iota": lambda n, a: f"k.iota({n.attrs['shape']}, {n.attrs['axis']}, {_dt(n.attrs['dtype'])})",
}  # fmt: skip
SUPPORTED = set(UFUNCS) | set(EXPRESSIONS) | {"constant"}


def generate(graph: Graph, plan_memory: bool = True) -> tuple[str, dict]:
    """Python source defining ``graph.name`` and the globals (constants) it needs."""
    graph = decompose_missing(graph, SUPPORTED, "numpy")
    mem = plan(graph) if plan_memory else MemoryPlan()
    em = Emitter(graph, header="from backends import numpy_kernels as k")
    for i, node in enumerate(graph.nodes):
        args = [em.name(v) for v in node.inputs]
        target = em.bind(node.out)
        if node.op == "constant":
            em.line(f"{target} = {_constant(em, node)}", node)
        elif node.op in UFUNCS:
            out = f", out={em.name(mem.inplace[i])}" if i in mem.inplace else ""
            em.line(f"{target} = {UFUNCS[node.op]}({', '.join(args)}{out})", node)
        else:
            em.line(f"{target} = {EXPRESSIONS[node.op](node, args)}", node)
    return em.finish(), em.globals


def _constant(em: Emitter, node: Node) -> str:
    value = node.attrs["value"]
    if value.ndim == 0:
        return f"{_dt(node.out.dtype)}({_literal(value.item())})"
    return em.constant(value)


def compile_graph(graph: Graph, plan_memory: bool = True):
    """Return (callable taking and returning NumPy arrays, source)."""
    source, consts = generate(graph, plan_memory)
    namespace = {"np": np, **consts}
    exec(compile(source, f"<bpir-numpy:{graph.name}>", "exec"), namespace)
    return namespace[Emitter.function_name(graph)], source
