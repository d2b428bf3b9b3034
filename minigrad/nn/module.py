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
    """

    def __init__(self):
        object.__setattr__(self, "_members", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        members = self.__dict__.get("_members")
        if members is None:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if isinstance(value, (Parameter, Module)):
            members.pop(name, None)
            members[name] = value
        elif name in members:
            del members[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._members.pop(name, None)
        object.__delattr__(self, name)

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

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # ---- devices and dtypes ----------------------------------------------------------------
    def to(self, device=None, dtype=None):
        """Move / cast every parameter in place (``model.to("cuda")``, ``model.to(np.float64)``)."""
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
        return self

    @property
    def device(self) -> str:
        params = self.parameters()
        return params[0].device if params else "cpu"

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, object]":
        """Parameter arrays by name (the live arrays, not copies)."""
        return OrderedDict((name, p.data) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict: bool = True):
        """Copy values into the parameters, checking names and shapes.

        With ``strict`` every parameter must be present and no extra name may appear.
        Values are cast to each parameter's dtype and moved to its device; they must be finite
        real numbers (a complex value would lose its imaginary part, a nan poisons training).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: state must be a mapping from parameter names to arrays "
                            f"(model.state_dict() or minigrad.load), got {type(state).__name__}")
        source = getattr(state, "source", None)
        where = f" (from {source})" if source else ""
        own = OrderedDict(self.named_parameters())
        if strict:
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            if missing:
                raise KeyError(f"load_state_dict{where}: missing parameter '{missing[0]}' ({len(missing)} missing in all)")
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
