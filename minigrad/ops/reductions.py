"""Reductions: sum, mean, amax/amin (ties share the gradient), argmax/argmin."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Function, Tensor
from .elementwise import cast, mul
from .shape import _keepdim_shape, _normalize_dims


class Sum(Function):
    """out = x summed over ``dims``.  Backward: dx = g broadcast back over those dims."""

    def forward(self, x, dims, keepdim):
        self.shape, self.dims = x.shape, dims
        return x.sum(axis=dims, keepdims=keepdim)

    def backward(self, g):
        xp = backend.array_module(g)
        g = g.reshape(_keepdim_shape(self.shape, self.dims))
        return (xp.broadcast_to(g, self.shape).copy(),)


class Max(Function):
    """out = the largest (``largest=False``: smallest) x over ``dims`` (torch.amax / amin).

    Backward: the gradient goes to the position(s) of the extremum; on ties it is shared
    equally between them (as ``torch.amax``), so the result is a true subgradient.
    """

    def forward(self, x, dims, keepdim, largest=True):
        self.x, self.dims = x, dims
        self.out = x.max(axis=dims, keepdims=True) if largest else x.min(axis=dims, keepdims=True)
        return self.out if keepdim else self.out.reshape([n for i, n in enumerate(x.shape) if i not in dims])

    def backward(self, g):
        g = g.reshape(self.out.shape)
        mask = self.x == self.out
        count = mask.sum(axis=self.dims, keepdims=True)
        return (mask * (g / count),)


class SelectAlongDim(Function):
    """out = x at one position per slice along ``dim``: out[..., 0, ...] = x[..., index, ...]
    (index shaped like x with size 1 along dim; torch.gather with such an index).
    Backward: dx = g at those positions, 0 elsewhere (a one-hot mask along dim times g)."""

    def forward(self, x, index, dim):
        xp = backend.array_module(x)
        self.index, self.dim, self.shape = index, dim, x.shape
        return xp.take_along_axis(x, index, axis=dim)

    def backward(self, g):
        xp = backend.array_module(g)
        positions = xp.arange(self.shape[self.dim]).reshape([-1 if i == self.dim else 1 for i in range(len(self.shape))])
        return ((positions == self.index) * g,)


def sum(x, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (None or () / []: every dimension); ``dtype`` casts x first, as PyTorch."""
    x = x if dtype is None else cast(x, dtype)
    dims = _normalize_dims(dim, x.ndim, "sum")
    return Sum.apply(x, dims=dims, keepdim=keepdim)


def mean(x, dim=None, keepdim=False, *, dtype=None):
    """Mean over ``dim`` (None or () / []: every dimension; nan over nothing); ``dtype`` casts x first."""
    x = x if dtype is None else cast(x, dtype)
    dims = _normalize_dims(dim, x.ndim, "mean")
    count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
    return mul(Sum.apply(x, dims=dims, keepdim=keepdim), (1.0 / count) if count else float("nan"))


def _extremum(x, dim, keepdim, largest, name):
    dims = _normalize_dims(dim, x.ndim, name)
    if any(x.shape[d] == 0 for d in dims) or (dim is None and x.size == 0):
        raise ValueError(f"{name}: cannot reduce over an empty dimension (shape {x.shape}, dim {dim!r})")
    return Max.apply(x, dims=dims, keepdim=keepdim, largest=largest)


def amax(x, dim=(), keepdim=False):
    """The largest values over ``dim`` (default: every dimension), as torch.amax: ties share the gradient."""
    return _extremum(x, dim, keepdim, True, "amax")


def amin(x, dim=(), keepdim=False):
    """The smallest values over ``dim`` (default: every dimension), as torch.amin: ties share the gradient."""
    return _extremum(x, dim, keepdim, False, "amin")


def _arg_extremum(x, dim, keepdim, largest, name):
    """Index of the first largest (smallest) value: over the flattened tensor when dim is None."""
    xp = backend.array_module(x.data)
    pick = xp.argmax if largest else xp.argmin
    if dim is None:
        if x.size == 0:
            raise ValueError(f"{name}: cannot take the {name} of an empty tensor (shape {x.shape})")
        idx = pick(x.data.reshape(-1)).astype(np.int64)
        return Tensor._wrap(idx.reshape((1,) * x.ndim) if keepdim else xp.asarray(idx).reshape(()))
    (d,) = _normalize_dims(dim, x.ndim, name) or (None,)
    if d is None:  # a 0-d tensor: its only element
        return Tensor._wrap(xp.zeros((), dtype=np.int64))
    if x.shape[d] == 0:
        raise ValueError(f"{name}: cannot reduce over the empty dimension {dim} (shape {x.shape})")
    idx = pick(x.data, axis=d, keepdims=True).astype(np.int64)
    return Tensor._wrap(idx if keepdim else idx.reshape([n for i, n in enumerate(idx.shape) if i != d]))


def argmax(x, dim=None, keepdim=False):
    return _arg_extremum(x, dim, keepdim, True, "argmax")


def argmin(x, dim=None, keepdim=False):
    return _arg_extremum(x, dim, keepdim, False, "argmin")
