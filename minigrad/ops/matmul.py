"""The matrix product (the course's task ``autograd.matmul``), with NumPy's batching rules."""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor, unbroadcast
from .elementwise import _lift
from .shape import reshape


class MatMul(Function):
    """out = a @ b for a (..., n, k), b (..., k, m) -> (..., n, m), batch axes broadcast.

    Backward: da = g @ b^T, db = a^T @ g, each summed over broadcast batch axes.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        # BEGIN TASK autograd.matmul
        a, b = self.a, self.b
        da = unbroadcast(g @ b.swapaxes(-1, -2), a.shape) if self.needs_input_grad[0] else None
        db = unbroadcast(a.swapaxes(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return da, db
        # END TASK


def matmul(a, b):
    """Matrix product with NumPy's rules; 1-D operands are treated as a row / column."""
    a, b = _lift(a), _lift(b)
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        raise TypeError("matmul: both operands must be tensors or arrays")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = reshape(a, 1, -1)
    if squeeze_b:
        b = reshape(b, -1, 1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: inner dimensions differ: a has shape {a.shape} (k={a.shape[-1]}), "
            f"b has shape {b.shape} (k={b.shape[-2]})"
        )
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch shapes of {a.shape} and {b.shape} cannot be broadcast") from None
    out = MatMul.apply(a, b)
    if squeeze_a:
        out = reshape(out, *batch, *out.shape[-1:]) if not squeeze_b else out
    if squeeze_b:
        out = reshape(out, *out.shape[:-1]) if not squeeze_a else reshape(out, *batch)
    return out
