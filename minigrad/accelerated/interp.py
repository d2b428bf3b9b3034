"""interpolate, accelerated: ``functional.interp.Interpolate``'s forward and adjoint as
banded matrix products.

Along one axis the sampling is a matrix A (OUT, IN) with two non-zeros per row
(``sampling_matrix``): forward applies A along the height and then the width, the adjoint
applies A^T along the width and then the height. A dense product does OUT * IN
multiply-adds per line where two are needed, and its cost grows with the image side. But A
is banded: cut its rows into blocks of ``bo`` outputs, and block j reads only a window of
L inputs starting at j * step + c (for x2: bo = 32 outputs from L = 18 inputs, step 16).
So each axis is one batched product of (bo, L) blocks over windows that NumPy views in
place (overlapping windows of the same memory, no copy), written straight into the output;
the first and last blocks, whose windows would leave the image, are products of their own.
The same numbers as the textbook path up to the order of the sums (a few ulp). When both axes
are banded, the planes are resampled a few at a time (``PLANE_CHUNK_ELEMENTS`` output values),
so that the intermediate image (one axis done) stays in the cache, and the chunks are shared
out to the host's threads (``tiles.run``): 0.8x-1.0x PyTorch summed over the family's shapes,
where one whole-array axis after the other measured 1.05x.

On devices whose matmul cannot write into strided views (CuPy), and where the sampling does
not cut into such blocks, the adjoint falls back to two dense products (the width by one
(N*C*OH, OW) @ (OW, W) product, the height by one (H, OH) @ (OH, N*C*W) product) and the
forward stays the textbook's gathers.

Measured (bilinear x2, batch 4, 64-512 channels at 16-128 px, 2 cores) and not kept:
summing each output's two taps into its source pixel with ``add.reduceat`` (3-6x slower
than the dense products: NumPy's reduceat pays per run); the dense products themselves
(1.6-2.8x PyTorch at 64-128 channels); strided slices per phase of the x2 sampling (2.5x
PyTorch: each of the five passes over the output is bound by memory); blocks of 32 input
pixels in place of 16 (0.91x PyTorch summed over the family's shapes, against 0.84x).
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..functional import interp
from . import tiles as tiling

#: About how many input pixels one block of the banded product reads (its columns).
BLOCK_TARGET = 16


def sampling_matrix(xp, i0, i1, lam, in_size, dtype):
    """a[o, i]: the weight with which output o read input i (one axis)."""
    a = xp.zeros((i0.shape[0], in_size), dtype=dtype)
    o = xp.arange(i0.shape[0])
    if lam is None:
        a[o, i0] = 1
    else:
        a[o, i0] += 1 - lam
        a[o, i1] += lam
    return a


class Band:
    """A (OUT, IN) cut into ``blocks`` of ``bo`` rows; block j reads the inputs
    [j * step + c, j * step + c + L) (clipped to the image for the first and last blocks).

    ``weights[j]`` (bo, L) holds A's entries in block j's window (zero outside the image).
    ``inner`` is the range of blocks whose windows lie inside the image."""

    def __init__(self, a: np.ndarray, blocks: int):
        n_out, n_in = a.shape
        self.bo, self.step, self.n_in, self.n_out = n_out // blocks, n_in // blocks, n_in, n_out
        spans = []
        for j in range(blocks):
            cols = np.flatnonzero(a[j * self.bo:(j + 1) * self.bo].any(axis=0))
            spans.append((cols[0], cols[-1]) if cols.size else (j * self.step, j * self.step))
        self.c = min(lo - j * self.step for j, (lo, _) in enumerate(spans))
        self.L = max(hi - j * self.step for j, (_, hi) in enumerate(spans)) - self.c + 1
        padded = np.zeros((n_out, n_in + self.L + abs(self.c) * 2), a.dtype)
        left = abs(self.c)
        padded[:, left:left + n_in] = a
        self.weights = np.stack([padded[j * self.bo:(j + 1) * self.bo,
                                        left + self.start(j):left + self.start(j) + self.L]
                                 for j in range(blocks)])
        inside = [j for j in range(blocks) if self.start(j) >= 0 and self.start(j) + self.L <= n_in]
        self.inner = range(inside[0], inside[-1] + 1) if inside else range(0)

    def start(self, j):
        return j * self.step + self.c

    def window(self, j):
        """block j's window clipped to the image, and where that falls in ``weights[j]``."""
        lo, hi = max(self.start(j), 0), min(self.start(j) + self.L, self.n_in)
        return slice(lo, hi), slice(lo - self.start(j), hi - self.start(j))


