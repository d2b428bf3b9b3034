"""Layers: thin Modules that hold parameters and call minigrad.functional."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..functional._checks import refuse
from ..functional.im2col import pair
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


def _empty(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))


class Linear(Module):
    """y = x @ W^T + b, W (out_features, in_features); PyTorch's default uniform init."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: feature counts must be positive, got ({in_features}, {out_features})")
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = init.uniform_(_empty(out_features, in_features), -bound, bound)
        self.bias = init.uniform_(_empty(out_features), -bound, bound) if bias else None
        _place(self, device, dtype)

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input has {x.shape[-1]} features (shape {x.shape}), expected {self.in_features}")
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """max(x, 0); ``inplace=True`` overwrites the input (see ``minigrad.functional.relu``)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        refuse("Dropout", inplace=(inplace, False))
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_channels(name, in_channels, out_channels, groups):
    if in_channels <= 0 or out_channels <= 0:
        raise ValueError(f"{name}: channel counts must be positive, got ({in_channels}, {out_channels})")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")


def _place(module, device, dtype):
    """PyTorch's factory arguments: parameters made on ``device`` with ``dtype``."""
    if device is not None or dtype is not None:
        module.to(device=device, dtype=dtype)
    return module


class Conv2d(Module):
    """2-D convolution, PyTorch's arguments and order; He (Kaiming) normal weights,
    std = sqrt(2 / (C_in/groups * kh * kw)), zero bias (deliberately not PyTorch's uniform init).
    padding_mode other than "zeros" pads with ``F.pad`` first (as PyTorch does), then convolves
    without padding."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        kh, kw = pair(kernel_size, "Conv2d: kernel_size", 1)
        _check_channels("Conv2d", in_channels, out_channels, groups)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.padding_mode = padding_mode
        self.weight = init.kaiming_normal_(_empty(out_channels, in_channels // groups, kh, kw))
        self.bias = init.zeros_(_empty(out_channels)) if bias else None
        _place(self, device, dtype)

    def forward(self, x):
        if self.padding_mode == "zeros" or self.padding in ("valid", 0, (0, 0)):
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.padding == "same":
            dh, dw = pair(self.dilation, "Conv2d: dilation", 1)
            total = (dh * (self.kernel_size[0] - 1), dw * (self.kernel_size[1] - 1))
            widths = (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2)
        else:
            ph, pw = pair(self.padding, "Conv2d: padding", 0)
            widths = (pw, pw, ph, ph)
        x = F.pad(x, widths, mode=self.padding_mode)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self):
        extra = f", groups={self.groups}" if self.groups != 1 else ""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}{extra}")


class ConvTranspose2d(Module):
    """Transposed convolution ("up-convolution"), PyTorch's arguments and order; He normal
    weights with N = the number of inputs feeding one output pixel,
    C_in/groups * ceil(kh/s) * ceil(kw/s) (C_in for the U-Net's 2x2, stride 2)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        kh, kw = pair(kernel_size, "ConvTranspose2d: kernel_size", 1)
        sh, sw = pair(stride, "ConvTranspose2d: stride", 1)
        _check_channels("ConvTranspose2d", in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported (as in PyTorch), got {padding_mode!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.output_padding, self.dilation = stride, padding, output_padding, dilation
        self.groups = groups
        fan = in_channels // groups * math.ceil(kh / sh) * math.ceil(kw / sw)
        self.weight = init.kaiming_normal_(_empty(in_channels, out_channels // groups, kh, kw), fan_in_override=fan)
        self.bias = init.zeros_(_empty(out_channels)) if bias else None
        _place(self, device, dtype)

    def forward(self, x, output_size=None):
        if output_size is not None:
            raise NotImplementedError("ConvTranspose2d: minigrad does not support the PyTorch argument output_size "
                                      "(pass output_padding instead); see docs/pytorch.md")
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(Module):
    """PyTorch's MaxPool2d: the arguments of ``F.max_pool2d``, stored and passed on."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class CenterCrop(Module):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        return F.center_crop(x, self.size)

    def extra_repr(self):
        return f"size={self.size}"


class BatchNorm2d(Module):
    """PyTorch's BatchNorm2d: per-channel normalisation of (N, C, H, W) input.

    Parameters (affine=True): ``weight`` (C,) = 1 and ``bias`` (C,) = 0.
    Buffers (track_running_stats=True): ``running_mean`` (C,) = 0, ``running_var`` (C,) = 1
    and ``num_batches_tracked`` (int64, 0-d), saved in the state dict under those names.
    Training mode: normalise by the batch's statistics over (N, H, W) and update the running
    ones with factor ``momentum`` (momentum=None: the cumulative average, factor
    1 / num_batches_tracked). Eval mode: normalise by the running statistics.
    track_running_stats=False: no buffers; batch statistics in both modes (as PyTorch).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, got {num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1] or None (cumulative average), got {momentum!r}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        _place(self, device, dtype)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4-D input (N, C, H, W), got shape {getattr(x, 'shape', x)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d: input has {x.shape[1]} channels (shape {x.shape}), expected "
                             f"num_features={self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1  # (stays on its device: no host round trip)
            if self.momentum is None:  # cumulative average: reads the count back on a GPU
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch_stats = self.training or not self.track_running_stats
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class Upsample(Module):
    """PyTorch's Upsample: ``F.interpolate`` with the stored size / scale_factor / mode / align_corners."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}" + (f", align_corners={self.align_corners}" if self.align_corners is not None else "")
