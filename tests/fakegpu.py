"""fakegpu: a strict stand-in for CuPy, so that every device test runs on a CPU-only machine.

conftest.py registers this module with ``minigrad.backend.register_array_module`` as the
device "fakegpu"; minigrad then sees it exactly as it sees CuPy ("cuda"). Its arrays hold a
NumPy array, and compute with NumPy, but they keep CuPy's device discipline, strictly:

* No implicit conversion to the host: ``np.asarray(a)``, NumPy's functions and ufuncs on
  ``a`` (``np.exp(a)``, ``np.sqrt(a)``), and mixing ``a`` with a NumPy array in an op raise
  TypeError, as with CuPy (which dispatches NumPy's functions to its own; minigrad must not
  rely on that: it takes the array module from the array).
* Every transfer is counted: device -> host (``asnumpy``, ``get``, ``item``, ``float()``,
  ``int()``, ``bool()``, ``tolist``, and indexing with a boolean mask, which in CuPy reads
  the count of selected elements back to the host) and host -> device (``asarray`` of host
  data, Python numbers included; NumPy arrays assigned into or used to index a device array).
  ``counting()`` counts the transfers of a block; ``no_transfers()`` makes any transfer in a
  block raise ``TransferError`` where it happens.
* ``flags`` has no ``writeable`` (CuPy's has ``c_contiguous``, ``f_contiguous``, ``owndata``).
* Reductions and indexing down to one element give 0-d arrays, never NumPy scalars.
* A NumPy scalar operand whose type would change an op's result dtype (``np.float64(x) *
  float32 array``) is refused: CuPy 14 follows NEP 50 and computes in float64, CuPy 13 casts
  by value and stays in float32, so the result depends on the CuPy version. Python numbers,
  and NumPy scalars of the array's own dtype, are accepted.
* ``matmul(..., out=view)`` refuses a non-contiguous ``out``: CuPy computes into a temporary
  and copies it (correct, but a hidden allocation and copy on every call).
* ``take_along_axis`` and ``take`` wrap out-of-range indices around, as CuPy's do, where
  NumPy raises.

What it does not model: asynchronous execution and streams, memory limits, kernel
compilation (NVRTC), cuBLAS's summation order, and the speed of anything. Those need a GPU.
"""
from __future__ import annotations

import builtins
import contextlib
import types

import numpy as np

# --------------------------------------------------------------------------------------
# Transfers: counted, and refused inside no_transfers()
# --------------------------------------------------------------------------------------
class TransferError(RuntimeError):
    """A host <-> device transfer inside a ``no_transfers()`` block."""


class Transfers:
    """Counts of transfers: ``to_device`` (host -> device) and ``to_host`` (device -> host)."""

    def __init__(self):
        self.to_device = 0
        self.to_host = 0
        self.log = []  # what each transfer was, in order

    def __repr__(self):
        return f"Transfers(to_device={self.to_device}, to_host={self.to_host}, log={self.log})"


total = Transfers()  # every transfer since import
_counters: list = []
_forbidden = 0


def _transfer(direction: str, what: str) -> None:
    if _forbidden:
        arrow = "host -> device" if direction == "to_device" else "device -> host"
        raise TransferError(f"fakegpu: {arrow} transfer inside no_transfers(): {what}")
    for c in (total, *_counters):
        setattr(c, direction, getattr(c, direction) + 1)
        c.log.append(f"{direction}: {what}")


@contextlib.contextmanager
def counting():
    """``with counting() as seen: ...`` then ``seen.to_device``, ``seen.to_host``."""
    seen = Transfers()
    _counters.append(seen)
    try:
        yield seen
    finally:
        _counters.remove(seen)


@contextlib.contextmanager
def no_transfers():
    """Any transfer inside the block raises TransferError at the line that makes it."""
    global _forbidden
    _forbidden += 1
    try:
        yield
    finally:
        _forbidden -= 1


# --------------------------------------------------------------------------------------
# Operands: unwrap device arrays, refuse host arrays and dtype-changing NumPy scalars
# --------------------------------------------------------------------------------------
def _refuse_host(what):
    raise TypeError(
        f"fakegpu: {what} got a NumPy array; a host array cannot be mixed with device arrays "
        "(CuPy raises TypeError: Unsupported type <class 'numpy.ndarray'>); move it with "
        "minigrad.backend.to_device first"
    )


