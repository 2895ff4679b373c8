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

from bpir.ir import Graph, Node
from bpir.location import at
from bpir.passes.inline_calls import inline_calls
from bpir.passes.rewrite import rewrite
from bpir.pytree import TreeDef, flatten_like, unflatten
from bpir.registry import get_op
from bpir.types import to_numpy_dtype

from ..array_api import attr, dtype_of, elementwise_calls, expressions, kw, literal, spec_literal
from ..codegen import Emitter, call, decompose_missing
from . import kernels as jax_kernels
from . import sharding

FUNCTIONS = elementwise_calls("jnp", sigmoid="jax.nn.sigmoid", rsqrt="lax.rsqrt", erf="lax.erf")
FUNCTIONS |= {"where": "jnp.where"}


# max_pool2d_grad keeps bpir's documented tie rule (first maximal element of each window), which
# XLA's select-and-scatter does not promise: windows that tile the input take the reshaping
# kernel, others the decomposition (``_untiled_pool_grads``).
EXPRESSIONS = {op: f for op, f in expressions("jnp").items() if op != "where"} | {
    "cast": lambda n, a: f"{a[0]}.astype({dtype_of(n.attrs['dtype'], 'jnp')})",
    "argmax": lambda n, a: f"jnp.argmax({a[0]}, {kw(n, 'axis', 'keepdims')}).astype(jnp.int64)",
    "matmul": lambda n, a: f"k.matmul({a[0]}, {a[1]}, {kw(n, 'transpose_a', 'transpose_b')})",
    "sharding_constraint": lambda n, a: f"k.constrain({a[0]}, {spec_literal(n.attrs['spec'])}, mesh)",
    "iota": lambda n, a: (
        f"lax.broadcasted_iota({dtype_of(n.attrs['dtype'], 'jnp')}, {attr(n, 'shape')}, {attr(n, 'axis')})"
    ),
    "random_uniform": lambda n, a: (
        f"k.random_uniform({a[0]}, {attr(n, 'shape')}, {dtype_of(n.attrs['dtype'], 'jnp')})"
    ),
    "random_split": lambda n, a: f"k.random_split({a[0]}, {attr(n, 'num')})",
    # NumPy reads the lower triangle only; jax symmetrizes unless told not to
    "cholesky": lambda n, a: f"jnp.linalg.cholesky({a[0]}, symmetrize_input=False)",
    "eigh": lambda n, a: f"jnp.linalg.eigh({a[0]}, symmetrize_input=False)",
}
RULES = EXPRESSIONS | {op: call(fn) for op, fn in FUNCTIONS.items()}
SUPPORTED = set(RULES) | {"constant"}


def generate(graph: Graph) -> tuple[str, dict]:
    """Python source defining ``graph.name`` with JAX calls, and the constants it needs."""
    graph = decompose_missing(rewrite(inline_calls(graph), _untiled_pool_grads), SUPPORTED, "jax")
    em = Emitter(graph, header="# jnp = jax.numpy, lax = jax.lax, k = bpir.backends.jax.kernels")
    em.emit_nodes(RULES | {"constant": lambda n, a: _constant(em, n)})
    return em.finish(), em.globals


def _untiled_pool_grads(b, node: Node):
    """A max-pool gradient whose windows overlap, pad or leave a remainder, decomposed."""
    if node.op == "max_pool2d_grad" and not jax_kernels.tiles_exactly(node.inputs[0].shape, **_pool(node)):
        with at(node.loc):
            return get_op(node.op).decompose(b, node)
    return None


def _pool(node: Node) -> dict:
    return {name: node.attrs[name] for name in ("kernel", "stride", "padding")}


def _constant(em: Emitter, node: Node) -> str:
    value = node.attrs["value"]
    if value.ndim == 0:
        return f"jnp.asarray({literal(value.item())}, {dtype_of(node.out.dtype, 'jnp')})"
    return em.constant(value)


