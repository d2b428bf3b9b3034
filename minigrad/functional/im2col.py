"""im2col and col2im: convolution as one matrix product.

A convolution with a (O, C, kh, kw) kernel slides a C*kh*kw window over the input. If we
copy every window into a column of a matrix (``im2col``), the whole convolution becomes

    y (O, P) = W (O, C*kh*kw) @ cols (C*kh*kw, P)          P = N*OH*OW output positions

``col2im`` is the adjoint (the transpose) of ``im2col``, not its inverse: windows overlap,
so an input pixel sits in up to kh*kw columns, and col2im *adds* every column entry back to
the pixel it came from. That is exactly what the input gradient needs.

Layout. The columns are laid out as (C, kh, kw, N, OH, OW): row (c, i, j) of the matrix holds
input channel c shifted by kernel offset (i, j), column (n, oh, ow) one output position.
Filling it takes kh*kw strided copies, one per kernel offset.

At full resolution the column matrix is 9x the input (743 MB for 64 channels at 570x570 in
float32); the accelerated path (``minigrad/accelerated/columns.py``) builds it in bounded
chunks of output rows instead. This file is the textbook version: all columns at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend


def pair(value, name: str, minimum: int = 0) -> tuple[int, int]:
    """Accept an int or a pair of ints; check that each is at least ``minimum``."""
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 1:  # PyTorch accepts [k] for (k, k)
        value = (value[0], value[0])
    try:
        a, b = value
        value = (int(a), int(b))
        if value != (a, b):
            raise ValueError
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}") from None
    if min(value) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {value}")
    return value


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> int:
    """Output length of a transposed convolution: (n-1)s - 2p + d(k-1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class Geometry:
    """How a kernel slides: sizes in the "convolution direction" (padded input -> output)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]  # output rows and columns

    def window_slices(self, i: int, j: int):
        """Rows and columns of the padded input that kernel offset (i, j) reads, one per output
        position: rows i*dh, i*dh + sh, ... (OH of them), columns j*dw, j*dw + sw, ... (OW)."""
        (sh, sw), (dh, dw), (oh, ow) = self.stride, self.dilation, self.out_hw
        top, left = i * dh, j * dw
        return slice(top, top + sh * (oh - 1) + 1, sh), slice(left, left + sw * (ow - 1) + 1, sw)


def im2col(src, geom: Geometry):
    """Columns of a (N, C, Hp, Wp) padded input: a (C*kh*kw, N*OH*OW) matrix.

    Row (c, i, j) holds channel c as kernel offset (i, j) sees it: entry (n, oh, ow) is
    src[n, c, oh*sh + i*dh, ow*sw + j*dw] (``geom.window_slices(i, j)`` gives those rows and
    columns). Build the (C, kh, kw, N, OH, OW) array with one strided copy per kernel offset,
    then reshape it.
    """
    # BEGIN TASK conv.im2col
    xp = backend.array_module(src)
    n, c = src.shape[:2]
    (kh, kw), (oh, ow) = geom.kernel, geom.out_hw
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=src.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = geom.window_slices(i, j)
            cols[:, i, j] = src[:, :, rows, columns].transpose(1, 0, 2, 3)  # (N, C, OH, OW) -> (C, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)
    # END TASK


def col2im(cols, dst, geom: Geometry):
    """The adjoint of ``im2col``: add each entry of ``cols`` (C*kh*kw, N*OH*OW) into ``dst``
    (N, C, Hp, Wp) at the input pixel it was copied from, and return ``dst``. Overlapping
    windows add up; no ``add.at`` needed, because within one kernel offset (i, j) no two
    columns touch the same pixel."""
    # BEGIN TASK conv.col2im
    n, c = dst.shape[:2]
    (kh, kw), (oh, ow) = geom.kernel, geom.out_hw
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    for i in range(kh):
        for j in range(kw):
            rows, columns = geom.window_slices(i, j)
            dst[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dst
    # END TASK
