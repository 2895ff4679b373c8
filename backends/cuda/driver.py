"""The host driver of the CUDA backend: buffer roles, workspace slots, and the source of
``workspace()`` and ``forward(ws, results, *inputs)``.

Outputs come from a result pool (a buffer is reused only once the caller has dropped every
reference to it); intermediates live in workspace slots allocated once, and buffers of equal
size and dtype whose lifetimes (first write to last read, in launch order) do not overlap share
a slot. Launches are issued in order on one stream, so a slot is rewritten only after its last
reader was queued. Each kernel is bound to its grid and block once, at module level."""

from __future__ import annotations

import numpy as np

from bpir.lifetimes import Slots, last_reads
from bpir.location import escape

from ..array_api import dtype_of
from . import views as cv


def _slots(steps, workspace: set[cv.Buffer]) -> tuple[dict[cv.Buffer, int], list[tuple[int, str]]]:
    """Workspace buffer -> its slot, and each slot's (size, dtype): a buffer lives from the launch
    that first writes it to the last launch that reads it."""
    last_read = last_reads([b for b in s.kernel.params if b not in s.writes] for s in steps)
    slots, assigned = Slots(), {}
    for i, s in enumerate(steps):
        for b in s.writes:
            if b in workspace:
                assigned[b] = slots.take((b.size, b.dtype), i, last_read.get(b, i))
    return assigned, slots.keys


def driver_source(gen, results: list[cv.View]) -> tuple[str, dict[str, np.ndarray]]:
    """Source of the kernels and the driver, and the host constants it names."""
    steps = gen.steps
    outputs = list(dict.fromkeys(r.buf for r in results))
    written = {b for s in steps for b in s.writes}
    workspace = written - set(outputs)
    slots, kinds = _slots(steps, workspace)
    nslots = len(kinds)
    names: dict[cv.Buffer, str] = {b: f"ws[{k}]" for b, k in slots.items()}
    names.update({b: f"o{k}" for k, b in enumerate(outputs)})
    alloc = [f"        cuda.device_array({size}, {dtype_of(dtype)}),  # slot {k}"
             for k, (size, dtype) in enumerate(kinds)]  # fmt: skip
    constants = {}
    for k, (buf, value) in enumerate(gen.constants.items()):
        names[buf] = f"ws[{nslots + k}]"
        constants[f"c{k}"] = value
        alloc.append(f"        cuda.to_device(c{k}),  # constant {value.dtype}[{value.size}]")
    for v in gen.graph.inputs:
        buf = gen.env[v].buf
        names.setdefault(buf, buf.name)

    em = gen.em
    for k, b in enumerate(outputs):
        em.line(f"o{k} = results.get({k}, {b.size}, {dtype_of(b.dtype)})")
    bindings: dict[tuple[str, str], str] = {}
    for s in steps:
        kern = s.kernel
        key = (kern.name, kern.launch)
        if key not in bindings:
            clash = sum(k[0] == kern.name for k in bindings)
            bindings[key] = f"launch_{kern.name}" + (f"_{clash + 1}" if clash else "")
        args = ", ".join(names[b] for b in kern.params)
        em.line(f"{bindings[key]}({args})", s.node)
    by_name = {s.kernel.name: s.kernel for s in steps}
    bind_lines = [f"{b} = {by_name[n].binding or f'launcher({n}, {launch[1:-1]})'}"
                  for (n, launch), b in bindings.items()]  # fmt: skip
    params = ", ".join(["ws", "results"] + [gen.env[v].buf.name for v in gen.graph.inputs])
    outs = ", ".join(names[r.buf] for r in results)
    kernels = [k for k in {s.kernel.name: s.kernel.source for s in steps}.values() if k]
    library = sum(not s.kernel.source for s in steps)
    head = [f"# bpir generated code for func @{escape(gen.graph.name)}: numba-cuda backend, "
            f"{len(kernels)} kernels, {len(steps) - library} launches"
            f"{f' and {library} library calls' if library else ''} per call"]  # fmt: skip
    parts = head + [f"\n\n{k}" for k in kernels]
    parts += ["\n\n# each kernel bound once to its grid and block (library calls: what they call)",
              *bind_lines]  # fmt: skip
    parts += ["\n\ndef workspace():",
              '    """Device buffers reused across calls (intermediates by slot), then constants."""',
              "    return [", *alloc, "    ]",
              f"\n\ndef forward({params}):", *em.take_lines(),
              f"    return ({outs}{',' if len(results) == 1 else ''})"]  # fmt: skip
    return "\n".join(parts) + "\n", constants
