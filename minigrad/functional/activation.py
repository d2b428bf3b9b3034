"""Activations and dropout: relu, sigmoid, softmax, log_softmax, dropout."""
from __future__ import annotations

from .. import backend, ops
from ..tensor import Function, Tensor

relu = ops.relu
sigmoid = ops.sigmoid


def _check_dim(x, dim, name):
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{name}: dim {dim} is out of range for a tensor of shape {x.shape}")
    return dim % x.ndim


class LogSoftmax(Function):
    """out = x - logsumexp(x) along ``dim``, with the maximum subtracted first so exp never
    overflows.  Backward: dx = g - softmax(x) * sum(g) along ``dim``."""

    def forward(self, x, dim):
        xp = backend.array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.dim = dim
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        return (g - xp.exp(self.out) * g.sum(axis=self.dim, keepdims=True),)


class Softmax(Function):
    """out = exp(x - max) / sum(exp(x - max)) along ``dim``.
    Backward: dx = out * (g - sum(g * out)) along ``dim``."""

    def forward(self, x, dim):
        xp = backend.array_module(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        self.out = e / e.sum(axis=dim, keepdims=True)
        self.dim = dim
        return self.out

    def backward(self, g):
        return (self.out * (g - (g * self.out).sum(axis=self.dim, keepdims=True)),)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(x, dim=_check_dim(x, dim, "log_softmax"))


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return Softmax.apply(x, dim=_check_dim(x, dim, "softmax"))


class Dropout(Function):
    """out = x * mask / (1 - p), mask ~ Bernoulli(1 - p).  Backward: dx = g * mask / (1 - p)."""

    def forward(self, x, p):
        keep = backend.random_uniform(x.shape, x.dtype, backend.device_of(x)) >= p
        self.scaled_mask = keep * x.dtype.type(1.0 / (1.0 - p))
        return x * self.scaled_mask

    def backward(self, g):
        return (g * self.scaled_mask,)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` during training; identity in evaluation."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return ops.mul(x, 0.0)
    return Dropout.apply(x, p=p)
