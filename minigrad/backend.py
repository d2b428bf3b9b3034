"""The only module that knows NumPy from CuPy.

Everything else in minigrad asks this module for "the array module of this array"
(``xp = array_module(a)``) and then writes ``xp.zeros(...)``, ``xp.matmul(...)`` and so on,
so the same line of code runs on the CPU (NumPy) and on a GPU (CuPy).

Devices are named: ``"cpu"`` holds NumPy arrays, ``"cuda"`` CuPy arrays (when CuPy is
installed and a GPU can compile and run a kernel). ``register_array_module`` makes any other
array module with CuPy's interface a device too: the test suite registers a strict CuPy
stand-in that way, so every device test runs on a machine without a GPU, and minigrad
treats its arrays exactly as it treats CuPy's.
"""
from __future__ import annotations

import os

import numpy as np

try:  # CuPy is optional: ``pip install minigrad-unet[gpu]``
    import cupy as _cupy

    _cupy_import_error = None
except Exception as _err:  # ImportError, or a CuPy that cannot find its CUDA libraries
    _cupy = None
    _cupy_import_error = ("CuPy is not installed (pip install minigrad-unet[gpu])"
                          if isinstance(_err, ModuleNotFoundError) and _err.name == "cupy" else
                          f"CuPy failed to import: {type(_err).__name__}: {str(_err).splitlines()[0] if str(_err) else ''}")
    del _err

DEFAULT_DTYPE = np.float32

# --------------------------------------------------------------------------------------
# Devices: a name for each array module
# --------------------------------------------------------------------------------------
_modules: dict = {"cpu": np}  # device name -> array module
_device_of_type: dict = {np.ndarray: "cpu"}  # array type -> device name
_available: dict = {"cpu": lambda: True}  # device name -> a function telling whether it can run now
_free_memory: dict = {}  # device name -> a function giving its free memory in bytes
_array_types: tuple = (np.ndarray,)

#: Required of a registered array module, besides NumPy's functions under their NumPy names.
MODULE_INTERFACE = ("ndarray", "asarray", "asnumpy", "random")


def register_array_module(name: str, xp, *, available=None, free_memory=None) -> None:
    """Make the arrays of the module ``xp`` a device called ``name`` (CuPy is ``"cuda"``).

    ``xp`` needs CuPy's interface: ``xp.ndarray`` (the type of its arrays), ``xp.asarray(host)``
    (a host -> device copy), ``xp.asnumpy(a)`` (a device -> host copy), ``xp.random.RandomState``
    (a generator that ``.seed(n)`` reseeds in place), ``xp.may_share_memory`` (for version
    counters; without it views of a tensor get counters of their own) and the NumPy functions
    minigrad calls, under NumPy's names. ``available()`` says whether
    the device can run now (default: always); ``free_memory()`` gives its free bytes, which size
    the convolution's column chunks (default: 1 GiB). Registering the same module again is a no-op.
    """
    if not isinstance(name, str) or not name.isidentifier() or name == "cpu":
        raise ValueError(f"register_array_module: name must be an identifier other than 'cpu', got {name!r}")
    missing = [attr for attr in MODULE_INTERFACE if not hasattr(xp, attr)]
    if missing:
        raise TypeError(
            f"register_array_module: module {getattr(xp, '__name__', xp)!r} lacks {', '.join(missing)} "
            f"(an array module needs {', '.join(MODULE_INTERFACE)})"
        )
    if name in _modules and _modules[name] is not xp:
        raise ValueError(f"register_array_module: device {name!r} is already the module {_modules[name].__name__!r}")
    global _array_types
    _modules[name] = xp
    _device_of_type[xp.ndarray] = name
    _available[name] = available or (lambda: True)
    _free_memory[name] = free_memory or (lambda: 2**30)
    _array_types = tuple(_device_of_type)


def devices() -> tuple:
    """The device names minigrad knows ("cuda" even where CuPy is missing: asking for it then
    explains what is missing)."""
    return tuple(dict.fromkeys(("cpu", "cuda", *_modules)))


def cupy_module():
    """CuPy, or ``None`` when it is not installed."""
    return _cupy


