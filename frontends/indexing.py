"""Indexing on tracers: basic indexing gives views (``views``), boolean masks go to ``masks``,
integer-array indexing is a gather, and integer-array assignment a scatter with NumPy's
semantics: ``x[idx] = v`` and ``x[idx] += v`` keep one write per repeated index (the last),
``np.add.at`` accumulates every one."""

from __future__ import annotations

import numpy as np

from bpir.errors import TraceError
from bpir.ir import Value
from bpir.location import user_location

from . import masks, views
from .tracer import Tracer, active_trace, lift, operands, shape_of, wrap

# pairwise comparison of traced indices (to find the last write of each) costs K*K
MAX_TRACED_SCATTER = 4096


def _fail(msg: str):
    raise TraceError(f"{msg} (at {user_location()})")


def _is_array(k) -> bool:
    return isinstance(k, (Tracer, np.ndarray))


def _normalize(key) -> tuple:
    """The key as a tuple; lists and ranges become integer (or boolean) arrays."""
    keys = key if isinstance(key, tuple) else (key,)
    out = []
    for k in keys:
        if isinstance(k, range):
            k = np.arange(k.start, k.stop, k.step)
        elif isinstance(k, list):
            if any(isinstance(e, Tracer) for e in k):
                _fail("an index list that holds traced values: use np.stack([...]) as the index")
            k = np.asarray(k)
            if k.size == 0:
                k = k.astype(np.int64)
        if isinstance(k, bool):
            _fail("a Python bool as an index is not supported")
        if _is_array(k) and np.dtype(k.dtype).kind not in "biu":
            _fail(f"arrays used as indices must be integer or boolean, got {np.dtype(k.dtype)}")
        out.append(k)
    return tuple(out)


def _mask_key(keys: tuple):
    if len(keys) == 1 and _is_array(keys[0]) and np.dtype(keys[0].dtype) == np.bool_:
        return keys[0]
    if any(_is_array(k) and np.dtype(k.dtype) == np.bool_ for k in keys):
        _fail("a boolean mask combined with other indices is not supported; use np.where")
    return None


def getitem(x: Tracer, key):
    keys = _normalize(key)
    mask = _mask_key(keys)
    if mask is not None:
        return masks.read(x, mask)
    if any(_is_array(k) for k in keys):
        return wrap(Advanced(x.shape, keys).gather(lift(x)))
    return views.index(x, keys)


def setitem(x: Tracer, key, val) -> Value:
    """The contents of ``x`` after ``x[key] = val``."""
    keys = _normalize(key)
    mask = _mask_key(keys)
    if mask is not None:
        return masks.write(x, mask, val)
    if any(_is_array(k) for k in keys):
        return Advanced(x.shape, keys).scatter(lift(x), val, accumulate=False)
    plan = views.basic_plan(x.shape, keys)
    (new,) = operands(val, dtype=x.value.dtype)
    if np.broadcast_shapes(new.shape, plan.shape) != plan.shape:
        _fail(f"cannot assign a value of shape {new.shape} to a region of shape {plan.shape}")
    b = active_trace().builder
    return plan.write(b, lift(x), b.broadcast_to(new, plan.shape))


def ufunc_at(ufunc, x, key, val=None, **kwargs) -> None:
    """``np.add.at(x, idx, v)`` / ``np.subtract.at``: every repeated index accumulates."""
    if kwargs or ufunc not in (np.add, np.subtract) or val is None:
        _fail(f"np.{ufunc.__name__}.at is not supported on traced values; np.add.at and "
              "np.subtract.at are")  # fmt: skip
    if not isinstance(x, Tracer):
        _fail(f"np.{ufunc.__name__}.at into a NumPy array with traced values: a NumPy array cannot "
              "hold traced values; create it traced (np.zeros(shape, like=x)) first")  # fmt: skip
    keys = _normalize(key)
    if _mask_key(keys) is not None:
        x[keys[0]] = np.add(x[keys[0]], val) if ufunc is np.add else np.subtract(x[keys[0]], val)
        return
    if not any(_is_array(k) for k in keys):
        x[key] = np.add(x[key], val) if ufunc is np.add else np.subtract(x[key], val)
        return
    sign = 1 if ufunc is np.add else -1
    x.value = Advanced(x.shape, keys).scatter(lift(x), val, accumulate=True, sign=sign)


