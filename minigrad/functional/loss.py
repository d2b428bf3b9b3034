"""Loss functions: cross_entropy (with the U-Net paper's per-pixel weight map),
binary_cross_entropy_with_logits, mse_loss."""
from __future__ import annotations

import numpy as np

from .. import backend, ops
from ..tensor import Function, Tensor

REDUCTIONS = ("mean", "sum", "none")


def _array(x, name, like):
    """Targets and weights are constants: accept a Tensor or an array on the logits' device."""
    arr = x.data if isinstance(x, Tensor) else x
    if not backend.is_array(arr):
        arr = np.asarray(arr)
    if backend.device_of(arr) != backend.device_of(like):
        raise RuntimeError(
            f"{name} is on '{backend.device_of(arr)}' but the input is on '{backend.device_of(like)}'"
        )
    return arr


class CrossEntropy(Function):
    """Softmax cross-entropy over the class axis 1, with optional per-element weights.

    logits (N, C) or (N, C, H, W); target (N) or (N, H, W) holding class indices;
    weight shaped like target (or None = 1).  With p = softmax(logits) along axis 1,
    per element: l = -w * log p[target] (0 where target == ignore_index).
    "mean" is sum(l) / sum(w over non-ignored elements), PyTorch's weighted mean.
    Backward: dlogits = (p - onehot(target)) * w * g   (divided by the same sum for "mean").

    What forward saves for backward:
        self.log_p        (N, C, ...) log-softmax of the logits (p = exp(log_p))
        self.target       (N, ...) integer class of each element (ignored elements hold 0)
        self.w            (N, ...) weight of each element, already 0 where ignored
        self.reduction    "mean", "sum" or "none"
        self.denominator  sum of self.w (only when reduction == "mean")
    g is the gradient of the loss: a scalar for "mean"/"sum", shaped like target for "none".
    Returns (dlogits, None, None): target and weight get no gradient.
    """

    def forward(self, logits, target, weight, ignore_index, reduction):
        xp = backend.array_module(logits)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        w = xp.ones(target.shape, dtype=logits.dtype) if weight is None else weight.astype(logits.dtype, copy=False)
        safe_target = target
        if ignore_index is not None:
            valid = target != ignore_index
            w = w * valid
            safe_target = xp.where(valid, target, 0)
        picked = xp.take_along_axis(log_p, safe_target[:, None].astype(np.int64), axis=1)[:, 0]
        losses = -picked * w
        self.log_p, self.target, self.w, self.reduction = log_p, safe_target, w, reduction
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        self.denominator = w.sum()
        return losses.sum() / self.denominator

    def backward(self, g):
        # BEGIN TASK loss.cross_entropy_backward
        xp = backend.array_module(g)
        classes = xp.arange(self.log_p.shape[1]).reshape((1, -1) + (1,) * (self.log_p.ndim - 2))
        onehot = self.target[:, None] == classes
        scale = self.w if self.reduction != "mean" else self.w / self.denominator
        scale = (scale * g)[:, None]
        return (xp.exp(self.log_p) - onehot) * scale, None, None
        # END TASK


def cross_entropy(logits: Tensor, target, weight=None, ignore_index=None, reduction: str = "mean") -> Tensor:
    """Pixel-wise (or sample-wise) softmax cross-entropy, numerically stable (log-sum-exp).

    ``weight`` is a per-element weight map shaped like ``target`` (the U-Net paper's
    w(x), eq. 1), not PyTorch's per-class vector.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if logits.ndim not in (2, 4):
        raise ValueError(f"cross_entropy: logits must be (N, C) or (N, C, H, W), got shape {logits.shape}")
    t = _array(target, "cross_entropy: target", logits.data)
    expected = (logits.shape[0],) + logits.shape[2:]
    if t.shape != expected:
        raise ValueError(
            f"cross_entropy: target has shape {t.shape}, expected {expected} for logits of shape {logits.shape}"
        )
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {t.dtype}")
    if backend.device_of(t) == "cpu" and t.size:  # on a GPU this check would cost a host sync
        valid = t if ignore_index is None else t[t != ignore_index]
        if valid.size and (valid.min() < 0 or valid.max() >= logits.shape[1]):
            raise ValueError(
                f"cross_entropy: target holds class {int(valid.max()) if valid.max() >= logits.shape[1] else int(valid.min())}, "
                f"expected classes in [0, {logits.shape[1] - 1}]"
            )
    w = None
    if weight is not None:
        w = _array(weight, "cross_entropy: weight", logits.data)
        if w.shape != t.shape:
            raise ValueError(f"cross_entropy: weight has shape {w.shape}, expected the target's shape {t.shape}")
    return CrossEntropy.apply(logits, t, w, ignore_index=ignore_index, reduction=reduction)


class BCEWithLogits(Function):
    """l = w * (max(x, 0) - x*t + log(1 + exp(-|x|))) = -w*(t log s(x) + (1-t) log(1-s(x))).
    Backward: dx = w * (sigmoid(x) - t) * g   (divided by the count for "mean")."""

    def forward(self, x, t, w, reduction):
        xp = backend.array_module(x)
        losses = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        if w is not None:
            losses = losses * w
        self.x, self.t, self.w, self.reduction = x, t, w, reduction
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()

    def backward(self, g):
        xp = backend.array_module(g)
        e = xp.exp(-xp.abs(self.x))
        sig = xp.where(self.x >= 0, 1 / (1 + e), e / (1 + e))
        dx = sig - self.t
        if self.w is not None:
            dx = dx * self.w
        if self.reduction == "mean":
            g = g / self.x.size
        return dx * g, None, None


def binary_cross_entropy_with_logits(x: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"binary_cross_entropy_with_logits: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    t = _array(target, "binary_cross_entropy_with_logits: target", x.data).astype(x.dtype, copy=False)
    if t.shape != x.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target has shape {t.shape}, expected {x.shape}")
    w = None
    if weight is not None:
        w = _array(weight, "binary_cross_entropy_with_logits: weight", x.data).astype(x.dtype, copy=False)
        np.broadcast_shapes(w.shape, x.shape)
    return BCEWithLogits.apply(x, t, w, reduction=reduction)


def mse_loss(x: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error, built from the basic ops (so its backward comes for free)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    target_shape = target.shape if hasattr(target, "shape") else np.shape(target)
    if tuple(target_shape) != x.shape:
        raise ValueError(f"mse_loss: target has shape {tuple(target_shape)}, expected {x.shape}")
    diff = ops.sub(x, target if isinstance(target, Tensor) else Tensor._wrap(_array(target, "mse_loss: target", x.data)))
    sq = ops.mul(diff, diff)
    if reduction == "none":
        return sq
    return ops.sum(sq) if reduction == "sum" else ops.mean(sq)
