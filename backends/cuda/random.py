"""CUDA kernels for the random ops: threefry-2x32 unrolled into each thread's code (one counter
per output element), on 32-bit words held in uint64 and masked after every add, so Numba's
integer widening cannot change a bit. Floats in [0, 1) are the top mantissa bits times
2**-mantissa, exactly the values of JAX's bitcast."""

from __future__ import annotations

from bpir.ir import Node

from . import kernels as ck
from . import views as cv

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_M32 = "u64(4294967295)"


def threefry_lines(k0: str, k1: str, hi: str, lo: str, a: str, b: str) -> list[str]:
    """Kernel statements leaving threefry2x32((k0, k1), (hi, lo)) in ``a``, ``b`` (uint64)."""
    ks = (k0, k1, "tk2")
    lines = [
        f"tk2 = {k0} ^ {k1} ^ u64(466688986)",
        f"{a} = ({hi} + {k0}) & {_M32}",
        f"{b} = ({lo} + {k1}) & {_M32}",
    ]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            lines.append(f"{a} = ({a} + {b}) & {_M32}")
            lines.append(f"{b} = ((({b} << u64({r})) | ({b} >> u64({32 - r}))) & {_M32}) ^ {a}")
        lines.append(f"{a} = ({a} + {ks[(i + 1) % 3]}) & {_M32}")
        lines.append(f"{b} = ({b} + {ks[(i + 2) % 3]} + u64({i + 1})) & {_M32}")
    return lines


class RandomOps:
    """Mixin of the backend's generator (``self.env``, ``self.map``)."""

    OPS = {"random_uniform", "random_split"}

    def random(self, node: Node) -> cv.Ref:
        shape, dtype = node.out.shape, node.out.dtype
        body = ck.Body()
        key = self.env[node.inputs[0]]
        k0, k1 = (body.emit(f"u64({body.read(key, [str(j)])})") for j in (0, 1))
        idx_lines, idx = cv.unravel("i", shape, "i")
        if node.op == "random_split":  # key i0 is the counter (0, i0); word i1 of its bits
            body.lines += threefry_lines(k0, k1, "u64(0)", f"u64({idx[0]})", "ta", "tb")
            value = body.emit(f"u32(ta if {idx[1]} == 0 else tb)")
        else:  # element i (flat) has the counter (i >> 32, i & 0xFFFFFFFF)
            body.lines += threefry_lines(k0, k1, "(u64(i) >> u64(32))", f"(u64(i) & {_M32})", "ta", "tb")
            if dtype == "f32":
                value = body.emit("f32((ta ^ tb) >> u64(9)) * f32(1.1920928955078125e-07)")
            else:
                value = body.emit("f64((ta << u64(20)) | (tb >> u64(12))) * f64(2.220446049250313e-16)")
        comment = f"{node.op} {', '.join(f'{k}={v}' for k, v in node.attrs.items())} (threefry-2x32)"
        return self.map(shape, body, [value], [dtype], node.op, idx_lines, [comment])[0]
