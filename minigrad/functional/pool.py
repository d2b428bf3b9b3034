"""max_pool2d: the largest value of each window, and a backward that routes each output's
gradient to the input position that won. The textbook op (the course's task block); where the
accelerated path is enabled, ``max_pool2d`` runs its subclass (``minigrad/accelerated/pool.py``)."""
from __future__ import annotations

import numpy as np

from .. import backend, ops
from ..backends import accelerated
from ..tensor import Function, Tensor, is_grad_enabled
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
    (stride < kernel, or taps shared through dilation) may send several gradients to one
    pixel, and they add. (N, C, H, W) -> (N, C, OH, OW), OH = floor((H + 2p - d(kh-1) - 1) / s) + 1.

    What forward saves for backward:
        self.winner   (N, C, OH, OW) uint8: k = i*kw + j, the kernel offset (i, j) of the
                      first maximum of each window (window (oh, ow) reads padded-input
                      pixel (oh*sh + i*dh, ow*sw + j*dw))
        self.geom     the Geometry (kernel, stride, dilation, out_hw); geom.window_slices(i, j)
                      gives the padded-input rows and columns that offset (i, j) reads
        self.x_shape  the input's shape (N, C, H, W)
        self.padding  (ph, pw): the input was padded by ph rows / pw columns on each side
    """

    def forward(self, x, kernel, stride, padding, dilation=(1, 1)):
        xp = backend.array_module(x)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        oh, ow = conv_output_size(h, kh, sh, ph, dilation[0]), conv_output_size(w, kw, sw, pw, dilation[1])
        self.geom = Geometry(kernel, stride, dilation, (oh, ow))
        self.x_shape, self.padding = x.shape, padding
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        out = self.winner = None
        for k in range(kh * kw):
            rows, cols = self.geom.window_slices(k // kw, k % kw)
            window = x[:, :, rows, cols]
            if out is None:
                out = window.copy()
                self.winner = xp.zeros(out.shape, dtype=np.uint8)
                continue
            better = _beats(window, out)
            xp.copyto(out, window, where=better)
            xp.copyto(self.winner, np.uint8(k), where=better)
        return out

    def backward(self, g):
        # BEGIN TASK pool.max_pool2d_backward
        xp = backend.array_module(g)
        n, c, h, w = self.x_shape
        ph, pw = self.padding
        kh, kw = self.geom.kernel
        dx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for k in range(kh * kw):
            rows, cols = self.geom.window_slices(k // kw, k % kw)
            dx[:, :, rows, cols] += g * (self.winner == k)
        return (dx[:, :, ph : ph + h, pw : pw + w],)
        # END TASK


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

    dilation: taps d pixels apart. ceil_mode: the output size rounds up;
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
    options = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    fast = accelerated.kernels()
    op = fast.MaxPool2d if fast is not None else MaxPool2d
    if return_indices and not (is_grad_enabled() and x.requires_grad):
        fn = op()  # nothing to record: run the op's forward directly, to read its winners
        fn.needs_input_grad = (False,)
        y = Tensor._wrap(fn.forward(x.data, **options))
    else:
        y = op.apply(x, **options)
        fn = y._ctx
    if unbatched:
        y = ops.reshape(y, y.shape[1:])
    if not return_indices:
        return y
    xp = backend.array_module(fn.winner)
    i, j = fn.winner // np.uint8(kernel[1]), fn.winner % np.uint8(kernel[1])
    oh, ow = fn.winner.shape[2:]
    rows = xp.arange(oh).reshape(-1, 1) * stride[0] + i.astype(np.int64) * dilation[0] - padding[0]
    cols = xp.arange(ow).reshape(1, -1) * stride[1] + j.astype(np.int64) * dilation[1] - padding[1]
    indices = rows * w + cols
    return y, Tensor._wrap(indices[0] if unbatched else indices)
