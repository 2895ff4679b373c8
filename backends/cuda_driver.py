"""The host driver of the CUDA backend: buffer roles, workspace slots, and the source of
``workspace()`` and ``forward(ws, *inputs)``.

Outputs are allocated fresh on every call (the caller keeps them); intermediates live in
workspace slots allocated once, and buffers of equal size and dtype whose lifetimes (first
write to last read, in launch order) do not overlap share a slot. Launches are issued in
order on one stream, so a slot is rewritten only after its last reader was queued."""

from __future__ import annotations

import numpy as np

from bpir.types import to_numpy_dtype

from . import cuda_views as cv


def _np_dtype(dtype: str) -> str:
    return f"np.{to_numpy_dtype(dtype).name}"


def _slots(steps, workspace: set[cv.Buffer]) -> dict[cv.Buffer, int]:
    last_read: dict[cv.Buffer, int] = {}
    for i, s in enumerate(steps):
        for b in s.kernel.params:
            if b not in s.writes:
                last_read[b] = i
    slots: dict[cv.Buffer, int] = {}
    free_at: list[tuple[cv.Buffer, int]] = []  # slot -> (its buffer type, step after which it is free)
    for i, s in enumerate(steps):
        for b in s.writes:
            if b not in workspace:
                continue
            k = next((k for k, (t, end) in enumerate(free_at)
                      if end < i and (t.size, t.dtype) == (b.size, b.dtype)), None)  # fmt: skip
            if k is None:
                k = len(free_at)
                free_at.append((b, 0))
            free_at[k] = (b, last_read.get(b, i))
            slots[b] = k
    return slots


def driver_source(gen, results: list[cv.View]) -> tuple[str, dict[str, np.ndarray]]:
    """Source of the kernels and the driver, and the host constants it names."""
    steps = gen.steps
    outputs = list(dict.fromkeys(r.buf for r in results))
    written = {b for s in steps for b in s.writes}
    workspace = written - set(outputs)
    slots = _slots(steps, workspace)
    nslots = max(slots.values(), default=-1) + 1
    names: dict[cv.Buffer, str] = {b: f"ws[{k}]" for b, k in slots.items()}
    names.update({b: f"o{k}" for k, b in enumerate(outputs)})
    alloc = [f"        cuda.device_array({t.size}, {_np_dtype(t.dtype)}),  # slot {k}"
             for k, t in sorted({k: b for b, k in slots.items()}.items())]  # fmt: skip
    constants = {}
    for k, (buf, value) in enumerate(gen.constants.items()):
        names[buf] = f"ws[{nslots + k}]"
        constants[f"c{k}"] = value
        alloc.append(f"        cuda.to_device(c{k}),  # constant {value.dtype}[{value.size}]")
    for v in gen.graph.inputs:
        buf = gen.env[v].buf
        names.setdefault(buf, buf.name)

    em = gen.em
    em.lines = []
    for k, b in enumerate(outputs):
        em.line(f"o{k} = cuda.device_array({b.size}, {_np_dtype(b.dtype)})")
    for s in steps:
        args = ", ".join(names[b] for b in s.kernel.params)
        em.line(f"{s.kernel.name}{s.kernel.launch}({args})", s.node)
    params = ", ".join(["ws"] + [gen.env[v].buf.name for v in gen.graph.inputs])
    outs = ", ".join(names[r.buf] for r in results)
    kernels = list({s.kernel.name: s.kernel.source for s in steps}.values())
    head = [f"# bpir generated code for func @{gen.graph.name}: numba-cuda backend, "
            f"{len(kernels)} kernels, {len(steps)} launches per call"]  # fmt: skip
    parts = head + [f"\n\n{k}" for k in kernels]
    parts += ["\n\ndef workspace():",
              '    """Device buffers reused across calls (intermediates by slot), then constants."""',
              "    return [", *alloc, "    ]",
              f"\n\ndef forward({params}):", *em.lines,
              f"    return ({outs}{',' if len(results) == 1 else ''})"]  # fmt: skip
    return "\n".join(parts) + "\n", constants
