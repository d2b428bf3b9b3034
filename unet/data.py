"""Data: the bundled nuclei image, a synthetic cell generator, a user's folder of images,
and the paper's augmentation (elastic deformation, rotation, flips, shifts, grey values).

Every sample is a pair (image float32 in [0, 1], instances int64 with 0 = background).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

import numpy as np
from scipy import ndimage

from .io import read_image
from .weights import class_target, weight_map

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------
def load_nuclei():
    """The bundled 512x512 fluorescence nuclei image (2018 Data Science Bowl, BBBC038,
    CC0) and its instance labels (125 nuclei)."""
    with resources.files("unet").joinpath("data/nuclei.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as npz:
            image, instances = npz["image"], npz["instances"]
    return normalize(image), instances.astype(np.int64)


def normalize(image) -> np.ndarray:
    """Scale an image to [0, 1] by its 1st and 99.8th percentiles (robust to hot pixels)."""
    image = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(image, [1.0, 99.8])
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def synthetic_cells(size: int = 256, n_cells: int = 30, seed: int = 0, radius=(7, 14)):
    """A seeded fluorescence-like image of round cells, some touching, under uneven
    illumination with noise; returns (image, instances)."""
    if size < 16 or n_cells < 1:
        raise ValueError(f"synthetic_cells: expected size >= 16 and n_cells >= 1, got size={size}, n_cells={n_cells}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    instances = np.zeros((size, size), np.int64)
    image = np.zeros((size, size), np.float32)
    centers = []
    for label in range(1, n_cells + 1):
        r = rng.uniform(*radius)
        if centers and rng.random() < 0.4:  # place it against an earlier cell: touching
            cy, cx, cr = centers[rng.integers(len(centers))]
            angle = rng.uniform(0, 2 * np.pi)
            cy, cx = cy + (cr + r) * 0.9 * np.sin(angle), cx + (cr + r) * 0.9 * np.cos(angle)
        else:
            cy, cx = rng.uniform(r, size - r, 2)
        a, b, theta = r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2), rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
        inside = (u * u + v * v <= 1.0) & (instances == 0)
        if inside.sum() < 20:
            continue
        instances[inside] = label
        image[inside] = rng.uniform(0.5, 1.0) * (1.0 - 0.3 * (u[inside] ** 2 + v[inside] ** 2))
        centers.append((cy, cx, r))
    instances = relabel(instances)
    illumination = 0.6 + 0.4 * np.sin(xx / size * np.pi) * np.cos((yy / size - 0.3) * np.pi / 2)
    image = ndimage.gaussian_filter(image * illumination, 1.0)
    image = image + rng.normal(0, 0.04, image.shape) + 0.05
    return normalize(image), instances


def relabel(instances) -> np.ndarray:
    """Labels renumbered 1..n in order of first appearance (0 stays background)."""
    ids, inverse = np.unique(instances, return_inverse=True)
    if ids[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(np.shape(instances)).astype(np.int64)


def load_folder(directory, mask_kind: str = "instance", num_classes: int = 2):
    """A user's data set: ``DIR/images/NAME.(png|tif)`` with ``DIR/masks/NAME.(png|tif)``.

    ``mask_kind="instance"``: masks hold one id per object (0 = background).
    ``mask_kind="class"``: masks hold class indices < num_classes; objects are their
    connected components. Returns a list of (image, instances, name).
    """
    if mask_kind not in ("instance", "class"):
        raise ValueError(f"load_folder: mask_kind must be 'instance' or 'class', got {mask_kind!r}")
    image_dir, mask_dir = os.path.join(directory, "images"), os.path.join(directory, "masks")
    for d in (image_dir, mask_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"data folder '{directory}' needs an images/ and a masks/ folder; '{d}' is missing")
    masks = _by_stem(mask_dir)
    samples = []
    for stem, name in sorted(_by_stem(image_dir).items()):
        image_path = os.path.join(image_dir, name)
        if stem not in masks:
            raise FileNotFoundError(f"image '{image_path}' has no mask named '{stem}.png' or '{stem}.tif' in '{mask_dir}'")
        mask_path = os.path.join(mask_dir, masks[stem])
        image, mask = read_image(image_path), read_image(mask_path, mask=True)
        if mask.ndim != 2 or mask.shape != image.shape[:2]:
            raise ValueError(
                f"mask '{mask_path}' has shape {mask.shape}, but its image '{image_path}' has shape {image.shape[:2]}"
            )
        if mask.dtype.kind not in "iub":
            raise ValueError(f"mask '{mask_path}' must hold integer labels, got dtype {mask.dtype}")
        if mask_kind == "class":
            if mask.max() >= num_classes or mask.min() < 0:
                raise ValueError(
                    f"mask '{mask_path}' holds label {int(mask.max())}, but there are only {num_classes} classes "
                    f"(expected labels 0..{num_classes - 1})"
                )
            instances, _ = ndimage.label(mask > 0)
        else:
            instances = relabel(mask)
        samples.append((normalize(image), instances.astype(np.int64), stem))
    if not samples:
        raise FileNotFoundError(f"data folder '{image_dir}' holds no PNG or TIFF images")
    return samples


def _by_stem(directory) -> dict:
    """{stem: file name} of the PNG/TIFF files in ``directory``; two files with one stem
    (``a.png`` and ``a.tif``) are refused: which one pairs with ``a``'s mask would be a guess."""
    found = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_SUFFIXES:
            continue
        if stem in found:
            raise ValueError(f"'{os.path.join(directory, found[stem])}' and '{os.path.join(directory, name)}' share "
                             f"the name '{stem}'; keep one of them (a name pairs an image with its mask)")
        found[stem] = name
    return found


