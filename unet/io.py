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


def read_image(path, mask: bool = False) -> np.ndarray:
    """A 2-D array from a PNG or TIFF file (an image's colour channels averaged to grey).

    A multi-page TIFF is refused (which page is the image would be a guess). With
    ``mask=True`` the file holds labels: an RGB(A) file whose colour channels are equal is
    read as its first channel, one with different channels is refused as an RGB mask."""
    from PIL import Image

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such image file: '{path}'")
    try:
        with Image.open(path) as im:
            pages = getattr(im, "n_frames", 1)
            if pages > 1:
                raise ValueError(f"'{path}' is a multi-page TIFF ({pages} pages); save each page as its own "
                                 f"file (one image or mask per file)")
            array = np.array(im)
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"could not read image file '{path}': {err}") from None
    if array.ndim == 3:
        colour = array[..., :3]
        if mask:
            if not (colour == colour[..., :1]).all():
                raise ValueError(f"mask '{path}' is an RGB image (shape {array.shape}) with different colour "
                                 f"channels; a mask must be single-channel labels (one integer per pixel)")
            return colour[..., 0]
        array = colour.mean(axis=-1)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"'{path}' holds an array of shape {array.shape}; expected a non-empty 2-D image")
    return array