_gpu_ok = None  # the probe's answer, found once per process
_gpu_reason = None  # why the probe failed (one line), or None


def gpu_available() -> bool:
    """True when CuPy is installed, a CUDA device answers, a kernel compiled for it runs, and
    cuBLAS multiplies two small matrices correctly.

    Counting devices is not enough: CuPy compiles its kernels at run time with NVRTC, and a
    machine whose driver works but whose NVRTC is missing or too old would crash at the first
    op; a missing cuBLAS would crash at the first convolution. So this compiles and runs one
    tiny kernel and one small matrix product (once per process) and checks their results.
    ``gpu_unavailable_reason()`` says what failed.
    """
    global _gpu_ok
    if _gpu_ok is None:
        _gpu_ok = _probe_gpu()
    return _gpu_ok


def gpu_unavailable_reason() -> str | None:
    """Why ``gpu_available()`` is False, in one line (CuPy missing, no device, no NVRTC, no
    cuBLAS, ...), or None when a GPU is usable."""
    if gpu_available():
        return None
    return _gpu_reason or "no usable GPU was found"


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _probe_gpu() -> bool:
    global _gpu_reason
    _gpu_reason = _diagnose_gpu()
    return _gpu_reason is None


def _diagnose_gpu() -> str | None:
    """None when the GPU works; else what failed (no driver, no NVRTC, no cuBLAS, an unsupported
    GPU all mean "no usable GPU", each with its own reason)."""
    if _cupy is None:
        return _cupy_import_error or "CuPy is not installed (pip install minigrad-unet[gpu])"
    try:
        count = _cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        return f"CuPy found no CUDA driver or device ({_first_line(err)})"
    if count < 1:
        return "CuPy found no CUDA device"
    try:
        kernel = _cupy.ElementwiseKernel("float32 x", "float32 y", "y = 2 * x + 1", "minigrad_probe")
        out = _cupy.asnumpy(kernel(_cupy.arange(4, dtype=np.float32)))
    except Exception as err:
        return f"CuPy could not compile and run a kernel (NVRTC, the CUDA runtime compiler): {_first_line(err)}"
    if not (out == np.array([1, 3, 5, 7], np.float32)).all():
        return "a kernel compiled for this GPU computed a wrong result"
    try:  # a small matrix product: cuBLAS
        a = _cupy.asarray(np.arange(4, dtype=np.float32).reshape(2, 2))
        product = _cupy.asnumpy(_cupy.matmul(a, a))
    except Exception as err:
        return f"cuBLAS could not multiply two matrices: {_first_line(err)}"
    if not (product == np.array([[2, 3], [6, 11]], np.float32)).all():
        return "cuBLAS computed a wrong matrix product"
    return None


def _cupy_free_memory() -> int:
    """Free device memory plus what CuPy's memory pool holds unused (it hands that out first)."""
    free, _ = _cupy.cuda.runtime.memGetInfo()
    return int(free) + int(_cupy.get_default_memory_pool().free_bytes())


if _cupy is not None:
    register_array_module("cuda", _cupy, available=gpu_available, free_memory=_cupy_free_memory)


def _cuda_index(device: str, index: str) -> None:
    """Accept "cuda:N" only for the current CUDA device: a CuPy array carries no device name in
    minigrad, so arrays on two GPUs would look alike and mix. Refuse any other N clearly."""
    if not index.isdigit():
        raise ValueError(f"device: expected 'cuda' or 'cuda:N' with N a device number, got {device!r}")
    n, count = int(index), _cupy.cuda.runtime.getDeviceCount()
    if n >= count:
        raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s), numbered 0 to {count - 1}")
    current = _cupy.cuda.runtime.getDevice()
    if n != current:
        raise RuntimeError(
            f"device {device!r}: minigrad runs on one GPU, the current CUDA device (cuda:{current}). "
            f"Make GPU {n} the current one before creating any arrays, with CUDA_VISIBLE_DEVICES={n} "
            f"in the environment or cupy.cuda.Device({n}).use(), then ask for 'cuda'"
        )


