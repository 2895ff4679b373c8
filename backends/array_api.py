"""Source templates shared by the backends: one table of elementwise op names, spelled as array
calls (the NumPy backend, the Numba backend's driver, the JAX backend: ``np.exp`` or ``jnp.exp``)
or as scalar code inside loops and kernels (Numba's loops: ``np.exp({0})``, CUDA's kernels:
``math.exp({0})``), and the expressions of the other ops every array library has. Each backend
overrides only what its library spells differently; windowed ops and scatters call the
backend's kernel module ``k``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from bpir.attr_types import AXIS_NAMES
from bpir.ir import Node
from bpir.ops.math import NUMPY_NAMES
from bpir.registry import get_op
from bpir.types import DTYPES, is_float, to_numpy_dtype

# op -> function of the array module with the same semantics
ELEMENTWISE = {
    "neg": "negative", "exp": "exp", "log": "log", "log1p": "log1p", "expm1": "expm1",
    "tanh": "tanh", "sqrt": "sqrt", "abs": "abs", "sign": "sign", "sin": "sin", "cos": "cos",
    "reciprocal": "reciprocal", "logical_not": "logical_not", "add": "add", "sub": "subtract",
    "mul": "multiply", "div": "divide", "pow": "power", "maximum": "maximum", "minimum": "minimum",
    "gt": "greater", "ge": "greater_equal", "lt": "less", "le": "less_equal", "eq": "equal",
    "ne": "not_equal", "logical_and": "logical_and", "logical_or": "logical_or",
} | NUMPY_NAMES  # fmt: skip
SIDES = {"left": "'left'", "right": "'right'"}  # searchsorted's side, as source

Expression = Callable[[Node, list[str]], str]

# op -> its scalar spelling that no backend changes: Python operators and builtins where they
# have NumPy's semantics on scalars, and math.erf (NumPy has no erf); ``{0}``, ``{1}``, ... are
# the operands, ``{one}`` is 1 in the operand's type
SCALAR_COMMON = {
    "neg": "-{0}", "abs": "abs({0})", "reciprocal": "{one} / {0}", "logical_not": "not {0}",
    "erf": "math.erf({0})", "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}",
    "div": "{0} / {1}", "floor_divide": "{0} // {1}", "gt": "{0} > {1}", "ge": "{0} >= {1}",
    "lt": "{0} < {1}", "le": "{0} <= {1}", "eq": "{0} == {1}", "ne": "{0} != {1}",
    "logical_and": "{0} and {1}", "logical_or": "{0} or {1}", "logical_xor": "{0} != {1}",
    "bitwise_and": "{0} & {1}", "bitwise_or": "{0} | {1}", "bitwise_xor": "{0} ^ {1}",
    "bitwise_invert": "~{0}", "left_shift": "{0} << {1}", "right_shift": "{0} >> {1}",
    "where": "{1} if {0} else {2}",
}  # fmt: skip


def elementwise_calls(xp: str, **overrides: str) -> dict[str, str]:
    """op -> callable name, e.g. ``{"exp": "np.exp", ...}``."""
    return {op: f"{xp}.{fn}" for op, fn in ELEMENTWISE.items()} | overrides


def scalar_ops(xp: str, names: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """op -> source template of the op on scalar operands (see ``SCALAR_COMMON``): the common
    spellings, else the function of the math module ``xp`` (``np``, ``math``) under NumPy's name
    or the one ``names`` gives; ``overrides`` replace or add entries."""
    names = names or {}
    calls = {}
    for op, fn in ELEMENTWISE.items():
        operands = ", ".join(f"{{{i}}}" for i in range(get_op(op).arity))
        calls[op] = f"{xp}.{names.get(op, fn)}({operands})"
    derived = {"rsqrt": f"{{one}} / {xp}.sqrt({{0}})", "sigmoid": f"{{one}} / ({{one}} + {xp}.exp(-{{0}}))"}
    return calls | derived | SCALAR_COMMON | overrides


def dtype_of(name: str, xp: str = "np") -> str:
    """Source naming a dtype of the IR's fixed set in the array module ``xp`` (``np.float32``,
    ``jnp.float32``): the one dtype spelling of every backend; other names are refused."""
    if type(name) is not str or name not in DTYPES:
        raise TypeError(f"refusing to put {name!r:.80} into generated source: not a dtype name")
    return f"{xp}.{to_numpy_dtype(name).name}"


PYTHON_NONFINITE = {"inf": "float('inf')", "-inf": "float('-inf')", "nan": "float('nan')"}


def literal(value, nonfinite: Mapping[str, str] = PYTHON_NONFINITE) -> str:
    """The one way attribute values enter generated source: Python source for a bool, an int,
    a float (``inf``/``nan`` spelled by ``nonfinite``, so each backend can name them), a dtype
    name, or a tuple of these. Anything else (another string, an object whose ``repr`` could be
    code) raises TypeError."""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return int.__repr__(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isfinite(x):
            return float.__repr__(x)
        return nonfinite["nan" if math.isnan(x) else "inf" if x > 0 else "-inf"]
    if type(value) is str and value in DTYPES:
        return repr(value)
    if type(value) is tuple:
        items = [literal(v, nonfinite) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    raise TypeError(f"refusing to put a {type(value).__name__} into generated source: {value!r:.80}")


def spec_literal(spec) -> str:
    """Source for a sharding spec attribute (``attr_types.SPEC``: a tuple of "" or mesh axis names,
    identifiers joined by ","); anything else raises TypeError."""
    if type(spec) is not tuple or not all(type(e) is str and AXIS_NAMES.fullmatch(e) for e in spec):
        raise TypeError(f"refusing to put a non-spec value into generated source: {spec!r:.80}")
    return "(" + "".join(f"{e!r}, " for e in spec) + ")"


def attr(node: Node, name: str) -> str:
    """Source for one attribute of ``node``."""
    return literal(node.attrs[name])


def kw(node: Node, *names: str) -> str:
    return ", ".join(f"{n}={literal(node.attrs[n])}" for n in names)


def matmul_operands(node: Node, args: list[str]) -> tuple[str, str]:
    """The matmul's operands, each read through a swapaxes view when its transpose flag is set
    (a strided view: BLAS gets a transpose flag, no copy is made). The array method, not
    ``np.swapaxes``: NumPy's function wrapper costs a microsecond a call, ~3% of a small GRU step."""
    flags = (node.attrs["transpose_a"], node.attrs["transpose_b"])
    return tuple(f"{a}.swapaxes(-1, -2)" if t else a for a, t in zip(args, flags))


