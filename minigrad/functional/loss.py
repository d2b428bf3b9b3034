"""Loss functions: cross_entropy (with the U-Net paper's per-pixel weight map as pixel_weight=),
binary_cross_entropy_with_logits, mse_loss."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend, ops
from ..tensor import Function, Tensor
from ._checks import refuse
from .activation import log_softmax

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
    """Softmax cross-entropy over the class axis 1 for class-index targets, with per-element weights.

    logits (N, C, d1, ..., dk) (k >= 0); target (N, d1, ..., dk) holding class indices;
    w (N, d1, ..., dk) the weight of each element, already folded by ``cross_entropy``:
        w = class_weight[target] * pixel_weight, and 0 where target == ignore_index.
    With p = softmax(logits) along axis 1, per element: l = -w * log p[target].
    "mean" is sum(l) / sum(w), PyTorch's weighted mean (its per-class ``weight`` divides by the
    sum of the targets' class weights; the pixel weight map multiplies into the same w).
    Backward: dlogits = (p - onehot(target)) * w * g   (divided by the same sum for "mean").

    What forward saves for backward:
        self.log_p        (N, C, ...) log-softmax of the logits (p = exp(log_p))
        self.target       (N, ...) integer class of each element (ignored elements hold 0)
        self.w            (N, ...) weight of each element, already 0 where ignored
        self.reduction    "mean", "sum" or "none"
        self.denominator  sum of self.w (only when reduction == "mean"); where that sum is 0
                          (every element ignored) it is saved as +inf, so the gradient is 0
                          (as PyTorch's) while the loss itself is 0/0 = nan (as PyTorch's)
    g is the gradient of the loss: a scalar for "mean"/"sum", shaped like target for "none".
    Returns (dlogits, None, None): target and weight get no gradient.
    """

    def forward(self, logits, target, w, reduction):
        xp = backend.array_module(logits)
        if logits.size:
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        else:
            log_p = logits.copy()
        picked = xp.take_along_axis(log_p, target[:, None].astype(np.int64), axis=1)[:, 0]
        losses = -picked * w
        self.log_p, self.target, self.w, self.reduction = log_p, target, w, reduction
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        total = w.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = losses.sum() / total
        self.denominator = xp.where(total == 0, math.inf, total)
        return out

    def backward(self, g):
        # BEGIN TASK loss.cross_entropy_backward
        xp = backend.array_module(g)
        classes = xp.arange(self.log_p.shape[1]).reshape((1, -1) + (1,) * (self.log_p.ndim - 2))
        onehot = self.target[:, None] == classes
        scale = self.w if self.reduction != "mean" else self.w / self.denominator
        scale = (scale * g)[:, None]
        return (xp.exp(self.log_p) - onehot) * scale, None, None
        # END TASK


def _lift_constant(x, name, like: Tensor) -> Tensor:
    """A target or weight as a Tensor on the input's device; a Tensor stays itself (so a target
    that requires grad gets its gradient, as in PyTorch)."""
    if isinstance(x, Tensor):
        _array(x, name, like.data)
        return x
    return Tensor._wrap(_array(x, name, like.data))


def _mean_by(total: Tensor, count) -> Tensor:
    """total / count, nan for an empty count (PyTorch's mean of nothing)."""
    return ops.mul(total, (1.0 / count) if count else float("nan"))


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0, *, pixel_weight=None) -> Tensor:
    """Softmax cross-entropy, numerically stable (log-sum-exp), with PyTorch's arguments.

    input: (C,), (N, C) or (N, C, d1, ..., dk) logits; class axis 1 (0 for unbatched (C,)).
    target: class indices shaped like input without the class axis ((), (N,), (N, d1, ..., dk)),
      or class probabilities ("soft targets", floating point) shaped like input.
    weight: PyTorch's per-class weight, shape (C,).
    ignore_index: class-index targets equal to it add nothing (default -100, as PyTorch).
    label_smoothing: eps in [0, 1]: the target becomes (1 - eps) * target + eps / C.
    pixel_weight: a **minigrad extension**, not a PyTorch argument: the U-Net paper's per-element
      weight map w(x) (eq. 1), shaped like input without the class axis. It multiplies each
      element's loss; for class-index targets "mean" divides by the sum of the combined weights
      class_weight[target] * pixel_weight (the weighted mean PyTorch uses for ``weight``), for
      soft targets by the element count (PyTorch's soft-target mean). The PyTorch equivalent is
      ``(F.cross_entropy(x, t, weight, reduction="none") * w).sum() / (weight[t] * w).sum()``.
    size_average / reduce: PyTorch's deprecated arguments, refused unless None.

    Labels out of range (not in [0, C) nor ignore_index) raise ValueError on the CPU. On a GPU
    that check would wait for the device and copy its answer to the host at every call, so it
    runs only after ``minigrad.backend.set_sync_checks(True)``. Without it an out-of-range label
    wraps around, as CuPy's indexing does (label C counts as class 0, label -1 as class C-1), in
    the forward and the backward alike (and in the class weights), so the gradient is the
    gradient of the loss reported; the loss is then not the one intended.

    How it is computed: class-index targets without smoothing go through the ``CrossEntropy``
    op (one fused forward/backward). Label smoothing adds eps/C times the "uniform" term
    -sum_c weight[c] log p_c (same masking, same denominator), and soft targets are
    -sum_c weight[c] * target_c * log p_c: both are compositions of ``log_softmax`` and the basic
    ops, so their gradients (also to a soft target that requires grad) come from those ops.
    """
    name = "cross_entropy"
    refuse(name, size_average=(size_average, None), reduce=(reduce, None))
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0.0, 1.0], got {label_smoothing!r}")
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have a class dimension ((C,), (N, C) or (N, C, d1, ...)), got shape ()")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating point, got dtype {input.dtype}")
    if input.ndim == 1:  # unbatched: one sample of (C,) logits, class axis 0
        def batched(x):
            x = _lift_constant(x, name, input)
            return ops.reshape(x, (1,) + x.shape)

        out = cross_entropy(batched(input), batched(target), weight, None, ignore_index, None, reduction,
                            label_smoothing, pixel_weight=None if pixel_weight is None else batched(pixel_weight))
        return ops.reshape(out, ()) if reduction == "none" else out
    n_classes, eps = input.shape[1], float(label_smoothing)
    t_arr = _array(target, f"{name}: target", input.data)
    soft = t_arr.shape == input.shape and input.ndim > 0 and t_arr.dtype.kind == "f"
    expected = input.shape if soft else (input.shape[0],) + input.shape[2:]
    if not soft:
        if t_arr.shape != expected:
            raise ValueError(
                f"{name}: target has shape {t_arr.shape}, expected {expected} (class indices) or "
                f"{input.shape} (class probabilities) for input of shape {input.shape}"
            )
        if t_arr.dtype.kind not in "iu":
            raise TypeError(
                f"{name}: target of shape {t_arr.shape} must hold integer class indices, got dtype {t_arr.dtype} "
                f"(class probabilities must have the input's shape {input.shape})"
            )
    cw = None
    if weight is not None:
        cw = _array(weight, f"{name}: weight", input.data)
        if cw.shape != (n_classes,):
            raise ValueError(f"{name}: weight has shape {cw.shape}, expected one weight per class, ({n_classes},)")
        cw = cw.astype(input.dtype, copy=False)
    pw = None
    if pixel_weight is not None:
        pw = _array(pixel_weight, f"{name}: pixel_weight", input.data)
        elem_shape = (input.shape[0],) + input.shape[2:]
        if pw.shape != elem_shape:
            raise ValueError(f"{name}: pixel_weight has shape {pw.shape}, expected {elem_shape} "
                             f"(input's shape {input.shape} without the class axis)")
        pw = pw.astype(input.dtype, copy=False)
    class_shape = (1, n_classes) + (1,) * (input.ndim - 2)
    if soft:
        q = target if isinstance(target, Tensor) else Tensor._wrap(t_arr.astype(input.dtype, copy=False))
        if eps:
            q = ops.add(ops.mul(q, 1.0 - eps), eps / n_classes)
        prod = ops.mul(log_softmax(input, 1), q)
        if cw is not None:
            prod = ops.mul(prod, cw.reshape(class_shape))
        per = ops.neg(ops.sum(prod, 1))
        if pw is not None:
            per = ops.mul(per, pw)
        if reduction == "none":
            return per
        total = ops.sum(per)
        return total if reduction == "sum" else _mean_by(total, per.size)

    xp = backend.array_module(input.data)
    # on a GPU this check costs a host sync: there it is opt-in (see the docstring)
    if backend.sync_checks_enabled(backend.device_of(t_arr)) and t_arr.size:
        used = t_arr[t_arr != ignore_index]
        if used.size and (used.min() < 0 or used.max() >= n_classes):
            bad = int(used.max()) if used.max() >= n_classes else int(used.min())
            raise ValueError(f"{name}: target holds class {bad}, expected classes in [0, {n_classes - 1}] "
                             f"or ignore_index={ignore_index}")
    valid = t_arr != ignore_index
    if backend.device_of(t_arr) == "cpu" and valid.all():
        # nothing ignored (the usual case; on the CPU asking costs no device sync): the targets
        # and the pixel weights are used as they are, with no masked copies kept for backward
        safe_target, w = t_arr, None
    else:  # (labels unchecked on a device wrap around explicitly: forward and backward agree)
        safe_target, w = xp.where(valid, t_arr % n_classes, 0), valid.astype(input.dtype)
    if cw is not None:
        w = xp.take(cw, safe_target) if w is None else w * xp.take(cw, safe_target)
    if pw is not None:
        w = pw if w is None else w * pw
    if w is None:
        w = xp.ones(t_arr.shape, dtype=input.dtype)
    nll = CrossEntropy.apply(input, safe_target, w, reduction=reduction)
    if not eps:
        return nll
    # label smoothing: + eps/C * (-sum_c class_weight[c] log p_c), masked and weighted per element
    lp = log_softmax(input, 1)
    if cw is not None:
        lp = ops.mul(lp, cw.reshape(class_shape))
    mask = valid.astype(input.dtype) if pw is None else valid * pw
    smooth = ops.mul(ops.neg(ops.sum(lp, 1)), mask)
    if reduction == "mean":  # (all ignored: the nll term already is nan; this one's gradient stays 0)
        total = w.sum()
        smooth = ops.mul(ops.sum(smooth), (1 / xp.where(total == 0, math.inf, total)))
    elif reduction == "sum":
        smooth = ops.sum(smooth)
    return ops.add(ops.mul(nll, 1.0 - eps), ops.mul(smooth, eps / n_classes))


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x with target t (same shape), weight w and pos_weight p
    (both broadcast against x; None = 1). With sp(z) = log(1 + exp(z)) computed stably as
    max(z, 0) + log1p(exp(-|z|)) and lw = 1 + (p - 1) t:
        l = w * ((1 - t) x + lw * sp(-x))  = -w * (p t log s(x) + (1 - t) log(1 - s(x)))
    Backward (divided by the element count for "mean"):
        dx = w * g * ((1 - t) - lw * s(-x))       (p = 1: w * g * (s(x) - t))
        dt = w * g * ((p - 1) sp(-x) - x)        (p = 1: -w * g * x; PyTorch differentiates t too)
    Shapes: x, t (any) -> scalar, or x's shape for "none". weight and pos_weight get no
    gradient (PyTorch refuses them requiring grad; so does minigrad's wrapper)."""

    def forward(self, x, t, w, p, reduction):
        xp = backend.array_module(x)
        sp_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        lw = 1 if p is None else 1 + (p - 1) * t
        losses = (1 - t) * x + lw * sp_neg
        if w is not None:
            losses = losses * w
        self.x, self.t, self.w, self.p, self.sp_neg, self.reduction = x, t, w, p, sp_neg, reduction
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        return losses.sum() * (1 / x.size if x.size else np.nan)

    def backward(self, g):
        xp = backend.array_module(g)
        if self.reduction == "mean" and self.x.size:
            g = g / self.x.size
        scale = g if self.w is None else g * self.w
        dx = dt = None
        if self.needs_input_grad[0]:
            e = xp.exp(-xp.abs(self.x))
            sig_neg = xp.where(self.x >= 0, e / (1 + e), 1 / (1 + e))  # s(-x)
            lw = 1 if self.p is None else 1 + (self.p - 1) * self.t
            dx = ((1 - self.t) - lw * sig_neg) * scale
        if self.needs_input_grad[1]:
            dt = (self.x * -1 if self.p is None else (self.p - 1) * self.sp_neg - self.x) * scale
        return dx, dt, None, None


def _constant_like(value, name: str, x: Tensor, fn: str):
    """weight / pos_weight: an array (or Tensor that needs no gradient) broadcastable to x."""
    if isinstance(value, Tensor) and value.requires_grad:
        raise RuntimeError(f"{fn}: {name} requires grad, but {fn} is not differentiable with respect to "
                           f"{name} (as in PyTorch); pass {name}.detach()")
    arr = _array(value, f"{fn}: {name}", x.data).astype(x.dtype, copy=False)
    try:
        fits = np.broadcast_shapes(arr.shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{fn}: {name} has shape {arr.shape}, which does not broadcast to the input's shape {x.shape}")
    return arr


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """PyTorch's ``binary_cross_entropy_with_logits`` (same arguments, same order): stable BCE on logits.

    ``weight`` rescales each element's loss, ``pos_weight`` the positive (t = 1) term of each
    class (broadcast along the last dimension, as in PyTorch); both broadcast to the input's
    shape. A target that requires grad gets its gradient. ``size_average``/``reduce`` (deprecated
    in PyTorch) are refused unless None.
    """
    fn = "binary_cross_entropy_with_logits"
    refuse(fn, size_average=(size_average, None), reduce=(reduce, None))
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if isinstance(target, Tensor):
        _array(target, f"{fn}: target", input.data)
        t = target if target.dtype == input.dtype else Tensor._wrap(target.data.astype(input.dtype))
    else:
        t = Tensor._wrap(_array(target, f"{fn}: target", input.data).astype(input.dtype, copy=False))
    if t.shape != input.shape:
        raise ValueError(f"{fn}: target has shape {t.shape}, expected the input's shape {input.shape}")
    w = None if weight is None else _constant_like(weight, "weight", input, fn)
    p = None if pos_weight is None else _constant_like(pos_weight, "pos_weight", input, fn)
    return BCEWithLogits.apply(input, t, w, p, reduction=reduction)


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """Mean squared error, PyTorch's arguments and order, built from the basic ops (so its
    backward comes for free, to a target that requires grad as well).

    input and target broadcast together (PyTorch warns when their shapes differ; so does this).
    ``weight`` (PyTorch 2.13) has the input's shape: "mean" is then sum(w * d^2) / sum(w).
    """
    fn = "mse_loss"
    refuse(fn, size_average=(size_average, None), reduce=(reduce, None))
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    t = target if isinstance(target, Tensor) else Tensor._wrap(_array(target, f"{fn}: target", input.data))
    if t.shape != input.shape:
        try:
            np.broadcast_shapes(t.shape, input.shape)
        except ValueError:
            raise ValueError(f"{fn}: target has shape {t.shape}, which does not broadcast with the input's "
                             f"shape {input.shape}") from None
        warnings.warn(f"{fn}: target size {t.shape} differs from input size {input.shape}; they are broadcast "
                      "together, which is likely not what you meant", stacklevel=2)
    diff = ops.sub(input, t)
    sq = ops.mul(diff, diff)
    if weight is not None:
        w = _lift_constant(weight, f"{fn}: weight", input)
        if w.shape != input.shape:
            raise ValueError(f"{fn}: weight has shape {w.shape}, expected the input's shape {input.shape}")
        sq = ops.mul(sq, w)
        if reduction == "mean":
            return ops.div(ops.sum(sq), ops.sum(w))
    if reduction == "none":
        return sq
    if reduction == "sum":
        return ops.sum(sq)
    return _mean_by(ops.sum(sq), sq.size)
