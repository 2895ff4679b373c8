"""``import bpir.numpy as bnp``: sigmoid, relu, softmax, log_softmax, logsumexp, one_hot,
conv2d, max_pool2d, avg_pool2d, cross_entropy, stop_gradient, dropout."""

from bpir.frontends.dropout import dropout  # noqa: F401
from bpir.frontends.nn import (  # noqa: F401
    avg_pool2d,
    conv2d,
    cross_entropy,
    log_softmax,
    logsumexp,
    max_pool2d,
    one_hot,
    relu,
    sigmoid,
    softmax,
    stop_gradient,
)
