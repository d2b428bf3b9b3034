"""Small file helpers: atomic writes for JSON and PNG files, image reading."""
from __future__ import annotations

import json
import os

import numpy as np

from minigrad.serialization import atomic_write


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
