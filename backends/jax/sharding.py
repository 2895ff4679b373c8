"""Sharding for the jax backend: a named device mesh, PartitionSpecs per argument path, and the
checks that make a wrong spec an error before anything runs. XLA's SPMD partitioner does the rest
(it inserts the all-reduces, all-gathers and reduce-scatters the specs imply).

``mesh={"data": 4, "model": 2}`` names the axes of a device mesh (row-major over the first
``4 * 2`` devices); ``shardings={"p['W1']": (None, "model"), "x": ("data", None)}`` maps argument
paths (as bpir prints them; a path may name a whole subtree, e.g. ``"opt_state"``) to one entry
per dimension: an axis name, a tuple of axis names, or None (not split). Arguments no key matches
are replicated. Each output is sharded like the input it updates (same type and the same path
below its root, e.g. ``out[1]['W1']`` and ``p['W1']``), the loss and other unmatched outputs are
left to XLA's sharding propagation. ``data_parallel=("x", "labels")`` is shorthand for a 1-D
mesh ``{"data": <all devices>}`` with those arguments split on their leading dimension."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bpir.types import TensorType


@dataclass(frozen=True)
class Layout:
    """The mesh and one PartitionSpec per graph input and output (None: left to XLA)."""

    mesh: Mesh
    inputs: tuple[PartitionSpec, ...]
    outputs: tuple[PartitionSpec | None, ...]

    def in_shardings(self) -> tuple[NamedSharding, ...]:
        return tuple(NamedSharding(self.mesh, s) for s in self.inputs)

    def out_shardings(self) -> tuple[NamedSharding | None, ...]:
        return tuple(None if s is None else NamedSharding(self.mesh, s) for s in self.outputs)


def make_mesh(axes: dict[str, int], devices: Sequence | None = None) -> Mesh:
    """A mesh over the first prod(sizes) devices; refuses one larger than the devices present."""
    if not isinstance(axes, dict) or not axes:
        raise ValueError(f"mesh must be a non-empty dict of axis name -> size, got {axes!r}")
    for name, size in axes.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"mesh axis name {name!r} must be an identifier")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"mesh axis {name!r}: size must be a positive int, got {size!r}")
    devices = list(jax.devices() if devices is None else devices)
    need = int(np.prod(list(axes.values())))
    if need > len(devices):
        raise ValueError(f"mesh {axes} needs {need} devices; {len(devices)} are present "
                         f"({devices[0].platform}; on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N)")  # fmt: skip
    return Mesh(np.array(devices[:need], dtype=object).reshape(tuple(axes.values())), tuple(axes))


def _matches(key: str, path: str) -> bool:
    return path == key or path.startswith(key + "[")


def check_spec(spec, path: str, t: TensorType, mesh: Mesh) -> PartitionSpec:
    """The PartitionSpec for a value of type ``t``, or a ValueError naming the path and the axis."""
    if spec is None:
        return PartitionSpec()
    if not isinstance(spec, (tuple, list)):
        raise ValueError(f"{path}: a sharding is a tuple with one entry per dimension, got {spec!r}")
    if len(spec) > len(t.shape):
        raise ValueError(f"{path}: spec {tuple(spec)} has {len(spec)} entries for a rank-{len(t.shape)} {t}")
    used: set[str] = set()
    for dim, entry in enumerate(spec):
        names = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        size = 1
        for name in names:
            if not isinstance(name, str) or name not in mesh.shape:
                raise ValueError(f"{path}: axis {name!r} is not an axis of the mesh {dict(mesh.shape)}")
            if name in used:
                raise ValueError(f"{path}: axis {name!r} is used for two dimensions in {tuple(spec)}")
            used.add(name)
            size *= mesh.shape[name]
        if t.shape[dim] % size:
            raise ValueError(f"{path}: dimension {dim} of {t} (size {t.shape[dim]}) does not divide "
                             f"over axis {entry!r} of size {size}")  # fmt: skip
    return PartitionSpec(*(tuple(e) if isinstance(e, list) else e for e in spec))


def _below_root(path: str) -> str:
    """``p['W1']`` -> ``['W1']``; ``out[1]['W1']`` (an output in a tuple) -> ``['W1']``."""
    return path[path.index("[") :] if "[" in path else ""


def layout(graph, in_paths: list[str], out_paths: list[str], mesh: dict | None = None,
           shardings: dict | None = None, data_parallel: Sequence[str] | None = None) -> Layout:  # fmt: skip
    """Check the user's mesh and specs against the graph and build the per-value layout."""
    shardings = dict(shardings or {})
    if data_parallel:
        if mesh is None:
            mesh = {"data": len(jax.devices())}
        axis = next(iter(mesh))
        for name in data_parallel:
            shardings.setdefault(name, (axis,))
    the_mesh = make_mesh(mesh if mesh is not None else {"data": 1})
    for key in shardings:
        if not any(_matches(key, p) for p in in_paths):
            what = "data_parallel names" if data_parallel and key in data_parallel else "shardings key"
            raise ValueError(f"{what} {key!r}, which matches no argument of {graph.name}; "
                             f"the argument paths are {in_paths}")  # fmt: skip
    in_specs = []
    for path, v in zip(in_paths, graph.inputs):
        keys = [k for k in shardings if _matches(k, path)]
        key = max(keys, key=len) if keys else None  # the most specific key wins
        spec = shardings[key] if key else None
        if data_parallel and key in data_parallel and spec == (next(iter(the_mesh.shape)),):
            spec = spec[: len(v.shape)]  # shorthand: the leading dimension, scalars replicated
        in_specs.append(check_spec(spec, path, v.type, the_mesh))
    out_specs = []
    for path, v in zip(out_paths, graph.outputs):
        same = {in_specs[i] for i, (p, u) in enumerate(zip(in_paths, graph.inputs))
                if u.type == v.type and _below_root(p) == _below_root(path) and _below_root(path)}  # fmt: skip
        out_specs.append(same.pop() if len(same) == 1 else None)
    return Layout(the_mesh, tuple(in_specs), tuple(out_specs))


