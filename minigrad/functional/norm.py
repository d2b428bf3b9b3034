"""batch_norm: normalise each channel by its batch statistics (training) or by running
statistics (evaluation), with the compact closed-form backward."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..backends import accelerated
from ..tensor import Function, Tensor


def channel_sums(a, b=None):
    """Per-channel sums over every axis but 1 of ``a`` (or of ``a * b``), shape (C,).

    ``a * b`` is never formed: each (sample, channel) row is a dot product, so no temporary as
    large as the input is made (on the CPU a fresh array of that size costs more than the
    arithmetic, its pages being faulted in)."""
    xp = backend.array_module(a)
    n, c = a.shape[:2]
    rows_a = a.reshape(n, c, 1, -1)
    if b is None:
        return a.sum(axis=(0,) + tuple(range(2, a.ndim)))
    return xp.matmul(rows_a, b.reshape(n, c, -1, 1)).sum(axis=0).reshape(c)


class BatchNorm(Function):
    """y = x_hat * w + b,  x_hat = (x - mu) / sqrt(var + eps), per channel c (axis 1).

    Shapes: x (N, C, *) (any number of trailing axes, e.g. (N, C, H, W)); w, b (C,) or None;
    y like x. The statistics reduce over every axis but 1 (for images: N, H and W), m values
    per channel.
      training: mu, var = the batch's mean and biased variance (divided by m) of each channel;
      eval:     mu, var = the running mean and variance (constants).
    Backward (g = dL/dy, sums over the m values of a channel, dx_hat = g * w):
      dw = sum(g * x_hat)      db = sum(g)
      eval:     dx = dx_hat / sqrt(var + eps)      (mu and var are constants)
      training: mu and var depend on x too; differentiating through them gives the closed form
                dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps)
                   = w / sqrt(var + eps) * (g - (db + x_hat * dw) / m)
                (the two means are the gradient's share through mu and through var).

    What forward saves for backward:
        self.x_hat     (N, C, *) the normalised input
        self.inv_std   (1, C, 1, ...) 1 / sqrt(var + eps), shaped to broadcast against x
        self.weight    (1, C, 1, ...) w, or None (no affine weight: w = 1)
        self.axes      the reduced axes (0, 2, 3, ...)
        self.training  whether the batch statistics were used (so dx has the two extra terms)
    In training the batch's mean and variance go to ``stats_sink`` (a list), from which
    ``batch_norm`` updates the running statistics in place (they carry no gradient).
    """

    def forward(self, x, weight, bias, mean, var, eps, axes, training, stats_sink=None):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            mean = x.mean(axis=axes)
        x_hat = x - mean.reshape(shape).astype(x.dtype, copy=False)
        if training:  # the biased variance, from the centred values (no cancellation)
            var = channel_sums(x_hat, x_hat) / (x.size // x.shape[1])
            if stats_sink is not None:  # batch_norm updates the running statistics from these
                stats_sink.extend((mean, var))
        self.inv_std = (1.0 / (var + eps) ** 0.5).reshape(shape).astype(x.dtype, copy=False)
        x_hat *= self.inv_std
        self.x_hat, self.axes, self.training = x_hat, axes, training
        self.weight = None if weight is None else weight.reshape(shape)
        y = x_hat * self.weight if weight is not None else x_hat.copy()
        if bias is not None:
            y += bias.reshape(shape)
        return y

    def backward(self, g):
        # the parameters' gradients (per-channel sums without a temporary the size of g)
        dweight = channel_sums(g, self.x_hat) if self.needs_input_grad[1] else None
        dbias = channel_sums(g) if self.needs_input_grad[2] else None
        dx = None
        if self.needs_input_grad[0]:
            # BEGIN TASK norm.batch_norm_backward
            dx_hat = g if self.weight is None else g * self.weight
            if self.training:
                dx_hat = (dx_hat - dx_hat.mean(axis=self.axes, keepdims=True)
                          - self.x_hat * (dx_hat * self.x_hat).mean(axis=self.axes, keepdims=True))
            dx = dx_hat * self.inv_std
            # END TASK
        return dx, dweight, dbias


def _stat(value, name, x, channels, fn):
    """running_mean / running_var / weight / bias: None, or a (C,) Tensor or array on x's device."""
    if value is None:
        return None
    arr = value.data if isinstance(value, Tensor) else value
    if not backend.is_array(arr):
        raise TypeError(f"{fn}: {name} must be a Tensor, an array or None, got {type(value).__name__}")
    if backend.device_of(arr) != x.device:
        raise RuntimeError(f"{fn}: {name} is on '{backend.device_of(arr)}' but the input is on '{x.device}'")
    if arr.shape != (channels,):
        raise ValueError(f"{fn}: {name} has shape {arr.shape}, expected ({channels},): one value per channel "
                         f"of the input of shape {x.shape} (channels on axis 1)")
    return arr


def batch_norm(input: Tensor, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """PyTorch's ``batch_norm`` (same arguments, order and defaults) for (N, C, *) input.

    training=True: normalise by the batch's per-channel mean and biased variance; if running
    statistics are given they are updated in place (PyTorch's exponential moving average):
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)
    (the running variance takes the unbiased estimate, m values per channel).
    training=False: normalise by running_mean and running_var (both required).
    weight / bias (C,) scale and shift (None: 1 and 0); they and the input get gradients,
    the running statistics never do. ``momentum=None`` (the cumulative average) belongs to
    ``nn.BatchNorm2d``, which counts the batches; here momentum is a number, as in PyTorch.
    """
    fn = "batch_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got dtype {input.dtype}")
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"{fn}: momentum must be a number, got {momentum!r} (momentum=None, the cumulative "
                        "average, is nn.BatchNorm2d's: it counts the batches in num_batches_tracked)")
    if input.ndim < 2 and input.size:
        raise ValueError(f"{fn}: input must have a channel axis, (N, C, *), got shape {input.shape}")
    channels = input.shape[1] if input.ndim >= 2 else 0
    rm, rv = (_stat(v, n, input, channels, fn) for v, n in ((running_mean, "running_mean"), (running_var, "running_var")))
    for value, name in ((weight, "weight"), (bias, "bias")):
        _stat(value, name, input, channels, fn)
    if not training and (rm is None or rv is None):
        raise ValueError(f"{fn}: running_mean and running_var must be given in evaluation mode (training=False), "
                         f"got {'running_mean' if rm is None else 'running_var'}=None")
    axes = (0,) + tuple(range(2, input.ndim))
    count = input.size // channels if channels else 0
    if training and count == 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got input of shape "
                         f"{input.shape} (one value per channel has no variance)")
    if input.size == 0:  # nothing to normalise (PyTorch returns the empty input)
        return input * 1.0
    stats = []
    fast = accelerated.kernels()  # the accelerated path's backward where present and enabled
    out = (fast.BatchNorm if fast is not None else BatchNorm).apply(input, weight, bias, rm, rv, eps=eps, axes=axes,
                                                                     training=bool(training), stats_sink=stats)
    if training:  # PyTorch updates the running statistics in place, outside autograd
        mean, var = stats
        if rm is not None:
            rm *= rm.dtype.type(1 - momentum)
            rm += (momentum * mean).astype(rm.dtype, copy=False)
        if rv is not None:
            rv *= rv.dtype.type(1 - momentum)
            rv += (momentum * count / (count - 1) * var).astype(rv.dtype, copy=False)
    return out
