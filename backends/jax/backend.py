"""JAX backend: the graph becomes readable Python source of ``jax.numpy``/``jax.lax`` calls,
wrapped in one ``jax.jit`` (fused groups are lowered to their plain ops: XLA fuses on its own).

Dtypes are exact: every trace and call runs with 64-bit types enabled, so f64 stays f64 and
int64 labels stay int64, without changing the user's global JAX configuration. Arguments may
be NumPy or JAX arrays; results are JAX arrays (on the device; ``np.asarray`` copies them).

``data_parallel=("x", "labels")`` names the arguments whose leading (batch) dimension is split
across all JAX devices with ``NamedSharding`` over a 1-D mesh; everything else (parameters) is
replicated, and XLA's SPMD partitioner inserts the gradient all-reduce. Multi-host runs use
the same code: call ``jax.distributed.initialize()`` in every process before compiling, so
``jax.devices()`` lists the devices of all hosts, and feed each process its shard of the batch
(``jax.make_array_from_process_local_data``).

AOT: ``f.save(path, platforms=("cpu", "cuda", "tpu"))`` writes a ``jax.export`` artifact
(serialized StableHLO, loadable without this source and without pickle) for those platforms;
exporting for TPU needs no TPU."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bpir.ir import Graph, Node
from bpir.types import to_numpy_dtype

from ..array_api import dtype_of, elementwise_calls, expressions, literal
from ..codegen import Emitter, decompose_missing
from . import kernels as jax_kernels

FUNCTIONS = elementwise_calls("jnp", sigmoid="jax.nn.sigmoid", rsqrt="lax.rsqrt", erf="lax.erf")
FUNCTIONS |= {"where": "jnp.where", "matmul": "k.matmul"}


def _dt(name: str) -> str:
    return dtype_of("jnp", name)


# max_pool2d_grad is lowered through its decomposition: it keeps bpir's documented tie rule
# (first maximal element of each window), which XLA's select-and-scatter does not promise.
EXPRESSIONS = {op: f for op, f in expressions("jnp").items() if op not in ("where", "max_pool2d_grad")} | {
    "cast": lambda n, a: f"{a[0]}.astype({_dt(n.attrs['dtype'])})",
    "argmax": lambda n, a: (
        f"jnp.argmax({a[0]}, axis={n.attrs['axis']}, keepdims={n.attrs['keepdims']}).astype(jnp.int64)"
    ),
    "iota": lambda n, a: (
        f"lax.broadcasted_iota({_dt(n.attrs['dtype'])}, {n.attrs['shape']}, {n.attrs['axis']})"
    ),
    "random_uniform": lambda n, a: f"k.random_uniform({a[0]}, {n.attrs['shape']}, {_dt(n.attrs['dtype'])})",
    "random_split": lambda n, a: f"k.random_split({a[0]}, {n.attrs['num']})",
}
SUPPORTED = set(FUNCTIONS) | set(EXPRESSIONS) | {"constant"}


def generate(graph: Graph) -> tuple[str, dict]:
    """Python source defining ``graph.name`` with JAX calls, and the constants it needs."""
    graph = decompose_missing(graph, SUPPORTED, "jax")
    em = Emitter(graph, header="# jnp = jax.numpy, lax = jax.lax, k = bpir.backends.jax.kernels")
    for node in graph.nodes:
        args = [em.name(v) for v in node.inputs]
        target = em.bind(node.out)
        if node.op == "constant":
            em.line(f"{target} = {_constant(em, node)}", node)
        elif node.op in FUNCTIONS:
            em.line(f"{target} = {FUNCTIONS[node.op]}({', '.join(args)})", node)
        else:
            em.line(f"{target} = {EXPRESSIONS[node.op](node, args)}", node)
    return em.finish(), em.globals


def _constant(em: Emitter, node: Node) -> str:
    value = node.attrs["value"]
    if value.ndim == 0:
        return f"jnp.asarray({literal(value.item())}, {_dt(node.out.dtype)})"
    return em.constant(value)


@dataclass
class JaxProgram:
    """The traceable Python function, its ``jax.jit`` and the argument specs it was built for."""

    fn: Callable
    jitted: Callable
    specs: list[jax.ShapeDtypeStruct]
    source: str

    def __call__(self, *args):
        with jax.enable_x64(True):
            return tuple(self.jitted(*args))

    def lower(self):
        with jax.enable_x64(True):
            return self.jitted.lower(*self.specs)


def build_function(graph: Graph) -> tuple[Callable, str]:
    source, consts = generate(graph)
    namespace = {"jax": jax, "jnp": jnp, "lax": lax, "k": jax_kernels, **consts}
    exec(compile(source, f"<bpir-jax:{graph.name}>", "exec"), namespace)
    return namespace[Emitter.function_name(graph)], source


def compile_graph(graph: Graph, data_parallel=None) -> tuple[JaxProgram, str]:
    """Return (callable taking NumPy or JAX arrays and returning JAX arrays, source)."""
    fn, source = build_function(graph)
    specs = [jax.ShapeDtypeStruct(v.shape, to_numpy_dtype(v.dtype)) for v in graph.inputs]
    if data_parallel:
        jitted = _data_parallel_jit(fn, graph, tuple(data_parallel))
    else:
        jitted = jax.jit(fn)
    return JaxProgram(fn, jitted, specs, source), source


def _data_parallel_jit(fn: Callable, graph: Graph, batch_args: tuple[str, ...]) -> Callable:
    """Shard the leading dimension of the inputs under ``batch_args`` over every device."""
    devices = np.array(jax.devices())
    mesh = Mesh(devices, ("batch",))

    def is_batch(name: str) -> bool:
        return any(name == a or name.startswith(a + ".") for a in batch_args)

    names = [v.name or "" for v in graph.inputs]
    unknown = [
        a for a in batch_args if not any(is_batch(n) and n.split(".")[0] == a.split(".")[0] for n in names)
    ]
    if unknown:
        raise ValueError(f"data_parallel names {unknown}, not arguments of {graph.name} ({names})")
    shardings = []
    for v, name in zip(graph.inputs, names):
        if is_batch(name):
            if not v.shape or v.shape[0] % len(devices):
                raise ValueError(
                    f"{name}: batch dimension of {v.type} does not split over {len(devices)} devices"
                )
            shardings.append(NamedSharding(mesh, PartitionSpec("batch")))
        else:
            shardings.append(NamedSharding(mesh, PartitionSpec()))
    return jax.jit(fn, in_shardings=tuple(shardings))


# -- inspection and ahead-of-time artifacts --------------------------------------------------

EXPORT_FILE = "model.jax_export"
PLATFORM_NAMES = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "rocm": "rocm", "tpu": "tpu"}


def stablehlo(executable) -> str:
    """StableHLO text of the jitted module (``jax.jit(...).lower(...).as_text()``)."""
    return executable.run.lower().as_text()


def cost(executable) -> dict:
    """XLA's cost analysis of the compiled module: flops, bytes accessed, ..."""
    analysis = executable.run.lower().compile().cost_analysis()
    return dict(analysis[0] if isinstance(analysis, (list, tuple)) else analysis)


