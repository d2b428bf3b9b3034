"""The U-Net's accelerated path: the same results as the task code, faster, for the command line.

Like ``minigrad/accelerated/``, this module is never shipped in a student copy or a grading tree
(``ACCELERATED_PATHS`` in ``minigrad_course/config.py``): there ``unet train`` computes weight
maps with the student's own ``weight_map`` (``unet.data.make_region`` falls back to it).

``weight_map_fast``: the paper's weight map (eq. 2), bit for bit ``unet.weights.weight_map``,
with each object's distance transform cut to where the border term is not 0 and a progress bar.
"""
import numpy as np
from scipy import ndimage

from .weights import _weight_map_terms


def border_reach(sigma: float) -> int:
    """The distance beyond which the border term is exactly 0.0 in float64:
    exp(-x) underflows to 0 for x > 745.2, and d1 + d2 >= d2 > reach gives x > 746."""
    return int(np.ceil(sigma * np.sqrt(2 * 746.0))) + 1


def two_nearest_distances_within(instances: np.ndarray, reach: int, progress: bool | None = False):
    """d1 and d2 as ``_two_nearest_distances`` gives them wherever d2 <= ``reach``; elsewhere
    d2 (and perhaps d1) is some value > ``reach`` or inf. Each object's distance transform
    is computed only inside its bounding box grown by ``reach`` (every pixel within
    ``reach`` of the object lies in it, and the whole object does, so the distances there
    are exact): O(objects x (size + 2 reach)^2) instead of O(objects x image)."""
    from tqdm import tqdm

    d1 = np.full(instances.shape, np.inf)
    d2 = np.full(instances.shape, np.inf)
    boxes = ndimage.find_objects(instances)
    disable = None if progress is None else not progress  # tqdm's None: shown on a terminal only
    for label, box in tqdm(list(enumerate(boxes, start=1)), desc="weight map", unit="object", leave=False,
                           disable=disable):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - reach, 0), min(s.stop + reach, n)) for s, n in zip(box, instances.shape))
        d = ndimage.distance_transform_edt(instances[grown] != label)
        near1, near2 = d1[grown], d2[grown]  # views: updated in place
        np.minimum(near2, np.maximum(near1, d), out=near2)
        np.minimum(near1, d, out=near1)
    return d1, d2


def weight_map_fast(instances, w0: float = 10.0, sigma: float = 5.0, class_weights="balanced",
                    progress: bool | None = None) -> np.ndarray:
    """``weight_map``, bit for bit (tested), with per-object distance transforms cut to
    where the border term is not 0 and a progress bar (``progress=None``: on a terminal).
    A 3000x3000 image with 750 nuclei: minutes with ``weight_map``, seconds here."""
    separated, target, wc = _weight_map_terms(instances, w0, sigma, class_weights)
    w = wc[target]
    if w0 > 0:
        d1, d2 = two_nearest_distances_within(separated, border_reach(sigma), progress)
        w = w + np.where(target == 0, w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2)), 0.0)
    return w.astype(np.float32)
