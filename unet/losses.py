"""Segmentation losses of the U-Net family, as their authors train with them (PyTorch has none
built in): soft Dice, BCE + Dice (UNet++), BCE - log soft Jaccard (TernausNet), and a loss
over a list of deep-supervision heads. All take one-channel logits (N, 1, H, W) (any shape
(N, ...)) and a 0/1 target of the same shape."""
from __future__ import annotations

import minigrad.functional as F
from minigrad import backend, ops
from minigrad.tensor import Function, Tensor

#: UNet++'s smoothing constant (4uiiurz1/pytorch-nested-unet, losses.py: smooth = 1e-5).
DICE_SMOOTH = 1e-5
#: TernausNet's (ternaus/robot-surgery-segmentation, loss.py: eps = 1e-15).
JACCARD_EPS = 1e-15


def _target_like(target, input: Tensor, fn: str):
    """The target as an array of the input's dtype on its device, checked for shape."""
    arr = target.data if isinstance(target, Tensor) else target
    if not backend.is_array(arr):
        raise TypeError(f"{fn}: target must be a Tensor or an array, got {type(target).__name__}")
    if backend.device_of(arr) != input.device:
        raise RuntimeError(f"{fn}: target is on '{backend.device_of(arr)}' but the input is on '{input.device}'")
    if arr.shape != input.shape:
        raise ValueError(f"{fn}: target has shape {arr.shape}, expected the input's shape {input.shape}")
    return arr.astype(input.dtype, copy=False)


class SoftDice(Function):
    """The soft Dice loss of probabilities p against a target t (same shape (N, ...)).

    Groups: each image (per_image=True: sums over all axes but 0) or the whole batch (one group).
    Per group, with s the smoothing constant:
        I = sum(p * t),  S = sum(p) + sum(t),  dice = (2 I + s) / (S + s)
    loss = 1 - mean over the G groups of dice.
    Backward (quotient rule, per element of a group; t gets no gradient):
        dloss/dp = -g / G * (2 t (S + s) - (2 I + s)) / (S + s)^2
    Shapes: p, t (N, ...) -> a scalar; dp like p.

    What forward saves for backward:
        self.t        the target (N, ...)
        self.inter    (G, 1, ..., 1) 2 I + s per group, shaped to broadcast against p
        self.total    (G, 1, ..., 1) S + s per group
        self.groups   G
    """

    def forward(self, p, t, smooth, per_image):
        axes = tuple(range(1, p.ndim)) if per_image else None
        self.t = t
        self.inter = 2 * (p * t).sum(axis=axes, keepdims=True) + smooth
        self.total = p.sum(axis=axes, keepdims=True) + t.sum(axis=axes, keepdims=True) + smooth
        self.groups = p.shape[0] if per_image else 1
        return 1 - (self.inter / self.total).sum() / self.groups

    def backward(self, g):
        # BEGIN TASK loss.dice_backward
        dp = (2 * self.t * self.total - self.inter) / (self.total * self.total)
        return dp * (-g / self.groups), None
        # END TASK


def soft_dice_loss(probs: Tensor, target, smooth: float = DICE_SMOOTH, per_image: bool = True) -> Tensor:
    """1 - mean Dice of probabilities ``probs`` (e.g. ``F.sigmoid(logits)``) against a 0/1 target:
        dice = (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)
    computed per image and averaged (per_image=True, as UNet++'s BCEDiceLoss), or once over
    the whole batch (per_image=False). smooth (default 1e-5, UNet++'s) keeps an empty image
    with an empty prediction at dice 1 (loss 0). Hand-written backward: ``SoftDice``."""
    fn = "soft_dice_loss"
    if not isinstance(probs, Tensor):
        raise TypeError(f"{fn}: probs must be a Tensor, got {type(probs).__name__}")
    if probs.ndim < 1 or probs.size == 0:
        raise ValueError(f"{fn}: probs must be a non-empty batch (N, ...), got shape {probs.shape}")
    if not smooth >= 0:
        raise ValueError(f"{fn}: smooth must be >= 0, got {smooth!r}")
    return SoftDice.apply(probs, _target_like(target, probs, fn), smooth=float(smooth), per_image=bool(per_image))