@dataclass
class JaxProgram:
    """The traceable Python function, its ``jax.jit`` (with the sharding layout, if any) and the
    argument specs it was built for."""

    fn: Callable
    jitted: Callable
    specs: list[jax.ShapeDtypeStruct]
    source: str
    graph: Graph
    layout: sharding.Layout | None = None
    tree: TreeCall | None = None  # the call on the arguments' pytree, once an Executable binds it

    def __call__(self, *args):
        with jax.enable_x64(True):
            return tuple(self.jitted(*args))

    def tree_call(self, in_tree: TreeDef, weak: list[bool] | None) -> TreeCall | None:
        """The arguments' pytree straight to XLA (see ``TreeCall``); sharded programs keep the
        flat path, whose shardings are per leaf."""
        if self.layout is not None:
            return None
        self.tree = TreeCall.make(self.fn, self.specs, in_tree, weak)
        return self.tree

    def lower(self):
        with jax.enable_x64(True):
            return self.jitted.lower(*self.specs)

    def compile_ahead(self) -> None:
        """XLA compiles now (its compilation cache serves the first call): the pytree call's
        program where calls go that way, else the flat one."""
        if self.tree is not None:
            self.tree.compile_ahead()
        else:
            self.lower().compile()


class SignatureMismatchError(Exception):
    """Arguments the fast path does not take as they are; bpir's checking path explains why."""


class TreeCall:
    """``fn`` (flat arguments, tuple of results) under a ``jax.jit`` that takes the arguments'
    pytree as the caller passes it, so jax's C++ dispatch flattens it and matches shapes, dtypes
    and structure against the signatures it has compiled: a call costs what a hand-written
    ``jax.jit`` call costs. A signature seen for the first time is traced and accepted only
    where bpir's argument check would accept it (same structure, dict keys by name; same shapes
    and dtypes; a weak-typed leaf, i.e. a Python scalar, only where ``weak`` recorded one, or,
    with ``weak`` None (an ahead-of-time signature), converted to the declared dtype of its
    kind); anything else raises ``SignatureMismatchError`` and is never cached."""

    def __init__(self, fn: Callable, specs: list, in_tree: TreeDef, weak: list[bool] | None):
        self.fn, self.specs, self.in_tree, self.weak = fn, specs, in_tree, weak
        self.jitted = jax.jit(self._traced)

    @classmethod
    def make(cls, fn: Callable, specs: list, in_tree: TreeDef, weak: list[bool] | None) -> TreeCall | None:
        """None where jax cannot tell the signature apart: it types a Python bool like a NumPy
        bool, which bpir specialises separately."""
        if weak is not None and any(w and s.dtype == np.bool_ for w, s in zip(weak, specs)):
            return None
        return cls(fn, specs, in_tree, weak)

    def _traced(self, *args):
        leaves = flatten_like(args, self.in_tree)
        if leaves is None:
            raise SignatureMismatchError("structure")
        for i, (x, spec) in enumerate(zip(leaves, self.specs)):
            aval = getattr(x, "aval", None)
            if aval is None or aval.shape != spec.shape:
                raise SignatureMismatchError(i)
            if self.weak is not None:
                if aval.dtype != spec.dtype or aval.weak_type != self.weak[i]:
                    raise SignatureMismatchError(i)
            elif aval.dtype != spec.dtype:
                if not (aval.weak_type and aval.dtype.kind == np.dtype(spec.dtype).kind):
                    raise SignatureMismatchError(i)
                leaves[i] = x.astype(spec.dtype)  # a Python scalar, as bpir converts it
        return self.fn(*leaves)

    def __call__(self, *args) -> tuple:
        with jax.enable_x64(True):
            return self.jitted(*args)

    def compile_ahead(self) -> None:
        """XLA compiles the signature now; jax's compilation cache serves the first call."""
        weak = self.weak or [False] * len(self.specs)
        specs = [jax.ShapeDtypeStruct(s.shape, s.dtype, weak_type=w) for s, w in zip(self.specs, weak)]
        with jax.enable_x64(True):
            self.jitted.lower(*unflatten(self.in_tree, specs)).compile()


def build_function(graph: Graph, mesh=None) -> tuple[Callable, str]:
    source, consts = generate(graph)
    namespace = {"jax": jax, "jnp": jnp, "lax": lax, "k": jax_kernels, "mesh": mesh, **consts}
    exec(compile(source, f"<bpir-jax:{graph.name}>", "exec"), namespace)
    return namespace[Emitter.function_name(graph)], source


def _specs(graph: Graph) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct(v.shape, to_numpy_dtype(v.dtype)) for v in graph.inputs]


