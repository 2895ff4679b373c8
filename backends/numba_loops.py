"""Loop kernels for the Numba backend: a fused node becomes one ``@njit`` function that walks
its iteration space once, evaluating the region per element (broadcasting by indexing size-1
dimensions at 0) and, for a fused reduction, accumulating in the same pass.

Outer loops are ``prange`` (parallel) when the iteration space is large enough to amortise
the thread pool's start; float32 stays float32 (constants are typed); float32 sums
accumulate in float64 and round once when written.

pip's Numba has no vector math library, so ``np.exp``/``np.tanh`` in a loop are scalar libm
calls that block vectorisation. For float32, exp, tanh and sigmoid are emitted as calls to
the helpers of ``MATH_F32`` instead: Cephes' float32 polynomials (range reduction by bit
moves, then only multiply-adds and one division), which LLVM vectorises 16 lanes wide on
AVX-512. Error bound, tested over the float32 range (inf, nan, overflow, subnormals, -0.0
included) against float64 NumPy rounded to float32: exp and tanh at most 1 ulp, sigmoid at
most 2 ulp. float64 keeps NumPy's (libm) functions."""

from __future__ import annotations

import math

from bpir.ir import Node, Value
from bpir.types import to_numpy_dtype

# below this, thread start-up and contention with spinning BLAS threads (2 cores) cost more than they save
PARALLEL_MIN_ELEMENTS = 1 << 22
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
LOOPABLE_DTYPES = {
    "f32",
    "f64",
    "i32",
    "i64",
    "bool",
}  # no float16 arithmetic in Numba on CPU
KERNEL_HEADER_IMPORTS = (
    "import math\n\nimport numpy as np\nfrom numba import njit, prange, types\n"
    "from numba.extending import intrinsic\n"
)
F32_MATH = {
    "exp": "exp_f32({0})",
    "tanh": "tanh_f32({0})",
    "sigmoid": "sigmoid_f32({0})",
}
MATH_F32 = """
f32 = np.float32


@intrinsic
def f32_bits(typingctx, x):
    # the bits of a float32 as an int32 (a register move; it vectorises)
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))

    return types.int32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, x):
    # the float32 whose bits are an int32
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@njit(inline="always")
def exp_core(x):
    # exp of a float32 that is not NaN (Cephes expf): x = k*ln2 + r with k an integer and
    # |r| <= ln2/2 (ln2 in two parts, so k*ln2 is exact enough), exp(r) by a degree-6 minimax
    # polynomial, and 2**k built in the exponent bits in two halves (no overflow of the scale
    # before the product, subnormal results rounded once)
    x = min(max(x, f32(-104.0)), f32(89.0))  # beyond, float32 results no longer change
    t = x * f32(1.4426950408889634) + f32(12582912.0)  # 1.5 * 2**23: rounds x/ln2 to k
    k = t - f32(12582912.0)
    r = x - k * f32(0.693359375)
    r = r - k * f32(-2.12194440e-4)
    p = f32(1.9875691500e-4) * r + f32(1.3981999507e-3)
    p = p * r + f32(8.3334519073e-3)
    p = p * r + f32(4.1665795894e-2)
    p = p * r + f32(1.6666665459e-1)
    p = p * r + f32(5.0000001201e-1)
    p = p * (r * r) + r + f32(1.0)
    ki = f32_bits(t) - np.int32(0x4B400000)  # t's low bits hold k
    half = ki >> 1
    return p * bits_f32((half + np.int32(127)) << 23) * bits_f32((ki - half + np.int32(127)) << 23)


@njit(inline="always")
def exp_f32(x):
    return exp_core(x) if x == x else x


@njit(inline="always")
def sigmoid_f32(x):
    e = exp_core(-abs(x))  # never overflows: 1 / (1 + e) or, for x < 0, e / (1 + e)
    return (f32(1.0) if x >= 0 else e) / (f32(1.0) + e) if x == x else x


@njit(inline="always")
def tanh_f32(x):
    a = abs(x)
    if a < f32(0.625):  # Cephes tanhf: odd minimax polynomial, no cancellation near 0
        s = x * x
        p = f32(-5.70498872745e-3) * s + f32(2.06390887954e-2)
        p = p * s - f32(5.37397155531e-2)
        p = p * s + f32(1.33314422036e-1)
        p = p * s - f32(3.33332819422e-1)
        return p * s * x + x if a != 0 else x  # keeps the sign of -0.0
    z = f32(1.0) - f32(2.0) / (exp_core(a + a) + f32(1.0))
    return (z if x > 0 else -z) if x == x else x
"""