def check_device(device) -> str:
    """Normalise a device name; raise a clear error for an unknown or unusable one."""
    name = str(device)
    index = None
    if name.startswith("cuda:"):  # PyTorch's spelling of a device number
        name, index = "cuda", name[len("cuda:"):]
    if name not in devices():
        raise ValueError(f"device: expected one of {devices()} (or 'cuda:N'), got {device!r}")
    if name == "cuda" and not gpu_available():
        raise RuntimeError(
            f"device={device!r} was asked for, but no usable GPU was found: {gpu_unavailable_reason()} "
            "(install CuPy with `pip install minigrad-unet[gpu]` on a machine with a CUDA GPU)"
        )
    if name != "cuda" and not _available[name]():
        raise RuntimeError(f"device={device!r} was asked for, but it is not available now")
    if index is not None:
        _cuda_index(str(device), index)
    return name


def module_of(device: str):
    """The array module of a device name (``numpy`` for "cpu"), after ``check_device``:
    ``module_of(d).zeros(...)`` makes an array on ``d`` directly, with no host -> device copy."""
    return _modules[check_device(device)]


# --------------------------------------------------------------------------------------
# dtype promotion: PyTorch's rules, not NumPy's
# --------------------------------------------------------------------------------------
def _category(dtype) -> int:
    """bool 0 < integer 1 < floating 2 < complex 3."""
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}[np.dtype(dtype).kind]


def _promote(a, b):
    """torch.promote_types for two dtypes (None: absent): within a category NumPy's rule (int32 +
    int64 -> int64, uint8 + int8 -> int16); across categories the higher one's dtype as it is
    (int64 + float32 -> float32, where NumPy gives float64), a complex one widened to hold
    the other's precision (complex64 + float64 -> complex128, as both libraries do)."""
    if a is None or b is None:
        return b if a is None else a
    a, b = np.dtype(a), np.dtype(b)
    if _category(a) == _category(b) or {_category(a), _category(b)} == {2, 3}:
        return np.promote_types(a, b)
    return a if _category(a) > _category(b) else b