def compile_graph(graph: Graph, data_parallel=None, mesh=None, shardings=None, in_paths=None,
                  out_paths=None) -> tuple[JaxProgram, str]:  # fmt: skip
    """Return (callable taking NumPy or JAX arrays and returning JAX arrays, source).
    ``mesh``/``shardings``/``data_parallel`` place the computation on a device mesh (see
    ``sharding``); ``in_paths``/``out_paths`` are the argument and result paths they refer to."""
    specs = _specs(graph)
    lay = None
    if data_parallel or mesh is not None or shardings:
        in_paths = in_paths or [v.name or f"args[{i}]" for i, v in enumerate(graph.inputs)]
        out_paths = out_paths or [f"out[{i}]" for i in range(len(graph.outputs))]
        lay = sharding.layout(graph, in_paths, out_paths, mesh, shardings, data_parallel)
        fn, source = build_function(graph, lay.mesh)
        jitted = jax.jit(fn, in_shardings=lay.in_shardings(), out_shardings=lay.out_shardings())
    else:
        fn, source = build_function(graph)
        jitted = jax.jit(fn)
    return JaxProgram(fn, jitted, specs, source, graph, lay), source


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
        exported = jax.export.export(program.jitted, platforms=platforms)(*program.specs)
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
        try:
            exported = jax.export.deserialize(bytearray(blob))
        except Exception as e:  # flatbuffer decoding of tampered bytes fails in many ways
            raise ValueError(f"{folder}: backend_files.jax_export ({files['jax_export']}) is not a "
                             f"jax.export serialization ({type(e).__name__}: {e})") from None  # fmt: skip
    for field, avals, values in (("inputs", exported.in_avals, graph.inputs),
                                 ("outputs", exported.out_avals, graph.outputs)):  # fmt: skip
        got = [(tuple(a.shape), np.dtype(a.dtype)) for a in avals]
        if got != [(v.shape, to_numpy_dtype(v.dtype)) for v in values]:
            raise ValueError(f"{folder}: backend_files.jax_export's {field} {got} do not match the graph's "
                             f"{[str(v.type) for v in values]}")  # fmt: skip
    call = jax.jit(exported.call)  # one dispatch per call, as the function it was saved from
    options = manifest.get("options", {})
    sharded = options.get("mesh") is not None or bool(
        options.get("shardings") or options.get("data_parallel")
    )
    if sharded:
        call = _sharded_call(exported, graph, manifest, folder)
    elif exported.nr_devices != 1:
        raise ValueError(
            f"{folder}: the export runs on {exported.nr_devices} devices but the manifest names no mesh"
        )

    return LoadedProgram(call, exported.call, _specs(graph), sharded), generate(graph)[0]


@dataclass
class LoadedProgram:
    """A deserialized export: called on flat arguments, or on the arguments' pytree (unsharded)."""

    jitted: Callable
    call: Callable  # the export's own (traceable) call
    specs: list[jax.ShapeDtypeStruct]
    sharded: bool

    def __call__(self, *args):
        with jax.enable_x64(True):
            return tuple(self.jitted(*args))

    def tree_call(self, in_tree: TreeDef, weak: list[bool] | None) -> TreeCall | None:
        return None if self.sharded else TreeCall.make(self.call, self.specs, in_tree, weak)


def _sharded_call(exported, graph: Graph, manifest: dict, folder: str) -> Callable:
    """The export under ``jax.jit`` with the layout it was saved with, on this machine's devices."""
    from bpir.pytree import leaf_paths

    options = manifest["options"]
    out_paths = leaf_paths(manifest["out_tree"], "out")
    try:
        lay = sharding.layout(graph, manifest["in_paths"], out_paths, options.get("mesh"),
                              options.get("shardings"), options.get("data_parallel"))  # fmt: skip
    except ValueError as e:
        raise ValueError(f"{folder}: the artifact's sharding does not fit this machine: {e}") from None
    if lay.mesh.devices.size != exported.nr_devices:
        raise ValueError(f"{folder}: the export was made for {exported.nr_devices} devices; the mesh "
                         f"{dict(lay.mesh.shape)} here has {lay.mesh.devices.size}")  # fmt: skip
    return jax.jit(exported.call, in_shardings=lay.in_shardings(), out_shardings=lay.out_shardings())
