"""CUDA kernels for the data-movement ops that are not plain views: pad, concatenate, iota,
one_hot and the gathers. Each is one elementwise map over its output whose load is index
arithmetic; scatter-add is a gather too (each output sums its matching updates in index
order), so it needs no atomics and is deterministic."""

from __future__ import annotations

from bpir.ir import Node

from ..array_api import literal
from . import kernels as ck
from . import views as cv


class LayoutOps:
    """Mixin of the backend's generator (``self.env``, ``self.map``)."""

    OPS = {"pad", "concatenate", "iota", "one_hot", "take_along_axis", "scatter_add_along_axis"}

    def layout(self, node: Node) -> cv.Ref:
        shape = node.out.shape
        body = ck.Body()
        idx_lines, idx = cv.unravel("i", shape, "i")
        value = getattr(self, "_" + node.op)(node, body, idx)
        a = ", ".join(f"{k}={literal(v)}" for k, v in node.attrs.items())
        return self.map(shape, body, [value], [node.out.dtype], node.op, idx_lines, [f"{node.op} {a}"])[0]

    def _pad(self, node: Node, body: ck.Body, idx: list[str]) -> str:
        x, a = self.env[node.inputs[0]], node.attrs
        out = body.var("v")
        body.lines.append(f"{out} = {cv.literal(a['value'], node.out.dtype)}")
        conds, src = [], []
        for d, (n, lo, it) in enumerate(zip(x.shape, a["lo"], a["interior"])):
            j = body.var("j")
            body.lines.append(f"{j} = {idx[d]} - {literal(lo)}")
            q = literal(it + 1)
            conds.append(f"{j} >= 0 and {j} < {literal((n - 1) * (it + 1) + 1)}"
                         + (f" and {j} % {q} == 0" if it > 0 else ""))  # fmt: skip
            src.append(j if it == 0 else f"({j} // {q})")
        inner = ck.Body(params=body.params, count=body.count)
        got = inner.read(x, src)
        body.count = inner.count
        body.lines.append(f"if {' and '.join(conds) or 'True'}:")
        body.lines += [f"    {line}" for line in inner.lines] + [f"    {out} = {got}"]
        return out

    def _concatenate(self, node: Node, body: ck.Body, idx: list[str]) -> str:
        axis = node.attrs["axis"] % len(node.out.shape)
        out = body.var("v")
        offset = 0
        for k, v in enumerate(node.inputs):
            ref = self.env[v]
            size = v.shape[axis]
            local = list(idx)
            local[axis] = f"({idx[axis]} - {offset})" if offset else idx[axis]
            inner = ck.Body(params=body.params, count=body.count)
            got = inner.read(ref, local)
            body.count = inner.count
            last = k == len(node.inputs) - 1
            body.lines.append(
                "else:" if last else f"{'if' if k == 0 else 'elif'} {idx[axis]} < {offset + size}:"
            )
            body.lines += [f"    {line}" for line in inner.lines] + [f"    {out} = {got}"]
            offset += size
        return out

    def _iota(self, node: Node, body: ck.Body, idx: list[str]) -> str:
        return body.emit(f"{node.out.dtype}({idx[node.attrs['axis']]})")

    def _one_hot(self, node: Node, body: ck.Body, idx: list[str]) -> str:
        label = body.read(self.env[node.inputs[0]], idx[:-1])
        dt = node.out.dtype
        return body.emit(f"({label} == {idx[-1]})" if dt == "bool" else f"{dt}({label} == {idx[-1]})")

    def _take_along_axis(self, node: Node, body: ck.Body, idx: list[str]) -> str:
        x, ind = (self.env[v] for v in node.inputs)
        axis = node.attrs["axis"]
        j = body.read(ind, idx)
        k = body.emit(f"{j} + {x.shape[axis]} if {j} < 0 else {j}")
        src = list(idx)
        src[axis] = k
        return body.read(x, src)

    def _scatter_add_along_axis(self, node: Node, body: ck.Body, idx: list[str]) -> str:
        ind, upd = (self.env[v] for v in node.inputs)
        axis, dim, dt = node.attrs["axis"], node.attrs["dim"], node.out.dtype
        acc = body.var("s")
        body.lines.append(f"{acc} = {ck.ACC.get(dt, dt)}(0)")
        body.lines.append(f"for n in range({ind.shape[axis]}):")
        src = list(idx)
        src[axis] = "n"
        inner = ck.Body(params=body.params, count=body.count)
        j = inner.read(ind, src)
        u = inner.read(upd, src)
        body.count = inner.count
        body.lines += [f"    {line}" for line in inner.lines]
        body.lines += [
            f"    if {j} == {idx[axis]} or {j} + {literal(dim)} == {idx[axis]}:",
            f"        {acc} += {u}",
        ]
        return body.emit(f"{dt}({acc})")
