"""Gradient transformations with optax's update rules and numbers: momentum trace, Adam's
moments, RMS and RSS scalings, global-norm clipping, decoupled weight decay."""

from __future__ import annotations

import numpy as np

from .base import GradientTransformation, ScalarOrSchedule, count_zero, increment
from .tree import full_like, global_norm, tree_map, zeros_like


def _cast(x, dtype):
    return x.astype(dtype) if hasattr(x, "astype") else np.asarray(x, dtype)


def _bias_correction(moment, decay: float, count):
    """``moment / (1 - decay**count)``; the correction is computed wide, then cast (as optax)."""
    correction = 1 - decay**count
    return tree_map(lambda t: t / _cast(correction, t.dtype), moment)


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: ``trace = g + decay * trace``; with ``nesterov`` the update is
    ``g + decay * trace``."""

    def init(params):
        return {"trace": zeros_like(params)}

    def update(updates, state, params=None):
        f = lambda g, t: g + decay * t
        new_trace = tree_map(f, updates, state["trace"], names=("updates", "state['trace']"))
        out = tree_map(f, updates, new_trace) if nesterov else new_trace
        return out, {"trace": new_trace}

    return GradientTransformation(init, update)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                  *, nesterov: bool = False) -> GradientTransformation:  # fmt: skip
    """Adam's bias-corrected first and second moments: ``m_hat / (sqrt(v_hat + eps_root) + eps)``."""

    def init(params):
        return {"count": count_zero(), "mu": zeros_like(params), "nu": zeros_like(params)}

    def update(updates, state, params=None):
        mu = tree_map(
            lambda g, t: (1 - b1) * g + b1 * t, updates, state["mu"], names=("updates", "state['mu']")
        )
        nu = tree_map(
            lambda g, t: (1 - b2) * (g * g) + b2 * t, updates, state["nu"], names=("updates", "state['nu']")
        )
        count = increment(state["count"])
        if nesterov:
            mu_hat = tree_map(lambda m, g: b1 * m + (1 - b1) * g, _bias_correction(mu, b1, increment(count)),
                              _bias_correction(updates, b1, count))  # fmt: skip
        else:
            mu_hat = _bias_correction(mu, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        out = tree_map(lambda m, v: m / (np.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return out, {"count": count, "mu": mu, "nu": nu}

    return GradientTransformation(init, update)


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True) -> GradientTransformation:  # fmt: skip
    """RMSProp's scaling by the running mean of squared gradients."""

    def init(params):
        return {"nu": full_like(params, initial_scale)}

    def update(updates, state, params=None):
        nu = tree_map(lambda g, t: (1 - decay) * (g * g) + decay * t, updates, state["nu"],
                      names=("updates", "state['nu']"))  # fmt: skip
        if eps_in_sqrt:
            scaling = tree_map(lambda n: 1 / np.sqrt(n + eps), nu)
        else:
            scaling = tree_map(lambda n: 1 / (np.sqrt(n) + eps), nu)
        return tree_map(lambda s, g: s * g, scaling, updates), {"nu": nu}

    return GradientTransformation(init, update)


def scale_by_rss(initial_accumulator_value: float = 0.1, eps: float = 1e-7) -> GradientTransformation:
    """Adagrad's scaling by the root of the sum of squared gradients."""

    def init(params):
        return {"sum_of_squares": full_like(params, initial_accumulator_value)}

    def update(updates, state, params=None):
        sos = tree_map(lambda g, t: g * g + t, updates, state["sum_of_squares"],
                       names=("updates", "state['sum_of_squares']"))  # fmt: skip
        inv = tree_map(lambda t: np.where(t > 0, 1 / np.sqrt(t + eps), 0.0), sos)
        return tree_map(lambda s, g: _cast(s, g.dtype) * g, inv, updates), {"sum_of_squares": sos}

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale all updates by ``max_norm / norm`` when their global L2 norm exceeds ``max_norm``."""

    def update(updates, state, params=None):
        norm = global_norm(updates)
        keep = norm < max_norm
        out = tree_map(lambda t: np.where(keep, t, (t / _cast(norm, t.dtype)) * max_norm), updates)
        return out, state

    return GradientTransformation(lambda params: (), update)


def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """``updates + weight_decay * params`` (decoupled weight decay, as AdamW)."""
    scheduled = callable(weight_decay)

    def init(params):
        return {"count": count_zero()} if scheduled else ()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        new_state = {"count": increment(state["count"])} if scheduled else state
        if not scheduled and weight_decay == 0.0:
            return updates, new_state
        s = weight_decay(state["count"]) if scheduled else weight_decay
        out = tree_map(lambda g, p: g + s * p, updates, params, names=("updates", "params"))
        return out, new_state

    return GradientTransformation(init, update)
