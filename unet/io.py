"""Small file helpers: atomic writes for JSON and PNG files, image reading."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it into place."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, data):
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def write_png(path, array):
    from PIL import Image

    array = np.asarray(array)
    atomic_write(path, lambda f: Image.fromarray(array).save(f, format="PNG"))


def save_figure(fig, path):
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))


def read_image(path) -> np.ndarray:
    from PIL import Image

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such image file: '{path}'")
    try:
        with Image.open(path) as im:
            array = np.array(im)
    except Exception as err:
        raise ValueError(f"could not read image file '{path}': {err}") from None
    if array.ndim == 3:
        array = array[..., :3].mean(axis=-1)
    return array
