"""Elementwise ops, with NumPy broadcasting: + - * / ** (the course's task blocks,
``autograd.elementwise``), the unary functions, maximum/minimum and dtype casts.

Each op is a ``Function`` whose ``forward`` and ``backward`` sit side by side. Arrays come
in, arrays go out; ``xp`` (NumPy or CuPy) is always taken from the arrays themselves.
Notation in docstrings: ``g`` is the gradient flowing into the op's output.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..tensor import Function, Tensor, unbroadcast


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


class Cast(Function):
    """out = x converted to ``dtype``.  Backward: g converted back to x's dtype."""

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


def cast(x, dtype):
    return x if x.dtype == np.dtype(dtype) else Cast.apply(x, dtype=np.dtype(dtype))