class Advanced:
    """An index with integer arrays: the indexed axes are moved to the front and flattened
    into one, so a read is a gather of rows and a write a scatter of rows (NumPy's placement
    of the broadcast index dimensions is restored afterwards)."""

    def __init__(self, shape: tuple, keys: tuple):
        if any(k is None for k in keys):
            _fail("None (np.newaxis) combined with integer-array indices is not supported")
        n_real = sum(k is not Ellipsis for k in keys)
        if n_real > len(shape):
            _fail(f"too many indices for an array of shape {shape}")
        if any(k is Ellipsis for k in keys):
            i = next(i for i, k in enumerate(keys) if k is Ellipsis)
            keys = keys[:i] + (slice(None),) * (len(shape) - n_real) + keys[i + 1 :]
        keys = keys + (slice(None),) * (len(shape) - len(keys))
        self.shape = shape
        self.adv = [a for a, k in enumerate(keys) if not isinstance(k, slice)]
        self.rest = [a for a, k in enumerate(keys) if isinstance(k, slice)]
        self.slices = tuple(keys[a] for a in self.rest)
        self.indices = [keys[a] for a in self.adv]
        try:
            self.bshape = np.broadcast_shapes(*(shape_of(k) for k in self.indices))
        except ValueError:
            _fail("shape mismatch: index arrays " + ", ".join(str(shape_of(k)) for k in self.indices)
                  + " do not broadcast")  # fmt: skip
        adjacent = self.adv == list(range(self.adv[0], self.adv[-1] + 1))
        self.at = self.adv[0] if adjacent else 0  # where NumPy puts the index dimensions
        self.rows = int(np.prod([shape[a] for a in self.adv]))
        self.flat = self._flat_index()

    def _flat_index(self) -> Value | np.ndarray:
        """The row of each index position in the flattened indexed axes (a constant when every
        index is one)."""
        dims = [self.shape[a] for a in self.adv]
        if all(not isinstance(k, Tracer) for k in self.indices):
            idx = [np.broadcast_to(np.asarray(k, dtype=np.int64), self.bshape) for k in self.indices]
            for k, d in zip(idx, dims):
                if k.size and (k.min() < -d or k.max() >= d):
                    _fail(f"index out of bounds for an axis of size {d}")
            return np.ravel_multi_index(tuple(k % d for k, d in zip(idx, dims)), dims).reshape(-1)
        b = active_trace().builder
        flat = None
        for k, d, stride in zip(self.indices, dims, _strides(dims)):
            v = lift(k, "i64")
            if isinstance(k, Tracer):  # negative indices count from the end
                v = b.where(b.lt(v, b.scalar(0, "i64")), b.add(v, b.scalar(d, "i64")), v)
            else:
                v = b.const(np.asarray(k) % d, "i64")
            v = b.broadcast_to(v, self.bshape)
            if stride != 1:
                v = b.mul(v, b.broadcast_to(b.scalar(stride, "i64"), self.bshape))
            flat = v if flat is None else b.add(flat, v)
        return b.reshape(flat, (int(np.prod(self.bshape)),))

    def _rows_view(self, b, v: Value) -> Value:
        """``v`` with the indexed axes first, flattened into one axis of ``rows``."""
        v = b.transpose(v, tuple(self.adv + self.rest))
        return b.reshape(v, (self.rows, *(self.shape[a] for a in self.rest)))

    def _from_rows(self, b, v: Value) -> Value:
        perm = tuple(self.adv + self.rest)
        v = b.reshape(v, tuple(self.shape[a] for a in perm))
        return b.transpose(v, tuple(int(i) for i in np.argsort(perm)))

    def _flat_value(self, b) -> Value:
        return b.const(self.flat, "i64") if isinstance(self.flat, np.ndarray) else self.flat

    def _take_rows(self, b, rows: Value) -> Value:
        k = int(np.prod(self.bshape))
        idx = b.reshape(self._flat_value(b), (k,) + (1,) * (rows.type.ndim - 1))
        return b.take_along_axis(rows, b.broadcast_to(idx, (k, *rows.shape[1:])), axis=0)

    def gather(self, v: Value) -> Value:
        b = active_trace().builder
        picked = self._take_rows(b, self._rows_view(b, v))  # (K, *rest dims)
        sub = views.basic_plan(picked.shape, (slice(None), *self.slices))
        picked = sub.read(b, picked)  # the slices of the other axes
        out = b.reshape(picked, (*self.bshape, *picked.shape[1:]))
        return self._place_index_dims(b, out)

    def _place_index_dims(self, b, out: Value) -> Value:
        nb = len(self.bshape)
        if self.at == 0:
            return out
        rest = list(range(nb, out.type.ndim))
        perm = rest[: self.at] + list(range(nb)) + rest[self.at :]
        return b.transpose(out, tuple(perm))

    def _value_rows(self, b, val, dtype: str) -> Value:
        """``val`` broadcast to the indexed region, as rows (K, *sliced rest dims)."""
        nb = len(self.bshape)
        probe = np.empty((self.rows, *(self.shape[a] for a in self.rest)), np.uint8)
        region_rest = probe[(slice(None), *self.slices)].shape[1:]
        region = list(region_rest)
        region[self.at : self.at] = self.bshape
        (v,) = operands(val, dtype=dtype)
        if np.broadcast_shapes(v.shape, tuple(region)) != tuple(region):
            _fail(f"cannot assign a value of shape {v.shape} to an indexed region of shape {tuple(region)}")
        v = b.broadcast_to(v, tuple(region))
        if self.at:
            perm = (
                list(range(self.at, self.at + nb))
                + list(range(self.at))
                + list(range(self.at + nb, len(region)))
            )
            v = b.transpose(v, tuple(perm))
        return b.reshape(v, (int(np.prod(self.bshape)), *region_rest))

    def scatter(self, x: Value, val, accumulate: bool, sign: int = 1) -> Value:
        """The contents of ``x`` after ``x[key] = val`` (or ``np.add.at`` when accumulating)."""
        b = active_trace().builder
        rows = self._rows_view(b, x)
        k = int(np.prod(self.bshape))
        new = self._value_rows(b, val, x.dtype)
        if accumulate:
            if any(s != slice(None) for s in self.slices):
                _fail("np.add.at with slices of the other axes is not supported")
            upd = new if sign == 1 else b.neg(new)
            out = b.add(rows, self._scatter_add(b, upd, rows.shape))
            return self._from_rows(b, out)
        picked = self._take_rows(b, rows)  # whole rows, then the sliced part replaced
        sub = views.basic_plan(picked.shape, (slice(None), *self.slices))
        picked = sub.write(b, picked, b.reshape(new, sub.shape))
        last = self._last_write(b, k)
        if last is not None:
            keep = b.broadcast_to(b.reshape(last, (k,) + (1,) * (picked.type.ndim - 1)), picked.shape)
            picked = b.where(keep, picked, b.broadcast_to(b.scalar(0, x.dtype), picked.shape))
        placed = self._scatter_add(b, picked, rows.shape)
        return self._from_rows(b, b.where(self._hit(b, rows.shape), placed, rows))

    def _scatter_add(self, b, upd: Value, shape: tuple) -> Value:
        k = upd.shape[0]
        idx = b.reshape(self._flat_value(b), (k,) + (1,) * (upd.type.ndim - 1))
        return b.scatter_add_along_axis(b.broadcast_to(idx, upd.shape), upd, axis=0, dim=self.rows)

    def _hit(self, b, shape: tuple) -> Value:
        """Which rows are written (a constant when the indices are)."""
        if isinstance(self.flat, np.ndarray):
            hit = np.zeros(self.rows, bool)
            hit[self.flat] = True
            return b.const(np.broadcast_to(hit.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy())
        k = int(np.prod(self.bshape))
        ones = b.broadcast_to(b.scalar(1, "i32"), (k,))
        count = b.scatter_add_along_axis(self._flat_value(b), ones, axis=0, dim=self.rows)
        hit = b.gt(count, b.broadcast_to(b.scalar(0, "i32"), (self.rows,)))
        return b.broadcast_to(b.reshape(hit, (self.rows,) + (1,) * (len(shape) - 1)), shape)

    def _last_write(self, b, k: int) -> Value | None:
        """For each index position, whether no later position writes the same row (None when
        every position is the last: the indices are distinct)."""
        if isinstance(self.flat, np.ndarray):
            first_of_reversed = np.unique(self.flat[::-1], return_index=True)[1]
            last = np.zeros(k, bool)
            last[k - 1 - first_of_reversed] = True
            return None if last.all() else b.const(last)
        if self._distinct_by_constant_part():
            return None
        if k > MAX_TRACED_SCATTER:
            _fail(f"assignment through {k} traced indices that may repeat: NumPy keeps one write per "
                  "repeated index, which costs K*K to trace; use np.add.at if writes should add up, "
                  "or index with distinct constant rows (np.arange)")  # fmt: skip
        f = self._flat_value(b)
        same = b.eq(
            b.broadcast_to(b.reshape(f, (k, 1)), (k, k)), b.broadcast_to(b.reshape(f, (1, k)), (k, k))
        )
        later = b.logical_and(same, b.const(np.triu(np.ones((k, k), bool), 1)))
        n_later = b.reduce_sum(b.cast(later, "i32"), axes=(1,), keepdims=False)
        return b.eq(n_later, b.broadcast_to(b.scalar(0, "i32"), (k,)))

    def _distinct_by_constant_part(self) -> bool:
        """Some constant index alone is already distinct at every position (np.arange(n))."""
        for k, a in zip(self.indices, self.adv):
            if isinstance(k, Tracer):
                continue
            c = np.broadcast_to(np.asarray(k) % self.shape[a], self.bshape).reshape(-1)
            if len(np.unique(c)) == c.size:
                return True
        return False


def _strides(dims: list[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(dims):
        out.append(acc)
        acc *= d
    return out[::-1]
