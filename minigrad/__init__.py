"""minigrad: a small reverse-mode autograd engine on NumPy (and CuPy on a GPU).

Reading order: backend -> tensor (Tensor, Function, the engine) -> ops -> functional
-> nn -> optim; gradcheck and serialization sit beside them.
"""
import numpy as _np

from . import backend
from .backend import gpu_available, manual_seed
from .ops import amax, amin, argmax, argmin, cat, max, maximum, min, minimum, pad, stack
from .tensor import Function, Tensor, is_grad_enabled, no_grad
from . import tensor  # the module, which called makes a tensor: minigrad.tensor(data, ...)
from . import functional  # noqa: E402
from . import nn  # noqa: E402
from . import optim  # noqa: E402
from . import backends  # noqa: E402
from .gradcheck import GradcheckError, gradcheck
from .serialization import load, save

float32, float64 = _np.float32, _np.float64


def zeros(*shape, dtype=_np.float32, device="cpu", requires_grad=False):
    """Zeros made directly on ``device`` (no host -> device copy)."""
    return Tensor(backend.module_of(device).zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=_np.float32, device="cpu", requires_grad=False):
    """Ones made directly on ``device`` (no host -> device copy)."""
    return Tensor(backend.module_of(device).ones(shape, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=_np.float32, device="cpu", requires_grad=False):
    """Standard normal values from minigrad's seeded generator."""
    values = backend.host_rng().standard_normal(shape).astype(dtype)
    return Tensor(backend.to_device(values, backend.check_device(device)), requires_grad=requires_grad)


__version__ = "0.1.0"
__all__ = [
    "Tensor", "tensor", "Function", "no_grad", "is_grad_enabled", "cat", "stack", "pad",
    "max", "min", "amax", "amin", "argmax", "argmin", "maximum", "minimum",
    "functional", "nn", "optim", "backends", "gradcheck", "GradcheckError", "save", "load",
    "manual_seed", "gpu_available", "zeros", "ones", "randn", "float32", "float64",
]
