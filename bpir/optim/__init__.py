"""``bpir.optim``: optimizers with optax's API and numbers, as pure functions of pytrees, so an
optimizer step traces into (and fuses with) a compiled training step."""

from .aliases import adagrad, adam, adamw, rmsprop, sgd
from .base import (
    GradientTransformation,
    apply_updates,
    chain,
    identity,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from .schedules import (
    constant,
    constant_schedule,
    cosine_decay,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    polynomial_schedule,
    warmup_cosine_decay,
    warmup_cosine_decay_schedule,
)
from .transforms import (
    add_decayed_weights,
    clip_by_global_norm,
    scale_by_adam,
    scale_by_rms,
    scale_by_rss,
    trace,
)
from .tree import global_norm

__all__ = [
    "GradientTransformation", "adagrad", "adam", "adamw", "add_decayed_weights", "apply_updates", "chain",
    "clip_by_global_norm", "constant", "constant_schedule", "cosine_decay", "cosine_decay_schedule",
    "exponential_decay", "global_norm", "identity", "join_schedules", "linear_schedule", "polynomial_schedule",
    "rmsprop", "scale", "scale_by_adam", "scale_by_learning_rate", "scale_by_rms", "scale_by_rss",
    "scale_by_schedule", "sgd", "trace", "warmup_cosine_decay", "warmup_cosine_decay_schedule",
]  # fmt: skip
