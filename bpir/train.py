"""A small training loop: the step (loss, gradient, optimizer update) is compiled once ahead of
time, then epochs of shuffled minibatches run through it with a progress bar; evaluation after
each epoch; the history is plain lists, and ``plot_history`` draws it with matplotlib."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FitResult:
    """What ``fit`` returns: the trained parameters, the model state (batch-norm statistics;
    None without one) and the history (``epoch``, ``loss``, ``eval_accuracy``, ``epoch_time``,
    ``compile_time``)."""

    params: Any
    state: Any
    history: dict = field(default_factory=dict)


def make_step(loss_fn: Callable, optimizer, with_state: bool = False, with_key: bool = False) -> Callable:
    """``step(params, opt_state, [state], [key], x, y) -> (params, opt_state, [state], loss)``;
    ``loss_fn(params, [state], [key], x, y)`` returns the loss, or ``(loss, new_state)`` with a
    state. The arguments keep these names, so ``data_parallel=("x", "y")`` can name the batch."""
    from . import optim
    from .transforms import value_and_grad

    def core(params, opt_state, extra, x, y):
        if with_state:
            (loss, new_state), grads = value_and_grad(loss_fn, has_aux=True)(params, *extra, x, y)
        else:
            loss, grads = value_and_grad(loss_fn)(params, *extra, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
        return (params, opt_state, new_state, loss) if with_state else (params, opt_state, loss)

    if with_state and with_key:

        def step(params, opt_state, state, key, x, y):
            return core(params, opt_state, (state, key), x, y)

    elif with_state:

        def step(params, opt_state, state, x, y):
            return core(params, opt_state, (state,), x, y)

    elif with_key:

        def step(params, opt_state, key, x, y):
            return core(params, opt_state, (key,), x, y)

    else:

        def step(params, opt_state, x, y):
            return core(params, opt_state, (), x, y)

    return step


def fit(loss_fn: Callable, params: Any, optimizer, train: tuple, *, epochs: int = 1, batch_size: int = 32,
        predict_fn: Callable | None = None, eval_data: tuple | None = None, state: Any = None, key=None,
        backend: str = "numba", seed: int = 0, progress: bool | None = None,
        compile_options: dict | None = None, eval_compile_options: dict | None = None) -> FitResult:  # fmt: skip
    """Train ``params`` with ``optimizer`` on ``train = (x, y)``.

    ``loss_fn(params, [state], [key], x, y)``: ``state`` (e.g. batch-norm statistics) when given,
    then a fresh ``bpir.random`` key per step when ``key`` is given (dropout); with a state it
    returns ``(loss, new_state)``. ``predict_fn(params, [state], x) -> logits`` with ``eval_data``
    adds the accuracy of ``argmax(logits)`` after each epoch. Batches are a fresh shuffle each
    epoch (``seed``); a last incomplete batch is dropped so the step keeps one static shape and
    is compiled once. ``progress``: a bar (tqdm) on a terminal, None = only when stderr is a tty.
    ``compile_options`` go to ``bpir.compile`` for the step (e.g. ``data_parallel=("x", "y")``),
    ``eval_compile_options`` for ``predict_fn``."""
    from . import compile as bpir_compile
    from . import random as bpir_random

    x, y = train
    if len(x) != len(y):
        raise ValueError(f"train: x has {len(x)} samples, y has {len(y)}")
    if not 0 < batch_size <= len(x):
        raise ValueError(f"batch_size {batch_size} must lie in [1, {len(x)}] (the training set's size)")
    with_state, with_key = state is not None, key is not None
    opt_state = optimizer.init(params)
    head = (params, opt_state) + ((state,) if with_state else ()) + ((key,) if with_key else ())
    t0 = time.perf_counter()
    step = bpir_compile(make_step(loss_fn, optimizer, with_state, with_key), backend=backend,
                        example_args=(*head, x[:batch_size], y[:batch_size]), **(compile_options or {}))  # fmt: skip
    predict = None
    if predict_fn is not None and eval_data is not None:
        pre = (params, state) if with_state else (params,)
        predict = bpir_compile(
            predict_fn, backend=backend, example_args=(*pre, eval_data[0]), **(eval_compile_options or {})
        )
    # one throw-away call each (the functions are pure): backends that JIT on first call (numba,
    # jax) compile here, so compile_time holds all compilation and the epochs only run
    step(*head, x[:batch_size], y[:batch_size])
    if predict is not None:
        predict(*pre, eval_data[0])
    history: dict = {"epoch": [], "loss": [], "eval_accuracy": [], "epoch_time": [],
                     "compile_time": time.perf_counter() - t0}  # fmt: skip
    rng = np.random.default_rng(seed)
    n_batches = len(x) // batch_size
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        order = rng.permutation(len(x))
        losses = []
        bar = _progress(range(n_batches), f"epoch {epoch}/{epochs}", progress)
        for b in bar:
            idx = order[b * batch_size : (b + 1) * batch_size]
            args = [params, opt_state]
            if with_state:
                args.append(state)
            if with_key:
                key, sub = bpir_random.split(key)
                args.append(sub)
            out = step(*args, x[idx], y[idx])
            params, opt_state = out[0], out[1]
            if with_state:
                state = out[2]
            losses.append(float(out[-1]))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        history["epoch"].append(epoch)
        history["loss"].append(float(np.mean(losses)))
        history["epoch_time"].append(time.perf_counter() - t_epoch)
        if predict is not None:
            logits = predict(params, state, eval_data[0]) if with_state else predict(params, eval_data[0])
            history["eval_accuracy"].append(float(np.mean(np.argmax(np.asarray(logits), -1) == eval_data[1])))
    return FitResult(params, state, history)


def _progress(it, desc: str, progress: bool | None):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is optional: pip install 'bpir[examples]'
        return it
    return tqdm(it, desc=desc, leave=False)


def plot_history(history: dict, path: str) -> None:
    """Write a PNG of the training loss and evaluation accuracy per epoch (needs matplotlib)."""
    try:
        from matplotlib.figure import Figure  # no pyplot: the user's backend and state are untouched
    except ImportError as e:
        raise ImportError("plot_history needs matplotlib: pip install 'bpir[examples]'") from e
    panels = [("loss", "training loss")] + (
        [("eval_accuracy", "eval accuracy")] if history.get("eval_accuracy") else []
    )
    fig = Figure(figsize=(5 * len(panels), 3.5))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (name, title) in zip(axes[0], panels):
        ax.plot(history["epoch"], history[name], marker="o")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