def _check_scalars(what, values):
    """Refuse a NumPy scalar that makes the result dtype depend on NEP 50 (see the module doc)."""
    arrays = [v.dtype for v in values if isinstance(v, np.ndarray)]
    if not arrays:
        return
    for v in values:
        if isinstance(v, np.generic) and not isinstance(v, np.bool_):
            if np.result_type(*arrays, v) != np.result_type(*arrays, v.item()):
                raise TypeError(
                    f"fakegpu: {what} mixes a NumPy {v.dtype} scalar ({v!r}) with {', '.join(map(str, arrays))} "
                    f"arrays: CuPy 14 (NEP 50) computes this in {np.result_type(*arrays, v)}, CuPy 13 in "
                    f"{np.result_type(*arrays, v.item())}; pass a Python number or a scalar of the array's dtype"
                )


def _unwrap(x, what):
    """The NumPy array inside a device array, recursively through lists and tuples."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        _refuse_host(what)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, what) for v in x)
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic):  # CuPy never hands out NumPy scalars: 0-d arrays instead
        return ndarray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _binary(name, reflected=False, inplace=False):
    op = getattr(np.ndarray, f"__{name}__")

    def method(self, other):
        if isinstance(other, np.ndarray):
            _refuse_host(f"operator {name}")
        if isinstance(other, ndarray):
            other = other._a
        elif not isinstance(other, (bool, int, float, complex, np.generic)):
            return NotImplemented  # e.g. a minigrad Tensor, which handles the reflected op
        _check_scalars(f"operator {name}", [self._a, other])
        if reflected:
            return _wrap(getattr(np.ndarray, f"__r{name}__")(self._a, other))
        if inplace:
            getattr(np.ndarray, f"__i{name}__")(self._a, other)
            return self
        return _wrap(op(self._a, other))

    return method


class _Flags:
    """CuPy's ndarray.flags: contiguity and ownership, and no ``writeable``."""

    def __init__(self, a):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = bool(a.flags.owndata)

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous, "OWNDATA": self.owndata}[key]


# NumPy functions that only read an array's shape (CuPy dispatches them too)
_SHAPE_FUNCTIONS = {np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a: a.size}


