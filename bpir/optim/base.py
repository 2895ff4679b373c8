"""GradientTransformation, chain, apply_updates and the learning-rate scalings (optax's API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .tree import tree_map

Schedule = Callable[[Any], Any]
ScalarOrSchedule = float | Schedule


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(updates, state, params=None) -> (updates, state)``;
    states are pytrees (dicts/tuples) of arrays, so an update traces into a compiled step."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


def count_zero():
    """A step counter: int32 scalar array, as optax's."""
    return np.zeros((), np.int32)


def increment(count):
    return count + 1


def identity() -> GradientTransformation:
    return GradientTransformation(lambda params: (), lambda updates, state, params=None: (updates, state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` in order; the state is the tuple of their states."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(f"chain state must be a tuple of {len(transforms)} states")
        if params is not None:  # a gradient that does not fit its parameter is named here
            tree_map(lambda *_: None, updates, params, names=("updates", "params"), none_ok=True)
        new = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new.append(s)
        return updates, tuple(new)

    return GradientTransformation(init, update)


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf in each parameter's dtype; a ``None`` update (an integer
    parameter, which has no gradient) leaves the parameter as it is."""

    def add(p, u):
        return p if u is None else (p + u).astype(np.result_type(p) if not hasattr(p, "dtype") else p.dtype)

    return tree_map(add, params, updates, names=("params", "updates"), none_ok=True)


def scale(step_size: float) -> GradientTransformation:
    return GradientTransformation(
        lambda params: (),
        lambda updates, state, params=None: (tree_map(lambda g: step_size * g, updates), state),
    )


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply by ``step_size_fn(count)`` (cast to each update's dtype); count starts at 0."""

    def init(params):
        return {"count": count_zero()}

    def update(updates, state, params=None):
        s = step_size_fn(state["count"])
        updates = tree_map(lambda g: _as_dtype(s, g.dtype) * g, updates)
        return updates, {"count": increment(state["count"])}

    return GradientTransformation(init, update)


def _as_dtype(x, dtype):
    if hasattr(x, "astype"):
        return x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> GradientTransformation:
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    return scale(m * learning_rate)
