"""minigrad.functional (import as ``F``): activations, losses, the vision layers,
batch normalisation and interpolation."""
from ..ops import pad
from .activation import dropout, log_softmax, relu, sigmoid, softmax
from .conv import conv2d, conv_transpose2d
from .crop import center_crop, crop_like
from .im2col import conv_output_size, conv_transpose_output_size
from .interp import interpolate, upsample_bilinear, upsample_nearest
from .loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from .norm import batch_norm
from .pool import max_pool2d

__all__ = [
    "relu", "sigmoid", "softmax", "log_softmax", "dropout", "pad",
    "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
    "conv2d", "conv_transpose2d", "max_pool2d", "center_crop", "crop_like",
    "conv_output_size", "conv_transpose_output_size",
    "batch_norm", "interpolate", "upsample_nearest", "upsample_bilinear",
]
