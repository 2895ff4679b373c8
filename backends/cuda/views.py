"""Strided views for the CUDA backend: how a kernel finds element ``idx`` of an IR value.

Device buffers are flat and contiguous; an IR value is a ``View`` of one buffer (offset and
one stride per axis, 0 for broadcast axes) or a compile-time ``Literal``. Layout ops
(transpose, broadcast_to, slice, most reshapes) only change the view, so they cost no kernel:
the consumer's index arithmetic reads through them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpir.types import is_float

from ..array_api import literal as source_literal

NONFINITE = {"inf": "INF", "-inf": "-INF", "nan": "NAN"}  # kernel globals


@dataclass(frozen=True)
class Buffer:
    """A flat device array: ``name`` in the generated driver, element count and dtype."""

    name: str
    size: int
    dtype: str


@dataclass(frozen=True)
class View:
    buf: Buffer
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0

    @property
    def dtype(self) -> str:
        return self.buf.dtype


@dataclass(frozen=True)
class Literal:
    """A scalar constant, broadcast to ``shape``: read as a literal, never stored."""

    value: float | int | bool
    shape: tuple[int, ...]
    dtype: str


Ref = View | Literal


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, step = [], 1
    for d in reversed(shape):
        out.append(step)
        step *= d
    return tuple(reversed(out))


def whole(buf: Buffer, shape: tuple[int, ...]) -> View:
    return View(buf, tuple(shape), c_strides(shape))


def is_whole(ref: Ref) -> bool:
    """Does the view cover its buffer exactly, in C order (so it is the buffer reshaped)?"""
    if not isinstance(ref, View) or ref.offset or ref.buf.size != int(np.prod(ref.shape, dtype=np.int64)):
        return False
    return all(s == c for d, s, c in zip(ref.shape, ref.strides, c_strides(ref.shape)) if d != 1)


def transpose(ref: Ref, perm) -> Ref:
    shape = tuple(ref.shape[p] for p in perm)
    if isinstance(ref, Literal):
        return Literal(ref.value, shape, ref.dtype)
    return View(ref.buf, shape, tuple(ref.strides[p] for p in perm), ref.offset)


def broadcast(ref: Ref, shape) -> Ref:
    shape = tuple(shape)
    if isinstance(ref, Literal):
        return Literal(ref.value, shape, ref.dtype)
    lead = len(shape) - len(ref.shape)
    strides = [0] * lead + [0 if d == 1 and n != 1 else s
                            for d, n, s in zip(ref.shape, shape[lead:], ref.strides)]  # fmt: skip
    return View(ref.buf, shape, tuple(strides), ref.offset)


def slice_(ref: Ref, start, stop, step) -> Ref:
    shape = tuple(len(range(a, z, s)) for a, z, s in zip(start, stop, step))
    if isinstance(ref, Literal):
        return Literal(ref.value, shape, ref.dtype)
    offset = ref.offset + sum(a * s for a, s in zip(start, ref.strides))
    return View(ref.buf, shape, tuple(s * st for s, st in zip(ref.strides, step)), offset)


def reshape(ref: Ref, shape) -> Ref | None:
    """The reshaped view, or None when it needs a copy (a non-contiguous view regrouped)."""
    shape = tuple(shape)
    if isinstance(ref, Literal):
        return Literal(ref.value, shape, ref.dtype)
    dense = [(d, s) for d, s in zip(ref.shape, ref.strides) if d != 1]
    if all(s == c for (d, s), c in zip(dense, c_strides(tuple(d for d, _ in dense)))):
        return View(ref.buf, shape, c_strides(shape), ref.offset)
    if [d for d in shape if d != 1] == [d for d, _ in dense]:  # only size-1 axes move
        it = iter(s for _, s in dense)
        return View(ref.buf, shape, tuple(0 if d == 1 else next(it) for d in shape), ref.offset)
    return None


def unravel(lin: str, shape: tuple[int, ...], prefix: str) -> tuple[list[str], list[str]]:
    """Code splitting linear index ``lin`` over ``shape`` (C order) into ``prefix0, prefix1, ...``."""
    names = [f"{prefix}{d}" for d in range(len(shape))]
    lines, rest = [], lin
    for d in reversed(range(1, len(shape))):
        if shape[d] == 1:
            lines.append(f"{names[d]} = 0")
            continue
        lines.append(f"{names[d]} = {rest} % {shape[d]}")
        lines.append(f"{prefix}q{d} = {rest} // {shape[d]}")
        rest = f"{prefix}q{d}"
    if shape:
        lines.append(f"{names[0]} = {rest}")
    return lines, names


def offset(view: View, idx: list[str]) -> str:
    """Source of the flat buffer position of element ``idx`` of ``view``."""
    terms = [str(view.offset)] if view.offset else []
    terms += [i if s == 1 else f"{i} * {s}" for i, s, d in zip(idx, view.strides, view.shape)
              if s != 0 and d != 1]  # fmt: skip
    return " + ".join(terms) or "0"


def literal(value, dtype: str) -> str:
    """A typed scalar literal in kernel source (casts like ``f32`` are kernel globals)."""
    if dtype == "bool":
        return source_literal(bool(value))
    return f"{dtype}({source_literal(value if is_float(dtype) else int(value), NONFINITE)})"