@dataclass
class Region:
    """A training or evaluation region with its precomputed target and weight map."""

    image: np.ndarray
    instances: np.ndarray
    target: np.ndarray
    weights: np.ndarray


def fast_weight_map():
    """``unet.accelerated.weight_map_fast`` where this tree has the accelerated path, else the
    task's ``weight_map`` (a student copy: the student's own code, whatever the caller asked)."""
    try:
        from .accelerated import weight_map_fast
    except ImportError:
        return weight_map
    return weight_map_fast


def make_region(image, instances, w0=10.0, sigma=5.0, fast: bool = False) -> Region:
    """A region with its target and weight map: the task's ``weight_map``, or with ``fast``
    (the command line) ``weight_map_fast``, equal bit for bit, faster on large images and
    with a progress bar on a terminal."""
    weights = (fast_weight_map() if fast else weight_map)(instances, w0=w0, sigma=sigma)
    return Region(image, instances, class_target(instances), weights)


QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


def split_dataset(name: str, w0=10.0, sigma=5.0, mask_kind="instance", seed: int = 0, min_size: int = 1,
                  fast: bool = False, fold: int = -1):
    """(training regions, held-out regions) for ``nuclei``, ``synthetic`` or a folder.

    A single image (the nuclei image) is split into quadrants (``QUADRANTS``' order):
    three train, quadrant ``fold`` is held out (default -1: the bottom-right one). With
    several images, image ``fold`` (in name order) is held out (default: the last one).
    Cross-validation over the folds 0..3 holds out each quadrant in turn.
    Every region must be at least ``min_size`` pixels on each side (the model's output
    tile: a smaller region would be trained on mostly mirrored copies of itself).
    ``fast``: weight maps by ``weight_map_fast`` (see ``make_region``).
    """
    if name == "nuclei":
        pairs, names = [load_nuclei()], ["nuclei"]
    elif name == "synthetic":
        pairs = [synthetic_cells(256, 30, seed=seed + i) for i in range(3)]
        names = [f"synthetic {i}" for i in range(3)]
    else:
        samples = load_folder(name, mask_kind)
        pairs, names = [(im, ins) for im, ins, _ in samples], [stem for _, _, stem in samples]
    quartered = len(pairs) == 1
    if quartered:
        image, instances = pairs[0]
        h2, w2 = image.shape[0] // 2, image.shape[1] // 2
        quads = [(slice(0, h2), slice(0, w2)), (slice(0, h2), slice(w2, None)),
                 (slice(h2, None), slice(0, w2)), (slice(h2, None), slice(w2, None))]
        pairs = [(image[q], relabel(instances[q])) for q in quads]
    for index, (image, _) in enumerate(pairs):
        if min(image.shape) < min_size:
            where = f"a quadrant of image '{names[0]}'" if quartered else f"image '{names[index]}'"
            raise ValueError(f"data '{name}': {where} is {image.shape[0]}x{image.shape[1]} pixels, smaller than "
                             f"the {min_size}x{min_size} output of a training tile (the minimum size); "
                             f"use larger images or a smaller --tile")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not -len(pairs) <= fold < len(pairs):
        raise ValueError(f"split_dataset: fold must be an integer in [-{len(pairs)}, {len(pairs) - 1}] "
                         f"(one of the {len(pairs)} regions is held out), got {fold!r}")
    held = int(fold) % len(pairs)
    regions = [make_region(im, ins, w0, sigma, fast) for im, ins in pairs]
    return regions[:held] + regions[held + 1:], regions[held:held + 1]


