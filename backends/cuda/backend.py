"""Numba CUDA backend: the graph becomes readable ``@cuda.jit`` kernels plus a host driver.

One kernel per fused group or standalone elementwise op (grid-stride loop), per reduction
(block tree reduction, two passes when few outputs have many terms), per matmul (shared-memory
tiles, a following elementwise group fused as epilogue; large ones go to cuBLAS through CuPy
when it is importable, see ``blas``). Layout ops are strided views read by
index arithmetic (see ``views``); conv and pooling lower through their decompositions.
Intermediates live in a device workspace allocated on the first call and reused (buffers whose
lifetimes do not overlap share a slot); host arrays are copied in once per call.
Under Numba's CUDA simulator launches use tiny blocks so the simulated threads stay cheap."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from bpir.ir import Graph, Node, Value
from bpir.lifetimes import VIEW_OPS  # strided views of their input, as the memory plan treats them

from ..array_api import dtype_of, literal
from ..codegen import Emitter, decompose_missing
from . import blas as cuda_blas
from . import host
from . import kernels as ck
from . import views as cv
from .driver import driver_source
from .layout import LayoutOps
from .random import RandomOps
from .runtime import Launch, launch_config, make_runner

# names the generated module binds itself (kernels, launchers, buffers, casts); an input called
# so is renamed
DRIVER_NAMES = re.compile(r"ws|results|workspace|forward|launcher|cublas_matmul|cuda|math|np|INF|NAN"
                          r"|[fi](16|32|64)|[ocb]\d+|k\d+_\w*|launch_\w*")  # fmt: skip
SUPPORTED = (ck.SCALAR_OPS | VIEW_OPS | LayoutOps.OPS | RandomOps.OPS | host.HOST_OPS
             | {"constant", "fused", "reduce_sum", "reduce_max", "reduce_prod", "argmax", "matmul"})  # fmt: skip


@dataclass
class Step:
    kernel: ck.Kernel
    node: Node | None
    writes: list[cv.Buffer]


@dataclass
class Program:
    """Generated source (kernels + driver), its kernels, and how the driver names buffers."""

    source: str
    kernels: list[ck.Kernel]
    inputs: list[Value]
    outputs: list[Value]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    host_calls: list[tuple[Node, list[tuple]]] = field(default_factory=list)  # see ``host``


class _Gen(LayoutOps, RandomOps):
    def __init__(self, graph: Graph, launch: Launch):
        self.graph = graph
        self.launch = launch
        self.em = Emitter(graph)
        self.em.rename_inputs(DRIVER_NAMES)
        self.env: dict[Value, cv.Ref] = {}
        self.steps: list[Step] = []
        self.kernels: dict[str, ck.Kernel] = {}
        self.constants: dict[cv.Buffer, np.ndarray] = {}
        self.node: Node | None = None
        self.nbuf = 0
        self.host_calls: list[tuple[Node, list[tuple]]] = []
        self.blas = cuda_blas.available()
        for v in graph.inputs:
            self.env[v] = cv.whole(cv.Buffer(self.em.name(v), v.type.size, v.dtype), v.shape)
        self.epilogues = self._epilogue_matmuls()

    # -- buffers and kernels -----------------------------------------------------------------

    def new_buffer(self, v_shape, dtype: str) -> cv.Buffer:
        self.nbuf += 1
        return cv.Buffer(f"b{self.nbuf}", max(1, int(np.prod(v_shape, dtype=np.int64))), dtype)

    def add(self, kernel: ck.Kernel, writes: list[cv.Buffer]) -> None:
        """Register a kernel (deduplicated by its source, a library call by its binding) and its
        launch as the next step."""
        text = kernel.source or kernel.binding
        key = hashlib.sha1(text.replace(kernel.name, "KERNEL").encode()).hexdigest()
        known = self.kernels.get(key)
        if known is None:
            self.kernels[key] = kernel
        else:
            kernel = ck.Kernel(known.name, known.source, kernel.params, kernel.launch, known.binding)
        self.steps.append(Step(kernel, self.node, writes))

    def kname(self, what: str) -> str:
        return f"k{len(self.kernels) + 1}_{what}"

    def map(self, shape, body: ck.Body, results: list[str], dtypes: list[str], what: str,
            idx_lines: list[str], comment: list[str]) -> list[cv.View]:  # fmt: skip
        outs = [self.new_buffer(shape, d) for d in dtypes]
        L = self.launch
        self.add(ck.map_kernel(self.kname(what), shape, body, results, outs, idx_lines,
                               L.threads, L.blocks, comment), outs)  # fmt: skip
        return [cv.whole(b, shape) for b in outs]

    def materialize(self, ref: cv.Ref) -> cv.View:
        body = ck.Body()
        idx_lines, idx = cv.unravel("i", ref.shape, "i")
        val = body.read(ref, idx)
        return self.map(ref.shape, body, [val], [ref.dtype], "copy", idx_lines, ["strided copy"])[0]

    # -- the walk ----------------------------------------------------------------------------

    def run(self) -> None:
        for node in self.graph.nodes:
            self.node = node
            if node in self.epilogues:  # emitted with its epilogue, at the fused node
                continue
            outs = self.lower(node)
            self.env.update(zip(node.outputs, outs))
        self.node = None

    def lower(self, node: Node) -> list[cv.Ref]:
        op, a = node.op, node.attrs
        if op == "constant":
            return [self.constant(a["value"], node.out.dtype)]
        if op in VIEW_OPS:
            return [self.view(node)]
        if op in LayoutOps.OPS:
            return [self.layout(node)]
        if op in RandomOps.OPS:
            return [self.random(node)]
        if op == "fused" and a["reduce"]:
            return self.reduce(node, a["reduce"], a["shape"], a["axes"], self.region_producer(node))
        if op in ("reduce_sum", "reduce_max", "reduce_prod", "argmax"):
            axes = (a["axis"],) if op == "argmax" else a["axes"]
            x = self.env[node.inputs[0]]
            return self.reduce(node, op.removeprefix("reduce_"), x.shape, axes, _reader(x))
        if op in host.HOST_OPS:
            return self.on_host(node)
        if op == "matmul":
            return self.matmul(node, None)
        if op == "fused":
            mm = next((m for m, f in self.epilogues.items() if f is node), None)
            if mm is not None:
                return self.matmul(mm, node)
            return self.elementwise(node, node.attrs["shape"], self.region_producer(node))
        return self.elementwise(node, node.out.shape, self.op_producer(node))

    def constant(self, value: np.ndarray, dtype: str) -> cv.Ref:
        flat = value.reshape(-1)
        if flat.size and np.all(flat == flat[0]) and not np.isnan(flat[0]):
            return cv.Literal(flat[0].item(), value.shape, dtype)
        buf = self.new_buffer(value.shape, dtype)
        self.constants[buf] = np.ascontiguousarray(value).reshape(-1)
        return cv.whole(buf, value.shape)

    def view(self, node: Node) -> cv.Ref:
        x, a = self.env[node.inputs[0]], node.attrs
        if node.op == "broadcast_to":
            return cv.broadcast(x, a["shape"])
        if node.op == "transpose":
            return cv.transpose(x, a["perm"])
        if node.op == "slice":
            return cv.slice_(x, a["start"], a["stop"], a["step"])
        out = cv.reshape(x, node.out.shape)
        return out if out is not None else cv.reshape(self.materialize(x), node.out.shape)

    # -- scalar producers: emit code computing a node's scalar results at index ``idx`` ------

    def region_producer(self, node: Node):
        region, shape = node.attrs["region"], node.attrs["shape"]
        # an epilogue's matmul product is not in env: it is ``given`` as the accumulator
        refs = [cv.broadcast(self.env[v], shape) if v in self.env else None for v in node.inputs]

        def produce(body: ck.Body, idx: list[str], given: dict[int, str] | None = None) -> list[str]:
            given = given or {}
            env = {v: given[k] if k in given else body.read(r, idx)
                   for k, (v, r) in enumerate(zip(region.inputs, refs))}  # fmt: skip
            for n in region.nodes:
                if n.op == "constant":
                    env[n.out] = cv.literal(n.attrs["value"].item(), n.out.dtype)
                    continue
                args = [env[v] for v in n.inputs]
                env[n.out] = body.emit(ck.scalar_expr(n.op, args, n.inputs[0].dtype, n.out.dtype))
            return [env[v] for v in region.outputs]

        return produce

    def op_producer(self, node: Node):
        refs = [cv.broadcast(self.env[v], node.out.shape) for v in node.inputs]

        def produce(body: ck.Body, idx: list[str]) -> list[str]:
            args = [body.read(r, idx) for r in refs]
            return [body.emit(ck.scalar_expr(node.op, args, node.inputs[0].dtype, node.out.dtype))]

        return produce

    # -- kernels per op family ---------------------------------------------------------------

    def elementwise(self, node: Node, shape, produce) -> list[cv.Ref]:
        body = ck.Body()
        idx_lines, idx = cv.unravel("i", shape, "i")
        results = produce(body, idx)
        what = node.op if node.op != "fused" else "fused"
        return self.map(shape, body, results, [v.dtype for v in node.outputs], what, idx_lines,
                        [f"{node.op} over {literal(tuple(shape))}"])  # fmt: skip

    def reduce(self, node: Node, kind: str, shape, axes, produce) -> list[cv.Ref]:
        """The last output is the reduction; leading ones (``unreduced``) keep the full shape."""
        out = node.outputs[-1]
        acc = ck.ACC.get(out.dtype, out.dtype) if kind != "argmax" else node.inputs[0].dtype
        acc = ck.ACC.get(acc, acc)
        m = int(np.prod(out.shape, dtype=np.int64))
        r = int(np.prod([shape[i] for i in axes], dtype=np.int64))
        L = self.launch
        chunks = 1
        if kind != "argmax" and m < L.blocks:
            chunks = max(1, min(L.max_chunks, r // (L.reduce_threads * 4), L.blocks // m))
        body = ck.Body()
        *values, value = produce(body, [f"i{d}" for d in range(len(shape))])
        full = [self.new_buffer(shape, v.dtype) for v in node.outputs[:-1]]
        first = self.new_buffer((m * chunks,), out.dtype if chunks == 1 else acc)
        self.add(ck.reduce_kernel(self.kname(kind), shape, axes, kind, body, value, first, acc,
                                  L.reduce_threads, chunks, L.blocks, (full, values)),
                 [first, *full])  # fmt: skip
        views = [cv.whole(f, shape) for f in full]
        if chunks == 1:
            return [*views, cv.whole(first, out.shape)]
        final = self.new_buffer(out.shape, out.dtype)
        partial = cv.View(first, (m, chunks), (chunks, 1))
        body = ck.Body()
        value = body.read(partial, ["i0", "i1"])
        self.add(ck.reduce_kernel(self.kname(kind + "_pass2"), (m, chunks), (1,), kind, body, value,
                                  final, acc, L.reduce_threads, 1, L.blocks), [final])  # fmt: skip
        return [*views, cv.whole(final, out.shape)]

    def matmul(self, mm: Node, fused: Node | None) -> list[cv.Ref]:
        a, b = (self.env[v] for v in mm.inputs)
        a = a if isinstance(a, cv.View) else self.materialize(a)
        b = b if isinstance(b, cv.View) else self.materialize(b)
        a, b = (
            cv.transpose(r, _swap_last(r)) if mm.attrs[f] else r
            for r, f in ((a, "transpose_a"), (b, "transpose_b"))
        )
        dtype = mm.out.dtype
        acc = ck.ACC.get(dtype, dtype)
        shape = mm.out.shape
        if self._on_cublas(mm):
            out = self.new_buffer(shape, dtype)
            binding = (f"cublas_matmul(a={(a.offset, a.shape, a.strides)}, b={(b.offset, b.shape, b.strides)}, "
                       f"out={shape}, dtype={dtype_of(dtype)})  # cuBLAS through CuPy")  # fmt: skip
            self.add(ck.Kernel(self.kname("cublas_matmul"), "", [out, a.buf, b.buf], "", binding), [out])
            return [cv.whole(out, shape)]
        body = ck.Body()
        product = f"{dtype}(acc)"
        epilogue: list[str] = []
        if fused is None:
            results, dtypes = [product], [dtype]
        else:
            idx_lines, idx = cv.unravel("i", shape, "i")
            produce = self.region_producer(fused)
            results = produce(body, idx, {fused.inputs.index(mm.out): product})
            epilogue = idx_lines + body.lines
            dtypes = [v.dtype for v in fused.outputs]
        outs = [self.new_buffer(shape, d) for d in dtypes]
        kernel = ck.matmul_kernel(self.kname("matmul"), a, b, body, epilogue, results, outs, shape, acc,
                                  self.launch.tile)  # fmt: skip
        self.add(kernel, outs)
        return [cv.whole(o, shape) for o in outs]

    def on_host(self, node: Node) -> list[cv.Ref]:
        """A library op without a kernel: operands copied to the host and back (``host``)."""
        ins = [
            r if isinstance(r, cv.View) else self.materialize(r) for r in (self.env[v] for v in node.inputs)
        ]
        outs = [self.new_buffer(v.shape, v.dtype) for v in node.outputs]
        k = len(self.host_calls)
        self.host_calls.append((node, [(r.offset, r.shape, r.strides) for r in ins]))
        binding = f"host_call({k})  # {node.op} on the host (NumPy / LAPACK)"
        self.add(ck.Kernel(self.kname("host_" + node.op), "", outs + [r.buf for r in ins], "", binding), outs)
        return [cv.whole(o, v.shape) for o, v in zip(outs, node.outputs)]

    def _on_cublas(self, mm: Node) -> bool:
        """Large matmuls go to cuBLAS when CuPy can reach a GPU (its epilogue: a kernel)."""
        k = mm.inputs[0].shape[-2 if mm.attrs["transpose_a"] else -1]
        macs = int(np.prod(mm.out.shape, dtype=np.int64)) * k
        return self.blas and mm.out.dtype in ("f32", "f64") and macs >= cuda_blas.MIN_MACS

    def _epilogue_matmuls(self) -> dict[Node, Node]:
        """matmul -> the fused group applied to its product alone (fused as the epilogue).

        A group reading several products (``x @ W + h @ U``) takes only the first as its
        epilogue's accumulator; the others run as plain matmul kernels before it."""
        users = self.graph.users()
        outputs = set(self.graph.outputs)
        out: dict[Node, Node] = {}
        taken: set[Node] = set()
        for n in self.graph.nodes:
            if n.op != "matmul" or n.out in outputs or self._on_cublas(n):
                continue
            (user, *rest) = users.get(n.out, [None])
            if (rest or user is None or user.op != "fused" or user.attrs["reduce"]
                    or user.attrs["shape"] != n.out.shape or user in taken):  # fmt: skip
                continue
            out[n] = user
            taken.add(user)
        return out


