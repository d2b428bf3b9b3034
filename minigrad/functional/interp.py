"""interpolate: resize the (H, W) plane by nearest-neighbour or bilinear sampling, with
PyTorch's source indices, and its adjoint for the backward pass.

Both modes are separable: every output row is taken from (at most) two input rows, every
output column from two input columns, so the sampling along each axis is described by
three vectors, one entry per output row (or column):
    i0, i1   the two source pixels (i1 = i0 for nearest, and at the last pixel)
    lam      the weight of i1 (0 for nearest); i0 gets 1 - lam
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import backend
from ..backends import accelerated
from ..tensor import Function, Tensor
from ._checks import refuse

MODES = ("nearest", "nearest-exact", "bilinear")
PYTORCH_ONLY_MODES = ("linear", "bicubic", "trilinear", "area")


def _sample_axis(xp, dtype, in_size: int, out_size: int, mode: str, align_corners, scale):
    """(i0, i1, lam) along one axis, as PyTorch 2.13 computes them (aten/src/ATen/native/UpSample.h).

    ``scale`` is the user's scale_factor for this axis, or None when ``size`` was given.
    PyTorch samples with 1/scale_factor when one was given, else with in_size / out_size:
    the two differ when in_size * scale_factor is not a whole number.
      nearest:        src = min(floor(o * s), in - 1), s computed in float32
      nearest-exact:  src = min(floor((o + 0.5) * s), in - 1)
      bilinear, align_corners=True:   src = o * (in - 1) / (out - 1)   (0 for out == 1)
      bilinear, align_corners=False:  src = max((o + 0.5) * s - 0.5, 0)
    bilinear then takes i0 = floor(src), i1 = i0 + 1 (i0 at the last pixel), lam = src - i0.
    Where out == in, nearest and bilinear copy the axis (src = o) whatever the scale_factor
    (scale_factor=1.1 on 4 pixels gives 4 pixels, copied); nearest-exact has no such case.
    Index arithmetic is done in the input's dtype (float32 for float32 input), as PyTorch's.
    """
    out = xp.arange(out_size)
    if out_size == in_size and mode != "nearest-exact":  # PyTorch copies (even when scale_factor != 1)
        return out, out, None
    if mode in ("nearest", "nearest-exact"):
        s = np.float32(1.0 / scale if scale is not None and scale > 0 else np.float32(in_size) / np.float32(out_size))
        if mode == "nearest":
            src = xp.floor(out.astype(np.float32) * s)
        else:  # (o + 0.5) is computed in double, the product rounded to float (floorf), as PyTorch's
            src = xp.floor(((out.astype(np.float64) + 0.5) * np.float64(s)).astype(np.float32))
        i0 = xp.minimum(src.astype(np.int64), in_size - 1)
        return i0, i0, None
    t = np.dtype(dtype).type
    if align_corners:
        s = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
        src = out.astype(dtype) * s
    else:
        s = t(1.0 / scale) if scale is not None and scale > 0 else t(in_size) / t(out_size)
        src = xp.maximum(s * (out.astype(dtype) + t(0.5)) - t(0.5), t(0))
    i0 = xp.minimum(xp.floor(src).astype(np.int64), in_size - 1)
    lam = xp.clip(src - i0.astype(dtype), t(0), t(1)).astype(dtype, copy=False)
    i1 = xp.minimum(i0 + 1, in_size - 1)
    return i0, i1, lam


def _resample(x, axis, i0, i1, lam):
    """Sample ``x`` along ``axis``: out[o] = (1 - lam[o]) x[i0[o]] + lam[o] x[i1[o]],
    computed as x[i0] + lam * (x[i1] - x[i0]) in place (two new arrays, not five)."""
    xp = backend.array_module(x)
    out = xp.take(x, i0, axis=axis)
    if lam is None:
        return out
    shape = [1] * x.ndim
    shape[axis] = -1
    step = xp.take(x, i1, axis=axis)
    step -= out
    step *= lam.reshape(shape)
    out += step
    return out


class Interpolate(Function):
    """y[n, c, oh, ow] = sum over the source rows r in {h0[oh], h1[oh]} and columns q in
    {w0[ow], w1[ow]} of a_r * b_q * x[n, c, r, q], with a = (1 - lh, lh), b = (1 - lw, lw)
    (nearest: the single pixel x[n, c, h0[oh], w0[ow]]). (N, C, H, W) -> (N, C, OH, OW).

    Backward is the adjoint: each output's gradient is added back to the input pixels it was
    sampled from, with the same weights. Along one axis the sampling is the matrix
    A (OUT, IN) with A[o, i0[o]] += 1 - lam[o] and A[o, i1[o]] += lam[o], so
    y = A_rows @ x @ A_cols^T, and dx = A_rows^T @ g @ A_cols.

    What forward saves for backward:
        self.rows     (h0, h1, lh): per output row, its two source rows and the weight of h1
                      (lh is None for nearest: h1 = h0, weight 1)
        self.cols     (w0, w1, lw): the same per output column
        self.x_shape  the input's shape (N, C, H, W)
    """

    def forward(self, x, rows, cols):
        self.rows, self.cols, self.x_shape = rows, cols, x.shape
        return _resample(_resample(x, 2, *rows), 3, *cols)

    def backward(self, g):
        # BEGIN TASK interp.upsample_backward
        xp = backend.array_module(g)
        matrices = []
        for (i0, i1, lam), size in ((self.rows, self.x_shape[2]), (self.cols, self.x_shape[3])):
            a = xp.zeros((i0.shape[0], size), dtype=g.dtype)  # a[o, i]: the weight output o took input i with
            o = xp.arange(i0.shape[0])
            if lam is None:
                a[o, i0] = 1
            else:
                a[o, i0] += 1 - lam
                a[o, i1] += lam
            matrices.append(a)
        return (matrices[0].T @ g @ matrices[1],)
        # END TASK


def _pair_of(value, name, kind, fn):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        what = "an int or a pair of ints" if kind is numbers.Integral else "a number or a pair of numbers"
        raise ValueError(f"{fn}: {name} must be {what} (one per spatial axis of a 4-D input), got {value!r}")
    return values


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """PyTorch's ``interpolate`` (same arguments, order and defaults) for 4-D (N, C, H, W) input.

    size: the output (OH, OW) (an int for both); or scale_factor: a number or a pair, the
    output then being floor(H * scale_factor) x floor(W * scale_factor). Exactly one is given.
    mode: "nearest" (PyTorch's legacy nearest: src = floor(o * H / OH)), "nearest-exact"
    (the pixel whose centre is nearest: floor((o + 0.5) * H / OH)), "bilinear".
    align_corners (bilinear only): True maps the corner pixels' centres onto each other,
    src = o * (H - 1) / (OH - 1); False (the default, None) maps the pixel edges,
    src = (o + 0.5) * H / OH - 0.5. With scale_factor given PyTorch uses 1 / scale_factor in
    place of H / OH (recompute_scale_factor=True uses H / OH); minigrad does the same.
    Refused by name: the modes "linear", "trilinear" (3-D and 5-D input), "bicubic", "area",
    and antialias=True; see docs/pytorch.md.
    """
    fn = "interpolate"
    refuse(fn, antialias=(antialias, False))
    if mode in PYTORCH_ONLY_MODES:
        raise NotImplementedError(f"{fn}: minigrad does not support the PyTorch argument mode={mode!r} "
                                  f"(only {', '.join(MODES)}); see docs/pytorch.md")
    if mode not in MODES:
        raise ValueError(f"{fn}: mode must be one of {MODES}, got {mode!r}")
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim != 4:
        if input.ndim in (3, 5):  # PyTorch resamples these (1-D and 3-D planes); minigrad does not
            raise NotImplementedError(
                f"{fn}: minigrad does not support the PyTorch argument input of {input.ndim} dimensions "
                f"(shape {input.shape}); only 4-D (N, C, H, W) input is resampled; see docs/pytorch.md")
        raise ValueError(f"{fn}: input must be 4-D (N, C, H, W), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got dtype {input.dtype}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"{fn}: align_corners can only be set with mode='bilinear', got align_corners="
                         f"{align_corners!r} with mode={mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fn}: give exactly one of size and scale_factor, got "
                         f"{'both' if size is not None else 'neither'} (size={size!r}, scale_factor={scale_factor!r})")
    in_hw = input.shape[2:]
    if size is not None:
        out_hw = _pair_of(size, "size", numbers.Integral, fn)
        scales = (None, None)
    else:
        scales = tuple(float(s) for s in _pair_of(scale_factor, "scale_factor", numbers.Real, fn))
        if not all(math.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"{fn}: scale_factor must be positive and finite, got {scale_factor!r}")
        out_hw = tuple(math.floor(n * s) for n, s in zip(in_hw, scales))
        if recompute_scale_factor:  # sample with in / out, as if size had been given
            scales = (None, None)
    if recompute_scale_factor and size is not None:
        raise ValueError(f"{fn}: recompute_scale_factor is not meaningful with an explicit size")
    out_hw = tuple(int(n) for n in out_hw)
    if min(out_hw) <= 0 or min(in_hw) <= 0:
        raise ValueError(f"{fn}: input and output sizes must be positive, got input {in_hw} -> output {out_hw} "
                         f"(input shape {input.shape}, size={size!r}, scale_factor={scale_factor!r})")
    xp = backend.array_module(input.data)
    rows, cols = (_sample_axis(xp, input.dtype, n, o, mode, align_corners, s)
                  for n, o, s in zip(in_hw, out_hw, scales))
    fast = accelerated.kernels()  # the accelerated path's adjoint where present and enabled
    return (fast.Interpolate if fast is not None else Interpolate).apply(input, rows=rows, cols=cols)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """PyTorch's deprecated ``upsample_nearest``: ``interpolate(input, size, scale_factor, mode="nearest")``."""
    warnings.warn("upsample_nearest is deprecated (as in PyTorch); use interpolate", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """PyTorch's deprecated ``upsample_bilinear``: ``interpolate(..., mode="bilinear", align_corners=True)``."""
    warnings.warn("upsample_bilinear is deprecated (as in PyTorch); use interpolate", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
