"""The optimizers users name: sgd, adam, adamw, rmsprop, adagrad (optax's compositions)."""

from __future__ import annotations

from .base import GradientTransformation, ScalarOrSchedule, chain, identity, scale_by_learning_rate
from .transforms import add_decayed_weights, scale_by_adam, scale_by_rms, scale_by_rss, trace


def sgd(
    learning_rate: ScalarOrSchedule, momentum: float | None = None, nesterov: bool = False
) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum."""
    opt = trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity()
    return chain(opt, scale_by_learning_rate(learning_rate))


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0, *, nesterov: bool = False) -> GradientTransformation:  # fmt: skip
    """Adam (Kingma & Ba)."""
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov), scale_by_learning_rate(learning_rate)
    )


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, weight_decay: ScalarOrSchedule = 1e-4, *,
          nesterov: bool = False) -> GradientTransformation:  # fmt: skip
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
            eps_in_sqrt: bool = True, momentum: float | None = None,
            nesterov: bool = False) -> GradientTransformation:  # fmt: skip
    """RMSProp (uncentred), with optional momentum after the learning rate (as optax)."""
    return chain(
        scale_by_rms(decay, eps, initial_scale, eps_in_sqrt),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity(),
    )


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:  # fmt: skip
    """Adagrad."""
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))
