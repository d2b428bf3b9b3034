"""conv2d and conv_transpose2d: thin ops over im2col / col2im (see im2col.py).

These are the textbook ops (the course's task blocks). Where the accelerated path is present
and enabled (``minigrad.backends.accelerated``), ``conv2d`` and ``conv_transpose2d`` run its
subclasses of them instead (``minigrad/accelerated/conv.py``): the same numbers, chunked.

Shapes follow PyTorch (NCHW; G = groups, 1 unless given):
    conv2d           x (N, C_in, H, W),  weight (C_out, C_in/G, kh, kw)  -> (N, C_out, OH, OW)
    conv_transpose2d x (N, C_in, H, W),  weight (C_in, C_out/G, kh, kw)  -> (N, C_out, OH, OW)
(or unbatched (C_in, H, W) -> (C_out, OH, OW)).
"""
from __future__ import annotations

from .. import backend, ops
from ..tensor import Function, Tensor
from ..backends import accelerated
from .im2col import Geometry, col2im, conv_output_size, conv_transpose_output_size, im2col, pair


def _pad_hw(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    xp = backend.array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


class Conv2d(Function):
    """y = W * x + b, as one matrix product: y = W2 @ im2col(pad(x)) + b, with
    W2 = W reshaped to (C_out, C_in*kh*kw) and cols = im2col(pad(x)) (C_in*kh*kw, N*OH*OW).

    Backward, with G = g laid out as (C_out, N*OH*OW) (the columns' order: n, oh, ow):
        dW2 = G @ cols^T        db = g summed over (N, OH, OW)
        dx  = crop(col2im(W2^T @ G))        (col2im: the adjoint of im2col; crop undoes pad)

    Saved by forward for backward: self.x (N, C_in, H, W), unpadded; self.weight
    (C_out, C_in, kh, kw); self.padding (ph, pw); self.has_bias; self.geom (kernel, stride,
    dilation, out_hw = (OH, OW)), so im2col(pad(self.x), self.geom) gives the columns again.
    Backward returns (dx, dW, db), db None without a bias.
    """

    def forward(self, x, weight, bias, stride, padding, dilation):
        n, c_out, (kh, kw), (ph, pw) = x.shape[0], weight.shape[0], weight.shape[2:], padding
        oh = conv_output_size(x.shape[2], kh, stride[0], ph, dilation[0])
        ow = conv_output_size(x.shape[3], kw, stride[1], pw, dilation[1])
        self.geom = Geometry((kh, kw), stride, dilation, (oh, ow))
        self.x, self.weight, self.padding, self.has_bias = x, weight, padding, bias is not None
        y = weight.reshape(c_out, -1) @ im2col(_pad_hw(x, ph, pw), self.geom)  # (C_out, N*OH*OW)
        if bias is not None:
            y += bias[:, None]
        return y.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3).copy()

    def backward(self, g):
        # BEGIN TASK conv.conv2d_backward
        xp = backend.array_module(g)
        n, c_in, h, w = self.x.shape
        c_out = self.weight.shape[0]
        ph, pw = self.padding
        oh, ow = self.geom.out_hw
        x_pad = _pad_hw(self.x, ph, pw)
        cols = im2col(x_pad, self.geom)  # (C_in*kh*kw, N*OH*OW), columns ordered (n, oh, ow)
        g2 = g.transpose(1, 0, 2, 3).reshape(c_out, n * oh * ow)  # (C_out, N*OH*OW), the same order
        w2 = self.weight.reshape(c_out, -1)
        dw = (g2 @ cols.T).reshape(self.weight.shape)
        db = g.sum(axis=(0, 2, 3)) if self.has_bias else None
        dx_pad = col2im(w2.T @ g2, xp.zeros(x_pad.shape, dtype=g.dtype), self.geom)
        dx = dx_pad[:, :, ph : ph + h, pw : pw + w]
        return dx, dw, db
        # END TASK


