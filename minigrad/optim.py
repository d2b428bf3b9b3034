"""Optimisers: SGD (with momentum / Nesterov) and Adam, with the same update formulas as
PyTorch, and state dicts so an interrupted training run resumes exactly."""
from __future__ import annotations

import math
import numbers

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


class Optimizer:
    """Holds the parameters, their per-parameter state arrays and the hyper-parameters."""

    hyper: tuple = ("lr",)
    slots: tuple = ()  # names of per-parameter state arrays, e.g. ("momentum_buffer",)

    def __init__(self, params, **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: params[{i}] is not a tensor that requires grad")
        if hyper.get("lr", 0) < 0:
            raise ValueError(f"{type(self).__name__}: lr must be non-negative, got {hyper['lr']}")
        for name, value in hyper.items():
            setattr(self, name, value)
        self.step_count = 0
        self.state = {slot: [None] * len(self.params) for slot in self.slots}

    def __setattr__(self, name, value):
        # Hyper-parameters are kept as Python numbers: a NumPy float64 (np.cos of a schedule,
        # a value read back from a checkpoint) would make a float32 update compute in float64
        # under NEP 50 (NumPy 2, CuPy 14) but not under CuPy 13's value-based casting.
        if name in self.hyper:
            value = _python_number(value)
        object.__setattr__(self, name, value)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.step_count += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p)

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
        source = getattr(state, "source", None)
        where = f" (from {source})" if source else ""
        for name in self.hyper + ("step_count",):
            if name not in state:
                raise KeyError(f"{type(self).__name__}.load_state_dict{where}: missing key '{name}'")
        for key in state:
            slot, _, index = key.rpartition(".")
            if slot in self.slots:
                i = int(index)
                if i >= len(self.params) or tuple(np.shape(state[key])) != self.params[i].shape:
                    expected = self.params[i].shape if i < len(self.params) else "no such parameter"
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict{where}: '{key}' has shape "
                        f"{tuple(np.shape(state[key]))}, expected {expected}"
                    )
        for name in self.hyper:
            value = state[name]
            setattr(self, name, tuple(value) if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) else type(getattr(self, name))(value))
        self.step_count = int(state["step_count"])
        self.state = {slot: [None] * len(self.params) for slot in self.slots}
        for key, value in state.items():
            slot, _, index = key.rpartition(".")
            if slot in self.slots:
                p = self.params[int(index)]
                self.state[slot][int(index)] = backend.to_device(np.asarray(value) if not backend.is_array(value) else value, p.device).astype(p.dtype, copy=True)
        return self


class SGD(Optimizer):
    """p <- p - lr * d, where with g = grad + weight_decay * p:
    no momentum: d = g;  momentum: b <- momentum * b + g (b = g at the first step),
    d = b, or d = g + momentum * b with Nesterov."""

    hyper = ("lr", "momentum", "weight_decay", "nesterov")
    slots = ("momentum_buffer",)

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be non-negative, got {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        super().__init__(params, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay), nesterov=bool(nesterov))

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
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: eps and weight_decay must be non-negative, got {eps}, {weight_decay}")
        super().__init__(params, lr=float(lr), betas=(float(b1), float(b2)), eps=float(eps), weight_decay=float(weight_decay))

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