class ndarray:  # noqa: N801  (CuPy's name)
    """A device array: a NumPy array behind CuPy's manners (see the module docstring)."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy ufuncs and NumPy-side binary ops refuse it
    __array_priority__ = 100  # below minigrad's Tensor (1000), so Tensor's reflected ops win

    def __init__(self, a: np.ndarray):
        self._a = a

    # ---- no implicit conversion ----------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "fakegpu: implicit conversion to a NumPy array is not allowed (as in CuPy); "
            "use minigrad.backend.to_numpy(a), fakegpu.asnumpy(a) or a.get()"
        )

    def __array_function__(self, func, types_, args, kwargs):
        if func in _SHAPE_FUNCTIONS and len(args) == 1 and not kwargs:
            return _SHAPE_FUNCTIONS[func](args[0])
        raise TypeError(
            f"fakegpu: numpy.{func.__name__} was called on a device array; call the array module's "
            f"own function (xp = minigrad.backend.array_module(a); xp.{func.__name__}(...))"
        )

    # ---- attributes ------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    dtype = property(lambda self: self._a.dtype)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    T = property(lambda self: ndarray(self._a.T))
    device = property(lambda self: "fakegpu")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):  # no transfer: a repr must never fail inside an error report
        return f"<fakegpu.ndarray shape={self.shape} dtype={self.dtype}>"

    __hash__ = None

    # ---- device -> host ---------------------------------------------------------------------
    def get(self):
        _transfer("to_host", f"get() of shape {self.shape}")
        return self._a.copy()

    def item(self):
        _transfer("to_host", "item()")
        return self._a.item()

    def tolist(self):
        _transfer("to_host", "tolist()")
        return self._a.tolist()

    def __float__(self):
        _transfer("to_host", "float()")
        return float(self._a)

    def __int__(self):
        _transfer("to_host", "int()")
        return int(self._a)

    def __bool__(self):
        _transfer("to_host", "bool() (e.g. an if on a device value)")
        return bool(self._a)

    # ---- methods -----------------------------------------------------------------------------
    def astype(self, dtype, copy=True):
        return ndarray(self._a.astype(dtype, copy=copy))

    def copy(self, order="C"):
        return ndarray(self._a.copy(order=order))

    def reshape(self, *shape, order="C"):
        return ndarray(self._a.reshape(*shape, order=order))

    def transpose(self, *axes):
        return ndarray(self._a.transpose(*axes))

    def swapaxes(self, a, b):
        return ndarray(self._a.swapaxes(a, b))

    def ravel(self):
        return ndarray(self._a.ravel())

    def view(self, dtype):
        return ndarray(self._a.view(dtype))

    def fill(self, value):
        _check_scalars("fill", [self._a, value])
        self._a.fill(value)

    def _reduce(name):  # noqa: N805
        def method(self, *args, **kwargs):
            out = kwargs.get("out")
            if out is not None:
                kwargs["out"] = _unwrap(out, name)
            return _wrap(getattr(self._a, name)(*args, **kwargs))

        return method

    sum, max, min, mean, prod, any, all, argmax, argmin, cumsum = map(
        _reduce, ["sum", "max", "min", "mean", "prod", "any", "all", "argmax", "argmin", "cumsum"]
    )

    # ---- indexing ---------------------------------------------------------------------------
    def _index(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        for p in parts:
            if isinstance(p, np.ndarray):  # CuPy copies a host index array to the device
                _transfer("to_device", f"a NumPy index array of shape {p.shape}")
        out = tuple(p._a if isinstance(p, ndarray) else p for p in parts)
        return out if isinstance(index, tuple) else out[0]

    def __getitem__(self, index):
        index = self._index(index)
        parts = index if isinstance(index, tuple) else (index,)
        if builtins.any(isinstance(p, np.ndarray) and p.dtype == np.bool_ for p in parts):
            _transfer("to_host", "indexing with a boolean mask (CuPy reads the mask's count back)")
        return _wrap(self._a[index])

    def __setitem__(self, index, value):
        index = self._index(index)
        if isinstance(value, np.ndarray):  # CuPy copies it over: a host -> device transfer
            _transfer("to_device", f"a NumPy array of shape {value.shape} assigned into a device array")
        elif isinstance(value, ndarray):
            value = value._a
        _check_scalars("item assignment", [self._a, value])
        self._a[index] = value

    # ---- arithmetic ---------------------------------------------------------------------------
    def __neg__(self):
        return _wrap(-self._a)  # a 0-d result is a NumPy scalar: keep it an array

    def __pos__(self):
        return _wrap(+self._a)  # a 0-d result is a NumPy scalar: keep it an array

    def __abs__(self):
        return _wrap(builtins.abs(self._a))  # a 0-d result is a NumPy scalar: keep it an array

    def __invert__(self):
        return _wrap(~self._a)  # a 0-d result is a NumPy scalar: keep it an array


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(ndarray, f"__{_name}__", _binary(_name))
    setattr(ndarray, f"__r{_name}__", _binary(_name, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_name, inplace=True))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_name}__", _binary(_name))


# --------------------------------------------------------------------------------------
# The module's functions: NumPy's, on device arrays only
# --------------------------------------------------------------------------------------
def _function(name, np_function, check_scalars=True):
    def function(*args, **kwargs):
        out = kwargs.get("out")
        args = _unwrap(list(args), f"{name}()")
        kwargs = {k: _unwrap(v, f"{name}({k}=...)") for k, v in kwargs.items()}
        if check_scalars:
            _check_scalars(f"{name}()", [*args, *(v for k, v in kwargs.items() if k != "dtype")])
        result = np_function(*args, **kwargs)
        if isinstance(out, ndarray) and result is out._a:
            return out  # as CuPy: the out= array itself, not another array over its memory
        return _wrap(result)

    function.__name__ = name
    return function


class _Ufunc:
    """A NumPy ufunc on device arrays, with its ``at`` method (``xp.add.at``)."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self._call = _function(ufunc.__name__, ufunc)

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def at(self, a, indices, b=None):
        indices = a._index(indices) if isinstance(a, ndarray) else indices
        args = (_unwrap(a, "at()"), indices) + (() if b is None else (_unwrap(b, "at()"),))
        self._ufunc.at(*args)


_UFUNCS = ("exp", "log", "log1p", "expm1", "sqrt", "tanh", "abs", "absolute", "sign", "maximum", "minimum",
           "add", "subtract", "multiply", "divide", "true_divide", "negative", "power", "square",
           "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
           "logical_or", "logical_not", "isfinite", "isnan", "isinf", "floor", "ceil", "sin", "cos")
for _name in _UFUNCS:
    globals()[_name] = _Ufunc(getattr(np, _name))

