"""Source templates of the CUDA backend's generated kernels: elementwise maps (grid-stride
loops), block tree reductions in shared memory, and tiled shared-memory matmul.

Every kernel takes flat contiguous 1-D device arrays; shapes, strides and offsets are baked
into the source as constants, so index arithmetic is cheap and the kernel reads any strided
view (transposes, broadcasts, slices) without a copy. Scalars are cast to the IR dtype at
every step (``f32(...)`` etc. are kernel globals), so NumPy's result types hold on the GPU."""

from __future__ import annotations

from dataclasses import dataclass, field

from bpir.types import is_float, to_numpy_dtype

from ..array_api import scalar_ops
from . import views as cv

# rounding goes through int64 (math.floor, round): floats from 2**52 up are whole already, and
# inf and NaN stay themselves
# (through float(): the simulator's float32 scalars have no __trunc__)
_WHOLE = "{{0}} if not abs({{0}}) < 4503599627370496.0 else {}(float({{0}}))"

# op -> scalar source in a kernel: the math module's functions (renamed where NumPy's name differs),
# and what CUDA has no function for
SCALAR = scalar_ops(
    "math",
    names={"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh", "arccosh": "acosh",
           "arctanh": "atanh", "atan2": "atan2"},
    sign="{one} if {0} > 0 else (-{one} if {0} < 0 else {0})",
    pow="{0} ** {1}",
    # NaN propagates as in NumPy: a NaN operand wins
    maximum="{0} if {0} > {1} or {0} != {0} else {1}",
    minimum="{0} if {0} < {1} or {0} != {0} else {1}",
    floor=_WHOLE.format("math.floor"), ceil=_WHOLE.format("math.ceil"),
    trunc=_WHOLE.format("math.trunc"), rint=_WHOLE.format("round"),
    signbit="math.copysign({one}, {0}) < 0",
    remainder="{0} % {1}",
    logaddexp="max({0}, {1}) + math.log1p(math.exp(-abs({0} - {1})))",
)  # fmt: skip
SCALAR_OPS = set(SCALAR) | {"cast"}
ACC = {"f16": "f32"}  # accumulate half precision in single


def scalar_expr(op: str, args: list[str], in_dtype: str, out_dtype: str) -> str:
    """Kernel source of one scalar op, cast to its IR result dtype."""
    one = cv.literal(1, in_dtype) if in_dtype != "bool" else "1"
    if op in SCALAR:
        expr = SCALAR[op].format(*args, one=one)
    elif op == "cast" and out_dtype == "bool":
        return f"{args[0]} != 0"
    elif op == "cast":
        expr = args[0]
    else:
        raise NotImplementedError(f"op {op!r} has no scalar form in the numba-cuda backend")
    return f"({expr})" if out_dtype == "bool" else f"{out_dtype}({expr})"


