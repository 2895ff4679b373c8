"""Loop kernels for the Numba backend: a fused node becomes one ``@njit`` function that walks
its iteration space once, evaluating the region per element (broadcasting by indexing size-1
dimensions at 0) and, for a fused reduction, accumulating in the same pass.

Outer loops are ``prange`` (parallel) when the iteration space is large enough to amortise
the thread pool's start; float32 stays float32 (constants are typed); float32 sums
accumulate in float64 and round once when written.

exp, tanh and sigmoid call the vectorisable helpers of ``fastmath`` (no vector math library
in pip's Numba)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bpir.ir import Node, Value
from bpir.types import TensorType, is_float

from ..array_api import dtype_of, literal, scalar_ops
from .fastmath import POLYNOMIAL

# below this much work (elements, a transcendental counting TRANSCENDENTAL_COST), thread start-up
# and contention with spinning BLAS threads (2 cores) cost more than they save
PARALLEL_MIN_WORK = 1 << 22
TRANSCENDENTAL = {"exp", "log", "log1p", "expm1", "tanh", "sigmoid", "sin", "cos", "erf", "pow"}
TRANSCENDENTAL_COST = 16
IDENT = "    "

# op -> scalar source in a loop: NumPy's functions, which Numba compiles for scalars; a group
# using signbit or nextafter (not looped) runs as NumPy calls in the driver
SCALAR = {op: s for op, s in scalar_ops("np").items() if op not in ("signbit", "nextafter")}
LOOPABLE_DTYPES = {
    "f32",
    "f64",
    "i32",
    "i64",
    "bool",
}  # no float16 arithmetic in Numba on CPU


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
        return f"{dtype_of(dtype)}({args[0]})" if src != dtype else args[0]
    if (dtype, node.op) in POLYNOMIAL:
        return POLYNOMIAL[dtype, node.op].format(*args)
    expr = SCALAR[node.op].format(*args, one=f"{dtype_of(dtype)}(1)")
    # integer ops narrower than int64 are widened by Numba: cast back so the dtype is exact
    return f"{dtype_of(dtype)}({expr})" if dtype == "i32" else expr


NUMPY_NONFINITE = {"inf": "np.inf", "-inf": "-np.inf", "nan": "np.nan"}


def constant_literal(value, dtype: str) -> str:
    v = value.item()
    if dtype == "bool":
        return literal(bool(v))
    return f"{dtype_of(dtype)}({literal(v, NUMPY_NONFINITE)})"


@dataclass(frozen=True)
class Remap:
    """An input the driver passes as the array a slice or pad was taken of: element ``i`` is
    read at ``start + i * step`` there, and is ``fill`` where that lies outside ``extent``
    (pads; None for slices). A column block of a matmul's result is then read from the
    contiguous result (vectorised) rather than as a strided view, and a gradient's pad is
    never allocated."""

    start: tuple[int, ...]
    step: tuple[int, ...]
    extent: tuple[int, ...] | None = None
    fill: float = 0.0


def kernel_source(name: str, node: Node, remaps: dict[int, Remap] | None = None) -> str:
    """The ``@njit`` function for a fused node: parameters are the node's inputs (already
    reshaped to the iteration rank; rank-0 inputs as scalars; ``remaps``' inputs as the
    arrays they were sliced or padded from), its output buffers, then the accumulator arrays
    ``accumulators(node)`` describes (scratch, filled with their start values here).

    Loops run in memory order. Reductions over trailing axes keep scalar accumulators per
    output position (parallel over positions); reductions over leading axes (e.g. a bias
    gradient's column sums) accumulate into a small array while walking rows, so memory is
    still read in order."""
    a, k = node.attrs, _Kernel(node, remaps or {})
    shape, rank = a["shape"], len(a["shape"])
    cost = 1 + TRANSCENDENTAL_COST * sum(n.op in TRANSCENDENTAL for n in a["region"].nodes)
    parallel = math.prod(shape) * cost >= PARALLEL_MIN_WORK
    body = k.extents() + k.constants()
    if not a["reduce"]:
        body += k.loops(range(rank), parallel, 1)
        body += k.element(1 + rank)
    elif not k.scratch:
        body += k.trailing_reduction(parallel)
    else:
        body += k.leading_reduction(parallel)
    parallel = any("prange(" in line for line in body)  # some reductions have no parallel loop
    lines = [
        # error_model: NumPy's x/0, vectorisable; no_cfunc_wrapper: kernels are called from the
        # Python driver only, and the first-class-function wrapper nearly doubles compile time
        f"@njit(parallel={parallel}, cache=True, error_model='numpy', no_cfunc_wrapper=True)",
        f"def {name}({', '.join(k.ins + k.outs + k.scratch)}):",
    ]
    return "\n".join(lines + body) + "\n"


COALESCE_MIN_RANK = 3  # NCHW maps: inner loops 7-28 long; below, reshaping costs more than it gains


@dataclass(frozen=True)
class Coalesced:
    """A fused elementwise node seen over fewer dimensions: ``node`` (a stand-in, for the kernel
    source only) iterates ``node.attrs["shape"]``, its inputs of ``in_shapes`` (None: a scalar)."""

    node: Node
    in_shapes: list[tuple[int, ...] | None]


def coalesce(node: Node) -> Coalesced | None:
    """Merge adjacent dimensions that every input either spans or is broadcast along alike, so
    the kernel runs longer inner loops and kernels differing only in rank share one body (the
    SGD update of a conv weight and of a bias: one compile). None when nothing merges, the node
    reduces, or its rank is under ``COALESCE_MIN_RANK``. The driver passes reshaped views."""
    a = node.attrs
    shape = a["shape"]
    if a["reduce"] or len(shape) < COALESCE_MIN_RANK:
        return None
    rank = len(shape)
    padded = [(1,) * (rank - len(v.shape)) + v.shape if v.shape else None for v in node.inputs]
    groups: list[list[int]] = []
    last = None  # which inputs are broadcast along the current group (None: no extent > 1 yet)
    for d, n in enumerate(shape):
        spans = None if n == 1 else tuple(p is not None and p[d] == 1 for p in padded)
        if groups and (spans is None or last is None or spans == last):
            groups[-1].append(d)
            last = last if spans is None else spans
        else:
            groups.append([d])
            last = spans
    if len(groups) == rank:
        return None
    new_shape = tuple(math.prod(shape[d] for d in g) for g in groups)
    in_shapes = [None if p is None else tuple(math.prod(p[d] for d in g) for g in groups) for p in padded]
    inputs = [v if s is None else Value(TensorType(s, v.dtype)) for v, s in zip(node.inputs, in_shapes)]
    outputs = [Value(TensorType(new_shape, v.dtype)) for v in node.outputs]
    stand_in = Node(node.op, inputs, {**a, "shape": new_shape}, outputs, node.loc)
    return Coalesced(stand_in, in_shapes)


def _trailing(node: Node) -> bool:
    """A reduction over the last axes only (one scalar accumulator per output position)."""
    axes, rank = node.attrs["axes"], len(node.attrs["shape"])
    return max(axes) - min(axes) + 1 == len(axes) and max(axes) == rank - 1


def accumulators(node: Node) -> list[tuple[tuple[int, ...], str]]:
    """(shape, dtype) of each accumulator array a fused reduction over leading axes takes as an
    argument: the driver passes workspace scratch (``np.full`` inside a kernel is one more Numba
    compile per process and array rank, 0.2-0.3 s here; in the driver, 3-4 us a call), which
    the kernel fills with the start value."""
    a = node.attrs
    if not a["reduce"] or _trailing(node):
        return []
    k = _Kernel(node, {})
    shape = tuple(1 if d in k.axes else n for d, n in enumerate(a["shape"]))
    return [(shape, k.acc_dtype(v)) for v in k.reduced]


def _offset(index: str, start: int, step: int) -> str:
    """``start + index * step`` without the no-op terms."""
    scaled = index if step == 1 or index == "0" else f"{index} * {literal(step)}"
    if start == 0:
        return scaled
    if scaled == "0":
        return literal(start)
    return f"{scaled} - {literal(-start)}" if start < 0 else f"{literal(start)} + {scaled}"


class _Kernel:
    """Pieces of a loop kernel's source for one fused node."""

    def __init__(self, node: Node, remaps: dict[int, Remap]):
        a = node.attrs
        self.remaps = remaps
        self.node, self.shape, self.region = node, a["shape"], a["region"]
        self.kind, self.axes = a["reduce"], set(a["axes"]) if a["reduce"] else set()
        self.kept_outputs = a["unreduced"] if a["reduce"] else len(self.region.outputs)
        self.ins = [f"in{i}" for i in range(len(node.inputs))]
        self.outs = [f"out{i}" for i in range(len(node.outputs))]
        self.idx = [f"i{d}" for d in range(len(self.shape))]
        self.env: dict[Value, str] = {}
        self.reduced = list(self.region.outputs[self.kept_outputs :])
        leading = bool(self.kind) and not _trailing(node)
        self.scratch = [f"acc{j}" for j in range(len(self.reduced))] if leading else []
        self.sources = self._extent_sources()

    def _extent_sources(self) -> dict[int, str]:
        """Where each dimension's extent can be read at run time: a full-shape output, else an
        input not broadcast along it. Loops bounded by these rather than by literals are not
        unrolled by LLVM (compile time falls by half or more) and let kernels that differ only
        in shapes share one body (one compile)."""
        full = [f"{o}.shape" for o in self.outs[: self.kept_outputs]]
        sources = {}
        for d, n in enumerate(self.shape):
            if n == 1:
                continue
            if full:
                sources[d] = f"{full[0]}[{d}]"
                continue
            rank = len(self.shape)
            for i, (arg, name) in enumerate(zip(self.node.inputs, self.ins)):
                if (
                    i not in self.remaps
                    and arg.shape
                    and ((1,) * (rank - len(arg.shape)) + arg.shape)[d] == n
                ):
                    sources[d] = f"{name}.shape[{d}]"
                    break
        return sources

    def extents(self) -> list[str]:
        """Bind the run-time extents (``n0 = out0.shape[0]``)."""
        return [f"{IDENT}n{d} = {src}" for d, src in self.sources.items()]

    def n(self, d: int) -> str:
        """Dimension ``d``'s extent in the source: its run-time name, else its literal."""
        return f"n{d}" if d in self.sources else literal(self.shape[d])

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
            out.append(f"{IDENT * (depth + j)}for {self.idx[d]} in {loop}({self.n(d)}):")
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
            at = ["0" if padded[d] == 1 and self.shape[d] != 1 else self.idx[d] for d in range(rank)]
            self.env[v] = f"x{i}"
            lines.append(f"{pad}x{i} = {self._read(i, at, arg)}")
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

    def _read(self, i: int, at: list[str], arg: Value) -> str:
        """Input ``i`` at index ``at``: through its remap, if any (a pad's fill outside)."""
        remap = self.remaps.get(i)
        if remap is None:
            return f"{self.ins[i]}[{', '.join(at)}]"
        src = [_offset(j, start, step) for j, start, step in zip(at, remap.start, remap.step)]
        read = f"{self.ins[i]}[{', '.join(src)}]"
        if remap.extent is None:
            return read
        inside = []
        for j, start, n, out in zip(src, remap.start, remap.extent, arg.shape):
            if start < 0:
                inside.append(f"0 <= {j}")
            if start + out > n:
                inside.append(f"{j} < {literal(n)}")
        fill = constant_literal(np.asarray(remap.fill), arg.dtype)
        return f"{read} if {' and '.join(inside)} else {fill}" if inside else read

    def acc_dtype(self, v: Value) -> str:
        return "f64" if self.kind == "sum" and v.dtype in ("f32", "f64") else v.dtype

    def start(self, v: Value) -> str:
        dt = dtype_of(self.acc_dtype(v))
        if self.kind == "sum":
            return f"{dt}(0)"
        return f"{dt}(-np.inf)" if is_float(v.dtype) else f"np.iinfo({dt}).min"

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
            positions = " * ".join(self.n(d) for d in kept)
            lines.append(f"{IDENT}for p in {'prange' if parallel else 'range'}({positions}):")
            depth, rest = 2, "p"
            for j, d in enumerate(reversed(kept)):
                last = j == len(kept) - 1
                lines.append(f"{IDENT * 2}{self.idx[d]} = {rest}" + ("" if last else f" % {self.n(d)}"))
                if not last:
                    lines.append(f"{IDENT * 2}{rest}_ = {rest} // {self.n(d)}")
                    rest += "_"
        accs = [f"acc{j}" for j in range(len(self.reduced))]
        lines += [f"{IDENT * depth}{acc} = {self.start(v)}" for acc, v in zip(accs, self.reduced)]
        red = sorted(self.axes)
        lines += self.loops(red, False, depth)
        inner = depth + len(red)
        lines += self.element(inner)
        for acc, v in zip(accs, self.reduced):
            lines += self._combine(acc, self.env[v], IDENT * inner)
        at = ", ".join("0" if d in self.axes else self.idx[d] for d in range(rank))
        for j, (acc, v) in enumerate(zip(accs, self.reduced)):
            value = acc if self.acc_dtype(v) == v.dtype else f"{dtype_of(v.dtype)}({acc})"
            lines.append(f"{IDENT * depth}{self.outs[self.kept_outputs + j]}[{at}] = {value}")
        return lines

    def leading_reduction(self, parallel: bool) -> list[str]:
        """Walk every element in memory order, accumulating into the accumulator arguments
        (the output's shape, filled with the start value); parallel only over a leading kept
        axis (no two threads update one accumulator). Axes reduced after the last kept one (a
        conv bias gradient's H and W) go to a scalar first and then once into the array: a
        register chain, not a store and reload per element."""
        rank, accs, lines = len(self.shape), self.scratch, []
        for j, (acc, v) in enumerate(zip(accs, self.reduced)):
            lines += [f"{IDENT}fill{j} = {acc}.reshape(-1)",
                      f"{IDENT}for p in range(fill{j}.shape[0]):",
                      f"{IDENT * 2}fill{j}[p] = {self.start(v)}"]  # fmt: skip
        at = ", ".join("0" if d in self.axes else self.idx[d] for d in range(rank))
        split = 1 + max(d for d in range(rank) if d not in self.axes)  # loops over kept axes
        lines += self.loops(range(split), parallel and 0 not in self.axes, 1)
        targets = [f"{acc}[{at}]" for acc in accs]
        partials = [f"part{j}" for j in range(len(accs))] if split < rank else []
        lines += [f"{IDENT * (1 + split)}{p} = {self.start(v)}" for p, v in zip(partials, self.reduced)]
        lines += self.loops(range(split, rank), False, 1 + split)
        lines += self.element(1 + rank)
        for target, v in zip(partials or targets, self.reduced):
            lines += self._combine(target, self.env[v], IDENT * (1 + rank))
        for target, part in zip(targets, partials):
            lines += self._combine(target, part, IDENT * (1 + split))
        for j, acc in enumerate(accs):
            out = self.outs[self.kept_outputs + j]
            lines += [f"{IDENT}flat_out, flat_acc = {out}.reshape(-1), {acc}.reshape(-1)",
                      f"{IDENT}for p in range(flat_acc.shape[0]):",
                      f"{IDENT * 2}flat_out[p] = flat_acc[p]"]  # fmt: skip
        return lines