class ConvTranspose2d(Function):
    """The adjoint of conv2d: its forward is conv2d's input gradient, its backward a conv2d.

    Forward:  y = crop(col2im(W2^T @ X)) + b,  W2 = W reshaped to (C_in, C_out*kh*kw), X = x
    laid out as (C_in, N*H*W).
    Backward, with cols = im2col(pad(g)) (C_out*kh*kw, N*H*W):
        dx = W2 @ cols   (a conv2d of g)      dW2 = X @ cols^T      db = g summed over (N, OH, OW)

    Forward (part of the task) must save for backward what backward needs; the reference saves
    self.x, self.weight, self.padding, self.has_bias and self.geom = Geometry(kernel, stride,
    dilation, (H, W)): the geometry of the conv2d this op is the adjoint of, which maps the
    padded output (OH + 2p, OW + 2p) to x's (H, W).
    """

    def forward(self, x, weight, bias, stride, padding, output_padding, dilation):
        # BEGIN TASK conv.conv_transpose2d
        xp = backend.array_module(x)
        n, c_in, h, w = x.shape
        c_out, kh, kw = weight.shape[1:]
        ph, pw = padding
        oh = conv_transpose_output_size(h, kh, stride[0], ph, output_padding[0], dilation[0])
        ow = conv_transpose_output_size(w, kw, stride[1], pw, output_padding[1], dilation[1])
        # the conv2d this is the adjoint of maps the padded y (oh+2p) to x (h, w)
        self.geom = Geometry((kh, kw), stride, dilation, (h, w))
        self.x, self.weight, self.padding, self.has_bias = x, weight, padding, bias is not None
        x2 = x.transpose(1, 0, 2, 3).reshape(c_in, n * h * w)
        cols = weight.reshape(c_in, -1).T @ x2  # (C_out*kh*kw, N*H*W)
        y_pad = col2im(cols, xp.zeros((n, c_out, oh + 2 * ph, ow + 2 * pw), dtype=x.dtype), self.geom)
        y = y_pad[:, :, ph : ph + oh, pw : pw + ow]
        if bias is not None:
            y = y + bias[:, None, None]
        return y
        # END TASK

    def backward(self, g):
        # BEGIN TASK conv.conv_transpose2d
        n, c_in, h, w = self.x.shape
        ph, pw = self.padding
        cols = im2col(_pad_hw(g, ph, pw), self.geom)  # (C_out*kh*kw, N*H*W)
        w2 = self.weight.reshape(c_in, -1)
        dx = (w2 @ cols).reshape(c_in, n, h, w).transpose(1, 0, 2, 3)
        x2 = self.x.transpose(1, 0, 2, 3).reshape(c_in, n * h * w)
        dw = (x2 @ cols.T).reshape(self.weight.shape)
        db = g.sum(axis=(0, 2, 3)) if self.has_bias else None
        return dx, dw, db
        # END TASK


class Grouped(Function):
    """groups > 1: one ``op`` (``Conv2d`` or ``ConvTranspose2d``) per group of channels,
    "im2col per group". Group k sees input channels [k*C_in/G, (k+1)*C_in/G), weight rows
    [k*R/G, (k+1)*R/G) (R = weight.shape[0]: C_out for conv2d, C_in for conv_transpose2d) and
    bias entries [k*C_out/G, ...); its outputs are concatenated along the channel axis.
    A depthwise convolution is groups = C_in: every channel filtered on its own.

    Forward: y = cat_k op_k.forward(x_k, W_k, b_k).
    Backward: op_k.backward(g_k) for the channel slice g_k of g; dx, dW, db are the groups'
    gradients concatenated (channels of x, rows of W, entries of b). Each group is an
    ordinary ``op`` object, so the per-op forward and backward (the course's blocks) run as they
    would for an ungrouped layer of the group's size, on contiguous slices.
    """

    def forward(self, x, weight, bias, op, groups, **options):
        xp = backend.array_module(x)
        self.groups, self.parts = groups, []
        c, r = x.shape[1] // groups, weight.shape[0] // groups
        outs = []
        for k in range(groups):
            fn = op()
            fn.needs_input_grad = self.needs_input_grad
            b_k = None
            if bias is not None:
                per = bias.shape[0] // groups
                b_k = bias[k * per:(k + 1) * per]
            outs.append(fn.forward(xp.ascontiguousarray(x[:, k * c:(k + 1) * c]),
                                   xp.ascontiguousarray(weight[k * r:(k + 1) * r]), b_k, **options))
            self.parts.append(fn)
        return xp.concatenate(outs, axis=1)

    def backward(self, g):
        xp = backend.array_module(g)
        per = g.shape[1] // self.groups
        grads = [fn.backward(xp.ascontiguousarray(g[:, k * per:(k + 1) * per])) for k, fn in enumerate(self.parts)]
        return tuple(None if any(gr[i] is None for gr in grads) else xp.concatenate([gr[i] for gr in grads], axis=1 if i == 0 else 0)
                     for i in range(3))


# --------------------------------------------------------------------------------------
# Checked entry points
# --------------------------------------------------------------------------------------
def _check_input(name, x, weight, bias, channel_axis_of_weight, bias_size, groups):
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{name}: input and weight must be Tensors")
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{name}: weight must be 4-D, got shape {weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    out_channels = weight.shape[0] if channel_axis_of_weight == 1 else weight.shape[1] * groups
    if x.shape[1] % groups or out_channels % groups:
        raise ValueError(f"{name}: groups={groups} must divide the input channels ({x.shape[1]}, input shape "
                         f"{x.shape}) and the output channels ({out_channels}, weight shape {weight.shape})")
    expected = weight.shape[1] * groups if channel_axis_of_weight == 1 else weight.shape[0]
    if x.shape[1] != expected:
        per = "per group " if groups > 1 else ""
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels (shape {x.shape}) but weight of shape "
            f"{weight.shape} with groups={groups} expects {expected} ({weight.shape[channel_axis_of_weight]} {per})"
        )
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (bias_size,)):
        raise ValueError(f"{name}: bias must be a Tensor of shape ({bias_size},), got {getattr(bias, 'shape', bias)}")
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"{name}: input, weight and bias must share a dtype, got {x.dtype} and {weight.dtype}")


