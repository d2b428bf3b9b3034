"""Parameter initialisation, drawn from minigrad's seeded generator (``minigrad.manual_seed``).

Values are drawn on the host in float64 and then cast and moved, so a model initialised
with the same seed has the same weights on the CPU and on a GPU, in float32 and float64.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend


def _fill(tensor, values: np.ndarray):
    xp_values = backend.to_device(values.astype(tensor.dtype), tensor.device)
    tensor.data[...] = xp_values
    return tensor


def fan_in(tensor) -> int:
    """Inputs feeding one output: dim 1 times the kernel size (PyTorch's convention)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan_in: needs a tensor with at least 2 dimensions, got shape {shape}")
    return int(shape[1] * np.prod(shape[2:], dtype=np.int64))


def kaiming_normal_(tensor, fan_in_override: int | None = None, gain: float = math.sqrt(2.0)):
    """Gaussian with std = gain / sqrt(N), N = fan-in; the default gain gives the U-Net
    paper's (and He et al.'s) std = sqrt(2 / N) for ReLU networks."""
    n = fan_in(tensor) if fan_in_override is None else int(fan_in_override)
    if n <= 0:
        raise ValueError(f"kaiming_normal_: fan-in must be positive, got {n}")
    return _fill(tensor, backend.host_rng().normal(0.0, gain / math.sqrt(n), size=tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return _fill(tensor, backend.host_rng().normal(mean, std, size=tensor.shape))


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    if b < a:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, backend.host_rng().uniform(a, b, size=tensor.shape))


def zeros_(tensor):
    tensor.data[...] = 0
    return tensor
