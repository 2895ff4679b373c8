"""The NumPy backend's runtime kernels (``k`` in its generated source): the core's plain-NumPy
kernels (``bpir.ops.kernels``), which the ops' reference implementations use too."""

from bpir.ops.kernels import (
    avg_pool2d,
    avg_pool2d_grad,
    conv2d,
    conv2d_input_grad,
    conv2d_weight_grad,
    erf,
    iota,
    max_pool2d,
    max_pool2d_grad,
    one_hot,
    pad,
    random_split,
    random_uniform,
    rsqrt,
    scatter_add_along_axis,
    sigmoid,
)

__all__ = [
    "avg_pool2d", "avg_pool2d_grad", "conv2d", "conv2d_input_grad", "conv2d_weight_grad", "erf",
    "iota", "max_pool2d", "max_pool2d_grad", "one_hot", "pad", "random_split", "random_uniform",
    "rsqrt", "scatter_add_along_axis", "sigmoid",
]  # fmt: skip
