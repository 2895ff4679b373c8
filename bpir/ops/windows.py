"""Decompositions of the windowed ops (conv2d and its gradients, pooling and its gradients)
into slices, pads, matmuls and elementwise ops, for backends without native kernels.

Convolution is im2col + one batched GEMM per group: the columns are the K = KH*KW strided
slices of the padded input; the transposed direction (input gradient, pooling gradients) adds
each window slot back with an interior-padded ``pad`` (col2im). Both lower to ops every
backend has; cost is K slices of the input, fine for the small kernels CNNs use."""

from __future__ import annotations

from ..ir import Node, Value


def _pad_hw(b, x: Value, padding, value) -> Value:
    ph, pw = padding
    if ph == pw == 0:
        return x
    return b.pad(x, lo=(0, 0, ph, pw), hi=(0, 0, ph, pw), interior=(0, 0, 0, 0), value=value)


def window_slices(b, x: Value, khw, stride, padding, dilation, out_hw, pad_value=0.0) -> list[Value]:
    """The KH*KW (N, C, OH, OW) slices of the padded input, one per kernel position."""
    xp = _pad_hw(b, x, padding, pad_value)
    n, c = x.shape[:2]
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    out = []
    for i in range(khw[0]):
        for j in range(khw[1]):
            start = (0, 0, i * dh, j * dw)
            stop = (n, c, i * dh + (oh - 1) * sh + 1, j * dw + (ow - 1) * sw + 1)
            out.append(b.slice(xp, start=start, stop=stop, step=(1, 1, sh, sw)))
    return out


