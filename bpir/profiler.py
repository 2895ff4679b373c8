"""Time per node on a backend: where a compiled step spends its time.

Every node of the optimized graph (each fused group, matmul, conv, reduction...) is compiled
alone by the backend and timed on its real inputs (the values it sees inside the step, computed
once with the numpy backend); its share is of the sum of node times, next to the whole step's own
time. Bytes moved per node (inputs read + outputs written) are set against this machine's
measured copy bandwidth, so a memory-bound node shows how far from the roofline it is.

Timing nodes alone is honest about each node's cost but not about what a backend does across
nodes: XLA fuses neighbouring ops in the whole step (so on jax the node sum exceeds the step,
and per-HLO-op times from jax's profiler are not collected here), and every node pays one call's
dispatch overhead."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .ir import Graph, Node, Value
from .passes.memory import VIEW_OPS

_BANDWIDTH: list[float] = []


@dataclass
class NodeTime:
    index: int
    op: str
    label: str
    loc: str
    seconds: float
    bytes_moved: int
    share: float = 0.0  # of the sum of node times

    @property
    def gbytes_per_s(self) -> float:
        return self.bytes_moved / self.seconds / 1e9 if self.seconds > 0 else 0.0


@dataclass
class ProfileReport:
    """Per-node times of one backend, sorted by program order; ``top()`` sorts by cost."""

    backend: str
    step_seconds: float
    bandwidth_gbs: float
    nodes: list[NodeTime] = field(default_factory=list)
    note: str = ""

    def top(self, n: int = 10) -> list[NodeTime]:
        return sorted(self.nodes, key=lambda r: -r.seconds)[:n]

    def by_index(self) -> dict[int, float]:
        return {r.index: r.seconds for r in self.nodes}

    def text(self, n: int = 10) -> str:
        total = sum(r.seconds for r in self.nodes)
        lines = [f"profile on {self.backend}: whole step {self.step_seconds * 1e3:.3f} ms, sum of "
                 f"{len(self.nodes)} nodes timed alone {total * 1e3:.3f} ms; copy bandwidth here "
                 f"{self.bandwidth_gbs:.1f} GB/s",
                 f"  {'#':>4} {'node':<34} {'ms':>9} {'share':>6} {'bytes':>10} {'GB/s':>7} {'of bw':>6}  source"]  # fmt: skip
        for r in self.top(n):
            bw = r.gbytes_per_s
            lines.append(f"  {r.index:>4} {r.label[:34]:<34} {r.seconds * 1e3:9.4f} {r.share:6.1%} "
                         f"{r.bytes_moved:>10,} {bw:7.2f} {bw / self.bandwidth_gbs:6.1%}  {r.loc}")  # fmt: skip
        if self.note:
            lines.append("  note: " + self.note)
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"backend": self.backend, "step_s": self.step_seconds, "bandwidth_gbs": self.bandwidth_gbs,
                "note": self.note, "nodes": [asdict(r) for r in self.nodes]}  # fmt: skip


def copy_bandwidth(nbytes: int = 1 << 25) -> float:
    """GB/s of a large NumPy copy (bytes read + written), measured once per process."""
    if not _BANDWIDTH:
        src = np.ones(nbytes // 4, np.float32)
        dst = np.empty_like(src)
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            np.copyto(dst, src)
            ts.append(time.perf_counter() - t0)
        _BANDWIDTH.append(2 * nbytes / min(ts) / 1e9)
    return _BANDWIDTH[0]


def node_label(node: Node) -> str:
    if node.op == "fused":
        ops = [n.op for n in node.attrs["region"].nodes if n.op != "constant"]
        red = f"->{node.attrs['reduce']}" if node.attrs["reduce"] else ""
        return f"fused[{','.join(ops)}]{red}"
    return f"{node.op} {node.outputs[0].type}"


def alone(node: Node, k: int) -> Graph:
    """A graph holding only ``node``, its inputs as graph inputs."""
    fresh: dict[Value, Value] = {}
    for v in node.inputs:
        if v not in fresh:
            fresh[v] = Value(v.type, f"in{len(fresh)}")
    outs = [Value(v.type) for v in node.outputs]
    clone = Node(node.op, [fresh[v] for v in node.inputs], node.attrs, outs, node.loc)
    return Graph(f"node{k}", list(fresh.values()), [clone], outs)


def _median_time(fn, args, repeat: int) -> float:
    from .bench.timing import block

    block(fn(*args))
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        block(fn(*args))
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _values(graph: Graph, leaves: list) -> dict[Value, np.ndarray]:
    """Every value of ``graph`` on these inputs (the numpy backend, no buffer reuse)."""
    from bpir.backends.numpy.backend import compile_graph

    produced = [v for n in graph.nodes for v in n.outputs]
    run, _ = compile_graph(Graph(graph.name, graph.inputs, graph.nodes, produced), plan_memory=False)
    outs = run(*leaves)
    return dict(zip(graph.inputs, leaves)) | dict(zip(produced, outs))


def profile(fn, *args, backend: str = "numpy", repeat: int = 20) -> ProfileReport:
    """Per-node times of ``fn`` compiled for ``backend`` on ``args`` (see the module docstring)."""
    from . import compile as bpir_compile
    from .backend_registry import backend_module
    from .compiled import Compiled, check_args

    f = fn if isinstance(fn, Compiled) and fn.backend == backend else bpir_compile(
        getattr(fn, "fn", fn), backend=backend, example_args=args)  # fmt: skip
    ex = f._current()
    graph = ex.graph
    values = _values(graph, check_args(ex, args))
    put = _device_put(backend)
    step = _median_time(f, put(args), repeat)
    module = backend_module(backend)
    rows = []
    for k, node in enumerate(graph.nodes):
        if node.op == "constant":
            continue
        g = alone(node, k)
        run, _ = module.compile_graph(g)
        inputs = put([values[v] for v in dict.fromkeys(node.inputs)])
        moved = 0 if node.op in VIEW_OPS else sum(v.type.nbytes for v in node.inputs + node.outputs)
        rows.append(
            NodeTime(k, node.op, node_label(node), node.loc or "", _median_time(run, inputs, repeat), moved)
        )
    total = sum(r.seconds for r in rows) or 1.0
    for r in rows:
        r.share = r.seconds / total
    note = (
        "each node compiled and timed alone on its real inputs; the sum includes one call overhead per node"
    )
    if backend == "jax":
        note += ("; XLA fuses across nodes in the whole step, so the sum overstates it; per-HLO-op times "
                 "from jax.profiler are not collected")  # fmt: skip
    if backend == "numba-cuda":
        note += "; each node's inputs are host arrays copied to the device per call"
    return ProfileReport(backend, step, copy_bandwidth(), rows, note)


def _device_put(backend: str):
    if backend != "jax":
        return lambda xs: xs
    import jax

    def put(xs):
        with jax.enable_x64(True):
            return jax.device_put(xs)

    return put
