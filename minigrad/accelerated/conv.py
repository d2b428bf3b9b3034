"""conv2d and conv_transpose2d on column chunks: the accelerated path's versions of the ops in
``minigrad/functional/conv.py``, subclasses with the same saved state and the same numbers.

* Columns are built chunk by chunk into a scratch buffer (``columns.py``) and never kept for
  backward: backward rebuilds them, so memory stays flat at full resolution.
* Conv2d's backward with stride 1 and C_in >= C_out takes both gradients from one im2col of the
  zero-padded g (a "full" convolution) instead of im2col(x) plus col2im.
"""
from __future__ import annotations

from .. import backend
from ..functional import conv
from ..functional.conv import _pad_hw
from ..functional.im2col import Geometry, conv_output_size, conv_transpose_output_size
from .columns import columns_matmul, matmul_col2im


def _crop_hw(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw].copy()


class Conv2d(conv.Conv2d):
    """``functional.conv.Conv2d`` on column chunks. Backward:
        dW2 = g @ cols^T, db = g summed, dx = crop(col2im(W2^T @ g))   cols = im2col(pad(x)), chunked
    or, for stride 1 when it is cheaper, from one im2col of pad(g):
        dx = conv2d(pad(g), W flipped and transposed)    dW (flipped, transposed) = x @ cols^T
    """

    def forward(self, x, weight, bias, stride, padding, dilation):
        c_out, _, kh, kw = weight.shape
        ph, pw = padding
        oh = conv_output_size(x.shape[2], kh, stride[0], ph, dilation[0])
        ow = conv_output_size(x.shape[3], kw, stride[1], pw, dilation[1])
        self.geom = Geometry((kh, kw), stride, dilation, (oh, ow))
        self.x, self.weight, self.padding, self.has_bias = x, weight, padding, bias is not None
        return columns_matmul(_pad_hw(x, ph, pw), weight.reshape(c_out, -1), self.geom, bias=bias)[0]

    def _full_convolution_is_cheaper(self) -> bool:
        """With stride 1 both gradients can come from one im2col of the zero-padded g (copies of
        C_out*kh*kw planes): dx as a "full" convolution of g, and dW from x and those same columns.
        The other way rebuilds im2col(x) for dW (C_in*kh*kw planes) and adds C_in*kh*kw planes
        into dx with col2im: more work unless C_out > C_in (measured by benchmarks/bench_layers.py).
        It needs padding <= dilation*(kernel-1): the full convolution's own padding is the difference."""
        (kh, kw), (dh, dw), (ph, pw) = self.geom.kernel, self.geom.dilation, self.padding
        c_out, c_in = self.weight.shape[:2]
        return self.geom.stride == (1, 1) and c_in >= c_out and ph <= dh * (kh - 1) and pw <= dw * (kw - 1)

    def backward(self, g):
        xp = backend.array_module(g)
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        (ph, pw), w2 = self.padding, self.weight.reshape(self.weight.shape[0], -1)
        c_out, c_in, kh, kw = self.weight.shape
        dx = dw = db = None
        if need_b:
            db = g.sum(axis=(0, 2, 3))
        if need_x and self._full_convolution_is_cheaper():
            # cols = im2col(g padded by d(k-1) - p), one column per input pixel (u, v): row (o, i, j)
            # holds g[o, u - d(k-1-i) + p, v - d(k-1-j) + p], the output that saw x[u, v] through
            # the kernel tap (k-1-i, k-1-j). So, with W_full = W flipped in space, in/out swapped:
            #   dx = W_full2 @ cols            (C_in, C_out*kh*kw) @ (C_out*kh*kw, H*W)
            #   dW_full2 = x @ cols^T          (C_in, H*W) @ (H*W, C_out*kh*kw)
            # The padding ring of pad(x) is zero, so summing over x's own pixels is enough.
            dil_h, dil_w = self.geom.dilation
            w_full = xp.ascontiguousarray(self.weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            geom = Geometry((kh, kw), (1, 1), (dil_h, dil_w), self.x.shape[2:])
            g_pad = _pad_hw(g, dil_h * (kh - 1) - ph, dil_w * (kw - 1) - pw)
            dx, cols_x = columns_matmul(g_pad, w_full.reshape(c_in, -1), geom, dense=self.x if need_w else None)
            if need_w:  # cols @ x^T is (C_out*kh*kw, C_in) with the taps flipped: undo the flip
                dw = xp.ascontiguousarray(cols_x.reshape(c_out, kh, kw, c_in)[:, ::-1, ::-1].transpose(0, 3, 1, 2))
            return dx, dw, db
        if need_w:
            _, cols_g = columns_matmul(_pad_hw(self.x, ph, pw), None, self.geom, dense=g)
            dw = xp.ascontiguousarray(cols_g.T).reshape(self.weight.shape)  # (C_in*kh*kw, C_out)^T
        if need_x:
            n, c, h, w = self.x.shape
            dx_pad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
            dx = _crop_hw(matmul_col2im(g, w2, self.geom, dx_pad), ph, pw)
        return dx, dw, db


class ConvTranspose2d(conv.ConvTranspose2d):
    """``functional.conv.ConvTranspose2d`` on column chunks (forward: chunked W2^T @ x then
    col2im; backward: chunked im2col(pad(g)) for dx and dW together)."""

    def forward(self, x, weight, bias, stride, padding, output_padding, dilation):
        xp = backend.array_module(x)
        n, c_in, h, w = x.shape
        c_out, kh, kw = weight.shape[1:]
        ph, pw = padding
        oh = conv_transpose_output_size(h, kh, stride[0], ph, output_padding[0], dilation[0])
        ow = conv_transpose_output_size(w, kw, stride[1], pw, output_padding[1], dilation[1])
        self.geom = Geometry((kh, kw), stride, dilation, (h, w))
        self.x, self.weight, self.padding, self.has_bias = x, weight, padding, bias is not None
        y_pad = xp.zeros((n, c_out, oh + 2 * ph, ow + 2 * pw), dtype=x.dtype)
        y = _crop_hw(matmul_col2im(x, weight.reshape(c_in, -1), self.geom, y_pad), ph, pw)
        if bias is not None:
            y += bias[:, None, None]
        return y

    def backward(self, g):
        xp = backend.array_module(g)
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        (ph, pw), w2 = self.padding, self.weight.reshape(self.weight.shape[0], -1)
        dx, cols_x = columns_matmul(_pad_hw(g, ph, pw), w2 if need_x else None, self.geom,
                                    dense=self.x if need_w else None)
        dw = xp.ascontiguousarray(cols_x.T).reshape(self.weight.shape) if need_w else None  # (C_out*kh*kw, C_in)^T
        db = g.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db
