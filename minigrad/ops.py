"""The basic differentiable ops: elementwise math, matmul, reductions, shape ops.

Each op is a ``Function`` whose ``forward`` and ``backward`` sit side by side. Arrays come
in, arrays go out; ``xp`` (NumPy or CuPy) is always taken from the arrays themselves.
Notation in docstrings: ``g`` is the gradient flowing into the op's output.
"""
from __future__ import annotations

import builtins  # this module defines its own sum, max and pow
import numbers

import numpy as np

from . import backend
from .tensor import Function, Tensor, unbroadcast


def _lift(x):
    """Arrays become (constant) tensors, so the device check sees them; numbers stay numbers."""
    if isinstance(x, Tensor) or isinstance(x, numbers.Number):
        return x
    if backend.is_array(x):
        return Tensor._wrap(x)
    raise TypeError(f"expected a Tensor, an array or a number, got {type(x).__name__}")


def _shape(a):
    return tuple(np.shape(a)) if not backend.is_array(a) else a.shape


def _check_broadcastable(name, a, b):
    sa, sb = _shape(a), _shape(b)
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(f"{name}: shapes {sa} and {sb} cannot be broadcast together") from None


# --------------------------------------------------------------------------------------
# Elementwise binary ops (with broadcasting)
# --------------------------------------------------------------------------------------
class Add(Function):
    """out = a + b.  Backward: da = g, db = g, each summed over broadcast axes."""

    def forward(self, a, b):
        self.shapes = _shape(a), _shape(b)
        return a + b

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])
        # END TASK


class Sub(Function):
    """out = a - b.  Backward: da = g, db = -g (summed over broadcast axes)."""

    def forward(self, a, b):
        self.shapes = _shape(a), _shape(b)
        return a - b

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        db = -unbroadcast(g, self.shapes[1]) if self.needs_input_grad[1] else None
        return unbroadcast(g, self.shapes[0]), db
        # END TASK


class Mul(Function):
    """out = a * b.  Backward: da = g * b, db = g * a (summed over broadcast axes)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        da = unbroadcast(g * self.b, _shape(self.a)) if self.needs_input_grad[0] else None
        db = unbroadcast(g * self.a, _shape(self.b)) if self.needs_input_grad[1] else None
        return da, db
        # END TASK


class Div(Function):
    """out = a / b.  Backward: da = g / b, db = -g * a / b**2 = -g * out / b."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a / b
        return self.out

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        da = unbroadcast(g / self.b, _shape(self.a)) if self.needs_input_grad[0] else None
        db = unbroadcast(-g * self.out / self.b, _shape(self.b)) if self.needs_input_grad[1] else None
        return da, db
        # END TASK


class Pow(Function):
    """out = a ** b.  Backward: da = g * b * a**(b-1), db = g * out * log(a)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        a, b = self.a, self.b
        da = unbroadcast(g * b * a ** (b - 1), _shape(a)) if self.needs_input_grad[0] else None
        db = None
        if self.needs_input_grad[1]:
            xp = backend.array_module(self.out)
            db = unbroadcast(g * self.out * xp.log(a), _shape(b))
        return da, db
        # END TASK


def _binary(fn_cls, name, a, b):
    a, b = _lift(a), _lift(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor")
    if isinstance(a, numbers.Number):  # numbers take the tensor's dtype, like PyTorch
        a = b.data.dtype.type(a) if b.dtype.kind == "f" else a
    if isinstance(b, numbers.Number):
        b = a.data.dtype.type(b) if a.dtype.kind == "f" else b
    _check_broadcastable(name, a.data if isinstance(a, Tensor) else a, b.data if isinstance(b, Tensor) else b)
    return fn_cls.apply(a, b)


def add(a, b):
    return _binary(Add, "add", a, b)


def sub(a, b):
    return _binary(Sub, "sub", a, b)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b):
    return _binary(Div, "div", a, b)


def pow(a, b):
    return _binary(Pow, "pow", a, b)


# --------------------------------------------------------------------------------------
# Elementwise unary ops
# --------------------------------------------------------------------------------------
class Neg(Function):
    """out = -x.  Backward: dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Exp(Function):
    """out = exp(x).  Backward: dx = g * out."""

    def forward(self, x):
        self.out = backend.array_module(x).exp(x)
        return self.out

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        return (g * self.out,)
        # END TASK


class Log(Function):
    """out = log(x).  Backward: dx = g / x."""

    def forward(self, x):
        self.x = x
        return backend.array_module(x).log(x)

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        return (g / self.x,)
        # END TASK


class Sqrt(Function):
    """out = sqrt(x).  Backward: dx = g / (2 out)."""

    def forward(self, x):
        self.out = backend.array_module(x).sqrt(x)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Tanh(Function):
    """out = tanh(x).  Backward: dx = g * (1 - out**2)."""

    def forward(self, x):
        self.out = backend.array_module(x).tanh(x)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


class ReLU(Function):
    """out = max(x, 0).  Backward: dx = g where out > 0, else 0 (0 at x = 0, as PyTorch).

    It saves its output, not x: out > 0 exactly where x > 0, and the next layer (a conv)
    usually keeps the output anyway, so the saved array costs no extra memory. The backward
    never needs x, which is why it may also run in place (``out=x``)."""

    def forward(self, x, out=None):
        xp = backend.array_module(x)
        self.out = xp.maximum(x, 0, out=out)
        return self.out

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        return (g * (self.out > 0),)
        # END TASK