# --------------------------------------------------------------------------------------
# Augmentation and tile sampling
# --------------------------------------------------------------------------------------
def elastic_displacement(shape, rng, grid: int = 3, std: float = 10.0):
    """Smooth random displacement fields (dy, dx): random vectors on a coarse grid x grid
    lattice (std ``std`` pixels), interpolated bicubically to the full ``shape``."""
    coarse = rng.normal(0.0, std, size=(2, grid, grid))
    zoom = (shape[0] / grid, shape[1] / grid)
    # map the coarse lattice onto the tile: sample the cubic spline at fractional positions
    yy = (np.arange(shape[0]) + 0.5) / zoom[0] - 0.5
    xx = (np.arange(shape[1]) + 0.5) / zoom[1] - 0.5
    coords = np.meshgrid(yy, xx, indexing="ij")
    return np.stack([ndimage.map_coordinates(c, coords, order=3, mode="nearest") for c in coarse])


def sample_tile(region: Region, in_size: int, out_size: int, rng, augment: bool = True):
    """One training tile: an ``in_size`` input and the ``out_size`` target/weights at its
    centre. Coordinates outside the region are mirrored (mode="mirror"), so border
    pixels get context like the overlap-tile strategy gives them at prediction time."""
    h, w = region.image.shape
    margin = (in_size - out_size) / 2.0
    # centre of the output window: anywhere in the region (shift augmentation)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    yy, xx = np.mgrid[0:in_size, 0:in_size].astype(np.float64) - (in_size - 1) / 2.0
    if augment:
        angle = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        yy, xx = c * yy - s * xx, s * yy + c * xx
        if rng.random() < 0.5:
            xx = -xx
        dy, dx = elastic_displacement((in_size, in_size), rng)
        yy, xx = yy + dy, xx + dx
    coords = np.stack([yy + cy, xx + cx])
    image = ndimage.map_coordinates(region.image, coords, order=3 if augment else 1, mode="mirror")
    inner = slice(int(margin), int(margin) + out_size)
    out_coords = coords[:, inner, inner]
    target = ndimage.map_coordinates(region.target, out_coords, order=0, mode="mirror")
    weights = ndimage.map_coordinates(region.weights, out_coords, order=1, mode="mirror")
    if augment:  # grey-value variation: contrast, brightness and gamma
        image = np.clip(image, 0.0, 1.0) ** rng.uniform(0.7, 1.4)
        image = image * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
    return image.astype(np.float32), target.astype(np.int64), weights.astype(np.float32)


def sample_batch(regions, batch_size, in_size, out_size, rng, augment=True):
    """A batch of tiles from randomly chosen regions: (N,1,in,in), (N,out,out), (N,out,out)."""
    tiles = [sample_tile(regions[rng.integers(len(regions))], in_size, out_size, rng, augment)
             for _ in range(batch_size)]
    images, targets, weights = zip(*tiles)
    return np.stack(images)[:, None], np.stack(targets), np.stack(weights)
