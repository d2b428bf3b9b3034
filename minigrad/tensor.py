"""Tensor and the reverse-mode autograd engine.

A ``Tensor`` wraps an array (NumPy on the CPU, CuPy on a GPU). When it is made by an op
from tensors that require gradients, it remembers the op (a ``Function`` object) that made
it; ``backward()`` walks these records in reverse topological order, calling each op's
hand-written ``backward`` to turn the gradient of its output into gradients of its inputs.
"""
from __future__ import annotations

import contextlib
import sys
import types

import numpy as np

from . import backend

# --------------------------------------------------------------------------------------
# Grad mode
# --------------------------------------------------------------------------------------
_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside ``with minigrad.no_grad():`` ops build no graph (inference, optimiser updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


# --------------------------------------------------------------------------------------
# Version counters: in-place changes to values saved for backward are detected
# --------------------------------------------------------------------------------------
class _Version:
    """How many in-place changes a tensor's memory has seen (PyTorch's version counter).

    One counter is shared by every tensor that aliases the same memory through minigrad:
    ``detach()`` and ops whose output is a view of an input (reshape, indexing, ...) hand
    theirs on. Every in-place op bumps it. When an op records itself for backward, it notes
    the version of each tensor whose memory holds an array it saved; its backward checks that
    nothing changed since (``Function._check_saved_versions``)."""

    __slots__ = ("value", "last_op")

    def __init__(self):
        self.value, self.last_op = 0, None

    def bump(self, op_name: str):
        self.value += 1
        self.last_op = op_name


def _saved_arrays(fn):
    """The arrays an op's forward stored on it (directly or in a tuple / list), by name."""
    for name, value in vars(fn).items():
        if name in Function._bookkeeping:
            continue
        if backend.is_array(value):
            yield name, value
        elif isinstance(value, (tuple, list)):
            for k, item in enumerate(value):
                if backend.is_array(item):
                    yield f"{name}[{k}]", item


# --------------------------------------------------------------------------------------
# Function: one op, its forward and its backward side by side
# --------------------------------------------------------------------------------------
class Function:
    """Base class of every differentiable op.

    Subclasses write ``forward(self, *arrays, **options) -> array`` and
    ``backward(self, grad) -> tuple of arrays`` (one per tensor input, ``None`` where an
    input needs no gradient). ``forward`` may store on ``self`` whatever ``backward`` needs.
    ``self.needs_input_grad[i]`` says whether input ``i`` wants a gradient, so ``backward``
    can skip work nobody asked for.
    """

    #: attributes of the engine's own, not what forward saved
    _bookkeeping = frozenset({"parents", "needs_input_grad", "released", "input_meta", "saved_versions"})

    def __init__(self):
        self.parents: tuple = ()
        self.needs_input_grad: tuple = ()
        self.released = False
        self.input_meta: tuple = ()  # (shape, dtype, device) of each tensor input, None for others
        self.saved_versions: tuple = ()  # (name, shape, version counter, value when saved)

    @classmethod
    def apply(cls, *inputs, **options):
        """Run ``forward`` on the inputs' arrays and record the op if a gradient is needed."""
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        if not tensors:
            raise TypeError(f"{cls.__name__}: expected at least one Tensor input")
        device = tensors[0].device
        for t in tensors[1:]:
            if t.device != device:
                raise RuntimeError(
                    f"{cls.__name__}: inputs are on different devices ('{device}' and "
                    f"'{t.device}'); move them with .to(device) first"
                )
        fn = cls()
        fn.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        out = Tensor._wrap(fn.forward(*arrays, **options))
        for t in tensors:  # a view of an input aliases its memory: one version counter for both
            if backend.may_share_memory(out._data, t._data):
                out._version = t._version
                break
        if _grad_enabled and any(fn.needs_input_grad):
            fn.parents = tuple(x._as_parent() if isinstance(x, Tensor) else x for x in inputs)
            fn.input_meta = tuple((x.shape, x.dtype, x.device) if isinstance(x, Tensor) else None for x in inputs)
            fn._note_saved_versions(tensors + [out])
            for t in tensors:
                t._recorded_use = True  # this op may have saved t's array for its backward
            out.requires_grad = True
            out._ctx = fn
        return out

    def _note_saved_versions(self, tensors):
        """Note, for each array forward saved that lives in the memory of one of ``tensors``
        (the inputs and the output), that tensor's version counter and its value now."""
        notes = []
        for name, array in _saved_arrays(self):
            for t in tensors:
                if backend.may_share_memory(array, t._data):
                    notes.append((name, tuple(array.shape), t._version, t._version.value))
                    break
        self.saved_versions = tuple(notes)

    def _check_saved_versions(self):
        """Refuse to run backward on saved values that an in-place op changed since (as
        PyTorch: "one of the variables needed for gradient computation has been modified by
        an inplace operation")."""
        for name, shape, version, value in self.saved_versions:
            if version.value != value:
                raise RuntimeError(
                    f"backward of {type(self).__name__}: the array it saved as '{name}' (shape {shape}) was "
                    f"modified by an in-place operation ({version.last_op}) after it was saved: it is at "
                    f"version {version.value}, expected version {value}. The in-place change went through "
                    "the tensor or an alias of it (detach(), a view); make a copy, or use the out-of-place op"
                )

    def _check_input_grads(self, input_grads):
        """Each gradient backward returns must match its input: one per input (trailing inputs
        that need no gradient may be left out, and extra trailing Nones, e.g. for options, are
        ignored), and each (when not None) an array of the input's shape, dtype and device."""
        name = type(self).__name__
        wanted = [i for i, need in enumerate(self.needs_input_grad) if need]
        extra = input_grads[len(self.parents):]
        if any(g is not None for g in extra) or (wanted and len(input_grads) <= wanted[-1]):
            raise RuntimeError(
                f"backward of {name} returned {len(input_grads)} gradient(s), expected {len(self.parents)} "
                "(one per input, None where an input needs none; trailing non-tensor inputs may be left out)"
            )
        input_grads = input_grads[:len(self.parents)]
        checked = []
        for i, (meta, grad) in enumerate(zip(self.input_meta, input_grads)):
            if grad is None or meta is None or not self.needs_input_grad[i]:
                checked.append(None)
                continue
            shape, dtype, device = meta
            if isinstance(grad, np.generic) and device == "cpu" and shape == ():
                grad = np.asarray(grad)  # NumPy's arithmetic on 0-d arrays gives scalars
            if not backend.is_array(grad):
                raise TypeError(f"backward of {name} returned a {type(grad).__name__} as the gradient of input {i}, "
                                f"expected an array of shape {shape} and dtype {dtype} on '{device}'")
            problem = (f"shape {tuple(grad.shape)}" if tuple(grad.shape) != shape else
                       f"dtype {grad.dtype}" if grad.dtype != dtype else
                       f"device '{backend.device_of(grad)}'" if backend.device_of(grad) != device else None)
            if problem:
                raise RuntimeError(
                    f"backward of {name} returned an invalid gradient for input {i}: got {problem}, expected "
                    f"shape {shape}, dtype {dtype} on '{device}' (the input's)"
                )
            checked.append(grad)
        return checked

    @classmethod
    def apply_inplace(cls, x, **options):
        """Like ``apply`` for a one-input op whose forward writes into ``options["out"]``, here
        x's own array: no new array, and ``x`` itself becomes the result (as PyTorch's ``relu_``).

        Overwriting x is only safe while no recorded op may still need x's old values, so this
        refuses (PyTorch checks the same thing later, with version counters):
          * a leaf that requires grad (its old values are what the gradient is about), and
          * any tensor an op has already used while recording the graph (it may have saved it).
        """
        if _grad_enabled:
            if x.requires_grad and x._ctx is None:
                raise RuntimeError(
                    f"{cls.__name__} in place: x is a leaf that requires grad (shape {x.shape}); "
                    "overwriting it would lose the values its gradient is about. Use the "
                    "out-of-place op, or work under minigrad.no_grad()"
                )
            if x._recorded_use:
                raise RuntimeError(
                    f"{cls.__name__} in place: x (shape {x.shape}) is already an input of a recorded op, "
                    "which may need its values for backward; use the out-of-place op"
                )
        writable = backend.is_array(x._data) and x._data.ndim > 0 and backend.is_writeable(x._data)
        # (a 0-d result may be a NumPy scalar, and a broadcast view shares memory between its
        # elements: those get a new array, bound to x below)
        if writable:  # every alias of x's memory sees this change: ops that saved it will know
            x._version.bump(f"{cls.__name__} in place")
        out = cls.apply(x, out=x._data if writable else None, **options)
        # x takes over the result's identity: its array, and the record of this op, whose
        # parent is the stand-in for x's old self (made by apply via x._as_parent()).
        x._data, x._ctx, x._requires_grad, x._stand_in = out._data, out._ctx, out._requires_grad, None
        return x

    def forward(self, *arrays, **options):  # pragma: no cover - documentation only
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - documentation only
        raise NotImplementedError

    def release(self):
        """Drop what forward saved (called after backward unless the graph is kept)."""
        keep = {"parents", "needs_input_grad", "released"}
        for name in list(vars(self)):
            if name not in keep:
                delattr(self, name)
        self.released = True


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of length 1, so
    its backward adds up the gradient over exactly those axes.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


# --------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------
def _references_of_one_local():
    """What ``sys.getrefcount`` says of an object that one local variable holds (2 in CPython
    up to 3.13: the variable and the call's argument), measured rather than assumed."""
    only_here = object()
    return sys.getrefcount(only_here)


# CPython 3.14 may pass references on the stack without counting them, so a count there no
# longer proves that nothing else holds the array: steal only where the count is exact.
_ONE_LOCAL = (_references_of_one_local()
              if sys.implementation.name == "cpython" and sys.version_info < (3, 14) else None)


def _unshared(g) -> bool:
    """Whether ``backward`` may make the array ``g`` a leaf's ``.grad`` without copying it:
    g owns its memory (not a view, not read-only) and nothing but backward's one local variable
    refers to it. PyTorch's AccumulateGrad steals a gradient on the same condition; copying it
    would cost a full pass over memory (as much as the op that made it). A gradient also given
    to another leaf, the ``grad`` passed to backward, or an array a Function kept are shared:
    those are copied, so no ``.grad`` ever aliases another array."""
    if _ONE_LOCAL is None or not backend.owns_memory(g):
        return False
    return sys.getrefcount(g) - 1 <= _ONE_LOCAL  # minus _unshared's own parameter


def _as_array(data, dtype, device):
    if isinstance(data, Tensor):
        data = data.data
    if backend.is_array(data):
        arr = data if dtype is None else data.astype(dtype, copy=False)
    else:  # Python numbers, lists, NumPy scalars: float32 by default
        host = np.asarray(data)
        if host.dtype.kind not in "biufc":  # None, strings, ragged lists, other objects
            raise TypeError(
                f"tensor: data must be a number, a (nested) list of numbers or an array, got "
                f"{data!r:.80} ({type(data).__name__}, which NumPy reads as dtype {host.dtype})"
            )
        if dtype is None:
            dtype = host.dtype if isinstance(data, np.generic) else backend.DEFAULT_DTYPE
            if host.dtype == np.bool_ and not isinstance(data, np.generic):
                dtype = backend.DEFAULT_DTYPE
        arr = host.astype(dtype, copy=False)
    if device is not None:
        arr = backend.to_device(arr, device)
    return arr


class Tensor:
    """An array with an optional gradient and a record of the op that made it."""

    __array_priority__ = 1000  # so ``ndarray * Tensor`` calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        self._data = _as_array(data, dtype, device)
        self.grad = None
        self._ctx: Function | None = None
        self._stand_in: Tensor | None = None
        self._recorded_use = False  # set once an op records this tensor as an input
        self._version = _Version()
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array):
        t = cls.__new__(cls)
        t._data, t.grad, t._ctx, t._stand_in, t._requires_grad = array, None, None, None, False
        t._recorded_use = False
        t._version = _Version()
        return t

    # ---- basic attributes ------------------------------------------------------------
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, array):
        self._data = _as_array(array, None, None)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool):
        if flag and self._data.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype {self._data.dtype} "
                "(only floating-point values have gradients)"
            )
        self._requires_grad = bool(flag)

    shape = property(lambda self: tuple(self._data.shape))
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: int(self._data.size))
    device = property(lambda self: backend.device_of(self._data))
    is_leaf = property(lambda self: self._ctx is None)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        if self._data is None:
            return f"<graph stand-in for the output of {type(self._ctx).__name__}; its data is not kept>"
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = f", device='{self.device}'" if self.device != "cpu" else ""
        return f"tensor({backend.to_numpy(self._data)!r}{grad}{dev})"

    def numpy(self) -> np.ndarray:
        """A host NumPy copy of the values."""
        return backend.to_numpy(self._data)

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(f"item(): only a one-element tensor has an item, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def to(self, device=None, dtype=None) -> "Tensor":
        """A copy on another device and/or with another dtype (``self`` when nothing changes).

        The result is a new leaf: moving is not recorded in the graph.
        """
        if device is not None and not isinstance(device, str):
            device, dtype = None, device  # t.to(np.float64)
        arr = self._data
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        if device is not None:
            arr = backend.to_device(arr, backend.check_device(device))
        if arr is self._data:
            return self
        return Tensor(arr, requires_grad=self.requires_grad and arr.dtype.kind == "f")

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def detach(self) -> "Tensor":
        """The same values, cut off from the graph (shares memory, and so the version counter:
        an in-place change through the result is seen by ops that saved these values)."""
        t = Tensor._wrap(self._data)
        t._version = self._version
        return t

    def zero_grad(self):
        self.grad = None

    # ---- the engine ------------------------------------------------------------------
    def _as_parent(self) -> "Tensor":
        """What an op's record keeps of this input.

        A leaf is kept itself (backward fills in its ``.grad``). An intermediate result is
        kept as a stand-in without data that knows only how it was made: the graph then does
        not hold every intermediate array alive. ``relu(conv(x))`` frees conv's output as
        soon as relu is done with it, unless some op saved it for its backward (PyTorch
        does the same). One stand-in per tensor, so a tensor used twice is one node.
        """
        if self._ctx is None:
            return self
        if self._stand_in is None:
            node = Tensor._wrap(None)
            node._ctx, node._requires_grad = self._ctx, self._requires_grad
            self._stand_in = node
        return self._stand_in

    def backward(self, grad=None, retain_graph: bool = False):
        """Accumulate d(self)/d(leaf) * grad into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the gradient of some final scalar with respect to ``self`` (same shape);
        it may be omitted only when ``self`` has a single element (then it is 1).
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph")
        xp = backend.array_module(self._data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicit only for a single-element output, but this "
                    f"tensor has shape {self.shape}; pass grad= an array of shape {self.shape}"
                )
            grad = xp.ones_like(self._data)
        else:
            grad = _as_array(grad, self.dtype, self.device)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, expected {self.shape}")

        order = self._topological_order()
        grads = {id(self): grad}
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            fn = node._ctx
            if fn is None:  # a leaf: accumulate across backward calls until zeroed
                if node.grad is None:  # keep g itself when nothing else can reach it, else a copy
                    node.grad = g if _unshared(g) else g.copy()
                else:
                    node.grad = node.grad + g
                continue
            if fn.released:
                raise RuntimeError(
                    "backward(): this graph's saved values were freed by an earlier backward; "
                    "call backward(retain_graph=True) the first time to go through it twice"
                )
            fn._check_saved_versions()
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            input_grads = fn._check_input_grads(input_grads)
            for parent, pg in zip(fn.parents, input_grads):
                if pg is None or not isinstance(parent, Tensor) or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            input_grads = pg = None  # hold no gradient here: ``grads`` alone does (see _unshared)
            if not retain_graph:
                fn.release()

    def _topological_order(self):
        """Nodes ordered so that every tensor comes before the tensors it was made from.

        Returns a list that starts with ``self`` and holds each tensor that requires grad and
        leads to ``self`` exactly once (a tensor's inputs are ``tensor._ctx.parents`` when
        ``tensor._ctx`` is not None; skip parents that are not Tensors or need no grad).
        Iterative depth-first search (an explicit stack, not recursion), so a chain of
        10,000 ops does not hit Python's recursion limit.
        """
        # BEGIN TASK autograd.toposort
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                for parent in node._ctx.parents:
                    if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in visited:
                        stack.append((parent, False))
        order.reverse()  # post-order puts inputs first; backward needs outputs first
        return order
        # END TASK

    # ---- operators (the ops themselves live in ops/) ---------------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, exponent):
        return ops.pow(self, exponent)

    def __rpow__(self, base):
        return ops.pow(base, self)

    def __neg__(self):
        return ops.neg(self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    # comparisons give plain boolean tensors (no gradient)
    def __gt__(self, other):
        return Tensor._wrap(self._data > _data_of(other))

    def __lt__(self, other):
        return Tensor._wrap(self._data < _data_of(other))

    def __ge__(self, other):
        return Tensor._wrap(self._data >= _data_of(other))

    def __le__(self, other):
        return Tensor._wrap(self._data <= _data_of(other))

    __hash__ = object.__hash__

    # ---- methods -----------------------------------------------------------------------
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def tanh(self):
        return ops.tanh(self)

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        return ops.sum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        return ops.mean(self, dim, keepdim, dtype=dtype)

    def max(self, dim=None, keepdim=False):
        """As torch.max: max() the largest value; max(dim) a (values, indices) pair; max(other) elementwise."""
        return ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        """As torch.min: min() the smallest value; min(dim) a (values, indices) pair; min(other) elementwise."""
        return ops.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim=False):
        return ops.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return ops.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return ops.argmin(self, dim, keepdim)

    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim=0):
        return ops.reshape(self, *self.shape[:start_dim], -1)

    def transpose(self, dim0=-2, dim1=-1):
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return ops.permute(self, *dims)

    @property
    def T(self):
        return ops.permute(self, *reversed(range(self.ndim)))

    def matmul(self, other):
        return ops.matmul(self, other)

    def relu(self):
        return ops.relu(self)

    def relu_(self):
        """max(self, 0) written into this tensor's own array (see ``Function.apply_inplace``)."""
        return ops.relu(self, inplace=True)


def _data_of(x):
    return x.data if isinstance(x, Tensor) else x


def tensor(data, requires_grad: bool = False, dtype=None, device: str | None = None) -> Tensor:
    """Make a tensor: a NumPy/CuPy array keeps its dtype; numbers and lists become float32.

    Without ``device`` the data stays where it is: a CuPy array makes a GPU tensor, a NumPy
    array or Python data a CPU tensor. A ``device`` that differs moves (copies) the data."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype,
                  device=None if device is None else backend.check_device(device))


class _TensorModule(types.ModuleType):
    """The type of this module: ``minigrad.tensor`` is the module (``import minigrad.tensor``
    gives Tensor, Function, the engine) and, called, makes a tensor as ``torch.tensor`` does:
    ``minigrad.tensor(data, requires_grad=False, dtype=None, device=None)``. (A function of the
    same name would hide the module behind it.)"""

    def __call__(self, data, requires_grad: bool = False, dtype=None, device: str | None = None) -> Tensor:
        return tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


sys.modules[__name__].__class__ = _TensorModule

from . import ops  # noqa: E402  (ops needs Tensor and Function defined above)
