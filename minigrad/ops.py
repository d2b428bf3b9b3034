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
        da = unbroadcast(g, self.shapes[0]) if self.needs_input_grad[0] else None
        db = unbroadcast(g, self.shapes[1]) if self.needs_input_grad[1] else None
        return da, db
        # END TASK


class Sub(Function):
    """out = a - b.  Backward: da = g, db = -g (summed over broadcast axes)."""

    def forward(self, a, b):
        self.shapes = _shape(a), _shape(b)
        return a - b

    def backward(self, g):
        # BEGIN TASK autograd.elementwise
        da = unbroadcast(g, self.shapes[0]) if self.needs_input_grad[0] else None
        db = -unbroadcast(g, self.shapes[1]) if self.needs_input_grad[1] else None
        return da, db
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
        xp = backend.array_module(g)
        a, b = self.a, self.b
        da = unbroadcast(g * b * a ** (b - 1), _shape(a)) if self.needs_input_grad[0] else None
        db = unbroadcast(g * self.out * xp.log(a), _shape(b)) if self.needs_input_grad[1] else None
        return da, db
        # END TASK


def _binary(fn_cls, name, a, b, true_division=False, **options):
    a, b = _lift(a), _lift(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor")
    # PyTorch's type promotion (int64 + float32 is float32; a Python float does not upcast a
    # float32 tensor): both operands are cast to the result's dtype first, so NumPy's own
    # promotion never comes into play and each input's gradient keeps that input's dtype
    # (a tensor's data may be a NumPy scalar, e.g. a full sum's: it counts as a 0-d tensor)
    dtype = backend.result_type(*(np.asarray(x.data) if isinstance(x, Tensor) and not backend.is_array(x.data)
                                  else x.data if isinstance(x, Tensor) else x for x in (a, b)))
    if true_division and dtype.kind in "biu":  # int / int is a float, as in PyTorch
        dtype = np.dtype(backend.DEFAULT_DTYPE)
    a, b = (cast(x, dtype) if isinstance(x, Tensor) else dtype.type(x) for x in (a, b))
    _check_broadcastable(name, a.data if isinstance(a, Tensor) else a, b.data if isinstance(b, Tensor) else b)
    return fn_cls.apply(a, b, **options)


def add(a, b):
    return _binary(Add, "add", a, b)


def sub(a, b):
    if any(isinstance(x, (bool, np.bool_)) or isinstance(x, Tensor) and x.dtype == np.bool_ for x in (a, b)):
        raise TypeError("sub: subtraction with a bool tensor is not supported (as in PyTorch); "
                        "to invert a mask use ~mask or 1 - mask.to(float32)")
    return _binary(Sub, "sub", a, b)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b):
    return _binary(Div, "div", a, b, true_division=True)


class PowZeroSafe(Pow):
    """``Pow`` with PyTorch's gradients at base 0, where the textbook formulas give nan:
    da = 0 where b == 0 (d/da a**0 = 0, also at a = 0), and db = 0 where a == 0 and b >= 0
    (0**b is constant in b there). Without a zero base ``Pow.backward`` (the course's block)
    runs as it is, on the inputs' own shapes, so its unbroadcast matters. With one, the block
    runs on the inputs broadcast to the output's shape (views, no copies), this class fixes the
    entries at base 0, and then sums over the broadcast axes itself."""

    def backward(self, g):
        xp = backend.array_module(g)
        a, b = self.a, self.b
        if not backend.to_numpy(xp.any(xp.asarray(a) == 0)):
            return super().backward(g)
        shapes = _shape(a), _shape(b)
        self.a, self.b = xp.broadcast_to(xp.asarray(a), g.shape), xp.broadcast_to(xp.asarray(b), g.shape)
        try:
            with np.errstate(divide="ignore", invalid="ignore"):  # the entries fixed below
                da, db = super().backward(g)
            if da is not None:
                da = unbroadcast(xp.where(self.b == 0, 0, da), shapes[0])
            if db is not None:
                db = unbroadcast(xp.where((self.a == 0) & (self.b >= 0), 0, db), shapes[1])
        finally:
            self.a, self.b = a, b
        return da, db


def pow(a, b):
    return _binary(PowZeroSafe, "pow", a, b)


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


class Maximum(Function):
    """out = max(a, b) elementwise (``largest=False``: min), nan if either is nan.
    Backward: g goes to the larger input; on ties half to each (as PyTorch)."""

    def forward(self, a, b, largest=True):
        xp = backend.array_module(a if backend.is_array(a) else b)
        self.shapes, self.a, self.b = (_shape(a), _shape(b)), a, b
        self.sign = 1 if largest else -1
        return xp.maximum(a, b) if largest else xp.minimum(a, b)

    def backward(self, g):
        xp = backend.array_module(g)
        wins = xp.where(self.a * self.sign > self.b * self.sign, 1.0, xp.where(self.a == self.b, 0.5, 0.0)).astype(g.dtype)
        da = unbroadcast(g * wins, self.shapes[0]) if self.needs_input_grad[0] else None
        db = unbroadcast(g * (1 - wins), self.shapes[1]) if self.needs_input_grad[1] else None
        return da, db


def maximum(a, b):
    return _binary(Maximum, "maximum", a, b)


def minimum(a, b):
    return _binary(Maximum, "minimum", a, b, largest=False)


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


class Cast(Function):
    """out = x converted to ``dtype``.  Backward: g converted back to x's dtype."""

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


def cast(x, dtype):
    return x if x.dtype == np.dtype(dtype) else Cast.apply(x, dtype=np.dtype(dtype))


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
