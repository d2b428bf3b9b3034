"""Module, Parameter and Sequential: the containers a model is built from."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module owns and an optimiser updates (requires_grad by default)."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


class Module:
    """Base class of layers and models.

    Assigning a Parameter or a Module to an attribute registers it; ``named_parameters()``
    lists parameters in the order they were registered, submodules' parameters in place.
    ``register_buffer`` registers state that is not trained (BatchNorm's running statistics):
    it is saved, loaded and moved with the parameters but never handed to an optimiser.
    """

    def __init__(self):
        object.__setattr__(self, "_members", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())  # name -> Tensor (or None), no gradient
        object.__setattr__(self, "_non_persistent", set())  # buffers kept out of state_dict()
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        members = self.__dict__.get("_members")
        if members is None:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            value = self._buffers[name] = _as_buffer(value, f"{type(self).__name__}.{name}")
        elif isinstance(value, (Parameter, Module)):
            self._buffers.pop(name, None)
            self._non_persistent.discard(name)
            members.pop(name, None)
            members[name] = value
        elif name in members:
            del members[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._members.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor, persistent: bool = True):
        """Register state that is not a parameter (PyTorch's ``register_buffer``): a running
        statistic, a counter. A buffer gets no gradient and no optimiser update, but it is an
        attribute (``self.name``), moves with ``to()``, and, when ``persistent``, it is saved in
        ``state_dict()`` and checked by ``load_state_dict`` like a parameter. ``tensor`` is a
        Tensor, an array, or None (a slot with no value, left out of the state dict)."""
        if "_buffers" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before register_buffer")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ and name not in self._buffers:
            raise KeyError(f"register_buffer: attribute '{name}' already exists on {type(self).__name__}")
        self._buffers[name] = _as_buffer(tensor, f"{type(self).__name__}.{name}")
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, self._buffers[name])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- traversal -----------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, member in self._members.items():
            if isinstance(member, Module):
                yield from member.named_modules(f"{prefix}{name}.")

    def children(self):
        return [m for m in self._members.values() if isinstance(m, Module)]

    def named_parameters(self, prefix: str = ""):
        for name, member in self._members.items():
            if isinstance(member, Parameter):
                yield prefix + name, member
            else:
                yield from member.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        """(name, Tensor) for every buffer that holds a value, this module's first, then its
        submodules' (PyTorch's order)."""
        for name, buf in self._buffers.items():
            if buf is not None:
                yield prefix + name, buf
        if recurse:
            for name, member in self._members.items():
                if isinstance(member, Module):
                    yield from member.named_buffers(f"{prefix}{name}.")

    def buffers(self, recurse: bool = True):
        return [b for _, b in self.named_buffers(recurse=recurse)]

    def _state_items(self, prefix: str = ""):
        """(name, Tensor) in PyTorch's state_dict order: a module's own parameters, then its
        persistent buffers, then each submodule's, depth first."""
        for name, member in self._members.items():
            if isinstance(member, Parameter):
                yield prefix + name, member
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                yield prefix + name, buf
        for name, member in self._members.items():
            if isinstance(member, Module):
                yield from member._state_items(f"{prefix}{name}.")

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        """Training mode (``mode=True``) or evaluation mode for this module and every module
        below it: Dropout drops only in training, BatchNorm2d uses batch statistics (and
        updates its running ones) only in training."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # ---- devices and dtypes ----------------------------------------------------------------
    def to(self, device=None, dtype=None):
        """Move / cast every parameter and buffer in place (``model.to("cuda")``,
        ``model.to(np.float64)``). As in PyTorch, ``dtype`` casts only floating-point values:
        an integer buffer (BatchNorm2d's ``num_batches_tracked``, int64) keeps its dtype."""
        if device is not None and not isinstance(device, str):
            device, dtype = None, device
        if device is not None:
            device = backend.check_device(device)
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"to(): parameters must stay floating point, got dtype {np.dtype(dtype)}")
        for p in self.parameters():
            arr = p.data if dtype is None else p.data.astype(dtype, copy=False)
            p.data = arr if device is None else backend.to_device(arr, device)
            p.grad = None
        for b in self.buffers():
            arr = b.data if dtype is None or b.dtype.kind != "f" else b.data.astype(dtype, copy=False)
            b.data = arr if device is None else backend.to_device(arr, device)
        return self

    @property
    def device(self) -> str:
        params = self.parameters()
        return params[0].device if params else "cpu"

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, object]":
        """Parameter and persistent buffer arrays by PyTorch's names, in PyTorch's order
        (the live arrays, not copies)."""
        return OrderedDict((name, t.data) for name, t in self._state_items())

    def load_state_dict(self, state, strict: bool = True):
        """Copy values into the parameters and persistent buffers, checking names and shapes.

        With ``strict`` every parameter and buffer must be present and no extra name may
        appear. Values are cast to each one's dtype (an int64 counter stays int64) and moved
        to its device; they must be finite real numbers (a complex value would lose its
        imaginary part, a nan poisons training).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: state must be a mapping from parameter names to arrays "
                            f"(model.state_dict() or minigrad.load), got {type(state).__name__}")
        source = getattr(state, "source", None)
        where = f" (from {source})" if source else ""
        own = OrderedDict(self._state_items())
        if strict:
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            if missing:
                what = "parameter" if isinstance(own[missing[0]], Parameter) else "buffer"
                raise KeyError(f"load_state_dict{where}: missing {what} '{missing[0]}' ({len(missing)} missing in all)")
            if unexpected:
                raise KeyError(
                    f"load_state_dict{where}: unexpected key '{unexpected[0]}' ({len(unexpected)} unexpected in all)"
                )
        for name, p in own.items():
            if name not in state:
                continue
            value = state[name]
            value = value.data if isinstance(value, Tensor) else value
            if not backend.is_array(value) and not isinstance(value, (np.generic, list, tuple, int, float)):
                raise TypeError(f"load_state_dict{where}: '{name}' is a {type(value).__name__}, expected an array")
            if tuple(np.shape(value)) != p.shape:
                raise ValueError(
                    f"load_state_dict{where}: '{name}' has shape {tuple(np.shape(value))}, the model expects {p.shape}"
                )
            xp = backend.array_module(value) if backend.is_array(value) else np
            kind = xp.asarray(value).dtype.kind
            if kind not in "fiub":
                raise TypeError(f"load_state_dict{where}: '{name}' holds {xp.asarray(value).dtype} values, "
                                f"expected real numbers for a {p.dtype} parameter")
            if kind == "f" and not bool(xp.isfinite(xp.asarray(value)).all()):
                raise ValueError(f"load_state_dict{where}: '{name}' holds non-finite values (nan or inf), "
                                 "expected finite numbers")
        for name, p in own.items():  # all checked: now copy
            if name in state:
                value = state[name]
                value = value.data if isinstance(value, Tensor) else value
                if not backend.is_array(value):
                    value = np.asarray(value)
                p.data = backend.to_device(value.astype(p.dtype, copy=True), p.device)
        return self

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        kids = [(n, m) for n, m in self._members.items() if isinstance(m, Module)]
        for name, m in kids:
            lines.append("  (" + name + "): " + repr(m).replace("\n", "\n  "))
        return lines[0] + (")" if not kids else "\n" + "\n".join(lines[1:]) + "\n)")

    def extra_repr(self) -> str:
        return ""


def _as_buffer(value, what: str):
    """A buffer's value: None, or a Tensor that needs no gradient (arrays are wrapped)."""
    if value is None:
        return None
    if isinstance(value, Parameter):
        raise TypeError(f"{what}: a Parameter cannot be a buffer (assign it as a parameter instead)")
    if isinstance(value, Tensor):
        return value.detach() if value.requires_grad else value
    if backend.is_array(value) or isinstance(value, (np.ndarray, np.generic, int, float)):
        return Tensor._wrap(value if backend.is_array(value) else np.asarray(value))
    raise TypeError(f"{what}: a buffer must be a Tensor, an array or None, got {type(value).__name__}")


class Sequential(Module):
    """Applies its modules one after another."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, expected a Module")
            setattr(self, str(i), m)

    def __getitem__(self, i):
        return self.children()[i]

    def __len__(self):
        return len(self.children())

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x
