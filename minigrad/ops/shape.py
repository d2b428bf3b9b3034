"""Shape ops: reshape, permute/transpose, indexing, cat and stack."""
from __future__ import annotations

import builtins  # sum, max, min and pow are also names of ops in this package

import numpy as np

from .. import backend
from ..tensor import Function, Tensor


def _normalize_dims(dim, ndim, name):
    """``dim`` (None, an int or a sequence of ints) as a tuple of axes in [0, ndim).

    As PyTorch 2.13: None and an empty sequence mean every dimension; a 0-d tensor accepts
    dim 0 and -1 (it counts as having one dimension) and has no axis to reduce."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"{name}: dim must be an int or a sequence of ints, got {dim!r}")
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise ValueError(f"{name}: dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dim {dim} names the same dimension twice")
    return tuple(out) if ndim else ()


def _keepdim_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


class Reshape(Function):
    """out = x with a new shape (same elements, same order).  Backward: reshape g back."""

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Permute(Function):
    """out = x with its axes reordered.  Backward: the inverse permutation of g."""

    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return (g.transpose(self.inverse),)


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        np.empty(x.shape, dtype=np.uint8).reshape(shape)  # cheap validity check on a dummy
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} into {shape}") from None
    return Reshape.apply(x, shape=shape)


def permute(x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if sorted(d % builtins.max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions of shape {x.shape}")
    return Permute.apply(x, dims=tuple(d % x.ndim for d in dims))


def transpose(x, dim0=-2, dim1=-1):
    (d0,), (d1,) = (_normalize_dims(d, x.ndim, "transpose") or (0,) for d in (dim0, dim1))
    dims = list(range(x.ndim))
    if x.ndim:
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, dims=tuple(dims))


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


class GetItem(Function):
    """out = x[index].  Backward: a zero array shaped like x with g written (or, for
    integer-array indices that may repeat, added) at the same positions."""

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, g):
        xp = backend.array_module(g)
        dx = xp.zeros(self.shape, dtype=g.dtype)
        if _is_basic_index(self.index):
            dx[self.index] = g
        else:
            xp.add.at(dx, self.index, g)
        return (dx,)


def getitem(x, index):
    def unwrap(i):
        return i.data if isinstance(i, Tensor) else i

    index = tuple(unwrap(i) for i in index) if isinstance(index, tuple) else unwrap(index)
    try:
        np.empty(x.shape, dtype=np.uint8)[index if _is_basic_index(index) else ...]
    except IndexError as err:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {x.shape}: {err}") from None
    return GetItem.apply(x, index=index)


class Cat(Function):
    """out = the inputs joined along ``dim``.  Backward: g split back into the inputs' pieces."""

    def forward(self, *arrays, dim):
        xp = backend.array_module(arrays[0])
        self.dim = dim
        self.bounds = np.cumsum([0] + [a.shape[dim] for a in arrays])
        return xp.concatenate(arrays, axis=dim)

    def backward(self, g):
        index = [slice(None)] * g.ndim
        grads = []
        for i, needed in enumerate(self.needs_input_grad):
            index[self.dim] = slice(int(self.bounds[i]), int(self.bounds[i + 1]))
            grads.append(g[tuple(index)] if needed else None)
        return tuple(grads)


class Stack(Function):
    """out = the inputs stacked along a new axis ``dim``.  Backward: g taken apart along it."""

    def forward(self, *arrays, dim):
        xp = backend.array_module(arrays[0])
        self.dim = dim
        return xp.stack(arrays, axis=dim)

    def backward(self, g):
        xp = backend.array_module(g)
        return tuple(xp.take(g, i, axis=self.dim) if need else None for i, need in enumerate(self.needs_input_grad))


def _check_tensor_sequence(name, tensors):
    """A non-empty sequence of Tensors (their shapes are checked by each caller)."""
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: tensors[{i}] is a {type(t).__name__}, expected a Tensor")


def cat(tensors, dim=0):
    """Join tensors along an existing dimension; all other sizes must agree."""
    tensors = list(tensors)
    _check_tensor_sequence("cat", tensors)
    ndim = tensors[0].ndim
    (d,) = _normalize_dims(dim, ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != ndim or t.shape[:d] + t.shape[d + 1 :] != tensors[0].shape[:d] + tensors[0].shape[d + 1 :]:
            raise ValueError(
                f"cat: tensors[{i}] has shape {t.shape}, which does not match tensors[0]'s "
                f"shape {tensors[0].shape} outside dim {dim}"
            )
    return Cat.apply(*tensors, dim=d)


def stack(tensors, dim=0):
    """Stack equally shaped tensors along a new dimension."""
    tensors = list(tensors)
    _check_tensor_sequence("stack", tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensors[{i}] has shape {t.shape}, expected {tensors[0].shape} like tensors[0]")
    (d,) = _normalize_dims(dim, tensors[0].ndim + 1, "stack")
    return Stack.apply(*tensors, dim=d)