_FUNCTIONS = ("where", "clip", "copyto", "broadcast_to", "concatenate", "stack", "pad", "repeat", "tile",
              "transpose", "reshape", "swapaxes", "moveaxis", "expand_dims", "squeeze", "flip", "sum", "mean",
              "max", "min", "amax", "amin", "prod", "argmax", "argmin", "any", "all", "cumsum", "dot",
              "einsum", "outer", "ascontiguousarray", "zeros_like", "ones_like", "empty_like", "full_like",
              "count_nonzero", "exp2", "log2", "sort", "argsort", "diff", "unravel_index")
for _name in _FUNCTIONS:
    globals()[_name] = _function(_name, getattr(np, _name))
for _name in ("empty", "zeros", "ones", "full", "arange", "linspace", "eye"):  # made on the device
    globals()[_name] = _function(_name, getattr(np, _name), check_scalars=False)


def matmul(a, b, out=None):
    if out is not None and not (isinstance(out, ndarray) and out._a.flags.c_contiguous):
        raise ValueError(
            "fakegpu: matmul into a non-contiguous out= (CuPy computes into a contiguous temporary "
            "and copies it over); compute into contiguous memory and copy explicitly"
        )
    return _function("matmul", np.matmul)(a, b, out=out)


def may_share_memory(a, b, max_work=None):
    """As CuPy: whether two device arrays' memory bounds overlap (a Python bool, no transfer)."""
    return bool(np.may_share_memory(_unwrap(a, "may_share_memory()"), _unwrap(b, "may_share_memory()")))


def take_along_axis(a, indices, axis):
    """As CuPy: out-of-range indices wrap around (NumPy raises IndexError)."""
    a_, i_ = _unwrap(a, "take_along_axis()"), _unwrap(indices, "take_along_axis()")
    n = a_.shape[axis] if axis is not None else a_.size
    return _wrap(np.take_along_axis(a_, i_ % builtins.max(n, 1), axis))


def take(a, indices, axis=None):
    """As CuPy: out-of-range indices wrap around (NumPy raises IndexError)."""
    return _wrap(np.take(_unwrap(a, "take()"), _unwrap(indices, "take()"), axis=axis, mode="wrap"))


def nonzero(a):
    _transfer("to_host", "nonzero() (the count of nonzero elements)")
    return _wrap(np.nonzero(_unwrap(a, "nonzero()")))


# ---- host <-> device -----------------------------------------------------------------------
def asarray(a, dtype=None):
    """A device array: ``a`` itself if it already is one, else a host -> device copy."""
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype, copy=False)
    _transfer("to_device", f"asarray of a {type(a).__name__} of shape {np.shape(a)}")
    return ndarray(np.array(a, dtype=dtype, copy=True))


def array(a, dtype=None, copy=True):
    if isinstance(a, ndarray):
        return ndarray(np.array(a._a, dtype=dtype, copy=copy))
    return asarray(a, dtype)


def asnumpy(a):
    """A host copy (device -> host); host data is returned as a NumPy array."""
    if isinstance(a, ndarray):
        _transfer("to_host", f"asnumpy of shape {a.shape}")
        return a._a.copy()
    return np.asarray(a)


# ---- random numbers, drawn on the device ----------------------------------------------------
class _Generator:
    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        return _wrap(np.asarray(self._rng.random(size, dtype=dtype)))

    def standard_normal(self, size=None, dtype=np.float64):
        return _wrap(np.asarray(self._rng.standard_normal(size, dtype=dtype)))

    def uniform(self, low=0.0, high=1.0, size=None):
        return _wrap(np.asarray(self._rng.uniform(low, high, size)))

    def integers(self, low, high=None, size=None):
        return _wrap(np.asarray(self._rng.integers(low, high, size)))


class _RandomState:
    """CuPy's RandomState: one generator, reseeded in place by ``seed`` (CuPy: cuRAND's
    setPseudoRandomGeneratorSeed). ``created`` counts constructions, so a test can tell a
    generator that is rebuilt from one that is reseeded."""

    created = 0

    def __init__(self, seed=None):
        type(self).created += 1
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def random_sample(self, size=None, dtype=np.float64):
        return _wrap(np.asarray(self._rng.random(size, dtype=dtype)))


random = types.SimpleNamespace(default_rng=_Generator, RandomState=_RandomState)

# dtypes and constants, as CuPy re-exports them
float16, float32, float64, int8, int32, int64, uint8, intp, bool_ = (
    np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.intp, np.bool_)
inf, nan, pi, newaxis = np.inf, np.nan, np.pi, None
dtype = np.dtype