def describe(program, in_paths: list[str], out_paths: list[str]) -> str:
    """Each argument's and result's sharding and the collectives XLA inserted, one line each."""
    lay: Layout = program.layout
    lines = [
        f"mesh {dict(lay.mesh.shape)} over {lay.mesh.devices.size} {lay.mesh.devices.flat[0].platform} devices"
    ]
    for path, v, spec in zip(in_paths, program.graph.inputs, lay.inputs):
        lines.append(f"  in  {path:<24} {str(v.type):<16} {_spec_text(spec)}")
    compiled = program.lower().compile()
    outs = compiled.output_shardings
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for path, v, sh in zip(out_paths, program.graph.outputs, jax.tree_util.tree_leaves(outs)):
        spec = getattr(sh, "spec", None)
        lines.append(f"  out {path:<24} {str(v.type):<16} {_spec_text(spec) if spec is not None else sh}")
    counts = collectives(compiled.as_text())
    lines.append("collectives: " + (", ".join(f"{k} x{n}" for k, n in counts.items()) or "none"))
    mem = compiled.memory_analysis()
    if mem is not None:
        lines.append(f"per-device bytes: arguments {mem.argument_size_in_bytes}, outputs "
                     f"{mem.output_size_in_bytes}, temporaries {mem.temp_size_in_bytes}")  # fmt: skip
    return "\n".join(lines)


def _spec_text(spec: PartitionSpec) -> str:
    return "replicated" if not any(e is not None for e in spec) else str(tuple(spec))


COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


def collectives(hlo_text: str) -> dict[str, int]:
    """How many of each collective the compiled HLO contains (async start/done pairs count once)."""
    counts = {}
    for name in COLLECTIVES:
        n = len(re.findall(rf"\s{name}(?:-start)?\(", hlo_text))  # tuple-shaped ones too
        if n:
            counts[name] = n
    return counts


def from_local(program, args_leaves: list) -> list:
    """Global arrays from each process's local shards (multi-process runs): leaves sharded over a
    mesh axis take this process's slice; replicated leaves are the same in every process."""
    out = []
    with jax.enable_x64(True):  # exact dtypes, as every call of the jax backend
        for leaf, sharding, v in zip(args_leaves, program.layout.in_shardings(), program.graph.inputs):
            out.append(jax.make_array_from_process_local_data(sharding, np.asarray(leaf), v.shape))
    return out
