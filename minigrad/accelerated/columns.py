"""Column chunks and scratch buffers: im2col/col2im over bounded pieces of the output.

The accelerated path's columns (see ``minigrad.backends.accelerated``). The textbook
``im2col`` builds the whole (C*kh*kw, N*OH*OW) column matrix at once; at full resolution that
is 9x the input (743 MB for 64 channels at 570x570 in float32). Here the same columns are
built for bounded chunks of output rows [r0, r1) of n samples, into one reused scratch
buffer: memory stays flat and the buffer stays warm in the cache. The budget is per backend:
cache-sized on the CPU, whole samples on a GPU (``backend.column_budget_bytes``).

Layout as the textbook's: (C, kh, kw, n, rows, OW), row (c, i, j) of the matrix holds input
channel c shifted by kernel offset (i, j).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..functional.im2col import Geometry

#: Upper bound for one chunk's column matrix on the CPU. Tuned by benchmarks/bench_layers.py.
COLUMN_BUDGET_BYTES = 4 * 2**20
#: ...but never fewer output positions per chunk than this: thinner GEMMs run far below peak
#: (the budget alone would give 256-1024-channel layers chunks a few hundred columns wide).
MIN_CHUNK_COLUMNS = 2048
#: ...and never more bytes than this, however few columns that leaves: it bounds the scratch memory.
MAX_COLUMN_BYTES = 24 * 2**20


def window_rows(geom: Geometry, i: int, j: int, r0: int, r1: int):
    """Rows and columns of the padded input that kernel offset (i, j) reads for output rows [r0, r1)."""
    (sh, sw), (dh, dw), ow = geom.stride, geom.dilation, geom.out_hw[1]
    top, left = i * dh + r0 * sh, j * dw
    return slice(top, top + sh * (r1 - r0 - 1) + 1, sh), slice(left, left + sw * (ow - 1) + 1, sw)


def is_pointwise(geom: Geometry) -> bool:
    return geom.kernel == (1, 1) and geom.stride == (1, 1)


def chunks(n_samples: int, channels: int, geom: Geometry, itemsize: int, device_budget: int | None = None):
    """Split the output into (n0, n1, r0, r1) pieces whose columns fit COLUMN_BUDGET_BYTES
    (widened to MIN_CHUNK_COLUMNS, capped at MAX_COLUMN_BYTES; one output row at the least;
    a sample's chunks evened out).

    On a GPU (``device_budget``, from ``backend.column_budget_bytes``) the CPU's cache-sized
    budget would make hundreds of tiny kernel launches: there chunks hold whole samples, as
    many as fit the device budget, and only a sample larger than it is split into rows."""
    oh, ow = geom.out_hw
    row_bytes = max(channels * geom.kernel[0] * geom.kernel[1] * ow * itemsize, 1)
    sample_bytes = row_bytes * oh
    budget = COLUMN_BUDGET_BYTES if device_budget is None else device_budget
    if sample_bytes <= budget:  # whole samples at once
        per = max(1, budget // sample_bytes)
        return [(n0, min(n0 + per, n_samples), 0, oh) for n0 in range(0, n_samples, per)]
    if device_budget is None:
        rows = max(COLUMN_BUDGET_BYTES // row_bytes, -(-MIN_CHUNK_COLUMNS // ow))
        rows = max(1, min(rows, MAX_COLUMN_BYTES // row_bytes))
    else:
        rows = max(1, device_budget // row_bytes)
    # as many chunks as that takes, evened out (sizes differ by at most one row): a thin last
    # chunk would be a slow matrix product (512 channels at 64 rows: 21+21+21+1 -> 16+16+16+16)
    k = -(-oh // rows)
    bounds = [b * oh // k for b in range(k + 1)]
    return [(n, n + 1, r0, r1) for n in range(n_samples) for r0, r1 in zip(bounds, bounds[1:])]


_scratch: dict = {}


def scratch(name: str, shape, dtype, xp):
    """A reusable buffer for columns. Never returned to callers: it is overwritten by the
    next chunk, so whatever reads it must be done before the next im2col."""
    size = int(np.prod(shape))
    key = (name, xp.__name__, np.dtype(dtype).str)
    buf = _scratch.get(key)
    if buf is None or buf.size < size:
        buf = xp.empty(max(size, 1), dtype=dtype)
        _scratch[key] = buf
    return buf[:size].reshape(shape)


def im2col_rows(src, geom: Geometry, r0: int, r1: int, out=None):
    """Columns of a (n, C, Hp, Wp) padded input for output rows [r0, r1): a
    (C*kh*kw, n*(r1-r0)*OW) matrix, written into ``out`` when given. A 1x1 stride-1 kernel on
    one sample is its own columns: a view of the input, no copy."""
    n, c = src.shape[:2]
    (kh, kw), ow = geom.kernel, geom.out_hw[1]
    if is_pointwise(geom) and n == 1 and src.shape[3] == ow:
        return src[0, :, r0:r1].reshape(c, (r1 - r0) * ow)
    xp = backend.array_module(src)
    cols = xp.empty((c, kh, kw, n, r1 - r0, ow), src.dtype) if out is None else out.reshape(c, kh, kw, n, r1 - r0, ow)
    for i in range(kh):
        for j in range(kw):
            rows, columns = window_rows(geom, i, j, r0, r1)
            cols[:, i, j] = src[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * (r1 - r0) * ow)


def col2im_rows(cols, dst, geom: Geometry, r0: int, r1: int):
    """The adjoint of ``im2col_rows``: add each column entry into ``dst`` (n, C, Hp, Wp)."""
    n, c = dst.shape[:2]
    (kh, kw), ow = geom.kernel, geom.out_hw[1]
    cols = cols.reshape(c, kh, kw, n, r1 - r0, ow)
    for i in range(kh):
        for j in range(kw):
            rows, columns = window_rows(geom, i, j, r0, r1)
            dst[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dst


def _dense_chunk(dense, n0, n1, r0, r1):
    """The (O, n*rows*OW) matrix of a (N, O, OH, OW) array's chunk (a view when n == 1)."""
    part = dense[n0:n1, :, r0:r1]
    return part.transpose(1, 0, 2, 3).reshape(part.shape[1], -1)


def columns_matmul(src_pad, weight2d, geom: Geometry, bias=None, dense=None):
    """For every chunk: cols = im2col_rows(src_pad), then

    * if ``weight2d`` (O, C*kh*kw) is given:  y[chunk] = weight2d @ cols (+ bias)
    * if ``dense`` (N, O', OH, OW) is given:  cols_dense += cols @ dense[chunk]^T   (C*kh*kw, O')

    Returns ``(y, cols_dense)``: y (N, O, OH, OW) or None, and cols_dense, the transpose of the
    weight-gradient product dense @ cols^T (the caller lays it out as its weight), or None.
    conv2d's forward and both its gradients, and conv_transpose2d's input and weight
    gradients, are all this one routine.
    """
    xp = backend.array_module(src_pad)
    n, c = src_pad.shape[:2]
    oh, ow = geom.out_hw
    y = cols_dense = None
    if weight2d is not None:
        y = xp.empty((n, weight2d.shape[0], oh, ow), dtype=src_pad.dtype)
    strided_out = backend.matmul_writes_strided_out(xp)
    for n0, n1, r0, r1 in chunks(n, c, geom, src_pad.dtype.itemsize, backend.column_budget_bytes(xp)):
        shape = (c * geom.kernel[0] * geom.kernel[1], (n1 - n0) * (r1 - r0) * ow)
        cols = im2col_rows(src_pad[n0:n1], geom, r0, r1, out=scratch("cols", shape, src_pad.dtype, xp))
        if weight2d is not None and n1 - n0 == 1:
            # one sample's rows [r0, r1) of y are an (O, rows*OW) matrix with row stride OH*OW:
            # NumPy writes the product straight into y, no copy. CuPy would compute into a hidden
            # temporary and copy it unless the rows are contiguous (a whole sample, as its
            # chunks are on a GPU), so there the temporary is made here and copied once.
            rows_of_y = y[n0, :, r0:r1].reshape(weight2d.shape[0], -1)
            direct = strided_out or rows_of_y.flags.c_contiguous
            block = xp.matmul(weight2d, cols, out=rows_of_y) if direct else weight2d @ cols
            if bias is not None:
                block += bias[:, None]
            if not direct:
                rows_of_y[...] = block
        elif weight2d is not None:
            block = weight2d @ cols
            if bias is not None:
                block += bias[:, None]
            y[n0:n1, :, r0:r1] = block.reshape(-1, n1 - n0, r1 - r0, ow).transpose(1, 0, 2, 3)
        if dense is not None:
            # cols @ g^T rather than g @ cols^T: OpenBLAS runs this orientation 5-25% faster,
            # and the sum over chunks stays a contiguous add
            g_chunk = _dense_chunk(dense, n0, n1, r0, r1)
            if cols_dense is None:
                cols_dense = cols @ g_chunk.T
            else:  # a temporary, not a scratch buffer: it is weight-sized (38 MB at 1024 channels)
                cols_dense += cols @ g_chunk.T
    return y, cols_dense


def matmul_col2im(dense, weight2d, geom: Geometry, dst_pad):
    """For every chunk: dst_pad += col2im_rows(weight2d^T @ dense[chunk]).

    conv2d's input gradient and conv_transpose2d's forward.
    dense (N, O, OH, OW), weight2d (O, C*kh*kw), dst_pad (N, C, Hp, Wp) zero-initialised.
    """
    xp = backend.array_module(dense)
    n, c = dst_pad.shape[:2]
    for n0, n1, r0, r1 in chunks(n, c, geom, dense.dtype.itemsize, backend.column_budget_bytes(xp)):
        shape = (weight2d.shape[1], (n1 - n0) * (r1 - r0) * geom.out_hw[1])
        cols = xp.matmul(weight2d.T, _dense_chunk(dense, n0, n1, r0, r1), out=scratch("dcols", shape, dense.dtype, xp))
        col2im_rows(cols, dst_pad[n0:n1], geom, r0, r1)
    return dst_pad