def bce_dice_loss(input: Tensor, target, smooth: float = DICE_SMOOTH) -> Tensor:
    """UNet++'s training loss (4uiiurz1/pytorch-nested-unet, losses.py, BCEDiceLoss) on logits:
        0.5 * BCE(sigmoid(input), target) + (1 - mean over images of dice(sigmoid(input), target))
    with BCE the mean binary cross-entropy on logits and dice as in ``soft_dice_loss``
    (per image, smooth = 1e-5)."""
    t = _target_like(target, input, "bce_dice_loss")
    bce = F.binary_cross_entropy_with_logits(input, t)
    return ops.add(ops.mul(bce, 0.5), soft_dice_loss(F.sigmoid(input), t, smooth, per_image=True))


def bce_jaccard_loss(input: Tensor, target, jaccard_weight: float = 1.0, bce_weight: float = 1.0,
                     eps: float = JACCARD_EPS) -> Tensor:
    """TernausNet's training loss on logits (Iglovikov & Shvets 2018, arXiv 1801.05746, eq. 3:
    L = H - log J), as its authors' code computes it (ternaus/robot-surgery-segmentation,
    loss.py, LossBinary):
        bce_weight * BCE(input, target) - jaccard_weight * log((I + eps) / (U - I + eps))
    with p = sigmoid(input), t = (target == 1), I = sum(p t), U = sum(p) + sum(t) over the
    whole batch (the soft Jaccard J = I / (U - I)) and eps = 1e-15. The defaults (1, 1) are
    the paper's H - log J; LossBinary(jaccard_weight=w) is bce_weight = 1 - w, jaccard_weight = w.
    (The paper writes J as a per-pixel mean, 1/n sum y p / (y + p - y p); the code, followed
    here, takes the ratio of the batch sums.)"""
    fn = "bce_jaccard_loss"
    t = _target_like(target, input, fn)
    loss = ops.mul(F.binary_cross_entropy_with_logits(input, t), float(bce_weight))
    if not jaccard_weight:
        return loss
    p = F.sigmoid(input)
    t1 = (t == 1).astype(input.dtype)
    inter = ops.sum(ops.mul(p, t1))
    union = ops.add(ops.sum(p), t1.sum())
    jaccard = ops.div(ops.add(inter, eps), ops.add(ops.sub(union, inter), eps))
    return ops.sub(loss, ops.mul(ops.log(jaccard), float(jaccard_weight)))


def deep_supervision_loss(outputs, target, loss_fn=bce_dice_loss, reduction: str = "mean", weights=None) -> Tensor:
    """A loss over a list of deep-supervision heads' outputs, each against the same target:
        "mean": sum_k w_k loss_fn(outputs[k], target) / sum_k w_k   (UNet++'s train.py: the
                plain mean over the heads, w = 1)
        "sum":  sum_k w_k loss_fn(outputs[k], target)
    ``weights`` (one per head; default all 1) lets the coarser heads count less."""
    fn = "deep_supervision_loss"
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else None
    if not outputs or not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError(f"{fn}: outputs must be a non-empty list of Tensors (one per head)")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{fn}: reduction must be 'mean' or 'sum', got {reduction!r}")
    weights = [1.0] * len(outputs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(outputs):
        raise ValueError(f"{fn}: {len(weights)} weights for {len(outputs)} heads")
    total = None
    for w, out in zip(weights, outputs):
        term = ops.mul(loss_fn(out, target), w)
        total = term if total is None else ops.add(total, term)
    return ops.mul(total, 1.0 / sum(weights)) if reduction == "mean" else total