def save_artifact(executable, folder: str, platforms=("cpu",), **_options) -> dict:
    """Serialize a ``jax.export`` of the function for ``platforms``; returns manifest fields."""
    program: JaxProgram = executable.run
    platforms = tuple(PLATFORM_NAMES.get(p, p) for p in platforms)
    with jax.enable_x64(True):
        exported = jax.export.export(jax.jit(program.fn), platforms=platforms)(*program.specs)
        blob = exported.serialize()
    with open(os.path.join(folder, EXPORT_FILE), "wb") as fh:
        fh.write(blob)
    with open(os.path.join(folder, "stablehlo.mlir"), "w") as fh:
        fh.write(exported.mlir_module())
    return {"jax_export": EXPORT_FILE, "sha256": hashlib.sha256(blob).hexdigest(),
            "platforms": list(exported.platforms), "stablehlo": "stablehlo.mlir"}  # fmt: skip


def load_artifact(graph: Graph, manifest: dict, folder: str):
    """A callable running the serialized export on this machine's platform (never re-traced)."""
    files = manifest["backend_files"]
    with open(os.path.join(folder, files["jax_export"]), "rb") as fh:
        blob = fh.read()
    if hashlib.sha256(blob).hexdigest() != files["sha256"]:
        raise ValueError(
            f"{folder}: {files['jax_export']} does not match the manifest's hash (corrupt artifact)"
        )
    here = PLATFORM_NAMES.get(jax.default_backend(), jax.default_backend())
    if here not in files["platforms"]:
        raise RuntimeError(f"{folder} was exported for {files['platforms']}; this machine runs {here!r}. "
                           f"Re-export with f.save(path, platforms=(..., {here!r})).")  # fmt: skip
    with jax.enable_x64(True):
        exported = jax.export.deserialize(bytearray(blob))

    def run(*args):
        with jax.enable_x64(True):
            return tuple(exported.call(*args))

    return run, generate(graph)[0]
