"""Activations and dropout: relu, sigmoid, softmax, log_softmax, dropout."""
from __future__ import annotations

import warnings

from .. import backend, ops
from ..tensor import Function, Tensor
from ._checks import refuse

relu = ops.relu
sigmoid = ops.sigmoid


def _check_dim(x, dim, name):
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"{name}: dim {dim} is out of range for a tensor of shape {x.shape}")
    return dim % max(x.ndim, 1)


def _softmax_like(fn_cls, x, dim, dtype, name):
    """PyTorch's argument handling for softmax / log_softmax: ``dim=None`` picks PyTorch's
    (deprecated) implicit dim, 0 for 0-, 1- and 3-D inputs and 1 otherwise, with a warning;
    ``dtype`` casts the input first (recorded, so the gradient is cast back). A 0-d input is
    one element along dim 0; an input with a zero-size dimension gives an empty result."""
    if dtype is not None:
        x = ops.cast(x, dtype)
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1
        warnings.warn(f"{name}: implicit dimension choice (dim={dim}) is deprecated, as in PyTorch; pass dim=",
                      stacklevel=3)
    dim = _check_dim(x, dim, name)
    if x.ndim == 0:
        return ops.reshape(fn_cls.apply(ops.reshape(x, 1), dim=0), ())
    return fn_cls.apply(x, dim=dim)


class LogSoftmax(Function):
    """out = x - logsumexp(x) along ``dim``, with the maximum subtracted first so exp never
    overflows.  Backward: dx = g - softmax(x) * sum(g) along ``dim``."""

    def forward(self, x, dim):
        xp = backend.array_module(x)
        self.dim = dim
        if x.size == 0:  # nothing to normalise (a max over an empty axis has no identity)
            self.out = x.copy()
            return self.out
        shifted = x - x.max(axis=dim, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        return (g - xp.exp(self.out) * g.sum(axis=self.dim, keepdims=True),)


class Softmax(Function):
    """out = exp(x - max) / sum(exp(x - max)) along ``dim``.
    Backward: dx = out * (g - sum(g * out)) along ``dim``."""

    def forward(self, x, dim):
        xp = backend.array_module(x)
        self.dim = dim
        if x.size == 0:
            self.out = x.copy()
            return self.out
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        self.out = e / e.sum(axis=dim, keepdims=True)
        return self.out

    def backward(self, g):
        return (self.out * (g - (g * self.out).sum(axis=self.dim, keepdims=True)),)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim``, PyTorch's arguments and default (no dim: PyTorch's implicit,
    deprecated choice, with its warning; always pass dim)."""
    return _softmax_like(LogSoftmax, input, dim, dtype, "log_softmax")


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, PyTorch's arguments and default (no dim: PyTorch's
    implicit, deprecated choice, with its warning; always pass dim)."""
    return _softmax_like(Softmax, input, dim, dtype, "softmax")


class Dropout(Function):
    """out = x * mask / (1 - p), mask ~ Bernoulli(1 - p).  Backward: dx = g * mask / (1 - p)."""

    def forward(self, x, p):
        keep = backend.random_uniform(x.shape, x.dtype, backend.device_of(x)) >= p
        # (the mask in x's dtype first: bool * float32 scalar is float64 under CuPy 13's casting)
        self.scaled_mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        return x * self.scaled_mask

    def backward(self, g):
        return (g * self.scaled_mask,)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` during training; identity in evaluation.
    PyTorch's ``inplace=True`` is refused (minigrad's dropout always makes a new tensor)."""
    refuse("dropout", inplace=(inplace, False))
    x = input
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return ops.mul(x, 0.0)
    return Dropout.apply(x, p=p)
