"""center_crop and crop_like: the U-Net skip connection's crop."""
from __future__ import annotations

from .. import backend
from ..tensor import Function, Tensor
from .im2col import pair


class CenterCrop(Function):
    """y = x[..., top:top+h, left:left+w], centred: top = (H - h) // 2, left = (W - w) // 2.

    When H - h is odd the extra pixel is taken from the bottom (and, for W - w, the right):
    e.g. cropping 5 rows to 2 keeps rows 1 and 2.  (N, C, H, W) -> (N, C, h, w).
    Backward: g placed in a zero array of the input's shape (padding g with zeros).
    Saved by forward for backward: self.x_shape (the input's shape) and self.window (the
    index that cut the crop out of x: x[self.window] is the output).
    """

    def forward(self, x, size):
        h, w = size
        self.x_shape = x.shape
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        self.window = (Ellipsis, slice(top, top + h), slice(left, left + w))
        return x[self.window]

    def backward(self, g):
        # BEGIN TASK crop.backward
        xp = backend.array_module(g)
        dx = xp.zeros(self.x_shape, dtype=g.dtype)
        dx[self.window] = g
        return (dx,)
        # END TASK


def center_crop(x: Tensor, size) -> Tensor:
    """Crop the last two dimensions of ``x`` to ``size`` (an int or (h, w)) around the centre."""
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError(f"center_crop: input must be a tensor with at least 2 dimensions, got {getattr(x, 'shape', x)}")
    h, w = pair(size, "size", 1)
    if h > x.shape[-2] or w > x.shape[-1]:
        raise ValueError(f"center_crop: size {(h, w)} is larger than the input's {x.shape[-2:]} (shape {x.shape})")
    return CenterCrop.apply(x, size=(h, w))


def crop_like(x: Tensor, reference: Tensor) -> Tensor:
    """Center-crop ``x`` to the height and width of ``reference`` (U-Net: skip -> upsampled)."""
    return center_crop(x, reference.shape[-2:])
