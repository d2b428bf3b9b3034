"""PyTorch-compatibility extras: ``max``/``min`` with PyTorch's three call forms (a full
reduction, ``(values, indices)`` along a dim, or elementwise with another tensor) and ``pad``
with its four modes (constant, reflect, replicate, circular)."""
from __future__ import annotations

import builtins  # sum, max, min and pow are also names of ops in this package

import numpy as np

from .. import backend
from ..tensor import Function, Tensor
from .elementwise import maximum, minimum
from .reductions import SelectAlongDim, _arg_extremum, _extremum
from .shape import _normalize_dims, reshape


class _ValuesIndices(tuple):
    """(values, indices) with names, as torch.return_types.max / min."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __repr__(self):
        return f"(values={self[0]!r}, indices={self[1]!r})"


def _max_or_min(x, dim, keepdim, other, largest, name):
    """torch.max / torch.min: max(x) -> the largest value (ties share the gradient),
    max(x, dim, keepdim=False) -> (values, indices) of the first largest value along dim (the
    gradient goes to that index only, as PyTorch), max(x, other) -> elementwise maximum."""
    if other is not None or isinstance(dim, Tensor):
        other = dim if other is None else other
        if dim is not None and dim is not other:
            raise TypeError(f"{name}: pass either dim or another tensor, not both")
        return maximum(x, other) if largest else minimum(x, other)
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}: keepdim=True needs a dim (as in PyTorch); use amax/amin for a full reduction")
        return _extremum(x, None, False, largest, name)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int, got {dim!r} (use amax/amin to reduce several dims)")
    indices = _arg_extremum(x, dim, True, largest, name)
    if x.ndim == 0:
        return _ValuesIndices(reshape(x, ()), indices)
    (d,) = _normalize_dims(dim, x.ndim, name)
    values = SelectAlongDim.apply(x, indices.data, dim=d)
    if not keepdim:
        values = reshape(values, *[n for i, n in enumerate(values.shape) if i != d])
        indices = Tensor._wrap(indices.data.reshape(values.shape))
    return _ValuesIndices(values, indices)


def max(x, dim=None, keepdim=False, *, other=None):
    return _max_or_min(x, dim, keepdim, other, True, "max")


def min(x, dim=None, keepdim=False, *, other=None):
    return _max_or_min(x, dim, keepdim, other, False, "min")


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_source_index(n, lo, hi, mode):
    """For one padded axis of length n: the input index each output position copies.

    Output positions are q = -lo ... n + hi - 1 in input coordinates (negative widths crop).
    reflect: q -> -q before 0 and 2(n-1) - q past the end (the edge is not repeated);
    replicate: q clipped to [0, n-1]; circular: the cropped input m = x[max(-lo,0) : n-max(-hi,0)]
    wraps around (q taken modulo its length), as PyTorch does."""
    q = np.arange(-lo, n + hi)
    if mode == "reflect":
        q = np.abs(q)
        return np.where(q >= n, 2 * (n - 1) - q, q)
    if mode == "replicate":
        return np.clip(q, 0, n - 1)
    start, stop = builtins.max(-lo, 0), n - builtins.max(-hi, 0)
    return start + (q - start) % (stop - start)


class Pad(Function):
    """out = x with borders added (or, for negative widths, cut off) on each axis.

    mode "constant": the borders hold ``value``.  Backward: the interior slice of g (placed
    back inside zeros where the forward cropped).
    "reflect" / "replicate" / "circular": out = x taken at a source index per output position
    along each padded axis (``_pad_source_index``), one axis after another.
    Backward, axis by axis in reverse: dx[src] += g[q] for every output position q, i.e. the
    adjoint of the copy; positions are grouped into runs of consecutive sources (the interior
    is one run) so each run is one slice addition.
    Shapes: x (..., n_i, ...) -> (..., n_i + lo_i + hi_i, ...)."""

    def forward(self, x, widths, mode, value):
        xp = backend.array_module(x)
        self.mode, self.shape = mode, x.shape
        if mode == "constant":
            crop = tuple(slice(builtins.max(-lo, 0), n - builtins.max(-hi, 0)) for (lo, hi), n in zip(widths, x.shape))
            inner = x[crop]
            grow = tuple((builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths)
            self.crop = crop
            self.interior = tuple(slice(lo, lo + n) for (lo, _), n in zip(grow, inner.shape))
            if not any(lo or hi for lo, hi in grow):
                return inner.copy()
            return xp.pad(inner, grow, mode="constant", constant_values=value)
        self.steps = []
        for axis, (lo, hi) in enumerate(widths):
            if lo == 0 and hi == 0:
                continue
            src = _pad_source_index(x.shape[axis], lo, hi, mode)
            self.steps.append((axis, x.shape[axis], src))
            x = xp.take(x, xp.asarray(src), axis=axis)
        return x

    def backward(self, g):
        xp = backend.array_module(g)
        if self.mode == "constant":
            inner = g[self.interior]
            if inner.shape == self.shape:
                return (inner,)
            dx = xp.zeros(self.shape, dtype=g.dtype)
            dx[self.crop] = inner
            return (dx,)
        for axis, n, src in reversed(self.steps):
            shape = list(g.shape)
            shape[axis] = n
            dx = xp.zeros(shape, dtype=g.dtype)
            breaks = np.flatnonzero(np.diff(src) != 1) + 1  # runs of consecutive sources
            for q0, q1 in zip(np.r_[0, breaks], np.r_[breaks, len(src)]):
                lead = (slice(None),) * axis
                dx[lead + (slice(int(src[q0]), int(src[q0]) + int(q1 - q0)),)] += g[lead + (slice(int(q0), int(q1)),)]
            g = dx
        return (g,)


def pad(input, pad, mode="constant", value=None):
    """PyTorch's ``F.pad``: ``pad = (left, right, top, bottom, ...)`` pads the last dimension by
    (left, right), the one before by (top, bottom), and so on; negative widths crop.

    mode: "constant" (fill with ``value``, default 0), "reflect" (mirror without repeating the
    edge), "replicate" (repeat the edge), "circular" (wrap around). As in PyTorch, the three
    non-constant modes pad the last 1, 2 or 3 dimensions of a (C, ...) or (N, C, ...) input,
    reflect needs each width < the dimension's size and circular each width <= it."""
    x = input
    if not isinstance(mode, str):
        raise TypeError(f"pad: mode must be one of {PAD_MODES}, got {mode!r} (the fill value goes in value=)")
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    try:
        pad = tuple(int(p) for p in pad)
    except TypeError:
        raise TypeError(f"pad: pad must be a sequence of ints, got {pad!r}") from None
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of widths, at most 2 per dimension of {x.shape}, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    for (lo, hi), n in zip(widths, x.shape):
        if n + lo + hi < 0 or (lo < 0 and -lo > n) or (hi < 0 and -hi > n):
            raise ValueError(f"pad: widths {pad} crop more than the input's shape {x.shape} holds")
    if mode == "constant":
        return Pad.apply(x, widths=tuple(widths), mode=mode, value=0.0 if value is None else value)
    if value not in (None, 0, 0.0):
        raise ValueError(f"pad: value={value!r} only applies to mode='constant', not {mode!r}")
    k = len(pad) // 2
    if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
        raise ValueError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dimensions of a batched or unbatched input "
            f"(2-D/3-D input for 2 widths, 3-D/4-D for 4, 4-D/5-D for 6); got {len(pad)} widths for shape {x.shape}"
        )
    for axis in range(x.ndim - k, x.ndim):
        (lo, hi), n = widths[axis], x.shape[axis]
        m = n - builtins.max(-lo, 0) - builtins.max(-hi, 0)
        if mode == "reflect" and builtins.max(lo, hi) >= n:
            raise ValueError(f"pad: reflect widths must be less than the dimension's size; got {(lo, hi)} "
                             f"for dimension {axis} of size {n} (shape {x.shape})")
        if mode == "replicate" and n == 0:
            raise ValueError(f"pad: replicate cannot pad the empty dimension {axis} of shape {x.shape}")
        if mode == "circular" and builtins.max(lo, hi) > m:
            raise ValueError(f"pad: circular widths must be at most the (cropped) dimension's size; got {(lo, hi)} "
                             f"for dimension {axis} of size {n} (shape {x.shape}): it would wrap around more than once")
    return Pad.apply(x, widths=tuple(widths), mode=mode, value=0.0)
