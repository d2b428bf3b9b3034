"""Layers: thin Modules that hold parameters and call minigrad.functional."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..functional.im2col import pair
from . import init
from .module import Module, Parameter


def _empty(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))


class Linear(Module):
    """y = x @ W^T + b, W (out_features, in_features); PyTorch's default uniform init."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: feature counts must be positive, got ({in_features}, {out_features})")
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = init.uniform_(_empty(out_features, in_features), -bound, bound)
        self.bias = init.uniform_(_empty(out_features), -bound, bound) if bias else None

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
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Conv2d(Module):
    """2-D convolution; He (Kaiming) normal weights, std = sqrt(2 / (C_in*kh*kw)), zero bias."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size", 1)
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"Conv2d: channel counts must be positive, got ({in_channels}, {out_channels})")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = init.kaiming_normal_(_empty(out_channels, in_channels, kh, kw))
        self.bias = init.zeros_(_empty(out_channels)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ConvTranspose2d(Module):
    """Transposed convolution ("up-convolution"); He normal weights with N = the number of
    inputs feeding one output pixel, C_in * ceil(kh/s) * ceil(kw/s) (C_in for the U-Net's 2x2, stride 2)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, dilation=1, bias=True):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size", 1)
        sh, sw = pair(stride, "stride", 1)
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"ConvTranspose2d: channel counts must be positive, got ({in_channels}, {out_channels})")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.output_padding, self.dilation = stride, padding, output_padding, dilation
        fan = in_channels * math.ceil(kh / sh) * math.ceil(kw / sw)
        self.weight = init.kaiming_normal_(_empty(in_channels, out_channels, kh, kw), fan_in_override=fan)
        self.bias = init.zeros_(_empty(out_channels)) if bias else None

    def forward(self, x):
        return F.conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.dilation
        )

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class CenterCrop(Module):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        return F.center_crop(x, self.size)

    def extra_repr(self):
        return f"size={self.size}"
