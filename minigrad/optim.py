"""Optimisers: SGD (with momentum / Nesterov) and Adam, with the same update formulas as
PyTorch, and state dicts so an interrupted training run resumes exactly."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from . import backend
from .tensor import Tensor


def _python_number(value):
    """A NumPy scalar (or a tuple of them) as the Python number it holds; anything else as is."""
    if isinstance(value, tuple):
        return tuple(_python_number(v) for v in value)
    if isinstance(value, np.generic) and isinstance(value, numbers.Number):
        return value.item()
    return value


def _real_number(opt, name, value, low=0.0, high=math.inf, high_open=False):
    """``value`` as a Python float after checking it is a finite real number in [low, high]
    (or [low, high) with ``high_open``): a nan learning rate would silently turn every weight
    into nan, a complex one would drop its imaginary part."""
    value = _python_number(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{opt}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    inside = low <= value and (value < high if high_open else value <= high)
    if not (math.isfinite(value) and inside):
        expected = f"[{low:g}, {high:g}{')' if high_open else ']'}" if math.isfinite(high) else f">= {low:g}"
        raise ValueError(f"{opt}: {name} must be a finite number {expected}, got {value!r}")
    return float(value)


class Optimizer:
    """Holds the parameters, their per-parameter state arrays and the hyper-parameters."""

    hyper: tuple = ("lr",)
    slots: tuple = ()  # names of per-parameter state arrays, e.g. ("momentum_buffer",)

    def __init__(self, params, **hyper):
        opt = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{opt}: params must be an iterable of tensors (e.g. model.parameters()), got one Tensor")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{opt}: got an empty parameter list")
        seen = {}
        for i, p in enumerate(self.params):
            if isinstance(p, Mapping):
                raise TypeError(f"{opt}: params[{i}] is a dict (a parameter group); minigrad's optimisers take one "
                                "list of tensors and one set of hyper-parameters (see docs/pytorch.md)")
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{opt}: params[{i}] is not a tensor that requires grad")
            if id(p) in seen:
                raise ValueError(f"{opt}: params[{i}] is the same tensor as params[{seen[id(p)]}] (shape {p.shape}); "
                                 "a parameter listed twice would be updated twice per step")
            seen[id(p)] = i
        for name, value in hyper.items():
            setattr(self, name, value)
        self.step_count = 0
        self.state = {slot: [None] * len(self.params) for slot in self.slots}

    def _checked(self, name, value):
        """A hyper-parameter checked and normalised; subclasses add their own (betas, nesterov)."""
        return _real_number(type(self).__name__, name, value)

    def __setattr__(self, name, value):
        # Hyper-parameters are checked on every assignment (a schedule's opt.lr = ..., a
        # checkpoint's values) and kept as Python numbers: a NumPy float64 (np.cos of a schedule,
        # a value read back from a checkpoint) would make a float32 update compute in float64
        # under NEP 50 (NumPy 2, CuPy 14) but not under CuPy 13's value-based casting.
        if name in self.hyper:
            value = self._checked(name, value)
        object.__setattr__(self, name, value)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        """One update of every parameter that has a gradient. The gradients are all checked
        first (shape, dtype and device of their parameter), so a bad one changes nothing."""
        opt = type(self).__name__
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if not backend.is_array(g):
                raise TypeError(f"{opt}.step: params[{i}].grad is a {type(g).__name__}, expected an array of "
                                f"shape {p.shape} and dtype {p.dtype} on '{p.device}'")
            problem = (f"shape {tuple(g.shape)}" if tuple(g.shape) != p.shape else
                       f"dtype {g.dtype}" if g.dtype != p.dtype else
                       f"device '{backend.device_of(g)}'" if backend.device_of(g) != p.device else None)
            if problem:
                raise ValueError(f"{opt}.step: params[{i}].grad has {problem}, expected its parameter's shape "
                                 f"{p.shape}, dtype {p.dtype} on '{p.device}' (no broadcasting)")
        self.step_count += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p)
                p._version.bump(f"{opt}.step")  # an in-place change, as PyTorch's optimisers make

    def _update(self, i, p):  # pragma: no cover - documentation only
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Hyper-parameters, step count and per-parameter state (arrays), flat and savable."""
        state = {name: getattr(self, name) for name in self.hyper}
        state["step_count"] = self.step_count
        for slot, arrays in self.state.items():
            for i, arr in enumerate(arrays):
                if arr is not None:
                    state[f"{slot}.{i}"] = arr
        return state

    def load_state_dict(self, state):
        opt = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"{opt}.load_state_dict: state must be a mapping (a dict from state_dict() or "
                            f"minigrad.load), got {type(state).__name__}")
        source = getattr(state, "source", None)
        where = f" (from {source})" if source else ""
        for name in self.hyper + ("step_count",):
            if name not in state:
                raise KeyError(f"{opt}.load_state_dict{where}: missing key '{name}'")
        try:
            hyper = {name: self._checked(name, state[name]) for name in self.hyper}
        except (TypeError, ValueError) as err:
            raise type(err)(f"{opt}.load_state_dict{where}: {err}") from None
        step_count = _python_number(state["step_count"])
        if np.ndim(step_count) == 0 and isinstance(step_count, np.ndarray):
            step_count = step_count.item()
        if isinstance(step_count, bool) or not isinstance(step_count, int) or step_count < 0:
            raise ValueError(f"{opt}.load_state_dict{where}: 'step_count' must be a non-negative integer, "
                             f"got {step_count!r}")
        for key in state:
            slot, _, index = key.rpartition(".")
            if slot in self.slots:
                if not index.isdigit():
                    raise KeyError(f"{opt}.load_state_dict{where}: unexpected key '{key}' (expected '{slot}.<index>')")
                _check_real_values(f"{opt}.load_state_dict{where}", key, state[key])
                i = int(index)
                if i >= len(self.params) or tuple(np.shape(state[key])) != self.params[i].shape:
                    expected = self.params[i].shape if i < len(self.params) else "no such parameter"
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict{where}: '{key}' has shape "
                        f"{tuple(np.shape(state[key]))}, expected {expected}"
                    )
        for name, value in hyper.items():
            setattr(self, name, value)
        self.step_count = step_count
        self.state = {slot: [None] * len(self.params) for slot in self.slots}
        for key, value in state.items():
            slot, _, index = key.rpartition(".")
            if slot in self.slots:
                p = self.params[int(index)]
                self.state[slot][int(index)] = backend.to_device(np.asarray(value) if not backend.is_array(value) else value, p.device).astype(p.dtype, copy=True)
        return self


