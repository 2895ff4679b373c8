"""Numba CPU backend: each fused group becomes one ``@njit`` loop kernel (parallel when large),
written with the others into one generated module per graph; a plain Python driver calls the
kernels, BLAS (``np.matmul``) for contractions, and NumPy for the remaining layout and
gather ops, exactly as the NumPy backend does.

Intermediates of kernels and matmuls live in a workspace allocated once per compiled
signature and thread: buffers of one shape and dtype whose lifetimes do not overlap share a
slot. Results come from a per-thread ``ResultPool``: a buffer returned earlier is reused only
once nothing but the pool refers to it any more, so the next call never overwrites an array the
caller still holds, and threads calling one compiled function at once share no buffer.

Each distinct kernel is stored in the bpir cache under a hash of its text with its machine
code beside it (``backends.numba.kernel_cache``), so any later module or process holding the
same kernel compiles nothing. When the cache cannot be used, the kernels compile in memory,
once per process. Kernels still to compile at the first call are shared with worker processes
(``compile_pool``); a slice or pad that only kernels read is read by them through its source
(``loops.Remap``) and never made."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Collection
from functools import partial

import numba
import numpy as np

from bpir.gc_pause import full_collections_paused
from bpir.ir import Graph, Node, Value
from bpir.lifetimes import Slots, lifetimes
from bpir.ops.fused import decompose_fused
from bpir.passes.memory import MemoryPlan
from bpir.passes.rewrite import rewrite
from bpir.types import to_numpy_dtype

from ..array_api import dtype_of, literal, matmul_operands
from ..codegen import Emitter, decompose_missing
from ..numpy import backend as npb
from ..numpy import kernels as numpy_kernels
from ..result_pool import PerThread, ResultPool
from . import compile_pool, fastmath, kernel_cache, library_kernels
from . import random as numba_random
from . import windows as numba_windows
from .loops import Coalesced, Remap, accumulators, coalesce, kernel_source, loopable

SUPPORTED = npb.SUPPORTED | {"fused"}
# threefry bits as njit loops (backends.numba.random), named rk in the driver
RANDOM = {
    "random_uniform": lambda n, a: (
        f"rk.random_uniform({a[0]}, {literal(n.attrs['shape'])}, {dtype_of(n.attrs['dtype'])})"
    ),
    "random_split": lambda n, a: f"rk.random_split({a[0]}, {literal(n.attrs['num'])})",
}
WINDOWS = dict.fromkeys(numba_windows.OPS, numba_windows.expression)
# names the driver itself binds; an input called so is renamed
DRIVER_NAMES = re.compile(r"ws|results|per_thread|kernels|np|k|rk|c\d+|v\d+")


def lower(graph: Graph) -> Graph:
    """Fused groups Numba cannot loop over (float16) run as plain NumPy ops instead."""
    graph = rewrite(
        graph, lambda b, n: decompose_fused(b, n) if n.op == "fused" and not loopable(n) else None
    )
    return decompose_missing(graph, SUPPORTED, "numba")


class Workspace:
    """Assigns buffers to values: fresh per call for results the caller receives, otherwise a
    reusable slot (same shape and dtype, previous user dead)."""

    def __init__(self, graph: Graph, read_through: Collection[Node] = ()):
        life = lifetimes(graph, read_through)
        self.returned = {life.base[v] for v in graph.outputs}
        self.end = life.end
        self.slots = Slots()  # keyed by (shape, dtype)
        self.results = 0

    def assign(self, v: Value, shape: tuple, at: int) -> str:
        """Source of the buffer node ``at`` writes ``v`` into (``shape``: the buffer's)."""
        if v in self.returned:
            self.results += 1
            return f"results.get({self.results - 1}, {literal(shape)}, {dtype_of(v.dtype)})"
        return f"ws[{self.slots.take((shape, v.dtype), at, self.end.get(v, at))}]"

    def scratch(self, shape: tuple, dtype: str, at: int) -> str:
        """Source of a buffer node ``at`` alone uses while it runs (a reduction's accumulators)."""
        return f"ws[{self.slots.take((shape, dtype), at, at)}]"

    def allocate(self) -> list[np.ndarray]:
        return [np.empty(s, to_numpy_dtype(d)) for s, d in self.slots.keys]


_ANY_NAME = "bpir_kernel_name"  # stands in for a kernel's name while bodies are compared


def generate(graph: Graph) -> tuple[str, str, dict, Workspace]:
    """(kernel module source, driver source, driver constants, workspace plan)."""
    graph = lower(graph)
    producer = {v: node for node in graph.nodes for v in node.outputs}
    remaps = {node: _remaps(node, producer) for node in graph.nodes if node.op == "fused"}
    read_through = _only_remapped(graph, remaps, ("slice", "pad"))
    wide = _only_remapped(graph, remaps, ("conv2d",))
    ws = Workspace(graph, read_through)
    em = Emitter(
        graph,
        header="# ws: workspace buffers; results: reusable result buffers (both this thread's);\n"
        "# kernels: the module above; k: bpir.backends.numpy.kernels; rk: bpir.backends.numba.random",
    )
    em.rename_inputs(DRIVER_NAMES)
    em.line("ws, results = per_thread.get()")
    kernels: list[str] = []
    by_body: dict[str, str] = {}  # kernels identical up to their name are compiled once
    at = {node: i for i, node in enumerate(graph.nodes)}

    def fused(node: Node, args: list[str]) -> None:
        reads = remaps[node]
        merged = None if reads else coalesce(node)
        body = kernel_source(_ANY_NAME, merged.node if merged else node, reads)
        name = by_body.get(body)
        if name is None:
            name = by_body[body] = f"fused_{len(kernels) + 1}"
            kernels.append("\n\n" + body.replace(_ANY_NAME, name))
        args = [
            em.name(producer[v].inputs[0]) if i in reads and producer[v].op != "conv2d" else a
            for i, (v, a) in enumerate(zip(node.inputs, args))
        ]
        _call_kernel(em, ws, node, name, args, at[node], reads, merged)

    def matmul(node: Node, args: list[str]) -> str:
        a, b = matmul_operands(node, args)
        return f"np.matmul({a}, {b}, out={ws.assign(node.out, node.out.shape, at[node])})"

    base = npb.rules(em, MemoryPlan())

    def read_through_by_kernels(node: Node, args: list[str]) -> str | None:
        if node in read_through:  # every reader is a kernel reading the sliced/padded array itself
            em.alias(node.out, node.inputs[0])
            return None
        return base[node.op](node, args)

    def conv2d(node: Node, args: list[str]) -> str:
        # every reader a kernel indexing the valid region: the result may stay wide (no crop)
        return (numba_windows.wide_expression if node in wide else numba_windows.expression)(node, args)

    # the NumPy backend's calls (no in-place plan: buffers come from the workspace), windowed ops
    # and random bits from this backend's njit kernels, matmul into the workspace, fused groups
    em.emit_nodes(
        base
        | WINDOWS
        | RANDOM
        | {"matmul": matmul, "fused": fused, "conv2d": conv2d}
        | dict.fromkeys(("slice", "pad"), read_through_by_kernels)
    )
    return _kernel_module_source(kernels), em.finish(), em.globals, ws


def _kernel_module_source(kernels: list[str]) -> str:
    """The kernels under the imports they need (the vectorisable math from ``fastmath``)."""
    if not kernels:
        return ""
    body = "".join(kernels)
    head = (
        "# bpir generated loop kernels\nimport math\n\nimport numpy as np\nfrom numba import njit, prange\n"
    )
    return head + "\n" + fastmath.import_line() + body


def _remaps(node: Node, producer: dict) -> dict[int, Remap]:
    """The fused node's inputs that are slices or zero-interior pads of full iteration rank,
    for the kernel to read the array they were taken of (``loops.Remap``)."""
    remaps = {}
    for i, v in enumerate(node.inputs):
        p = producer.get(v)
        if p is None or not v.shape or len(v.shape) != len(node.attrs["shape"]):
            continue
        if p.op == "slice":
            remaps[i] = Remap(p.attrs["start"], p.attrs["step"])
        elif p.op == "pad" and not any(p.attrs["interior"]) and all(p.inputs[0].shape):
            lo, source = p.attrs["lo"], p.inputs[0].shape
            remaps[i] = Remap(tuple(-n for n in lo), (1,) * len(lo), source, p.attrs["value"])
        elif p.op == "conv2d" and v.shape == node.attrs["shape"]:
            remaps[i] = Remap((0,) * len(v.shape), (1,) * len(v.shape))  # maybe computed wide
    return remaps


def _only_remapped(graph: Graph, remaps: dict[Node, dict[int, Remap]], ops: tuple[str, ...]) -> set[Node]:
    """Nodes of ``ops`` whose result no one needs as such an array: not a result, and every
    reader a kernel that reads it through a remap (a slice or pad: the array it was taken
    of; a convolution: its valid region, the array possibly wider)."""
    readers: dict[Value, list[bool]] = {}
    for node in graph.nodes:
        reads = remaps.get(node, {})
        for i, v in enumerate(node.inputs):
            readers.setdefault(v, []).append(i in reads)
    outputs = set(graph.outputs)
    return {node for node in graph.nodes
            if node.op in ops and node.out not in outputs and all(readers.get(node.out, [False]))}  # fmt: skip


def _call_kernel(em: Emitter, ws: Workspace, node: Node, name: str, args: list[str], at: int, remaps,
                 merged: Coalesced | None = None) -> None:  # fmt: skip
    a = node.attrs
    shape, rank = a["shape"], len(a["shape"])
    call_args = []
    for i, (v, arg) in enumerate(zip(node.inputs, args)):
        padded = (1,) * (rank - len(v.shape)) + v.shape
        view = merged.in_shapes[i] if merged else padded  # the shape the kernel reads it in
        if i in remaps:
            call_args.append(arg)
        elif v.shape == ():
            call_args.append(f"{dtype_of(v.dtype)}({arg})")
        elif view != v.shape:
            call_args.append(f"{arg}.reshape({literal(view)})")
        else:
            call_args.append(arg)
    kept = a["unreduced"] if a["reduce"] else len(node.outputs)
    full = tuple(1 if d in a["axes"] else n for d, n in enumerate(shape))
    targets, buffers = [], []
    for j, v in enumerate(node.outputs):
        buf_shape = shape if j < kept else full
        buffers.append(ws.assign(v, buf_shape, at))
        targets.append(em.bind(v))
    lines = [f"{t} = {b}" for t, b in zip(targets, buffers)]
    em.line("; ".join(lines), node)
    scratch = [ws.scratch(s, dtype, at) for s, dtype in accumulators(node)]
    views = [f"{t}.reshape({literal(merged.node.attrs['shape'])})" for t in targets] if merged else targets
    em.line(f"kernels.{name}({', '.join(call_args + views + scratch)})")
    for t, v in zip(targets[kept:], node.outputs[kept:]):
        if v.shape != full:
            em.line(f"{t} = {t}.reshape({literal(v.shape)})")


def compile_graph(graph: Graph):
    """Return (callable taking and returning NumPy arrays, source of kernels and driver)."""
    kernel_src, driver_src, consts, ws = generate(graph)
    namespace = {"np": np, "k": numpy_kernels, "rk": numba_random, "nw": numba_windows, **consts}
    modules = []
    if kernel_src:
        namespace["kernels"], modules = _kernel_module(kernel_src)
    libraries = library_kernels.modules_for(node.op for node in graph.nodes)
    library_kernels.load_cached(libraries)
    n_results = ws.results
    namespace["per_thread"] = PerThread(lambda: (ws.allocate(), ResultPool(n_results, np.empty)))
    code = compile(driver_src, f"<bpir-numba:{graph.name}>", "exec")
    exec(code, namespace)
    run = namespace[Emitter.function_name(graph)]
    if "prange(" in kernel_src and not _threadsafe_layer():
        run = _one_at_a_time(run)
    if kernel_src or libraries:
        run_with = partial(_run_with, code, namespace, Emitter.function_name(graph))
        run = _sealing_first_call(run, namespace.get("kernels"), modules, libraries, run_with)
    return run, kernel_src + "\n\n" + driver_src


def _run_with(code, namespace: dict, name: str, kernels, *args):
    """The driver run with another kernel namespace (``compile_pool``'s stand-ins)."""
    namespace = {**namespace, "kernels": kernels}
    exec(code, namespace)
    return namespace[name](*args)


def _threadsafe_layer() -> bool:
    """Will Numba's parallel loops run on a thread-safe layer (TBB, OpenMP)? Its fallback,
    workqueue, aborts the process when two threads run parallel loops at once."""
    try:
        return numba.threading_layer() != "workqueue"
    except ValueError:  # no parallel loop has run yet: the layers Numba would try, in its order
        pass
    chosen = numba.config.THREADING_LAYER
    if chosen in ("workqueue", "forksafe"):
        return chosen != "workqueue" and _importable("tbbpool")
    return chosen in ("tbb", "omp") or _importable("tbbpool") or _importable("omppool")


def _importable(layer: str) -> bool:
    try:
        importlib.import_module(f"numba.np.ufunc.{layer}")
        return True
    except ImportError:
        return False


def _one_at_a_time(run):
    """Serialise calls (parallel kernels on Numba's workqueue layer)."""
    lock = threading.Lock()

    def call(*args):
        with lock:
            return run(*args)

    return call


def _kernel_module(source: str) -> tuple[kernel_cache.Kernels, list]:
    """The kernels, each from the content-addressed kernel cache (``kernel_cache``)."""
    return kernel_cache.load(source)


def _sealing_first_call(run, kernels: kernel_cache.Kernels | None, modules: list, libraries: list, run_with):
    """The first call compiles (or loads) every kernel, in parallel processes where that pays
    (``compile_pool``); then count them and seal the cache files of those compiled, the
    library kernels' included."""
    first = kernel_cache.FirstCall(modules)
    state = {"sealed": False, "ahead": False}
    lock = threading.Lock()
    used: set = set()  # the library kernel overloads the first calls ran

    def call(*args):
        if state["sealed"]:
            return run(*args)
        with full_collections_paused():
            return first_calls(*args)

    def first_calls(*args):
        if not state["ahead"]:
            with lock:
                if not state["ahead"]:
                    compile_pool.compile_ahead(run_with, kernels, modules, args, libraries)
                    state["ahead"] = True
        with library_kernels.recording() as ran:
            out = run(*args)
        with lock:
            used.update(ran)
            if not state["sealed"]:
                first.done()
                library_kernels.store_compiled(libraries)
                state["sealed"] = True
        return out

    call.kernels = kernels  # the kernels by name, for inspection
    call.kernel_modules = modules  # their distinct cache modules
    call.library_modules = libraries  # the library kernel modules the driver calls
    call.library_overloads = used  # (module, function, signature): what an artifact carries of them
    return call


def save_artifact(executable, folder: str, **options) -> dict:
    """Write the kernels' machine code into an artifact folder (``backends.numba.aot``)."""
    from .aot import save_artifact as save

    return save(executable, folder, **options)


def load_artifact(graph: Graph, manifest: dict, folder: str, machine_code: bool = False):
    """(run, source) of an artifact's graph; its kernels' machine code when ``machine_code``."""
    from .aot import load_artifact as load

    return load(graph, manifest, folder, machine_code)