class Sigmoid(Function):
    """out = 1 / (1 + exp(-x)), computed without overflow.  Backward: dx = g * out * (1 - out)."""

    def forward(self, x):
        xp = backend.array_module(x)
        e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


def neg(x):
    return Neg.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def tanh(x):
    return Tanh.apply(x)


def relu(x, inplace: bool = False):
    """max(x, 0). ``inplace=True`` overwrites x's array and returns x itself (PyTorch's
    ``relu(x, inplace=True)``): it saves a fresh array per layer, e.g. right after a conv,
    and is refused where x's old values may still be needed (``Function.apply_inplace``)."""
    return ReLU.apply_inplace(x) if inplace else ReLU.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


# --------------------------------------------------------------------------------------
# Matrix product
# --------------------------------------------------------------------------------------
class MatMul(Function):
    """out = a @ b for a (..., n, k), b (..., k, m) -> (..., n, m), batch axes broadcast.

    Backward: da = g @ b^T, db = a^T @ g, each summed over broadcast batch axes.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        # BEGIN TASK autograd.matmul
        a, b = self.a, self.b
        da = unbroadcast(g @ b.swapaxes(-1, -2), a.shape) if self.needs_input_grad[0] else None
        db = unbroadcast(a.swapaxes(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return da, db
        # END TASK


def matmul(a, b):
    """Matrix product with NumPy's rules; 1-D operands are treated as a row / column."""
    a, b = _lift(a), _lift(b)
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        raise TypeError("matmul: both operands must be tensors or arrays")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = reshape(a, 1, -1)
    if squeeze_b:
        b = reshape(b, -1, 1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: inner dimensions differ: a has shape {a.shape} (k={a.shape[-1]}), "
            f"b has shape {b.shape} (k={b.shape[-2]})"
        )
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch shapes of {a.shape} and {b.shape} cannot be broadcast") from None
    out = MatMul.apply(a, b)
    if squeeze_a:
        out = reshape(out, *batch, *out.shape[-1:]) if not squeeze_b else out
    if squeeze_b:
        out = reshape(out, *out.shape[:-1]) if not squeeze_a else reshape(out, *batch)
    return out


# --------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------
def _normalize_dims(dim, ndim, name):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < builtins.max(ndim, 1):
            raise ValueError(f"{name}: dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dim {dim} names the same dimension twice")
    return tuple(out)


def _keepdim_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


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
    """out = the largest x over ``dims``.

    Backward: the gradient goes to the position(s) of the maximum; on ties it is shared
    equally between them (as ``torch.amax``), so the result is a true subgradient.
    """

    def forward(self, x, dims, keepdim):
        self.x, self.dims = x, dims
        self.out = x.max(axis=dims, keepdims=True)
        return self.out if keepdim else self.out.reshape([n for i, n in enumerate(x.shape) if i not in dims])

    def backward(self, g):
        g = g.reshape(self.out.shape)
        mask = self.x == self.out
        count = mask.sum(axis=self.dims, keepdims=True)
        return (mask * (g / count),)


def sum(x, dim=None, keepdim=False):
    dims = _normalize_dims(dim, x.ndim, "sum")
    return Sum.apply(x, dims=dims, keepdim=keepdim)


def mean(x, dim=None, keepdim=False):
    dims = _normalize_dims(dim, x.ndim, "mean")
    count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
    return mul(Sum.apply(x, dims=dims, keepdim=keepdim), 1.0 / count)


def max(x, dim=None, keepdim=False):
    dims = _normalize_dims(dim, x.ndim, "max")
    if any(x.shape[d] == 0 for d in dims):
        raise ValueError(f"max: cannot reduce over an empty dimension (shape {x.shape})")
    return Max.apply(x, dims=dims, keepdim=keepdim)


# --------------------------------------------------------------------------------------
# Shape ops
# --------------------------------------------------------------------------------------
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
    dims = list(range(x.ndim))
    d0, d1 = _normalize_dims((dim0, dim1), x.ndim, "transpose") if dim0 % x.ndim != dim1 % x.ndim else (0, 0)
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


def _check_same_device_and_dtype(name, tensors):
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: tensors[{i}] is a {type(t).__name__}, expected a Tensor")


def cat(tensors, dim=0):
    """Join tensors along an existing dimension; all other sizes must agree."""
    tensors = list(tensors)
    _check_same_device_and_dtype("cat", tensors)
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
    _check_same_device_and_dtype("stack", tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensors[{i}] has shape {t.shape}, expected {tensors[0].shape} like tensors[0]")
    (d,) = _normalize_dims(dim, tensors[0].ndim + 1, "stack")
    return Stack.apply(*tensors, dim=d)


class Pad(Function):
    """out = x with constant borders.  Backward: the interior slice of g."""

    def forward(self, x, widths, value):
        xp = backend.array_module(x)
        self.interior = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return xp.pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return (g[self.interior],)


def pad(x, pad, value=0.0):
    """Constant padding, PyTorch's convention: ``pad = (left, right, top, bottom, ...)``
    pads the last dimension by (left, right), the one before by (top, bottom), and so on."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of widths, at most 2 per dimension of {x.shape}, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: widths must be non-negative, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, widths=tuple(widths), value=value)
