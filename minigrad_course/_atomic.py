"""Atomic file writes for the course tooling (its own copy of the idea, so that ``check`` and
``submit`` never import the engine, whose task blocks may not even compile in a student's copy)."""
from __future__ import annotations

import os
import tempfile


def atomic_write(path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, flush it to disk, then
    rename it into place: readers see the old file or the new one, never half of one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it what open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
