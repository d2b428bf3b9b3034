"""Segmentation metrics: pixel error, foreground IoU, Dice, and object-level F1."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def _check(pred, truth):
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"metrics: prediction has shape {pred.shape}, truth has shape {truth.shape}")
    return pred, truth


def pixel_error(pred, truth) -> float:
    """Fraction of pixels whose foreground/background call is wrong."""
    pred, truth = _check(pred, truth)
    return float(np.mean((pred > 0) != (truth > 0)))


def iou(pred, truth) -> float:
    """Foreground intersection over union (1.0 when both are empty)."""
    pred, truth = _check(pred, truth)
    p, t = pred > 0, truth > 0
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def dice(pred, truth) -> float:
    pred, truth = _check(pred, truth)
    p, t = pred > 0, truth > 0
    total = p.sum() + t.sum()
    return float(2 * np.logical_and(p, t).sum() / total) if total else 1.0


def label_objects(mask) -> np.ndarray:
    """Connected components of a foreground mask (4-connectivity, so a one-pixel
    diagonal contact does not merge two nuclei)."""
    labels, _ = ndimage.label(np.asarray(mask) > 0)
    return labels


def object_f1(pred_instances, true_instances, threshold: float = 0.5) -> dict:
    """Match predicted and true objects by IoU > threshold (unique for threshold >= 0.5);
    returns precision, recall, f1 and the counts."""
    pred, truth = _check(pred_instances, true_instances)
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    joint = np.bincount(p_inv.ravel() * len(t_ids) + t_inv.ravel(), minlength=len(p_ids) * len(t_ids))
    joint = joint.reshape(len(p_ids), len(t_ids)).astype(np.float64)
    inter = joint[p_ids > 0][:, t_ids > 0]
    p_area, t_area = joint.sum(1)[p_ids > 0], joint.sum(0)[t_ids > 0]
    union = p_area[:, None] + t_area[None, :] - inter
    ious = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    tp = int((ious > threshold).any(axis=1).sum())
    n_pred, n_true = len(p_area), len(t_area)
    fp, fn = n_pred - tp, n_true - tp
    f1 = 2 * tp / (2 * tp + fp + fn) if (n_pred + n_true) else 1.0
    return dict(f1=f1, precision=tp / n_pred if n_pred else 1.0, recall=tp / n_true if n_true else 1.0,
                tp=tp, fp=fp, fn=fn)


def evaluate(pred_mask, true_instances) -> dict:
    """All metrics for a predicted foreground mask against instance labels."""
    truth = np.asarray(true_instances)
    pred_mask = np.asarray(pred_mask) > 0
    return dict(
        pixel_error=pixel_error(pred_mask, truth),
        iou=iou(pred_mask, truth),
        dice=dice(pred_mask, truth),
        object_f1=object_f1(label_objects(pred_mask), truth)["f1"],
    )