def np_name(dtype: str) -> str:
    return "np." + to_numpy_dtype(dtype).name


def loopable(node: Node) -> bool:
    region = node.attrs["region"]
    values = [
        *node.inputs,
        *node.outputs,
        *region.inputs,
        *(v for n in region.nodes for v in n.outputs),
    ]
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
    reshaped to the iteration rank; rank-0 inputs as scalars) then its output buffers.

    Loops run in memory order. Reductions over trailing axes keep scalar accumulators per
    output position (parallel over positions); reductions over leading axes (e.g. a bias
    gradient's column sums) accumulate into a small array while walking rows, so memory is
    still read in order."""
    a, k = node.attrs, _Kernel(node)
    shape, rank = a["shape"], len(a["shape"])
    parallel = math.prod(shape) >= PARALLEL_MIN_ELEMENTS
    lines = [
        f"@njit(parallel={parallel}, cache=True)",
        f"def {name}({', '.join(k.ins + k.outs)}):",
    ]
    lines += k.constants()
    if not a["reduce"]:
        lines += k.loops(range(rank), parallel, 1)
        lines += k.element(1 + rank)
    elif max(a["axes"]) - min(a["axes"]) + 1 == len(a["axes"]) and max(a["axes"]) == rank - 1:
        lines += k.trailing_reduction(parallel)
    else:
        lines += k.leading_reduction(parallel)
    return "\n".join(lines) + "\n"


class _Kernel:
    """Pieces of a loop kernel's source for one fused node."""

    def __init__(self, node: Node):
        a = node.attrs
        self.node, self.shape, self.region = node, a["shape"], a["region"]
        self.kind, self.axes = a["reduce"], set(a["axes"]) if a["reduce"] else set()
        self.kept_outputs = a["unreduced"] if a["reduce"] else len(self.region.outputs)
        self.ins = [f"in{i}" for i in range(len(node.inputs))]
        self.outs = [f"out{i}" for i in range(len(node.outputs))]
        self.idx = [f"i{d}" for d in range(len(self.shape))]
        self.env: dict[Value, str] = {}
        self.reduced = list(self.region.outputs[self.kept_outputs :])

    def constants(self) -> list[str]:
        """Region constants, hoisted out of the loops as typed scalars."""
        lines = []
        for n in self.region.nodes:
            if n.op == "constant":
                self.env[n.out] = f"k{len(lines)}"
                lines.append(f"{IDENT}k{len(lines)} = {constant_literal(n.attrs['value'], n.out.dtype)}")
        return lines

    def loops(self, dims, parallel: bool, depth: int) -> list[str]:
        out = []
        for j, d in enumerate(dims):
            loop = "prange" if parallel and j == 0 else "range"
            out.append(f"{IDENT * (depth + j)}for {self.idx[d]} in {loop}({self.shape[d]}):")
        return out

    def element(self, depth: int) -> list[str]:
        """Read the inputs at the current index, evaluate the region, store full outputs."""
        rank, pad = len(self.shape), IDENT * depth
        lines = []
        for i, (v, arg) in enumerate(zip(self.region.inputs, self.node.inputs)):
            if arg.shape == ():
                self.env[v] = self.ins[i]
                continue
            padded = (1,) * (rank - len(arg.shape)) + arg.shape  # the driver passes a reshaped view
            sub = ", ".join(
                "0" if padded[d] == 1 and self.shape[d] != 1 else self.idx[d] for d in range(rank)
            )
            self.env[v] = f"x{i}"
            lines.append(f"{pad}x{i} = {self.ins[i]}[{sub}]")
        for n in self.region.nodes:
            if n.op != "constant":
                target = f"t{len(self.env)}"
                lines.append(f"{pad}{target} = {_scalar_expr(n, [self.env[u] for u in n.inputs])}")
                self.env[n.out] = target
        full = ", ".join(self.idx)
        lines += [
            f"{pad}{self.outs[j]}[{full}] = {self.env[v]}"
            for j, v in enumerate(self.region.outputs[: self.kept_outputs])
        ]
        return lines

    def _acc_dtype(self, v: Value) -> str:
        return "f64" if self.kind == "sum" and v.dtype in ("f32", "f64") else v.dtype

    def _start(self, v: Value) -> str:
        dt = np_name(self._acc_dtype(v))
        if self.kind == "sum":
            return f"{dt}(0)"
        return f"{dt}(-np.inf)" if v.dtype.startswith("f") else f"np.iinfo({dt}).min"

    def _combine(self, acc: str, t: str, pad: str) -> list[str]:
        if self.kind == "sum":
            return [f"{pad}{acc} += {t}"]
        return [
            f"{pad}if {t} > {acc} or {t} != {t}:",
            f"{pad}{IDENT}{acc} = {t}",
        ]  # NaN wins, as in np.max

    def trailing_reduction(self, parallel: bool) -> list[str]:
        """Kept axes lead: one scalar accumulator per output position, positions in parallel."""
        rank = len(self.shape)
        kept = [d for d in range(rank) if d not in self.axes]
        lines, depth = [], 1
        if kept:
            lines.append(
                f"{IDENT}for p in {'prange' if parallel else 'range'}({math.prod(self.shape[d] for d in kept)}):"
            )
            depth, rest = 2, "p"
            for j, d in enumerate(reversed(kept)):
                last = j == len(kept) - 1
                lines.append(f"{IDENT * 2}{self.idx[d]} = {rest}" + ("" if last else f" % {self.shape[d]}"))
                if not last:
                    lines.append(f"{IDENT * 2}{rest}_ = {rest} // {self.shape[d]}")
                    rest += "_"
        accs = [f"acc{j}" for j in range(len(self.reduced))]
        lines += [f"{IDENT * depth}{acc} = {self._start(v)}" for acc, v in zip(accs, self.reduced)]
        red = sorted(self.axes)
        lines += self.loops(red, False, depth)
        inner = depth + len(red)
        lines += self.element(inner)
        for acc, v in zip(accs, self.reduced):
            lines += self._combine(acc, self.env[v], IDENT * inner)
        at = ", ".join("0" if d in self.axes else self.idx[d] for d in range(rank))
        for j, (acc, v) in enumerate(zip(accs, self.reduced)):
            value = acc if self._acc_dtype(v) == v.dtype else f"{np_name(v.dtype)}({acc})"
            lines.append(f"{IDENT * depth}{self.outs[self.kept_outputs + j]}[{at}] = {value}")
        return lines

    def leading_reduction(self, parallel: bool) -> list[str]:
        """Walk every element in memory order, accumulating into arrays of the output's shape;
        parallel only over a leading kept axis (no two threads update one accumulator)."""
        rank = len(self.shape)
        keep_shape = tuple(1 if d in self.axes else n for d, n in enumerate(self.shape))
        accs = [f"acc{j}" for j in range(len(self.reduced))]
        lines = [
            f"{IDENT}{acc} = np.full({keep_shape}, {self._start(v)})" for acc, v in zip(accs, self.reduced)
        ]
        lines += self.loops(range(rank), parallel and 0 not in self.axes, 1)
        pad = IDENT * (1 + rank)
        lines += self.element(1 + rank)
        at = ", ".join("0" if d in self.axes else self.idx[d] for d in range(rank))
        for acc, v in zip(accs, self.reduced):
            lines += self._combine(f"{acc}[{at}]", self.env[v], pad)
        for j, acc in enumerate(accs):
            out = self.outs[self.kept_outputs + j]
            lines += [f"{IDENT}flat_out, flat_acc = {out}.reshape(-1), {acc}.reshape(-1)",
                      f"{IDENT}for p in range(flat_acc.shape[0]):",
                      f"{IDENT * 2}flat_out[p] = flat_acc[p]"]  # fmt: skip
        return lines
