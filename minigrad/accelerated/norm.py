"""batch_norm, accelerated: ``functional.norm.BatchNorm``'s math in few visits to memory.

On the host the input is viewed as (N, C, L), L = H * W, and cut into tiles of whole channels
(``tiles``: cache-sized, split over the cores). Each tile is visited once forward and once
backward, every step below running on the tile while it is in the cache:

    forward    mean = sum(x) / m                  one BLAS matrix-vector product per tile
               y    = x - mean                    (the output's tile holds the centred values)
               var  = sum(y * y) / m              BLAS dot products
               y   *= alpha;  y += b              alpha = w / sqrt(var + eps)
    backward   db   = sum(g)                      BLAS
               c    = x - mean;  s = sum(g * c)   (c in the thread's scratch buffer)
               dw   = s / sqrt(var + eps)
               dx   = (g - db / m - c * k) * alpha,    k = s / (var + eps) / m    (training)
               dx   = g * alpha                                                   (eval)

m values per channel. Forward saves the input itself (a view, as PyTorch does) and the
per-channel mean, 1 / sqrt(var + eps) and alpha: nothing the size of the input is written but
y, and backward writes nothing but dx. A channel too large for one tile is split over several:
then the tiles' means and squared deviations are combined by Chan et al.'s formula, and the
statistics and the normalisation (or the sums and dx) take a pass each.

Off the host (CuPy, the stand-in device) the textbook forward is kept, and the backward is the
closed form from the per-channel sums (``channel_sums``, no full-size temporary for them):

    dx = w / sqrt(var + eps) * (g - (sum(g) + x_hat * sum(g * x_hat)) / m)      (training)

The textbook block makes six NumPy passes over memory forward and nine backward, each with a
full-size temporary; benchmarks/bench_layers.py --suite family measures both against PyTorch.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..functional import norm
from ..functional.norm import channel_sums
from . import tiles as tiling
from .tiles import column


class BatchNorm(norm.BatchNorm):
    def forward(self, x, weight, bias, mean, var, eps, axes, training, stats_sink=None):
        if backend.device_of(x) != "cpu" or x.dtype not in (np.float32, np.float64):
            # a device (or float16, whose BLAS sums would overflow): the textbook forward, the sums' backward
            self.tiled = False
            return super().forward(x, weight, bias, mean, var, eps, axes, training, stats_sink)
        self.tiled, self.training, self.axes = True, training, axes
        # kept for the version counters only: an in-place change to x or to weight between forward
        # and backward is refused, as PyTorch does (``rows`` may be a copy, ``alpha`` always is)
        self.input, self.weight = x, weight
        n, c = x.shape[:2]
        rows = np.ascontiguousarray(x).reshape(n, c, -1)  # (N, C, L): a view of x when x is contiguous
        length, dtype = rows.shape[2], x.dtype
        self.threads, self.tiles = backend.host_threads(x), tiling.channel_tiles(n, c, length)
        whole = tiling.holds_whole_channels(self.tiles, length)
        y = np.empty(x.shape, dtype)
        y_rows = y.reshape(rows.shape)
        # per channel, in x's dtype: the mean subtracted, 1 / sqrt(var + eps), alpha = w / sqrt(var + eps)
        self.mean, self.inv_std, self.alpha = np.empty(c, dtype), np.empty(c, dtype), np.empty(c, dtype)
        ones = np.ones(length, dtype)  # row sums as products with it
        if training:
            mean, var = np.empty(c), np.empty(c)  # float64, filled in tile by tile
            tile_stats = np.zeros((2, len(self.tiles), c))  # each tile's mean and sum of squared deviations

        def coefficients(c0, c1):
            self.mean[c0:c1] = mean[c0:c1]
            self.inv_std[c0:c1] = 1.0 / (var[c0:c1] + eps) ** 0.5
            self.alpha[c0:c1] = self.inv_std[c0:c1] if weight is None else self.inv_std[c0:c1] * weight[c0:c1]

        def normalise(tile, out, centred=False):  # out = (x - mean) * alpha + bias (out may hold x - mean)
            c0, c1, l0, l1 = tile
            if not centred:
                np.subtract(rows[:, c0:c1, l0:l1], column(self.mean[c0:c1]), out=out)
            out *= column(self.alpha[c0:c1])
            if bias is not None:
                out += column(bias[c0:c1])

        def statistics(i, tile):  # the tile's mean and squared deviations, from its centred values
            c0, c1, l0, l1 = tile
            out, count = y_rows[:, c0:c1, l0:l1], n * (l1 - l0)  # the output's tile as scratch
            tile_mean = _row_sums(rows[:, c0:c1, l0:l1], ones) / count
            np.subtract(rows[:, c0:c1, l0:l1], column(tile_mean.astype(dtype)), out=out)
            tile_stats[:, i, c0:c1] = tile_mean, _dots(out, out)
            if whole:  # the tile's statistics are its channels': normalise it while it is in the cache
                mean[c0:c1], var[c0:c1] = tile_mean, tile_stats[1, i, c0:c1] / count
                coefficients(c0, c1)
                normalise(tile, out, centred=True)

        if training:
            tiling.run(self.tiles, statistics, self.threads)
            if not whole:  # combine each channel's tiles, in tile order (Chan, Golub & LeVeque)
                counts = np.zeros((len(self.tiles), c))  # each tile's values of each channel (0: not its own)
                for i, (c0, c1, l0, l1) in enumerate(self.tiles):
                    counts[i, c0:c1] = n * (l1 - l0)
                mean[:] = (counts * tile_stats[0]).sum(axis=0) / (n * length)
                var[:] = (tile_stats[1] + counts * (tile_stats[0] - mean) ** 2).sum(axis=0) / (n * length)
            if stats_sink is not None:
                stats_sink.extend((mean, var))
        if not (training and whole):
            coefficients(0, c)
            tiling.run(self.tiles, lambda i, t: normalise(t, y_rows[:, t[0]:t[1], t[2]:t[3]]), self.threads)
        self.rows = rows
        return y

    def backward(self, g):
        if not self.tiled:
            return self._backward_from_sums(g)
        need_x, need_w, need_b = self.needs_input_grad[:3]
        rows, mean, inv_std, alpha, tiles = self.rows, self.mean, self.inv_std, self.alpha, self.tiles
        n, c, length = rows.shape
        m, dtype = n * length, rows.dtype
        g_rows = np.ascontiguousarray(g).reshape(n, c, length)
        dx = np.empty(g.shape, dtype) if need_x else None
        dx_rows = dx.reshape(g_rows.shape) if need_x else None
        want_sums = need_w or need_b or (need_x and self.training)
        fused = need_x and want_sums and tiling.holds_whole_channels(tiles, length)
        sums = np.zeros((2, len(tiles), c))  # each tile's sum(g) and sum(g * (x - mean)), per channel
        ones, per_sum_gc = np.ones(length, dtype), inv_std.astype(np.float64) ** 2 / m  # k = sum_gc * per_sum_gc

        def input_grad(tile, out, sum_g=None, sum_gc=None, into=None):  # out holds x - mean when training
            c0, c1, l0, l1 = tile
            g_tile = g_rows[:, c0:c1, l0:l1]
            into = out if into is None else into
            if not self.training:  # eval: the statistics are constants
                np.multiply(g_tile, column(alpha[c0:c1]), out=into)
                return
            out *= column((sum_gc * per_sum_gc[c0:c1]).astype(dtype))
            out += column((sum_g / m).astype(dtype))
            np.subtract(g_tile, out, out=out)
            np.multiply(out, column(alpha[c0:c1]), out=into)

        def channel_sums_of(i, tile):
            c0, c1, l0, l1 = tile
            g_tile = g_rows[:, c0:c1, l0:l1]
            out = tiling.scratch(g_tile)  # x - mean
            np.subtract(rows[:, c0:c1, l0:l1], column(mean[c0:c1]), out=out)
            sums[:, i, c0:c1] = _row_sums(g_tile, ones), _dots(out, g_tile)
            if fused:  # the sums are these channels' totals: dx while the tile is in the cache
                input_grad(tile, out, *sums[:, i, c0:c1], into=dx_rows[:, c0:c1, l0:l1])

        def input_grad_pass(i, tile):
            c0, c1, l0, l1 = tile
            out = dx_rows[:, c0:c1, l0:l1]
            if self.training:
                np.subtract(rows[:, c0:c1, l0:l1], column(mean[c0:c1]), out=out)
            input_grad(tile, out, *totals[:, c0:c1])

        if want_sums:
            tiling.run(tiles, channel_sums_of, self.threads)
        totals = sums.sum(axis=1)  # in tile order: the same on any number of threads
        if need_x and not fused:
            tiling.run(tiles, input_grad_pass, self.threads)
        dweight = (totals[1] * inv_std).astype(dtype) if need_w else None
        dbias = totals[0].astype(dtype) if need_b else None
        return dx, dweight, dbias

    def _backward_from_sums(self, g):
        xp = backend.array_module(g)
        need_x, need_w, need_b = self.needs_input_grad[:3]
        sum_g = channel_sums(g) if need_b or (need_x and self.training) else None
        sum_g_xhat = channel_sums(g, self.x_hat) if need_w or (need_x and self.training) else None
        dx = None
        if need_x:
            scale = self.inv_std if self.weight is None else self.inv_std * self.weight  # (1, C, 1, ...)
            dx = g * scale
            if self.training:
                m = self.x_hat.size // self.x_hat.shape[1]
                shape = scale.shape
                per_x_hat = scale * (sum_g_xhat.reshape(shape) / m).astype(scale.dtype, copy=False)
                dx -= xp.multiply(self.x_hat, per_x_hat)
                dx -= scale * (sum_g.reshape(shape) / m).astype(scale.dtype, copy=False)
        return dx, sum_g_xhat if need_w else None, sum_g if need_b else None


def _row_sums(rows, ones):
    """(N, c, l) -> (c,) float64: each channel's sum, over the samples' rows (BLAS products
    with ``ones``, at least l ones of rows' dtype)."""
    return (rows @ ones[:rows.shape[2]]).sum(axis=0, dtype=np.float64)


def _dots(a, b):
    """(N, c, l) x (N, c, l) -> (c,) float64: sum(a * b) per channel (BLAS dot products)."""
    return np.matmul(a[:, :, None, :], b[:, :, :, None]).reshape(a.shape[:2]).sum(axis=0, dtype=np.float64)