def _combine(higher, lower):
    """A higher-priority group's dtype combined with a lower one's (PyTorch's
    combine_categories): the lower group counts only when it is of a higher category."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if _category(higher) >= 2 and _category(higher) >= _category(lower):
        return higher
    if _category(lower) == 3:  # a complex scalar/0-d value with a real tensor
        return np.promote_types(higher, np.complex64) if _category(higher) == 2 else lower
    if _category(higher) == 0 or _category(lower) >= 2:
        return _promote(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """The dtype PyTorch gives a binary op on these operands (arrays, NumPy scalars, Python numbers).

    Three groups, in order of priority: arrays with dimensions, 0-d arrays, and numbers (a
    Python or NumPy scalar, whose own width is ignored: a float is float32, an int int64, a
    complex complex64). A lower group changes the result only when it is of a higher category
    (bool < int < float < complex): float32 array + float64 0-d array or 2.5 -> float32,
    int64 array + 2.5 -> float32, int64 array + float32 array -> float32, bool + bool -> bool.
    NumPy would give float64 in several of these."""
    if len(operands) == 2:  # the common cases, decided without the general rule
        a, b = operands
        if is_array(a) and is_array(b) and a.dtype == b.dtype:
            return a.dtype
        for x, y in ((a, b), (b, a)):
            if is_array(x) and x.dtype.kind == "f" and type(y) in (int, float):
                return x.dtype  # a Python number never upcasts a floating-point tensor
    groups = [None, None, None]
    for x in operands:
        if is_array(x) or isinstance(x, np.ndarray):
            groups[0 if x.ndim else 1] = _promote(groups[0 if x.ndim else 1], x.dtype)
        else:
            kind = np.asarray(x).dtype.kind
            if kind not in "biufc":
                raise TypeError(f"expected an array or a number, got {type(x).__name__}")
            scalar = {"b": np.bool_, "i": np.int64, "u": np.int64, "f": DEFAULT_DTYPE, "c": np.complex64}[kind]
            groups[2] = _promote(groups[2], scalar)
    return np.dtype(_combine(groups[0], _combine(groups[1], groups[2])))


# --------------------------------------------------------------------------------------
# Arrays and where they live
# --------------------------------------------------------------------------------------
def _device_name(a):
    name = _device_of_type.get(type(a))
    if name is None and isinstance(a, _array_types):  # a subclass of some module's array
        name = next(n for t, n in _device_of_type.items() if isinstance(a, t))
    return name


def is_array(obj) -> bool:
    """Whether ``obj`` is an array of a known device (NumPy, CuPy, a registered module)."""
    return isinstance(obj, _array_types)


def array_module(a):
    """The array module (``numpy``, ``cupy``, ...) that owns the array ``a``."""
    return _modules[_device_name(a) or "cpu"]


def device_of(a) -> str:
    """The device of an array: ``"cuda"`` for a CuPy array, ``"cpu"`` for a NumPy array or anything else."""
    return _device_name(a) or "cpu"


def to_device(a, device: str):
    """Move an array to ``device``; returns the array itself when it is already there."""
    device = check_device(device)
    source = device_of(a)
    if device == source:
        return a
    host = a if source == "cpu" else _modules[source].asnumpy(a)  # device -> host
    return host if device == "cpu" else _modules[device].asarray(host)  # host -> device


def to_numpy(a) -> np.ndarray:
    """A host NumPy copy of ``a`` (always a copy, never a view into live data)."""
    source = device_of(a)
    if source != "cpu":
        return _modules[source].asnumpy(a)
    return np.array(a, copy=True)


def may_share_memory(a, b) -> bool:
    """Whether the arrays ``a`` and ``b`` may overlap in memory (a view and its base do), by
    their bounds, not element by element: cheap, and never False for arrays that do share.
    False for non-arrays and for arrays of different devices."""
    if type(a) is np.ndarray and type(b) is np.ndarray:
        return bool(np.may_share_memory(a, b))
    if not (is_array(a) and is_array(b)) or device_of(a) != device_of(b):
        return False
    test = getattr(array_module(a), "may_share_memory", None)
    return bool(test(a, b)) if test is not None else False


def synchronize(device: str = "cuda") -> None:
    """Wait for queued GPU work to finish (for timing); a no-op elsewhere."""
    if device == "cuda" and _cupy is not None:
        _cupy.cuda.get_current_stream().synchronize()


def is_writeable(a) -> bool:
    """Whether writing into ``a`` in place is safe: every element has memory of its own.

    NumPy keeps a flag for this (a broadcast view is read-only). CuPy arrays have no such
    flag and let a write through a broadcast view land in its base, several elements racing
    for one address; so elsewhere it is judged from the strides: a zero stride along an axis
    longer than 1 means elements share memory. (Views that overlap without a zero stride,
    as ``overlapping_windows`` makes, are not detected; those are made read-only.)
    """
    if isinstance(a, np.ndarray):
        return bool(a.flags.writeable)
    if not is_array(a):
        return False
    return all(stride != 0 or n <= 1 for stride, n in zip(a.strides, a.shape))


def owns_memory(a) -> bool:
    """Whether ``a`` has memory of its own (not a view of another array) and may be written."""
    flags = getattr(a, "flags", None)
    if flags is None or not is_array(a):
        return False
    owns = flags.owndata if hasattr(flags, "owndata") else flags["OWNDATA"]
    return bool(owns) and is_writeable(a)


def matmul_writes_strided_out(xp) -> bool:
    """Whether ``xp.matmul(a, b, out=view)`` writes straight into a view whose rows are
    strided (a block of rows of a larger array). NumPy's BLAS call takes the row stride; CuPy
    computes into a contiguous temporary and then copies it, so there a caller should make
    that temporary itself (and keep it), or write into contiguous memory."""
    return xp is np


def overlapping_windows(a, offset: int, shape, strides):
    """A read-only view of the C-contiguous array ``a``'s memory from element ``offset`` on,
    with the given shape and byte strides, windows overlapping (each element may appear in
    several): a band of a matrix product read in place. The caller keeps it inside ``a``."""
    xp = array_module(a)
    shape, strides = tuple(int(n) for n in shape), tuple(int(s) for s in strides)
    if len(shape) != len(strides) or min(shape + strides, default=0) < 0 or offset < 0:
        raise ValueError(f"overlapping_windows: shape and strides must be non-negative and of one length, and offset "
                         f"non-negative, got shape={shape}, strides={strides}, offset={offset}")
    last = offset * a.itemsize + sum((n - 1) * s for n, s in zip(shape, strides)) if min(shape, default=1) else -1
    if not a.flags.c_contiguous or last >= a.size * a.itemsize or any(s % a.itemsize for s in strides):
        raise ValueError(f"overlapping_windows: the windows must lie inside the C-contiguous array of {a.size} "
                         f"elements of {a.itemsize} bytes, in whole elements; got offset={offset}, shape={shape}, "
                         f"strides={strides}, reaching byte {last}")
    view = xp.lib.stride_tricks.as_strided(a.reshape(-1)[offset:], shape=shape, strides=strides)
    if isinstance(view, np.ndarray):
        view.flags.writeable = False
    return view


def host_threads(a) -> int:
    """How many threads may split elementwise work on ``a``'s array module: on the host
    (NumPy, whose ufuncs release the GIL while they compute) the cores this process may use,
    ``MINIGRAD_NUM_THREADS`` if set (as OMP_NUM_THREADS bounds BLAS); on a device 1 (its kernels
    already run in parallel)."""
    if array_module(a) is not np:
        return 1
    wanted = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a whole number >= 1, got {wanted!r}")
        return int(wanted)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


#: On a device, one chunk of convolution columns may take at most this share of free memory.
DEVICE_COLUMN_SHARE = 0.25


def column_budget_bytes(xp):
    """The bytes one chunk of im2col columns may take on ``xp``'s device, or None for NumPy.

    On the CPU, im2col's small cache-sized chunks are fastest (its own constants, tuned by the
    benchmarks). On a GPU each chunk costs a dozen kernel launches, so small chunks would
    turn one convolution into hundreds of tiny launches: there a chunk holds whole samples,
    up to a quarter of the free device memory.
    """
    if xp is np:
        return None
    name = next(n for n, module in _modules.items() if module is xp)
    return int(_free_memory[name]() * DEVICE_COLUMN_SHARE)


# --------------------------------------------------------------------------------------
# Checks that would cost a device -> host synchronisation
# --------------------------------------------------------------------------------------
_sync_checks = False


def set_sync_checks(enabled: bool) -> None:
    """Run, on a GPU too, the input checks that must read device values on the host.

    On the CPU minigrad checks, e.g., that every class label is in range. On a GPU that check
    would wait for the device and copy its answer to the host at every call, so it is off by
    default: there an out-of-range label is not an error (it wraps around, as CuPy's indexing
    does: the loss and its gradient use class label % C). Turn this on while debugging a data
    pipeline.
    """
    global _sync_checks
    if not isinstance(enabled, bool):
        raise TypeError(f"set_sync_checks: enabled must be True or False, got {enabled!r}")
    _sync_checks = enabled


def sync_checks_enabled(device: str) -> bool:
    """Whether checks that read device values should run for arrays on ``device``
    (always on the CPU, where they cost no synchronisation)."""
    return device == "cpu" or _sync_checks


# --------------------------------------------------------------------------------------
# Random numbers: one seeded generator per device, so runs are reproducible.
# --------------------------------------------------------------------------------------
_host_rng = np.random.default_rng(0)
_device_rngs: dict = {}  # device name -> (its generator, the seeding it was last given)
_seed = 0
_seeding = 0  # counts manual_seed calls: a device generator is reseeded when it lags behind


def manual_seed(seed: int) -> None:
    """Seed every random number generator minigrad uses (host and devices)."""
    global _host_rng, _seed, _seeding
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _seeding += 1
    _host_rng = np.random.default_rng(_seed)
    # device generators are reseeded in place at their next draw, never rebuilt: a training loop
    # that seeds every step (to resume exactly) would otherwise set up a new cuRAND generator,
    # its memory and its initialisation kernel, at every step


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
    if device == "cpu":
        return _host_rng.random(shape).astype(dtype, copy=False)
    rng, seeding = _device_rngs.get(device, (None, None))
    if rng is None:
        rng = _modules[device].random.RandomState(_seed)
    elif seeding != _seeding:
        rng.seed(_seed)
    _device_rngs[device] = (rng, _seeding)
    return rng.random_sample(shape, dtype=np.float64).astype(dtype, copy=False)