def index(node: Node) -> str:
    a = node.attrs
    parts = [f"{literal(s)}:{literal(e)}" + (f":{literal(st)}" if st != 1 else "")
             for s, e, st in zip(a["start"], a["stop"], a["step"])]  # fmt: skip
    return "[" + ", ".join(parts) + "]" if parts else "[()]"


def _scan(xp: str, fn: str, node: Node, x: str) -> str:
    """cumsum / cumprod in the IR's dtype (NumPy widens small integers); reverse by flips."""
    axis, dt = literal(node.attrs["axis"]), dtype_of(node.out.dtype, xp)
    if not node.attrs["reverse"]:
        return f"{xp}.{fn}({x}, axis={axis}, dtype={dt})"
    return f"{xp}.flip({xp}.{fn}({xp}.flip({x}, {axis}), axis={axis}, dtype={dt}), {axis})"


def expressions(xp: str) -> dict[str, Expression]:
    """op -> f(node, argument names) -> Python expression, for the ops every array library has."""
    conv = ("stride", "padding", "dilation", "groups")
    pool = ("kernel", "stride", "padding")

    def reduction(fn: str) -> Expression:
        return lambda n, a: f"{xp}.{fn}({a[0]}, axis={attr(n, 'axes')}, {kw(n, 'keepdims')})"

    def integer_sum(n: Node, a: list[str]) -> str:
        """A sum in the IR's dtype: NumPy (and jax under x64) widen small integers and bools."""
        dtype = "" if is_float(n.out.dtype) else f", dtype={dtype_of(n.out.dtype, xp)}"
        return f"{xp}.sum({a[0]}, axis={attr(n, 'axes')}, {kw(n, 'keepdims')}{dtype})"

    return {
        "where": lambda n, a: f"{xp}.where({a[0]}, {a[1]}, {a[2]})",
        "broadcast_to": lambda n, a: f"{xp}.broadcast_to({a[0]}, {attr(n, 'shape')})",
        "reshape": lambda n, a: f"{xp}.reshape({a[0]}, {literal(n.out.shape)})",
        "squeeze": lambda n, a: f"{xp}.reshape({a[0]}, {literal(n.out.shape)})",
        "expand_dims": lambda n, a: f"{xp}.reshape({a[0]}, {literal(n.out.shape)})",
        "transpose": lambda n, a: f"{xp}.transpose({a[0]}, {attr(n, 'perm')})",
        "slice": lambda n, a: f"{a[0]}{index(n)}",
        "pad": lambda n, a: f"k.pad({a[0]}, {kw(n, 'lo', 'hi', 'interior', 'value')})",
        "concatenate": lambda n, a: f"{xp}.concatenate([{', '.join(a)}], {kw(n, 'axis')})",
        "reduce_sum": integer_sum,
        "reduce_max": reduction("max"),
        "reduce_prod": lambda n, a: (
            f"{xp}.prod({a[0]}, axis={attr(n, 'axes')}, keepdims={attr(n, 'keepdims')}, "
            f"dtype={dtype_of(n.out.dtype, xp)})"
        ),
        "cumsum": lambda n, a: _scan(xp, "cumsum", n, a[0]),
        "cumprod": lambda n, a: _scan(xp, "cumprod", n, a[0]),
        "argsort": lambda n, a: f"{xp}.argsort({a[0]}, {kw(n, 'axis')}, stable=True).astype({xp}.int64)",
        "searchsorted": lambda n, a: (
            f"{xp}.searchsorted({a[0]}, {a[1]}, side={SIDES[n.attrs['side']]}).astype({xp}.int64)"
        ),
        "inv": lambda n, a: f"{xp}.linalg.inv({a[0]})",
        "solve": lambda n, a: f"{xp}.linalg.solve({a[0]}, {a[1]})",
        "det": lambda n, a: f"{xp}.linalg.det({a[0]})",
        "slogdet": lambda n, a: f"{xp}.linalg.slogdet({a[0]})",
        "qr": lambda n, a: f"{xp}.linalg.qr({a[0]}, mode='reduced')",
        "svd": lambda n, a: f"{xp}.linalg.svd({a[0]}, full_matrices=False)",
        "argmax": lambda n, a: f"{xp}.argmax({a[0]}, {kw(n, 'axis', 'keepdims')})",
        "conv2d": lambda n, a: f"k.conv2d({a[0]}, {a[1]}, {kw(n, *conv)})",
        "conv2d_input_grad": lambda n, a: f"k.conv2d_input_grad({a[0]}, {a[1]}, {kw(n, *conv, 'input_hw')})",
        "conv2d_weight_grad": lambda n, a: (
            f"k.conv2d_weight_grad({a[0]}, {a[1]}, {kw(n, *conv, 'kernel_hw')})"
        ),
        "max_pool2d": lambda n, a: f"k.max_pool2d({a[0]}, {kw(n, *pool)})",
        "max_pool2d_grad": lambda n, a: f"k.max_pool2d_grad({a[0]}, {a[1]}, {kw(n, *pool)})",
        "avg_pool2d": lambda n, a: f"k.avg_pool2d({a[0]}, {kw(n, *pool)})",
        "avg_pool2d_grad": lambda n, a: f"k.avg_pool2d_grad({a[0]}, {kw(n, *pool, 'input_hw')})",
        "take_along_axis": lambda n, a: f"{xp}.take_along_axis({a[0]}, {a[1]}, {kw(n, 'axis')})",
        "scatter_add_along_axis": lambda n, a: (
            f"k.scatter_add_along_axis({a[0]}, {a[1]}, {kw(n, 'axis', 'dim')})"
        ),
        "one_hot": lambda n, a: (
            f"k.one_hot({a[0]}, {attr(n, 'num_classes')}, {dtype_of(n.attrs['dtype'], xp)})"
        ),
    }
