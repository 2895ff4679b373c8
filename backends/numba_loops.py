"""Loop kernels for the Numba backend: a fused node becomes one ``@njit`` function that walks
its iteration space once, evaluating the region per element (broadcasting by indexing size-1
dimensions at 0) and, for a fused reduction, accumulating in the same pass.

Outer loops are ``prange`` (parallel) when the iteration space is large enough to amortise
the thread pool's start; float32 stays float32 (constants are typed); float32 sums
accumulate in float64 and round once when written.

pip's Numba has no vector math library, so ``np.exp``/``np.tanh`` in a loop are scalar libm
calls that block vectorisation. For float32, exp, tanh and sigmoid are emitted as calls to
the polynomial helpers of ``MATH_F32`` instead: they evaluate in float64 with only
multiply-adds (exp(x) = p(x/256)**256, p the degree-11 Taylor polynomial; truncation error
< 7e-14 relative for |x| <= 104, amplified by 256 to < 2e-11), so LLVM vectorises the loop and
the float32 result is the correctly rounded value except within 2e-11 of a rounding boundary
(tested: at most 1 ulp from float64 NumPy over the float32 range, inf/nan/overflow included)."""

from __future__ import annotations

import math

from bpir.ir import Node, Value
from bpir.types import to_numpy_dtype

PARALLEL_MIN_ELEMENTS = 1 << 20  # below this, thread start-up and contention with BLAS threads cost more
IDENT = "    "

SCALAR = {
    "neg": "-{0}", "exp": "np.exp({0})", "log": "np.log({0})", "log1p": "np.log1p({0})",
    "expm1": "np.expm1({0})", "tanh": "np.tanh({0})", "sqrt": "np.sqrt({0})",
    "rsqrt": "{one} / np.sqrt({0})", "abs": "abs({0})", "sign": "np.sign({0})", "sin": "np.sin({0})",
    "cos": "np.cos({0})", "sigmoid": "{one} / ({one} + np.exp(-{0}))", "reciprocal": "{one} / {0}",
    "erf": "math.erf({0})", "logical_not": "not {0}", "add": "{0} + {1}", "sub": "{0} - {1}",
    "mul": "{0} * {1}", "div": "{0} / {1}", "pow": "np.power({0}, {1})",
    "maximum": "np.maximum({0}, {1})", "minimum": "np.minimum({0}, {1})", "gt": "{0} > {1}",
    "ge": "{0} >= {1}", "lt": "{0} < {1}", "le": "{0} <= {1}", "eq": "{0} == {1}", "ne": "{0} != {1}",
    "logical_and": "{0} and {1}", "logical_or": "{0} or {1}", "where": "{1} if {0} else {2}",
}  # fmt: skip
LOOPABLE_DTYPES = {"f32", "f64", "i32", "i64", "bool"}  # no float16 arithmetic in Numba on CPU
KERNEL_HEADER_IMPORTS = "import math\n\nimport numpy as np\nfrom numba import njit, prange\n"
F32_MATH = {"exp": "exp_f32({0})", "tanh": "tanh_f32({0})", "sigmoid": "sigmoid_f32({0})"}
MATH_F32 = """

@njit(inline="always")
def exp_f64_core(x):
    # exp for a float64 holding a float32 argument, clamped to [-104, 104] (beyond, float32
    # results of exp, tanh and sigmoid no longer change); exp(x) = p(x/256)**256 with p the
    # degree-11 Taylor polynomial of exp
    r = min(max(x, -104.0), 104.0) * 0.00390625
    p = (
        1.0 + r * (1.0 + r * (0.5 + r * (0.16666666666666666 + r * (0.041666666666666664 + r * (0.008333333333333333 + r * (0.001388888888888889 + r * (0.0001984126984126984 + r * (2.48015873015873e-05 + r * (2.7557319223985893e-06 + r * (2.755731922398589e-07 + r * (2.505210838544172e-08)))))))))))
    )
    p = p * p  # eight squarings: p(x/256)**256
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p


@njit(inline="always")
def exp_f32(x):
    return np.float32(exp_f64_core(np.float64(x))) if x == x else x


@njit(inline="always")
def sigmoid_f32(x):
    return np.float32(1.0 / (1.0 + exp_f64_core(-np.float64(x)))) if x == x else x


@njit(inline="always")
def tanh_f32(x):
    d = np.float64(x)
    if abs(d) < 0.0625:  # odd Taylor series: no cancellation near 0
        d2 = d * d
        return np.float32(d * (1.0 - d2 * (1.0 / 3.0 - d2 * (2.0 / 15.0 - d2 * (17.0 / 315.0)))))
    return np.float32(1.0 - 2.0 / (exp_f64_core(2.0 * d) + 1.0)) if x == x else x
"""


def np_name(dtype: str) -> str:
    return "np." + to_numpy_dtype(dtype).name


def loopable(node: Node) -> bool:
    region = node.attrs["region"]
    values = [*node.inputs, *node.outputs, *region.inputs, *(v for n in region.nodes for v in n.outputs)]
    supported = all(n.op in SCALAR or n.op in ("constant", "cast") for n in region.nodes)
    return supported and all(v.dtype in LOOPABLE_DTYPES for v in values)


def _scalar_expr(node: Node, args: list[str]) -> str:
    dtype = node.out.dtype
    if node.op == "cast":
        src = node.inputs[0].dtype
        if dtype == "bool":
            return f"{args[0]} != 0"
        return f"{np_name(dtype)}({args[0]})" if src != dtype else args[0]
    if dtype == "f32" and node.op in F32_MATH:
        return F32_MATH[node.op].format(*args)
    expr = SCALAR[node.op].format(*args, one=f"{np_name(dtype)}(1)")
    # integer ops narrower than int64 are widened by Numba: cast back so the dtype is exact
    return f"{np_name(dtype)}({expr})" if dtype == "i32" else expr


