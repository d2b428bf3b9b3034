"""save / load: state dicts as NumPy .npz files, never pickle, written atomically."""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from . import backend

FORMAT_KEY = "__minigrad_format__"
SCALARS_KEY = "__minigrad_scalars__"
FORMAT = "minigrad-state-v1"


class StateDict(dict):
    """A loaded state: a dict that remembers the file it came from (for error messages)."""

    source: str | None = None


def _flatten(state, prefix, flat, scalars):
    for key, value in state.items():
        if not isinstance(key, str) or "/" in key:
            raise ValueError(f"save: keys must be strings without '/', got {key!r}")
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, name + "/", flat, scalars)
        elif backend.is_array(value):
            flat[name] = backend.to_numpy(value)
        elif hasattr(value, "numpy") and callable(value.numpy):  # a Tensor
            flat[name] = value.numpy()
        elif isinstance(value, (bool, int, float, str, np.generic)) or (
            isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value)
        ):
            scalars[name] = value.item() if isinstance(value, np.generic) else value
        else:
            raise TypeError(f"save: value of '{name}' is a {type(value).__name__}; expected an array, number, string or dict")


def atomic_write(path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, flush it to disk, then
    rename it into place: readers see the old file or the new one, never half of one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        # mkstemp makes the file private (0600); give it what open() would: 0666 minus the umask
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(state: dict, path) -> None:
    """Write a (possibly nested) dict of arrays and numbers to ``path`` as .npz.

    The file is written next to its destination under a temporary name and renamed into
    place, so a crash mid-write never leaves a half-written file behind.
    """
    path = os.fspath(path)
    flat, scalars = {}, {}
    _flatten(state, "", flat, scalars)
    flat[FORMAT_KEY] = np.array(FORMAT)
    flat[SCALARS_KEY] = np.array(json.dumps(scalars))
    atomic_write(path, lambda f: np.savez(f, **flat))


def load(path) -> StateDict:
    """Read a file written by ``save``. Arrays come back as NumPy arrays on the host."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: '{path}'")
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"load: '{path}' is not a readable minigrad .npz file (truncated or foreign?): {err}") from None
    if FORMAT_KEY not in flat or str(flat[FORMAT_KEY]) != FORMAT:
        raise ValueError(f"load: '{path}' is not a minigrad state file (no '{FORMAT_KEY}' marker)")
    scalars = json.loads(str(flat.pop(SCALARS_KEY, np.array("{}"))))
    flat.pop(FORMAT_KEY)
    flat.update(scalars)
    root = StateDict()
    root.source = path
    for name, value in flat.items():
        node = root
        *parents, leaf = name.split("/")
        for part in parents:
            if part not in node:
                child = StateDict()
                child.source = path
                node[part] = child
            node = node[part]
        node[leaf] = value
    return root
