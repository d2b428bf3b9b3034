"""The switch for minigrad's accelerated path (``minigrad/accelerated/``), as ``torch.backends.cudnn``.

The ops in ``minigrad.functional`` are written the textbook way: their task blocks are what a
student writes, and with this switch off every op runs them. The accelerated path is a second,
separate implementation of the same ops, for speed only (chunked im2col into scratch buffers,
the stride-1 full-convolution backward, the separable 2x2 max-pool, ...), as PyTorch keeps
oneDNN/cuDNN behind its native kernels. It is used when

* it is present: a student copy and a grading tree do not ship ``minigrad/accelerated/``, so
  there every op runs the task blocks, whatever this switch says;
* ``enabled`` is true: the default, unless the environment sets ``MINIGRAD_ACCELERATED=0``.

    import minigrad.backends
    minigrad.backends.accelerated.enabled = False          # from now on
    with minigrad.backends.accelerated.flags(enabled=False):  # for a block of code
        ...
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os

#: whether ops use the accelerated path where it is available (read at every call)
enabled: bool = os.environ.get("MINIGRAD_ACCELERATED", "1").strip().lower() not in ("0", "false", "no", "off")


#: where this tree's accelerated path would be: beside this package, in the same minigrad
_HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "accelerated")


def is_available() -> bool:
    """Whether this tree has the accelerated path (an instructor's tree does; a student copy
    and a grading tree do not). Only this minigrad's own folder counts: an editable install of
    another tree (whose import hook would find *its* minigrad.accelerated) must not lend its path
    to a student copy run with that environment."""
    try:
        spec = importlib.util.find_spec("minigrad.accelerated")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None and os.path.dirname(os.path.abspath(spec.origin)) == _HERE


def kernels():
    """The ``minigrad.accelerated`` module when it is available and enabled, else None: the
    ops' one question, asked outside every task block."""
    if not enabled or not is_available():
        return None
    return importlib.import_module("minigrad.accelerated")


@contextlib.contextmanager
def flags(enabled: bool | None = None):
    """Set ``enabled`` for a ``with`` block, and restore it afterwards (``None``: leave it)."""
    global_vars = globals()
    before = global_vars["enabled"]
    if enabled is not None:
        global_vars["enabled"] = bool(enabled)
    try:
        yield
    finally:
        global_vars["enabled"] = before
