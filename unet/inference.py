"""Overlap-tile prediction (paper Fig. 2) for images of any size.

A valid-padding U-Net maps an ``in`` x ``in`` tile to the ``out`` x ``out`` pixels at its
centre. To segment a whole image we mirror-extrapolate its borders by the missing context,
then slide tiles whose output regions tile the image. The network is translation
equivariant only for shifts that are multiples of 2^depth (the pooling grid), so the tile
stride is the largest such multiple <= out: stitched tiles then equal what the network
computes on the whole mirror-padded image at once.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

import minigrad as mg

from .model import UNet


def tile_plan(model: UNet, height: int, width: int, tile: int):
    """(stride, margin, tiles per axis (rows, cols), output tile size) for an input tile size."""
    model.check_input_size(tile, "tile size")
    out = model.output_size(tile)
    stride = (out // 2**model.depth) * 2**model.depth
    if stride == 0:
        raise ValueError(f"predict: tile size {tile} gives outputs ({out} px) smaller than one pooling cell "
                         f"({2**model.depth} px); use a larger tile")
    margin = (tile - out) // 2
    counts = tuple(max(1, math.ceil((n - out) / stride) + 1) for n in (height, width))
    return stride, margin, counts, out


def predict_probabilities(model: UNet, image, tile: int | None = None, batch_size: int = 4,
                          device: str = "cpu", progress=None) -> np.ndarray:
    """Softmax class probabilities (C, H, W) for a 2-D image (H, W) or (C_in, H, W)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] != model.in_channels:
        raise ValueError(f"predict: image must have shape (H, W) or ({model.in_channels}, H, W), got {image.shape}")
    _, h, w = image.shape
    if h == 0 or w == 0:
        raise ValueError(f"predict: the image is empty (shape {image.shape[1:]}); expected at least 1x1 pixels")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
    if tile is None:  # big enough to be efficient, small enough for a laptop's memory
        tile = model.valid_input_size(284)
    stride, margin, (ny, nx), out = tile_plan(model, h, w, tile)
    if model.padding == "same":
        margin = 0
    full_h, full_w = (ny - 1) * stride + out, (nx - 1) * stride + out
    padded = np.pad(image, ((0, 0), (margin, full_h - h + margin), (margin, full_w - w + margin)), mode="symmetric")
    probs = np.zeros((model.num_classes, full_h, full_w), np.float32)
    origins = [(i * stride, j * stride) for i in range(ny) for j in range(nx)]
    was_training = model.training
    model.eval()
    try:
        with mg.no_grad():
            for start in range(0, len(origins), batch_size):
                chunk = origins[start : start + batch_size]
                batch = np.stack([padded[:, y : y + tile, x : x + tile] for y, x in chunk])
                batch = batch.astype(model.parameters()[0].dtype, copy=False)
                logits = model(mg.tensor(batch, device=device))  # one host -> device copy per batch
                p = mg.functional.softmax(logits, dim=1).numpy()  # ...and one device -> host copy
                for (y, x), tile_probs in zip(chunk, p):
                    probs[:, y : y + out, x : x + out] = tile_probs
                if progress is not None:
                    progress.update(len(chunk))
    finally:
        model.train(was_training)
    return probs[:, :h, :w]


def predict_mask(model: UNet, image, **kwargs) -> np.ndarray:
    """The most probable class of every pixel (H, W)."""
    return predict_probabilities(model, image, **kwargs).argmax(axis=0)
