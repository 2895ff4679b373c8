"""Op cases for the shared suite (tests/test_ops.py): random. Same `Case` and helpers as op_cases.

Random ops are checked forward only (the same key gives the same numbers on every backend);
gradients are taken w.r.t. the data they multiply or mask, never w.r.t. the key."""

from __future__ import annotations

from op_cases import Case, _n, args

import bpir
import bpir.numpy as bnp


def _key(rng, dt):
    return bpir.random.key(int(rng.integers(0, 2**63)))


# fmt: off
CASES: list = [
    Case("random_uniform", lambda key, x: bpir.random.uniform(key, x.shape, x.dtype) * x,
         args(_key, _n(3, 4)), argnums=(1,)),
    Case("random_uniform_range", lambda key, x: bpir.random.uniform(key, x.shape, x.dtype, -2.0, 3.0) + x,
         args(_key, _n(3, 4)), argnums=(1,)),
    Case("random_normal", lambda key, x: bpir.random.normal(key, x.shape, x.dtype) * x,
         args(_key, _n(3, 4)), argnums=(1,)),
    Case("random_bernoulli", lambda key, x: bpir.random.bernoulli(key, x, (2, 3, 4)),
         args(_key, lambda rng, dt: rng.uniform(size=(3, 4)).astype(dt)), grad=False),
    Case("random_split", lambda key: bpir.random.split(key, 3), args(_key), grad=False, dtypes=("float64",)),
    Case("random_split_use", lambda key, x: bpir.random.normal(bpir.random.split(key)[1], x.shape, x.dtype) + x,
         args(_key, _n(3, 4)), argnums=(1,)),
    Case("dropout", lambda x, key: bnp.dropout(key, x, 0.5), args(_n(4, 5), _key)),
]
# fmt: on