def _reader(x: cv.Ref):
    def produce(body: ck.Body, idx: list[str]) -> list[str]:
        return [body.read(x, idx)]

    return produce


def generate(graph: Graph, launch: Launch | None = None) -> Program:
    """The program for ``graph``: kernel source, host driver and the kernels' signatures."""
    graph = decompose_missing(graph, SUPPORTED, "numba-cuda")
    gen = _Gen(graph, launch or launch_config())
    gen.run()
    results = []
    for v in graph.outputs:
        ref = gen.env[v]
        produced = isinstance(ref, cv.View) and any(ref.buf in s.writes for s in gen.steps)
        results.append(ref if produced and cv.is_whole(ref) else gen.materialize(ref))

    source, constants = driver_source(gen, results)
    kernels = [k for k in {s.kernel.name: s.kernel for s in gen.steps}.values() if k.source]
    return Program(source, kernels, graph.inputs, graph.outputs, constants, gen.host_calls)


def compile_graph(graph: Graph, **options):
    """Return (callable taking NumPy or device arrays, generated source)."""
    program = generate(graph)
    return make_runner(program, graph), program.source


def _swap_last(ref: cv.Ref) -> tuple[int, ...]:
    n = len(ref.shape)
    return (*range(n - 2), n - 1, n - 2)
