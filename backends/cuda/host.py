"""Ops the CUDA backend has no kernel for (dense linear algebra: inv, solve, det, slogdet,
cholesky, qr, eigh, svd) run on the host: the driver copies their operands from the device,
runs the NumPy backend's code for that one op (LAPACK) and copies the results back. The copies
synchronize with the default stream the kernels run on, so the order of launches holds.
Fine for the small matrices model code factorizes; a cuSOLVER binding would replace it."""

from __future__ import annotations

import numpy as np

from bpir.ir import Graph, Node, Value

HOST_OPS = {"inv", "solve", "det", "slogdet", "cholesky", "qr", "eigh", "svd"}


class HostCall:
    """``outs = op(ins)`` on the host; each input is a view (offset, shape, strides in elements)
    of a flat device buffer, each output a flat device buffer of the result's size."""

    def __init__(self, node: Node, layouts: list[tuple]):
        from ..numpy.backend import compile_graph

        # one parameter per operand position (an op may read one value twice, e.g. solve(a, a))
        params = [Value(v.type, f"in{i}") for i, v in enumerate(node.inputs)]
        outs = [Value(v.type) for v in node.outputs]
        single = Graph(f"host_{node.op}", params, [Node(node.op, params, node.attrs, outs, node.loc)], outs)
        self.run, _ = compile_graph(single, plan_memory=False)
        self.layouts = layouts
        self.n_out = len(node.outputs)

    def __call__(self, *buffers) -> None:
        outs, ins = buffers[: self.n_out], buffers[self.n_out :]
        args = []
        for dev, (offset, shape, strides) in zip(ins, self.layouts):
            flat = dev.copy_to_host()
            item = flat.dtype.itemsize
            view = np.lib.stride_tricks.as_strided(flat[offset:], shape, tuple(s * item for s in strides))
            args.append(np.ascontiguousarray(view))
        for dev, result in zip(outs, self.run(*args)):
            dev.copy_to_device(np.ascontiguousarray(result).reshape(dev.shape))