def constant_literal(value, dtype: str) -> str:
    v = value.item()
    if dtype == "bool":
        return repr(bool(v))
    if isinstance(v, float) and not math.isfinite(v):
        return f"{np_name(dtype)}({'np.nan' if math.isnan(v) else ('np.inf' if v > 0 else '-np.inf')})"
    return f"{np_name(dtype)}({v!r})"


def kernel_source(name: str, node: Node) -> str:
    """The ``@njit`` function for a fused node: parameters are the node's inputs (already
    reshaped to the iteration rank; rank-0 inputs as scalars) then its output buffers."""
    a = node.attrs
    shape, region = a["shape"], a["region"]
    rank = len(shape)
    reduce_kind, kept_outputs = a["reduce"], a["unreduced"] if a["reduce"] else len(region.outputs)
    axes = set(a["axes"]) if reduce_kind else set()
    ins = [f"in{i}" for i in range(len(node.inputs))]
    outs = [f"out{i}" for i in range(len(node.outputs))]
    size = math.prod(shape)
    parallel = size >= PARALLEL_MIN_ELEMENTS
    lines = [f"@njit(parallel={parallel}, cache=True)", f"def {name}({', '.join(ins + outs)}):"]
    env: dict[Value, str] = {}
    consts = []
    for n in region.nodes:  # constants are hoisted out of the loops
        if n.op == "constant":
            env[n.out] = f"k{len(consts)}"
            consts.append(f"{IDENT}k{len(consts)} = {constant_literal(n.attrs['value'], n.out.dtype)}")
    lines += consts
    kept_dims = [d for d in range(rank) if d not in axes]
    red_dims = sorted(axes)
    idx = [f"i{d}" for d in range(rank)]
    body: list[str] = []
    depth = 1
    if reduce_kind and kept_dims:
        # parallel over the kept (output) positions, flattened; reduced dims run inside
        k_total = math.prod(shape[d] for d in kept_dims)
        loop = "prange" if parallel else "range"
        body.append(f"{IDENT * depth}for k in {loop}({k_total}):")
        depth += 1
        rest = "k"
        for j, d in enumerate(reversed(kept_dims)):
            last = j == len(kept_dims) - 1
            body.append(f"{IDENT * depth}{idx[d]} = {rest}" + ("" if last else f" % {shape[d]}"))
            if not last:
                body.append(f"{IDENT * depth}{rest}_ = {rest} // {shape[d]}")
                rest = f"{rest}_"
        loop_dims = red_dims
    else:
        loop_dims = list(range(rank)) if not reduce_kind else red_dims
    acc_names = [f"acc{j}" for j in range(len(region.outputs) - kept_outputs)]
    reduced_vals = list(region.outputs[kept_outputs:])
    for acc, v in zip(acc_names, reduced_vals):
        start = "0.0" if reduce_kind == "sum" else "-np.inf"
        acc_dtype = "f64" if reduce_kind == "sum" and v.dtype in ("f32", "f64") else v.dtype
        if acc_dtype.startswith("f"):
            init = f"{np_name(acc_dtype)}({start})"
        else:
            init = (
                f"{np_name(acc_dtype)}(0)" if reduce_kind == "sum" else f"np.iinfo({np_name(acc_dtype)}).min"
            )
        body.append(f"{IDENT * depth}{acc} = {init}")
    for j, d in enumerate(loop_dims):
        loop = "prange" if parallel and j == 0 and not reduce_kind else "range"
        body.append(f"{IDENT * depth}for {idx[d]} in {loop}({shape[d]}):")
        depth += 1
    for i, (v, arg) in enumerate(zip(region.inputs, node.inputs)):
        if arg.shape == ():
            env[v] = ins[i]
        else:
            padded = (1,) * (rank - len(arg.shape)) + arg.shape  # the driver passes a reshaped view
            sub = ", ".join("0" if padded[d] == 1 and shape[d] != 1 else idx[d] for d in range(rank))
            env[v] = f"x{i}"
            body.append(f"{IDENT * depth}x{i} = {ins[i]}[{sub}]")
    for n in region.nodes:
        if n.op == "constant":
            continue
        target = f"t{len(env)}"
        body.append(f"{IDENT * depth}{target} = {_scalar_expr(n, [env[u] for u in n.inputs])}")
        env[n.out] = target
    full_index = ", ".join(idx)
    for j, v in enumerate(region.outputs[:kept_outputs]):
        body.append(f"{IDENT * depth}{outs[j]}[{full_index}] = {env[v]}")
    for acc, v in zip(acc_names, reduced_vals):
        if reduce_kind == "sum":
            body.append(f"{IDENT * depth}{acc} += {env[v]}")
        else:  # NaN propagates as in np.max
            body.append(f"{IDENT * depth}if {env[v]} > {acc} or {env[v]} != {env[v]}:")
            body.append(f"{IDENT * (depth + 1)}{acc} = {env[v]}")
    if reduce_kind:
        depth = 2 if kept_dims else 1
        out_index = ", ".join("0" if d in axes else idx[d] for d in range(rank))
        for j, (acc, v) in enumerate(zip(acc_names, reduced_vals)):
            value = acc if v.dtype in ("f64", "i64") else f"{np_name(v.dtype)}({acc})"
            body.append(f"{IDENT * depth}{outs[kept_outputs + j]}[{out_index}] = {value}")
    return "\n".join(lines + body) + "\n"
