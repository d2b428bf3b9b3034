"""The only module that knows NumPy from CuPy.

Everything else in minigrad asks this module for "the array module of this array"
(``xp = array_module(a)``) and then writes ``xp.zeros(...)``, ``xp.matmul(...)`` and so on,
so the same line of code runs on the CPU (NumPy) and on a GPU (CuPy).

Device names are ``"cpu"`` and ``"cuda"``.
"""
from __future__ import annotations

import numpy as np

try:  # CuPy is optional: ``pip install minigrad-unet[gpu]``
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy that cannot find its CUDA libraries
    _cupy = None

DEVICES = ("cpu", "cuda")
DEFAULT_DTYPE = np.float32


def cupy_module():
    """CuPy, or ``None`` when it is not installed."""
    return _cupy


def gpu_available() -> bool:
    """True when CuPy is installed and at least one CUDA device answers."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def check_device(device) -> str:
    """Normalise a device name; raise a clear error for an unknown or unusable one."""
    name = str(device)
    if name.startswith("cuda:"):  # accept "cuda:0" like PyTorch; one GPU is all we use
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
    if name == "cuda" and not gpu_available():
        raise RuntimeError(
            "device='cuda' was asked for, but no usable GPU was found "
            "(install CuPy with `pip install minigrad-unet[gpu]` on a machine with a CUDA GPU)"
        )
    return name


def is_array(obj) -> bool:
    """Whether ``obj`` is a NumPy or CuPy array."""
    return isinstance(obj, np.ndarray) or (_cupy is not None and isinstance(obj, _cupy.ndarray))


def array_module(a):
    """The array module (``numpy`` or ``cupy``) that owns the array ``a``."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    return np


def device_of(a) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` for anything else."""
    return "cuda" if array_module(a) is not np else "cpu"


def to_device(a, device: str):
    """Move an array to ``device``; returns the array itself when it is already there."""
    device = check_device(device)
    if device == device_of(a):
        return a
    if device == "cuda":
        return _cupy.asarray(a)  # host -> device
    return _cupy.asnumpy(a)  # device -> host


def to_numpy(a) -> np.ndarray:
    """A host NumPy copy of ``a`` (always a copy, never a view into live data)."""
    if device_of(a) == "cuda":
        return _cupy.asnumpy(a)
    return np.array(a, copy=True)


def synchronize(device: str = "cuda") -> None:
    """Wait for queued GPU work to finish (for timing); a no-op on the CPU."""
    if device == "cuda" and _cupy is not None:
        _cupy.cuda.get_current_stream().synchronize()


# --------------------------------------------------------------------------------------
# Random numbers: one seeded generator per device, so runs are reproducible.
# --------------------------------------------------------------------------------------
_host_rng = np.random.default_rng(0)
_device_rng = None
_seed = 0


def manual_seed(seed: int) -> None:
    """Seed every random number generator minigrad uses (host and GPU)."""
    global _host_rng, _device_rng, _seed
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _host_rng = np.random.default_rng(_seed)
    _device_rng = None  # created lazily from the same seed


def host_rng() -> np.random.Generator:
    """The seeded NumPy generator (parameter initialisation draws here, on any device)."""
    return _host_rng


def rng_state() -> dict:
    """The host generator's state, so that a resumed run draws the same numbers."""
    return _host_rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _host_rng.bit_generator.state = state


def random_uniform(shape, dtype, device: str):
    """Uniform [0, 1) numbers made directly on ``device`` (no host-to-device copy on a GPU)."""
    global _device_rng
    if device == "cuda":
        if _device_rng is None:
            _device_rng = _cupy.random.default_rng(_seed)
        return _device_rng.random(shape, dtype=np.float64).astype(dtype, copy=False)
    return _host_rng.random(shape).astype(dtype, copy=False)