@dataclass
class Body:
    """The scalar code of one kernel: buffer parameters it reads and statements per element."""

    params: dict[cv.Buffer, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    count: int = 0

    def param(self, buf: cv.Buffer) -> str:
        if buf not in self.params:
            self.params[buf] = f"p{len(self.params)}"
        return self.params[buf]

    def var(self, prefix: str = "t") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def read(self, ref: cv.Ref, idx: list[str]) -> str:
        """A scalar variable holding element ``idx`` of ``ref``, or a literal."""
        if isinstance(ref, cv.Literal):
            return cv.literal(ref.value, ref.dtype)
        v = self.var("a")
        self.lines.append(f"{v} = {self.param(ref.buf)}[{cv.offset(ref, idx)}]")
        return v

    def emit(self, expr: str) -> str:
        v = self.var()
        self.lines.append(f"{v} = {expr}")
        return v


@dataclass
class Kernel:
    """One generated kernel: its source, parameters in call order and launch configuration."""

    name: str
    source: str  # "" for a library call (cuBLAS), which has no kernel source
    params: list[cv.Buffer]
    launch: str  # "[grid, block]"
    binding: str = ""  # the driver's callable for a library call; kernels get a launcher

    def signature(self) -> str:
        """Numba signature for ahead-of-time compilation (``compile_ptx``)."""
        types = ", ".join(f"{_numba_type(b.dtype)}[::1]" for b in self.params)
        return f"void({types})"


def _numba_type(dtype: str) -> str:
    return {"bool": "boolean"}.get(dtype, to_numpy_dtype(dtype).name)


def _header(name: str, outs: list[str], body: Body, comment: list[str]) -> list[str]:
    params = ", ".join(outs + list(body.params.values()))
    return ["@cuda.jit", f"def {name}({params}):"] + [f"    # {c}" for c in comment]


def _indent(lines: list[str], n: int) -> list[str]:
    return [" " * (4 * n) + line for line in lines]


def map_kernel(name: str, shape, body: Body, results: list[str], outs: list[cv.Buffer],
               idx_lines: list[str], threads: int, blocks: int, comment: list[str]) -> Kernel:  # fmt: skip
    """Grid-stride loop over the ``shape`` iteration space; output k gets ``results[k]``."""
    n = max(1, int(_size(shape)))
    out_names = [f"out{k}" for k in range(len(outs))]
    lines = _header(name, out_names, body, comment)
    lines.append(f"    for i in range(cuda.grid(1), {n}, cuda.gridsize(1)):")
    stores = [f"{o}[i] = {r}" for o, r in zip(out_names, results)]
    lines += _indent(idx_lines + body.lines + stores, 2)
    grid = max(1, min(blocks, -(-n // threads)))
    return Kernel(name, "\n".join(lines), outs + list(body.params), f"[{grid}, {threads}]")


def reduce_kernel(name: str, shape, axes, kind: str, body: Body, value: str, out: cv.Buffer,
                  acc: str, threads: int, chunks: int, blocks: int,
                  full: tuple[list[cv.Buffer], list[str]] = ([], [])) -> Kernel:  # fmt: skip
    """One block per (output, chunk): each thread folds terms t, t+B, t+2B, ... of its chunk in
    sequence, then a fixed pairwise tree over shared memory (slot t takes slot t+w for
    w = B/2, B/4, ..., 1). The order depends only on B and the chunking, never on timing.
    ``full`` outputs (a fused group's unreduced results) are stored as each term is visited."""
    kept = tuple(d for i, d in enumerate(shape) if i not in axes)
    red = tuple(shape[a] for a in axes)
    m, r = max(1, int(_size(kept))), int(_size(red))
    step = -(-r // chunks)
    m_lines, m_idx = cv.unravel("m", kept, "k")
    r_lines, r_idx = cv.unravel("r", red, "j")
    it_kept, it_red = iter(m_idx), iter(r_idx)
    src = [next(it_red) if i in axes else next(it_kept) for i in range(len(shape))]
    rename = [f"i{d} = {v}" for d, v in enumerate(src)]
    arg = kind == "argmax"
    start = {"sum": 0, "prod": 1}
    ident = cv.literal(start.get(kind, float("-inf")), acc) if is_float(acc) else (
        f"{acc}({start[kind]})" if kind in start else f"{acc}({-(2 ** 63) if acc == 'i64' else -(2 ** 31)})")  # fmt: skip
    full_names = [f"full{k}" for k in range(len(full[0]))]
    lin = cv.offset(cv.whole(out, tuple(shape)), [f"i{d}" for d in range(len(shape))])
    stores = [f"{f}[{lin}] = {v}" for f, v in zip(full_names, full[1])]
    lines = _header(name, ["out", *full_names], body, [
        f"{kind} of {tuple(shape)} over axes {tuple(axes)}: {m} outputs x {r} terms in {chunks} chunk(s)",
        "order: thread t folds terms t, t+B, ... of its chunk in sequence, then a fixed pairwise",
        "tree over shared memory (slot t takes slot t+w, w = B/2 .. 1): deterministic"])  # fmt: skip
    lines += [f"    sv = cuda.shared.array({threads}, {acc})"]
    lines += [f"    si = cuda.shared.array({threads}, i64)"] if arg else []
    lines += ["    t = cuda.threadIdx.x",
              f"    for blk in range(cuda.blockIdx.x, {m * chunks}, cuda.gridDim.x):",
              f"        m = blk // {chunks}",
              f"        c = blk % {chunks}",
              f"        best = {ident}"]  # fmt: skip
    lines += [f"        bi = {r}"] if arg else []
    lines += [f"        for r in range(c * {step} + t, min(c * {step} + {step}, {r}), {threads}):"]
    inner = m_lines + r_lines + rename + body.lines + stores
    if arg:
        inner += [f"{_take('v', 'r', 'best', 'bi')}:", "    best = v", "    bi = r"]
        inner.insert(len(inner) - 3, f"v = {acc}({value})")
    else:
        inner += [f"best = {_combine(kind, 'best', f'{acc}({value})', acc)}"]
    lines += _indent(inner, 3)
    lines += ["        sv[t] = best"] + (["        si[t] = bi"] if arg else [])
    lines += ["        cuda.syncthreads()", f"        w = {threads // 2}", "        while w > 0:",
              "            if t < w:"]  # fmt: skip
    if arg:
        lines += [f"                {_take('sv[t + w]', 'si[t + w]', 'sv[t]', 'si[t]')}:",
                  "                    sv[t] = sv[t + w]", "                    si[t] = si[t + w]"]  # fmt: skip
    else:
        lines += [f"                sv[t] = {_combine(kind, 'sv[t]', 'sv[t + w]', acc)}"]
    res = "si[0]" if arg else f"{out.dtype}(sv[0])" if out.dtype != "bool" else "sv[0] != 0"
    lines += ["            cuda.syncthreads()", "            w //= 2", "        if t == 0:",
              f"            out[blk] = {res}", "        cuda.syncthreads()"]  # fmt: skip
    grid = max(1, min(blocks, m * chunks))
    return Kernel(name, "\n".join(lines), [out, *full[0], *body.params], f"[{grid}, {threads}]")


def _combine(kind: str, a: str, b: str, acc: str) -> str:
    if kind in ("sum", "prod"):
        return f"{acc}({a} {'+' if kind == 'sum' else '*'} {b})"
    return f"{b} if {b} > {a} or {b} != {b} else {a}"  # max: the first NaN wins


def _take(v: str, i: str, best: str, bi: str) -> str:
    """argmax: does (v, i) beat (best, bi)? First maximum wins; NaN beats numbers (NumPy)."""
    return (f"if ({v} != {v} and ({best} == {best} or {i} < {bi})) or "
            f"({best} == {best} and ({v} > {best} or ({v} == {best} and {i} < {bi})))")  # fmt: skip


def matmul_kernel(name: str, a: cv.View, b: cv.View, body: Body, epilogue: list[str], results: list[str],
                  outs: list[cv.Buffer], out_shape, acc: str, tile: int) -> Kernel:  # fmt: skip
    """C[z] = A[z] @ B[z] in tile x tile blocks staged through shared memory; each thread owns one
    element of C and sums k in increasing order (deterministic). The epilogue (a fused
    elementwise group reading the product as ``acc``) runs before the single store."""
    *batch, m, k = a.shape
    n = b.shape[-1]
    nb = max(1, int(_size(batch)))
    pa, pb = body.param(a.buf), body.param(b.buf)
    z_lines, z_idx = cv.unravel("z", tuple(batch), "z")
    a_base = cv.offset(cv.View(a.buf, tuple(batch), a.strides[:-2], a.offset), z_idx)
    b_base = cv.offset(cv.View(b.buf, tuple(batch), b.strides[:-2], b.offset), z_idx)
    (sam, sak), (sbk, sbn) = a.strides[-2:], b.strides[-2:]
    out_names = [f"out{j}" for j in range(len(outs))]
    lines = _header(name, out_names, body, [
        f"{tuple(batch)} batch of ({m}, {k}) @ ({k}, {n}) in {tile}x{tile} shared-memory tiles"])  # fmt: skip
    lines += [f"    sa = cuda.shared.array(({tile}, {tile}), {acc})",
              f"    sb = cuda.shared.array(({tile}, {tile}), {acc})",
              "    tx = cuda.threadIdx.x", "    ty = cuda.threadIdx.y",
              f"    col = cuda.blockIdx.x * {tile} + tx", f"    row = cuda.blockIdx.y * {tile} + ty",
              f"    for z in range(cuda.blockIdx.z, {nb}, cuda.gridDim.z):"]  # fmt: skip
    lines += _indent(z_lines + [f"abase = {a_base}", f"bbase = {b_base}", f"acc = {acc}(0)"], 2)
    lines += [f"        for k0 in range(0, {k}, {tile}):",
              "            ka = k0 + tx", "            kb = k0 + ty",
              f"            sa[ty, tx] = {pa}[abase + row * {sam} + ka * {sak}] if row < {m} and ka < {k} "
              f"else {acc}(0)",
              f"            sb[ty, tx] = {pb}[bbase + kb * {sbk} + col * {sbn}] if kb < {k} and col < {n} "
              f"else {acc}(0)",
              "            cuda.syncthreads()",
              f"            for kk in range({tile}):",
              "                acc += sa[ty, kk] * sb[kk, tx]",
              "            cuda.syncthreads()",
              f"        if row < {m} and col < {n}:",
              f"            i = (z * {m} + row) * {n} + col"]  # fmt: skip
    stores = [f"{o}[i] = {r}" for o, r in zip(out_names, results)]
    lines += _indent(epilogue + stores, 3)
    grid = f"({-(-n // tile)}, {-(-m // tile)}, {min(nb, 65535)})"
    return Kernel(name, "\n".join(lines), outs + list(body.params), f"[{grid}, ({tile}, {tile})]")


def _size(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