def _batched(name, x):
    """PyTorch's unbatched (C, H, W) input: a batch of one, squeezed again afterwards."""
    if isinstance(x, Tensor) and x.ndim == 3:
        return ops.reshape(x, (1,) + x.shape), True
    return x, False


def _same_padding(name, kernel, stride, dilation):
    """padding="same": total d*(k-1) per axis, split as PyTorch does (the odd one extra at the
    bottom / right). Returns the symmetric part and the extra (bottom, right) widths."""
    if stride != (1, 1):
        raise ValueError(f"{name}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}")
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return tuple(t // 2 for t in total), tuple(t - 2 * (t // 2) for t in total)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation, PyTorch's conv2d (same arguments, same order):
    (N, C_in, H, W) or unbatched (C_in, H, W) -> (N, C_out, OH, OW) (or (C_out, OH, OW)),
    weight (C_out, C_in / groups, kh, kw), OH = floor((H + 2p - d(kh-1) - 1) / s) + 1.
    padding: an int, a pair, "valid" (= 0) or "same" (stride 1; output size = input size; an odd
    total d*(k-1) puts the extra row/column at the bottom/right, as PyTorch, via a zero F.pad).
    groups > 1: see ``Grouped``."""
    x, unbatched = _batched("conv2d", input)
    _check_input("conv2d", x, weight, bias, 1, weight.shape[0] if weight.ndim == 4 else -1, groups)
    stride, dilation = pair(stride, "conv2d: stride", 1), pair(dilation, "conv2d: dilation", 1)
    kh, kw = weight.shape[2:]
    if kh == 0 or kw == 0:
        raise ValueError(f"conv2d: kernel size must be positive, got weight shape {weight.shape}")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            padding, extra = _same_padding("conv2d", (kh, kw), stride, dilation)
            if any(extra):
                x = ops.pad(x, (0, extra[1], 0, extra[0]))
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = pair(padding, "conv2d: padding", 0)
    for axis, k, p, d, size in ((0, kh, padding[0], dilation[0], x.shape[2]), (1, kw, padding[1], dilation[1], x.shape[3])):
        if d * (k - 1) + 1 > size + 2 * p:
            raise ValueError(
                f"conv2d: kernel of extent {d * (k - 1) + 1} (size {k}, dilation {d}) is larger than the "
                f"padded input ({size} + 2*{p} = {size + 2 * p}) along {'height' if axis == 0 else 'width'}; "
                f"input shape {x.shape}"
            )
    options = dict(stride=stride, padding=padding, dilation=dilation)
    fast = accelerated.kernels()
    op = fast.Conv2d if fast is not None else Conv2d
    if groups == 1:
        y = op.apply(x, weight, bias, **options)
    else:
        y = Grouped.apply(x, weight, bias, op=op, groups=groups, **options)
    return ops.reshape(y, y.shape[1:]) if unbatched else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed convolution, PyTorch's conv_transpose2d (same arguments, same order):
    (N, C_in, H, W) or unbatched (C_in, H, W) -> (N, C_out, OH, OW), weight (C_in, C_out / groups, kh, kw),
    OH = (H-1)s - 2p + d(kh-1) + output_padding + 1. groups > 1: see ``Grouped``."""
    name = "conv_transpose2d"
    x, unbatched = _batched(name, input)
    _check_input(name, x, weight, bias, 0, weight.shape[1] * groups if weight.ndim == 4 and isinstance(groups, int) else -1,
                 groups)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a pair (PyTorch has no string padding here), got {padding!r}")
    stride, padding = pair(stride, f"{name}: stride", 1), pair(padding, f"{name}: padding", 0)
    output_padding, dilation = pair(output_padding, f"{name}: output_padding", 0), pair(dilation, f"{name}: dilation", 1)
    kh, kw = weight.shape[2:]
    if kh == 0 or kw == 0:
        raise ValueError(f"{name}: kernel size must be positive, got weight shape {weight.shape}")
    for axis in (0, 1):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(
                f"{name}: output_padding {output_padding} must be smaller than stride {stride} "
                f"or dilation {dilation}"
            )
    oh = conv_transpose_output_size(x.shape[2], kh, stride[0], padding[0], output_padding[0], dilation[0])
    ow = conv_transpose_output_size(x.shape[3], kw, stride[1], padding[1], output_padding[1], dilation[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"{name}: padding {padding} leaves no output (computed size {(oh, ow)}) for input shape {x.shape}"
        )
    options = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
    fast = accelerated.kernels()
    op = fast.ConvTranspose2d if fast is not None else ConvTranspose2d
    if groups == 1:
        y = op.apply(x, weight, bias, **options)
    else:
        y = Grouped.apply(x, weight, bias, op=op, groups=groups, **options)
    return ops.reshape(y, y.shape[1:]) if unbatched else y
