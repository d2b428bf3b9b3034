"""max_pool2d, accelerated: ``functional.pool.MaxPool2d`` with two shortcuts for windows that do
not overlap, the U-Net's 2x2 stride-2 pooling among them. Same winners, same gradients.

* Separable forward (stride == kernel, no padding, no dilation): the max along the width
  first, then along the height; two cheap passes instead of kh*kw. On the CPU the winners
  skip the nan test unless the output shows a nan (then they are taken again by the rule):
  forward 8-15% faster on the paper's pools.
* Backward of such windows in two passes as well (row, then column), writing every pixel once
  (``empty``, not ``zeros``, when the windows tile the input); other non-overlapping windows
  without dilation assign instead of adding (with dilation, taps of neighbouring windows can
  share a pixel even when stride >= kernel: kernel 2, dilation 2, stride 2).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..functional import pool
from ..functional.pool import _beats
from ..functional.im2col import Geometry


class MaxPool2d(pool.MaxPool2d):
    def forward(self, x, kernel, stride, padding, dilation=(1, 1)):
        self.separable = kernel == stride and padding == (0, 0) and dilation == (1, 1)
        if not self.separable:
            return super().forward(x, kernel, stride, padding, dilation)
        n, c, h, w = x.shape
        (kh, kw) = kernel
        self.geom = Geometry(kernel, stride, dilation, (h // kh, w // kw))
        self.x_shape, self.padding = x.shape, padding
        return self._forward_separable(x)

    @property
    def winner(self):
        """The textbook op's winners k = i*kw + j, (N, C, OH, OW) uint8 (for return_indices);
        made from the separable path's row and column winners only when asked for."""
        if not self.separable:
            return self._winner
        (kh, kw), (oh, ow) = self.geom.kernel, self.geom.out_hw
        xp = backend.array_module(self.row_winner)
        n, c = self.row_winner.shape[:2]
        rows = self.row_winner[:, :, :, None].astype(np.intp)
        j = xp.take_along_axis(self.col_winner.reshape(n, c, oh, kh, ow), rows, axis=3)[:, :, :, 0]
        return (self.row_winner * np.uint8(kw) + j).astype(np.uint8, copy=False)

    @winner.setter
    def winner(self, value):
        self._winner = value

    @staticmethod
    def _running_max(views, nan_aware=True):
        """Elementwise max over a list of equally shaped views, and the index of the first
        view that attains it (later views win only when strictly greater, or nan: as the
        textbook forward, ``pool._beats``; ``nan_aware=False`` skips the nan test, right
        only where no view holds a nan)."""
        xp = backend.array_module(views[0])
        out, arg = views[0], None
        for k, v in enumerate(views[1:], start=1):
            better = _beats(v, out) if nan_aware else v > out
            out = xp.maximum(out, v)  # (nan if either is nan)
            # the first comparison's booleans already are the 0/1 index; later ones overwrite
            arg = better.view(np.uint8) if arg is None else xp.where(better, np.uint8(k), arg)
        if arg is None:  # a window one element wide
            out, arg = out.copy(), xp.zeros(out.shape, dtype=np.uint8)
        return out, arg

    def _forward_separable(self, x):
        """Non-overlapping windows (stride == kernel, no padding): take the max along the
        width first, then along the height. The first maximum in row-major order still wins on
        ties (first column of the first row holding the maximum). Saved for backward: the
        winning column of every input row in each window (``col_winner``, (N, C, OH*kh, OW))
        and the winning row of each window (``row_winner``, (N, C, OH, OW)), uint8."""
        (kh, kw), (oh, ow) = self.geom.kernel, self.geom.out_hw
        xp = backend.array_module(x)
        x = x[:, :, : oh * kh, : ow * kw]
        # Optimistic about nan where a host sync is cheap (the CPU): the winners without the nan
        # test (two passes fewer), then one look at the output; a nan in a window makes its max
        # nan, and only then are the winners taken again by the nan rule.
        optimistic = x.dtype.kind == "f" and backend.sync_checks_enabled(backend.device_of(x))
        for nan_aware in ((False, True) if optimistic else (True,)):
            row_max, self.col_winner = self._running_max([x[:, :, :, j::kw] for j in range(kw)], nan_aware)
            out, self.row_winner = self._running_max([row_max[:, :, i::kh] for i in range(kh)], nan_aware)
            if nan_aware or not bool(xp.isnan(out).any()):
                return out

    def backward(self, g):
        (kh, kw), (sh, sw) = self.geom.kernel, self.geom.stride
        overlapping = sh < kh or sw < kw or self.geom.dilation != (1, 1)
        if not self.separable and overlapping:
            return super().backward(g)
        xp = backend.array_module(g)
        n, c, h, w = self.x_shape
        ph, pw = self.padding
        fits = self.separable and h % kh == 0 and w % kw == 0  # every pixel is written below
        dx = (xp.empty if fits else xp.zeros)((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        # Routing multiplies g by a 0/1 mask of winners instead of calling xp.where: on the
        # random masks real data gives, where's per-element branch is ~4x slower on a CPU.
        # (A non-finite gradient would leak into its window's losers as nan; it is not finite anyway.)
        if self.separable:  # windows tile the input: two passes, first the row, then the column
            oh, ow = g.shape[2:]
            rows = xp.empty((n, c, oh, kh, ow), dtype=g.dtype)  # g sent to the winning row of each window
            for i in range(kh):
                xp.multiply(g, self.row_winner == i, out=rows[:, :, :, i])
            rows = rows.reshape(n, c, oh * kh, ow)
            inside = dx[:, :, : oh * kh, : ow * kw]  # rows/columns past the last window keep 0
            for j in range(kw):  # ...and then to that row's winning column (rows that lost hold 0)
                xp.multiply(rows, self.col_winner == j, out=inside[:, :, :, j::kw])
            return (dx,)
        for k in range(kh * kw):  # each input pixel is in at most one window: assignment suffices
            rows, cols = self.geom.window_slices(k // kw, k % kw)
            dx[:, :, rows, cols] = g * (self.winner == k)
        if ph or pw:
            dx = dx[:, :, ph : ph + h, pw : pw + w].copy()
        return (dx,)
