"""Tensor types of the IR: a static shape and one of seven dtypes (u32: random keys and bits)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = ("f16", "f32", "f64", "i32", "i64", "bool", "u32")
_NUMPY = {
    "f16": np.float16,
    "f32": np.float32,
    "f64": np.float64,
    "i32": np.int32,
    "i64": np.int64,
    "bool": np.bool_,
    "u32": np.uint32,
}
_FROM_NUMPY = {np.dtype(v): k for k, v in _NUMPY.items()}
_ALIASES = {
    "float16": "f16",
    "float32": "f32",
    "float64": "f64",
    "int32": "i32",
    "int64": "i64",
    "bool_": "bool",
    "uint32": "u32",
}


def dtype_name(dtype) -> str:
    """Normalise a dtype given as 'f32', 'float32', np.float32 or np.dtype to its IR name."""
    if isinstance(dtype, str):
        if dtype in _NUMPY:
            return dtype
        if dtype in _ALIASES:
            return _ALIASES[dtype]
    try:
        return _FROM_NUMPY[np.dtype(dtype)]
    except (TypeError, KeyError):
        raise TypeError(f"unsupported dtype {dtype!r}; bpir supports {', '.join(DTYPES)}") from None


def to_numpy_dtype(name: str) -> np.dtype:
    return np.dtype(_NUMPY[name])


def is_float(name: str) -> bool:
    return name.startswith("f")


def is_int(name: str) -> bool:
    return name.startswith("i")


@dataclass(frozen=True)
class TensorType:
    """The static type of an SSA value: shape (tuple of ints) and dtype name."""

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))
        if any(d < 0 for d in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * to_numpy_dtype(self.dtype).itemsize

    @property
    def np_dtype(self) -> np.dtype:
        return to_numpy_dtype(self.dtype)

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


def Spec(shape, dtype="float32") -> TensorType:  # noqa: N802 (public name from the API contract)
    """An abstract argument for tracing: ``bpir.Spec((64, 3), "float32")``."""
    return TensorType(tuple(shape), dtype)