def add_windows_back(b, slots: list[Value], khw, stride, padding, dilation, input_hw) -> Value:
    """col2im: sum each (N, C, OH, OW) slot into the input positions it was read from."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    hp, wp = input_hw[0] + 2 * ph, input_hw[1] + 2 * pw
    total = None
    for k, slot in enumerate(slots):
        i, j = divmod(k, khw[1])
        oh, ow = slot.shape[2:]
        lo = (0, 0, i * dh, j * dw)
        hi = (0, 0, hp - i * dh - (oh - 1) * sh - 1, wp - j * dw - (ow - 1) * sw - 1)
        placed = b.pad(slot, lo=lo, hi=hi, interior=(0, 0, sh - 1, sw - 1), value=0.0)
        total = placed if total is None else b.add(total, placed)
    n, c = total.shape[:2]
    return b.slice(
        total, start=(0, 0, ph, pw), stop=(n, c, ph + input_hw[0], pw + input_hw[1]), step=(1, 1, 1, 1)
    )


def _columns(b, x: Value, khw, a, out_hw) -> Value:
    """im2col: (groups, Cg*KH*KW, N*OH*OW), rows ordered like the OIHW weight's I, H, W."""
    n, c = x.shape[:2]
    g, k = a["groups"], khw[0] * khw[1]
    slots = window_slices(b, x, khw, a["stride"], a["padding"], a["dilation"], out_hw)
    stacked = b.concatenate(*[b.reshape(s, (n, c, 1, *out_hw)) for s in slots], axis=2)  # N,C,K,OH,OW
    grouped = b.reshape(stacked, (n, g, c // g, k, *out_hw))
    cols = b.transpose(grouped, (1, 2, 3, 0, 4, 5))  # g, Cg, K, N, OH, OW
    return b.reshape(cols, (g, c // g * k, n * out_hw[0] * out_hw[1]))


def _grouped_cotangent(b, dy: Value, groups: int) -> Value:
    """(N, O, OH, OW) -> (groups, O/groups, N*OH*OW)."""
    n, o, oh, ow = dy.shape
    t = b.transpose(b.reshape(dy, (n, groups, o // groups, oh * ow)), (1, 2, 0, 3))
    return b.reshape(t, (groups, o // groups, n * oh * ow))


def _swap(b, x: Value) -> Value:
    return b.transpose(x, (0, 2, 1))


def decompose_conv2d(b, node: Node) -> list[Value]:
    (x, w), a, y = node.inputs, node.attrs, node.out
    n, o, oh, ow = y.shape
    g = a["groups"]
    cols = _columns(b, x, w.shape[2:], a, (oh, ow))
    wm = b.reshape(w, (g, o // g, cols.shape[1]))
    out = b.matmul(wm, cols)  # g, Og, N*OH*OW
    out = b.transpose(b.reshape(out, (g, o // g, n, oh, ow)), (2, 0, 1, 3, 4))
    return [b.reshape(out, y.shape)]


def decompose_conv2d_weight_grad(b, node: Node) -> list[Value]:
    (x, dy), a, dw = node.inputs, node.attrs, node.out
    cols = _columns(b, x, a["kernel_hw"], a, dy.shape[2:])
    grad = b.matmul(_grouped_cotangent(b, dy, a["groups"]), _swap(b, cols))  # g, Og, Cg*K
    return [b.reshape(grad, dw.shape)]


def decompose_conv2d_input_grad(b, node: Node) -> list[Value]:
    (dy, w), a, dx = node.inputs, node.attrs, node.out
    n, c = dx.shape[:2]
    g, khw = a["groups"], w.shape[2:]
    oh, ow = dy.shape[2:]
    wm = b.reshape(w, (g, w.shape[0] // g, c // g * khw[0] * khw[1]))
    cols = b.matmul(_swap(b, wm), _grouped_cotangent(b, dy, g))  # g, Cg*K, N*OH*OW
    cols = b.reshape(cols, (g, c // g, khw[0] * khw[1], n, oh, ow))
    cols = b.reshape(b.transpose(cols, (3, 0, 1, 2, 4, 5)), (n, c, khw[0] * khw[1], oh, ow))
    slots = [b.reshape(b.slice(cols, start=(0, 0, k, 0, 0), stop=(n, c, k + 1, oh, ow), step=(1,) * 5),
                       (n, c, oh, ow)) for k in range(khw[0] * khw[1])]  # fmt: skip
    return [add_windows_back(b, slots, khw, a["stride"], a["padding"], a["dilation"], dx.shape[2:])]


def _pool_slices(b, x: Value, a, out_hw, pad_value) -> list[Value]:
    return window_slices(b, x, a["kernel"], a["stride"], a["padding"], (1, 1), out_hw, pad_value)


def decompose_max_pool2d(b, node: Node) -> list[Value]:
    slots = _pool_slices(b, node.inputs[0], node.attrs, node.out.shape[2:], float("-inf"))
    out = slots[0]
    for s in slots[1:]:
        out = b.maximum(out, s)
    return [out]


def decompose_avg_pool2d(b, node: Node) -> list[Value]:
    a = node.attrs
    slots = _pool_slices(b, node.inputs[0], a, node.out.shape[2:], 0.0)
    total = slots[0]
    for s in slots[1:]:
        total = b.add(total, s)
    return [b.div(total, b.scalar(a["kernel"][0] * a["kernel"][1], total.dtype))]


def decompose_max_pool2d_grad(b, node: Node) -> list[Value]:
    """Each window's cotangent goes to its first maximal element in row-major order (a NaN
    counts as maximal, as in ``np.argmax``: a window holding one sends it to its first NaN)."""
    (x, dy), a = node.inputs, node.attrs
    slots = _pool_slices(b, x, a, dy.shape[2:], float("-inf"))
    best = slots[0]
    for s in slots[1:]:
        best = b.maximum(best, s)  # NaN when the window holds one
    nan_window = b.ne(best, best)
    zero, taken, parts = b.scalar(0, dy.dtype), None, []
    for s in slots:
        hit = b.logical_or(b.eq(s, best), b.logical_and(nan_window, b.ne(s, s)))
        pick = hit if taken is None else b.logical_and(hit, b.logical_not(taken))
        taken = pick if taken is None else b.logical_or(taken, pick)
        parts.append(b.where(pick, dy, zero))
    return [add_windows_back(b, parts, a["kernel"], a["stride"], a["padding"], (1, 1), x.shape[2:])]


def decompose_avg_pool2d_grad(b, node: Node) -> list[Value]:
    (dy,), a = node.inputs, node.attrs
    share = b.div(dy, b.scalar(a["kernel"][0] * a["kernel"][1], dy.dtype))
    slots = [share] * (a["kernel"][0] * a["kernel"][1])
    return [add_windows_back(b, slots, a["kernel"], a["stride"], a["padding"], (1, 1), a["input_hw"])]