def _check_real_values(where, key, value):
    """A saved array must hold finite real numbers (not complex, not nan): a float is expected."""
    kind = value.dtype.kind if backend.is_array(value) else np.asarray(value).dtype.kind
    if kind not in "fiu":
        raise TypeError(f"{where}: '{key}' holds {value.dtype if backend.is_array(value) else np.asarray(value).dtype} "
                        "values, expected real floating-point numbers")
    finite = backend.array_module(value).isfinite(value).all() if backend.is_array(value) else np.isfinite(value).all()
    if not bool(finite):
        raise ValueError(f"{where}: '{key}' holds non-finite values (nan or inf), expected finite numbers")


class SGD(Optimizer):
    """p <- p - lr * d, where with g = grad + weight_decay * p:
    no momentum: d = g;  momentum: b <- momentum * b + g (b = g at the first step),
    d = b, or d = g + momentum * b with Nesterov."""

    hyper = ("lr", "momentum", "weight_decay", "nesterov")
    slots = ("momentum_buffer",)

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def _checked(self, name, value):
        if name == "nesterov":
            value = _python_number(value)
            if not isinstance(value, bool):
                raise TypeError(f"SGD: nesterov must be True or False, got {value!r}")
            return value
        return super()._checked(name, value)

    def _update(self, i, p):
        """Update p.data in place from p.grad. The momentum buffer of parameter i lives in
        self.state["momentum_buffer"][i] (None before the first step)."""
        # BEGIN TASK optim.sgd
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            buf = self.state["momentum_buffer"][i]
            if buf is None:
                buf = self.state["momentum_buffer"][i] = g.copy()
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g
        # END TASK


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's formulation: with g = grad + weight_decay * p,
    m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2,
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    hyper = ("lr", "betas", "eps", "weight_decay")
    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _checked(self, name, value):
        if name == "betas":
            if backend.is_array(value) or isinstance(value, (list, tuple)):
                value = tuple(value.tolist() if backend.is_array(value) else value)
            if not isinstance(value, tuple) or len(value) != 2:
                raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {value!r}")
            return tuple(_real_number("Adam", f"betas[{k}]", b, 0.0, 1.0, high_open=True) for k, b in enumerate(value))
        return super()._checked(name, value)

    def _update(self, i, p):
        """Update p.data in place from p.grad. m and v of parameter i live in
        self.state["exp_avg"][i] and self.state["exp_avg_sq"][i] (None before the first
        step); self.step_count is t, already counting this step (1 at the first)."""
        # BEGIN TASK optim.adam
        xp = backend.array_module(p.data)
        b1, b2 = self.betas
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        m, v = self.state["exp_avg"][i], self.state["exp_avg_sq"][i]
        if m is None:
            m = self.state["exp_avg"][i] = xp.zeros_like(p.data)
            v = self.state["exp_avg_sq"][i] = xp.zeros_like(p.data)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        t = self.step_count
        step_size = self.lr / (1 - b1**t)
        denom = xp.sqrt(v) / math.sqrt(1 - b2**t) + self.eps
        p.data -= step_size * (m / denom)
        # END TASK
