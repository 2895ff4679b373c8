"""NumPy reference of threefry-2x32 random bits and their conversion to floats (JAX's bits)."""

from __future__ import annotations

import numpy as np

_U32 = np.uint32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def threefry2x32(k0, k1, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), as JAX computes it."""
    k0, k1 = _U32(k0), _U32(k1)
    ks = (k0, k1, k0 ^ k1 ^ _U32(_PARITY))
    with np.errstate(over="ignore"):
        a = x0.astype(_U32) + ks[0]
        b = x1.astype(_U32) + ks[1]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                a = a + b
                b = ((b << _U32(r)) | (b >> _U32(32 - r))) ^ a
            a = a + ks[(i + 1) % 3]
            b = b + ks[(i + 2) % 3] + _U32(i + 1)
    return a, b


def _counters(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    n = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint64).reshape(shape)
    return (n >> np.uint64(32)).astype(_U32), (n & np.uint64(0xFFFFFFFF)).astype(_U32)


def split(key: np.ndarray, num: int) -> np.ndarray:
    a, b = threefry2x32(key[0], key[1], *_counters((num,)))
    return np.stack([a, b], axis=-1)


def random_bits(key: np.ndarray, shape: tuple[int, ...], width: int) -> np.ndarray:
    """uint32 (width 32) or uint64 (width 64) bits, JAX's partitionable threefry layout."""
    a, b = threefry2x32(key[0], key[1], *_counters(shape))
    if width == 32:
        return a ^ b
    return (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)


def bits_to_unit(bits: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floats in [0, 1): random mantissa under exponent 0, minus one."""
    dtype = np.dtype(dtype)
    nbits, nmant = dtype.itemsize * 8, np.finfo(dtype).nmant
    utype = bits.dtype.type
    one = np.array(1.0, dtype).view(bits.dtype)
    return ((bits >> utype(nbits - nmant)) | one).view(dtype) - dtype.type(1.0)


# erfinv as XLA computes it (Giles 2010; single precision: 2 branches, double: 3 branches).
_ERFINV32 = (
    (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
     -0.00125372503, -0.00417768164, 0.246640727, 1.50140941),
    (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
     -0.0076224613, 0.00943887047, 1.00167406, 2.83297682),
)  # fmt: skip
_ERFINV64 = (
    (-3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
     1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
     6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
     2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
     1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
     4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
     0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
     0.24015818242558961693, 1.6536545626831027356),
    (2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
     1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
     2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
     6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
     0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
     -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
     3.0838856104922207635),
    (-2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
     -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
     2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
     -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
     7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
     1.0103004648645343977, 4.8499064014085844221),
)  # fmt: skip


def erfinv(x):
    """XLA's erfinv polynomial for x in (-1, 1), in x's dtype; written with NumPy functions
    only, so that it also records IR when ``x`` is traced."""
    t = x.dtype.type
    w = -np.log1p(-(x * x))
    if x.dtype == np.float32:
        small, large = _ERFINV32
        lt = w < t(5.0)
        w = np.where(lt, w - t(2.5), np.sqrt(w) - t(3.0))
        p = np.where(lt, t(small[0]), t(large[0]))
        for a, b in zip(small[1:], large[1:]):
            p = np.where(lt, t(a), t(b)) + p * w
        return p * x
    c625, c16, cbig = _ERFINV64
    lt6, lt16 = w < t(6.25), w < t(16.0)
    w = np.where(lt6, w - t(3.125), np.sqrt(w) - np.where(lt16, t(3.25), t(5.0)))
    p = np.where(lt6, t(c625[0]), np.where(lt16, t(c16[0]), t(cbig[0])))
    for i in range(1, 17):
        p = np.where(lt6, t(c625[i]), np.where(lt16, t(c16[i]), t(cbig[i]))) + p * w
    for i in range(17, 19):  # the w >= 16 polynomial has ended
        p = np.where(lt16, np.where(lt6, t(c625[i]), t(c16[i])) + p * w, p)
    for i in range(19, 23):  # so has the w >= 6.25 one
        p = np.where(lt6, t(c625[i]) + p * w, p)
    return p * x
