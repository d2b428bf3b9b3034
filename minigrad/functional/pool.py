"""max_pool2d: the largest value of each window, and a backward that routes each output's
gradient to the input position that won."""
from __future__ import annotations

import numpy as np

from .. import backend, ops
from ..tensor import Function, Tensor
from .im2col import Geometry, conv_output_size, pair


def _beats(value, best):
    """Where ``value`` takes over the running maximum ``best``: where it is larger, or nan (so a
    nan propagates, as in PyTorch; a number never replaces a nan, since nothing is > nan)."""
    better = value > best
    if value.dtype.kind == "f":
        better |= backend.array_module(value).isnan(value)
    return better


class MaxPool2d(Function):
    """y[n, c, oh, ow] = max over the kh x kw window of x (padded with -inf).

    Forward scans the kh*kw kernel offsets (i, j) in row-major order, keeping the running
    maximum and, in a small uint8 array, the offset k = i*kw + j that produced it. A later
    offset wins only if strictly greater, so on ties the first position wins (as in PyTorch);
    a nan always wins, so a window holding nan gives nan, and its gradient goes to the last
    nan of the window in row-major order (PyTorch's ``val > max || isnan(val)``).
    Backward: dx at the winning position of each window += g; windows that overlap
    (stride < kernel) may send several gradients to one pixel, and they add.
    (N, C, H, W) -> (N, C, OH, OW), OH = floor((H + 2p - (kh-1) - 1) / s) + 1.

    What forward saves for backward, whichever path it took:
        self.winner   (N, C, OH, OW) uint8: k = i*kw + j, the kernel offset (i, j) of the
                      first maximum of each window (window (oh, ow) reads padded-input
                      pixel (oh*sh + i, ow*sw + j))
        self.geom     the Geometry (kernel, stride, out_hw); geom.window_slices(i, j, 0, OH)
                      gives the padded-input rows and columns that offset (i, j) reads
        self.x_shape  the input's shape (N, C, H, W)
        self.padding  (ph, pw): the input was padded by ph rows / pw columns on each side
    """

    def forward(self, x, kernel, stride, padding, dilation=(1, 1), winner_sink=None):
        xp = backend.array_module(x)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        oh, ow = conv_output_size(h, kh, sh, ph, dilation[0]), conv_output_size(w, kw, sw, pw, dilation[1])
        self.geom = Geometry(kernel, stride, dilation, (oh, ow))
        self.x_shape, self.padding = x.shape, padding
        self.separable = kernel == stride and padding == (0, 0) and dilation == (1, 1)
        if winner_sink is not None:  # max_pool2d(return_indices=True) reads the winners from here
            winner_sink.append(self)
        if self.separable:
            return self._forward_separable(x)
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        out = self.winner = None
        for k in range(kh * kw):
            rows, cols = self.geom.window_slices(k // kw, k % kw, 0, oh)
            window = x[:, :, rows, cols]
            if out is None:
                out = window.copy()
                self.winner = xp.zeros(out.shape, dtype=np.uint8)
                continue
            better = _beats(window, out)
            xp.copyto(out, window, where=better)
            xp.copyto(self.winner, np.uint8(k), where=better)
        return out

    @staticmethod
    def _running_max(views):
        """Elementwise max over a list of equally shaped views, and the index of the first
        view that attains it (later views win only when strictly greater)."""
        xp = backend.array_module(views[0])
        out, arg = views[0], None
        for k, v in enumerate(views[1:], start=1):
            better = _beats(v, out)
            out = xp.maximum(out, v)  # (nan if either is nan)
            # the first comparison's booleans already are the 0/1 index; later ones overwrite
            arg = better.view(np.uint8) if arg is None else xp.where(better, np.uint8(k), arg)
        if arg is None:  # a window one element wide
            out, arg = out.copy(), xp.zeros(out.shape, dtype=np.uint8)
        return out, arg

    def _forward_separable(self, x):
        """Non-overlapping windows (stride == kernel, no padding): take the max along the
        width first, then along the height. Two cheap passes instead of kh*kw; the first
        maximum in row-major order still wins on ties (first column of the first row
        holding the maximum)."""
        (kh, kw), (oh, ow) = self.geom.kernel, self.geom.out_hw
        xp = backend.array_module(x)
        x = x[:, :, : oh * kh, : ow * kw]
        row_max, col_winner = self._running_max([x[:, :, :, j::kw] for j in range(kw)])
        out, row_winner = self._running_max([row_max[:, :, i::kh] for i in range(kh)])
        # one representation for backward: k = i*kw + j, with j the winning column of the
        # winning row i (col_winner holds one j per input row and output column)
        n, c = x.shape[:2]
        j = xp.take_along_axis(col_winner.reshape(n, c, oh, kh, ow), row_winner[:, :, :, None].astype(np.intp), axis=3)
        self.winner = (row_winner * np.uint8(kw) + j[:, :, :, 0]).astype(np.uint8, copy=False)
        return out

    def backward(self, g):
        # BEGIN TASK pool.max_pool2d_backward
        xp = backend.array_module(g)
        n, c, h, w = self.x_shape
        (ph, pw), (kh, kw), (sh, sw) = self.padding, self.geom.kernel, self.geom.stride
        fits = self.separable and h % kh == 0 and w % kw == 0  # every pixel is written below
        dx = (xp.empty if fits else xp.zeros)((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        # Routing multiplies g by a 0/1 mask of winners instead of calling xp.where: on the
        # random masks real data gives, where's per-element branch is ~4x slower on a CPU.
        # (A non-finite gradient would leak into its window's losers as nan; it is not finite anyway.)
        if self.separable:  # windows tile the input: two passes, first the row, then the column
            oh, ow = g.shape[2:]
            row_winner, col_winner = self.winner // np.uint8(kw), self.winner % np.uint8(kw)
            rows = xp.empty((n, c, oh, kh, ow), dtype=g.dtype)  # g sent to the winning row of each window
            for i in range(kh):
                xp.multiply(g, row_winner == i, out=rows[:, :, :, i])
            rows = rows.reshape(n, c, oh * kh, ow)
            inside = dx[:, :, : oh * kh, : ow * kw]  # rows/columns past the last window keep 0
            for j in range(kw):  # ...and then to the winning column (the same j on every row of a window)
                xp.multiply(rows, xp.repeat(col_winner, kh, axis=2) == j, out=inside[:, :, :, j::kw])
            return (dx,)
        overlapping = sh < kh or sw < kw
        for k in range(kh * kw):
            rows, cols = self.geom.window_slices(k // kw, k % kw, 0, g.shape[2])
            routed = g * (self.winner == k)
            if overlapping:
                dx[:, :, rows, cols] += routed
            else:  # each input pixel is in at most one window: plain assignment suffices
                dx[:, :, rows, cols] = routed
        if ph or pw:
            dx = dx[:, :, ph : ph + h, pw : pw + w].copy()
        return (dx,)
        # END TASK


class DilatedMaxPool2d(MaxPool2d):
    """max_pool2d with dilation > 1: the same forward (``Geometry.window_slices`` steps d pixels
    between kernel taps). Its backward always adds the routed gradients: with dilation, windows
    can share pixels even when stride >= kernel size (kernel 2, dilation 2, stride 2: pixel 2 is
    tap 1 of window 0 and tap 0 of window 1), which ``MaxPool2d.backward``'s non-overlapping
    shortcut (plain assignment) does not expect. Same maths: dx[winner] += g."""

    def backward(self, g):
        xp = backend.array_module(g)
        n, c, h, w = self.x_shape
        (ph, pw), (kh, kw) = self.padding, self.geom.kernel
        dx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for k in range(kh * kw):
            rows, cols = self.geom.window_slices(k // kw, k % kw, 0, g.shape[2])
            dx[:, :, rows, cols] += g * (self.winner == k)
        return (dx[:, :, ph:ph + h, pw:pw + w].copy() if ph or pw else dx,)


def _pool_output_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size: floor (or ceil) of (size + 2p - d(k-1) - 1) / s, plus 1;
    with ceil_mode, a last window that would start in the right/bottom padding is dropped."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max-pooling, PyTorch's max_pool2d (same arguments, same order); ``stride`` defaults to
    ``kernel_size``. (N, C, H, W) or unbatched (C, H, W) -> (N, C, OH, OW) (or (C, OH, OW)).

    dilation: taps d pixels apart (``DilatedMaxPool2d``). ceil_mode: the output size rounds up;
    the extra windows hang over the bottom/right edge, which is done outside the op, by padding
    the input with -inf there (a ``F.pad``, whose backward crops the gradient back), so the op
    itself always sees whole windows. return_indices: also return, per output, the flat index
    row * W + col of its maximum in the (unpadded) input plane, as PyTorch; computed from the
    op's winners k = i*kw + j: row = oh*sh + i*dh - ph, col = ow*sw + j*dw - pw.
    """
    name = "max_pool2d"
    x = input
    if not isinstance(x, Tensor) or x.ndim not in (3, 4):
        raise ValueError(f"{name}: input must be a 3-D (C, H, W) or 4-D (N, C, H, W) tensor, got shape {getattr(x, 'shape', x)}")
    unbatched = x.ndim == 3
    if unbatched:
        x = ops.reshape(x, (1,) + x.shape)
    kernel = pair(kernel_size, f"{name}: kernel_size", 1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else pair(stride, f"{name}: stride", 1)
    padding, dilation = pair(padding, f"{name}: padding", 0), pair(dilation, f"{name}: dilation", 1)
    if kernel[0] * kernel[1] > 255:
        raise ValueError(f"{name}: kernel_size {kernel} has more than 255 positions")
    h, w = x.shape[2:]
    out_hw = []
    for axis in (0, 1):
        k, s, p, d = kernel[axis], stride[axis], padding[axis], dilation[axis]
        if p * 2 > k:
            raise ValueError(f"{name}: padding {padding} must be at most half of kernel_size {kernel} (as in PyTorch)")
        out = _pool_output_size(x.shape[2 + axis], k, s, p, d, ceil_mode)
        if out <= 0:
            raise ValueError(
                f"{name}: kernel_size {kernel} is larger than the padded input ({x.shape[2:]} + 2*{padding}) "
                f"of shape {input.shape} (dilation {dilation})"
            )
        out_hw.append(out)
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - (size + 2 * p))
             for o, s, d, k, size, p in zip(out_hw, stride, dilation, kernel, (h, w), padding)]
    if any(extra):  # ceil_mode's overhanging windows: -inf never wins
        x = ops.pad(x, (0, extra[1], 0, extra[0]), value=-np.inf)
    sink = [] if return_indices else None
    op = MaxPool2d if dilation == (1, 1) else DilatedMaxPool2d
    y = op.apply(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation, winner_sink=sink)
    if unbatched:
        y = ops.reshape(y, y.shape[1:])
    if not return_indices:
        return y
    fn = sink[0]
    xp = backend.array_module(fn.winner)
    i, j = fn.winner // np.uint8(kernel[1]), fn.winner % np.uint8(kernel[1])
    oh, ow = fn.winner.shape[2:]
    rows = xp.arange(oh).reshape(-1, 1) * stride[0] + i.astype(np.int64) * dilation[0] - padding[0]
    cols = xp.arange(ow).reshape(1, -1) * stride[1] + j.astype(np.int64) * dilation[1] - padding[1]
    indices = rows * w + cols
    fn.winner_sink = None
    return y, Tensor._wrap(indices[0] if unbatched else indices)