def band_of(a: np.ndarray):
    """A Band for the sampling matrix a, or None where it does not cut into blocks that
    save work (sizes without a common divisor giving blocks of about BLOCK_TARGET)."""
    n_out, n_in = a.shape
    common = math.gcd(n_out, n_in)
    blocks = max((d for d in range(1, common + 1) if common % d == 0 and min(n_out, n_in) // d >= BLOCK_TARGET),
                 default=1)
    if blocks < 3:
        return None
    band = Band(a, blocks)
    return band if band.L * 2 <= n_in else None


def apply_last(x, band, weights, out=None):
    """y[m, o] = sum_i W[o, i] x[m, i] for x (M, IN) C-contiguous: y (M, OUT).

    The blocks' products go to a block-major scratch (blocks, M, bo) and are then copied
    into place in one pass: BLAS writes rows of bo values far apart slowly (measured: 1.3-1.6x
    the product plus the copy)."""
    xp = backend.array_module(x)
    m, isz = x.shape[0], x.itemsize
    by_block = xp.empty((len(weights), m, band.bo), dtype=x.dtype)
    w_t = xp.ascontiguousarray(weights.transpose(0, 2, 1))  # (blocks, L, bo)
    inner = band.inner
    if len(inner):
        windows = backend.overlapping_windows(x, band.start(inner[0]), (len(inner), m, band.L),
                               (band.step * isz, x.strides[0], isz))
        xp.matmul(windows, w_t[inner[0]:inner[-1] + 1], out=by_block[inner[0]:inner[-1] + 1])
    for j in (j for j in range(len(weights)) if j not in inner):
        cols, part = band.window(j)
        xp.matmul(x[:, cols], w_t[j, part], out=by_block[j])
    y = xp.empty((m, band.n_out), dtype=x.dtype) if out is None else out
    y.reshape(m, -1, band.bo)[...] = by_block.transpose(1, 0, 2)
    return y


def apply_rows(x, band, weights, out=None):
    """y[p, o, :] = sum_i W[o, i] x[p, i, :] for x (P, IN, K) C-contiguous: y (P, OUT, K)."""
    xp = backend.array_module(x)
    p, _, k = x.shape
    isz = x.itemsize
    y = xp.empty((p, band.n_out, k), dtype=x.dtype) if out is None else out
    by_block = y.reshape(p, -1, band.bo, k)  # (P, blocks, bo, K)
    inner = band.inner
    if len(inner):
        windows = backend.overlapping_windows(x, band.start(inner[0]) * k, (p, len(inner), band.L, k),
                               (x.strides[0], band.step * k * isz, k * isz, isz))
        xp.matmul(weights[inner[0]:inner[-1] + 1], windows, out=by_block[:, inner[0]:inner[-1] + 1])
    for j in (j for j in range(len(weights)) if j not in inner):
        rows, part = band.window(j)
        xp.matmul(weights[j][:, part], x[:, rows], out=by_block[:, j])
    return y


#: Output values of the planes resampled together: their intermediate image stays in the cache.
PLANE_CHUNK_ELEMENTS = 256 * 1024


def _plane_spans(planes: int, per_plane: int):
    """[p0, p1) runs of planes of about PLANE_CHUNK_ELEMENTS output values (one plane at least)."""
    per = max(1, PLANE_CHUNK_ELEMENTS // max(per_plane, 1))
    return [(p0, min(planes, p0 + per)) for p0 in range(0, planes, per)]


def _bands(xp, sampling, in_size, dtype, transpose):
    """The Band of one axis's sampling matrix (or of its transpose, for the adjoint), planned
    on the host from the small index vectors, and its blocks' weights on ``xp``'s device."""
    i0, i1, lam = (None if v is None else backend.to_numpy(v) for v in sampling)
    a = sampling_matrix(np, i0, i1, lam, in_size, dtype)
    band = band_of(a.T.copy() if transpose else a)
    return band, (None if band is None else xp.asarray(band.weights))


class Interpolate(interp.Interpolate):
    def forward(self, x, rows, cols):
        xp = backend.array_module(x)
        self.rows, self.cols, self.x_shape = rows, cols, x.shape
        # banded where matmul writes into strided views in place (NumPy; CuPy would copy)
        self.banded = backend.matmul_writes_strided_out(xp)
        if not self.banded:
            return super().forward(x, rows, cols)
        n, c, h, w = x.shape
        row_band, row_w = _bands(xp, rows, h, x.dtype, transpose=False)
        col_band, col_w = _bands(xp, cols, w, x.dtype, transpose=False)
        x = xp.ascontiguousarray(x)
        if row_band is not None and col_band is not None:
            # the width first (on the input, the smaller image when upsampling), then the height,
            # a few planes at a time: their intermediate image stays in the cache
            oh, ow = row_band.n_out, col_band.n_out
            planes, y = x.reshape(n * c, h, w), xp.empty((n * c, oh, ow), x.dtype)

            def resample(i, span):
                p0, p1 = span
                mid = apply_last(planes[p0:p1].reshape(-1, w), col_band, col_w)
                apply_rows(mid.reshape(p1 - p0, h, ow), row_band, row_w, out=y[p0:p1])

            tiling.run(_plane_spans(n * c, oh * ow), resample, backend.host_threads(x))
            return y.reshape(n, c, oh, ow)
        # the width first: on the input, the smaller image when upsampling
        y = (apply_last(x.reshape(n * c * h, w), col_band, col_w) if col_band is not None else
             interp._resample(x, 3, *cols))
        ow = y.shape[-1]
        if row_band is not None:
            return apply_rows(y.reshape(n * c, h, ow), row_band, row_w).reshape(n, c, -1, ow)
        return interp._resample(y.reshape(n, c, h, ow), 2, *rows)

    def backward(self, g):
        xp = backend.array_module(g)
        n, c, h, w = self.x_shape
        oh, ow = g.shape[2], g.shape[3]
        if self.banded:
            row_band, row_w = _bands(xp, self.rows, h, g.dtype, transpose=True)
            col_band, col_w = _bands(xp, self.cols, w, g.dtype, transpose=True)
            if row_band is not None and col_band is not None:
                planes, dx = xp.ascontiguousarray(g).reshape(n * c, oh, ow), xp.empty((n * c, h, w), g.dtype)

                def adjoint(i, span):  # the height (N*C, H, OW), then the width, a few planes at a time
                    p0, p1 = span
                    t = apply_rows(planes[p0:p1], row_band, row_w)
                    apply_last(t.reshape(-1, ow), col_band, col_w, out=dx[p0:p1].reshape(-1, w))

                tiling.run(_plane_spans(n * c, oh * ow), adjoint, backend.host_threads(g))
                return (dx.reshape(n, c, h, w),)
        a_rows = sampling_matrix(xp, *self.rows, h, g.dtype)  # (OH, H)
        a_cols = sampling_matrix(xp, *self.cols, w, g.dtype)  # (OW, W)
        t = g.reshape(n * c * oh, ow) @ a_cols  # the width: (N*C*OH, W)
        t = t.reshape(n * c, oh, w).transpose(1, 0, 2).reshape(oh, n * c * w)
        dx = (a_rows.T @ t).reshape(h, n, c, w).transpose(1, 2, 0, 3)  # the height: (H, N*C*W)
        return (xp.ascontiguousarray(dx),)
