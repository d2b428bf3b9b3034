"""conv2d and conv_transpose2d: thin ops over im2col / col2im (see im2col.py).

Shapes follow PyTorch (NCHW):
    conv2d           x (N, C_in, H, W),  weight (C_out, C_in, kh, kw)  -> (N, C_out, OH, OW)
    conv_transpose2d x (N, C_in, H, W),  weight (C_in, C_out, kh, kw)  -> (N, C_out, OH, OW)
"""
from __future__ import annotations

from .. import backend
from ..tensor import Function, Tensor
from .im2col import (Geometry, col2im, columns_matmul, conv_output_size, conv_transpose_output_size, im2col,
                     matmul_col2im, pair)


def _pad_hw(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    xp = backend.array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _crop_hw(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw].copy()


class Conv2d(Function):
    """y = W * x + b, as y[n] = W2 @ im2col(pad(x[n])), W2 = W reshaped to (C_out, C_in*kh*kw).

    Backward, with cols = im2col(pad(x)) rebuilt chunk by chunk (not stored, to save memory):
        dW2 = g @ cols^T        db = g summed over (N, OH, OW)
        dx  = crop(col2im(W2^T @ g))
    or, for stride 1, from one im2col of pad(g) (the same numbers, less copying):
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
        # BEGIN TASK conv.conv2d_backward
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
            (dil_h, dil_w) = self.geom.dilation
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
        # END TASK


class ConvTranspose2d(Function):
    """The adjoint of conv2d: its forward is conv2d's input gradient, its backward a conv2d.

    Forward:  y = crop(col2im(W2^T @ x)) + b,  W2 = W reshaped to (C_in, C_out*kh*kw).
    Backward, with cols = im2col(pad(g)):
        dx = W2 @ cols   (a conv2d of g)      dW2 = x @ cols^T      db = g summed over (N, OH, OW)
    """

    def forward(self, x, weight, bias, stride, padding, output_padding, dilation):
        # BEGIN TASK conv.conv_transpose2d
        xp = backend.array_module(x)
        n, c_in, h, w = x.shape
        c_out, kh, kw = weight.shape[1:]
        ph, pw = padding
        oh = conv_transpose_output_size(h, kh, stride[0], ph, output_padding[0], dilation[0])
        ow = conv_transpose_output_size(w, kw, stride[1], pw, output_padding[1], dilation[1])
        # In the conv2d that this op is the adjoint of, x plays the output, y the input.
        self.geom = Geometry((kh, kw), stride, dilation, (h, w))
        self.x, self.weight, self.padding, self.has_bias = x, weight, padding, bias is not None
        y_pad = xp.zeros((n, c_out, oh + 2 * ph, ow + 2 * pw), dtype=x.dtype)
        y = _crop_hw(matmul_col2im(x, weight.reshape(c_in, -1), self.geom, y_pad), ph, pw)
        if bias is not None:
            y += bias[:, None, None]
        return y
        # END TASK

    def backward(self, g):
        # BEGIN TASK conv.conv_transpose2d
        xp = backend.array_module(g)
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        (ph, pw), w2 = self.padding, self.weight.reshape(self.weight.shape[0], -1)
        dx, cols_x = columns_matmul(_pad_hw(g, ph, pw), w2 if need_x else None, self.geom,
                                    dense=self.x if need_w else None)
        dw = xp.ascontiguousarray(cols_x.T).reshape(self.weight.shape) if need_w else None  # (C_out*kh*kw, C_in)^T
        db = g.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db
        # END TASK


# --------------------------------------------------------------------------------------
# Checked entry points
# --------------------------------------------------------------------------------------
def _check_input(name, x, weight, bias, channel_axis_of_weight, bias_size):
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{name}: input and weight must be Tensors")
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{name}: weight must be 4-D, got shape {weight.shape}")
    if x.shape[1] != weight.shape[channel_axis_of_weight]:
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels (shape {x.shape}) but weight of shape "
            f"{weight.shape} expects {weight.shape[channel_axis_of_weight]}"
        )
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (bias_size,)):
        raise ValueError(f"{name}: bias must be a Tensor of shape ({bias_size},), got {getattr(bias, 'shape', bias)}")
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"{name}: input, weight and bias must share a dtype, got {x.dtype} and {weight.dtype}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1) -> Tensor:
    """2-D cross-correlation (PyTorch's conv2d): (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = floor((H + 2p - d(kh-1) - 1) / s) + 1."""
    _check_input("conv2d", x, weight, bias, 1, weight.shape[0] if weight.ndim == 4 else -1)
    stride, padding, dilation = pair(stride, "stride", 1), pair(padding, "padding", 0), pair(dilation, "dilation", 1)
    kh, kw = weight.shape[2:]
    if kh == 0 or kw == 0:
        raise ValueError(f"conv2d: kernel size must be positive, got weight shape {weight.shape}")
    for axis, k, p, d, size in ((0, kh, padding[0], dilation[0], x.shape[2]), (1, kw, padding[1], dilation[1], x.shape[3])):
        if d * (k - 1) + 1 > size + 2 * p:
            raise ValueError(
                f"conv2d: kernel of extent {d * (k - 1) + 1} (size {k}, dilation {d}) is larger than the "
                f"padded input ({size} + 2*{p} = {size + 2 * p}) along {'height' if axis == 0 else 'width'}; "
                f"input shape {x.shape}"
            )
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


def conv_transpose2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0, dilation=1
) -> Tensor:
    """Transposed convolution (PyTorch's conv_transpose2d): (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H-1)s - 2p + d(kh-1) + output_padding + 1."""
    _check_input("conv_transpose2d", x, weight, bias, 0, weight.shape[1] if weight.ndim == 4 else -1)
    stride, padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
    output_padding, dilation = pair(output_padding, "output_padding", 0), pair(dilation, "dilation", 1)
    kh, kw = weight.shape[2:]
    if kh == 0 or kw == 0:
        raise ValueError(f"conv_transpose2d: kernel size must be positive, got weight shape {weight.shape}")
    for axis in (0, 1):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(
                f"conv_transpose2d: output_padding {output_padding} must be smaller than stride {stride} "
                f"or dilation {dilation}"
            )
    oh = conv_transpose_output_size(x.shape[2], kh, stride[0], padding[0], output_padding[0], dilation[0])
    ow = conv_transpose_output_size(x.shape[3], kw, stride[1], padding[1], output_padding[1], dilation[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"conv_transpose2d: padding {padding} leaves no output (computed size {(oh, ow)}) for input shape {x.shape}"
        )
    return ConvTranspose2d.apply(
        x, weight, bias, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
