        # BEGIN TASK pool.max_pool2d_backward
        xp = backend.array_module(g)
        n, c, h, w = self.x_shape
        ph, pw = self.padding
        kh, kw = self.geom.kernel
        dx = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for k in range(kh * kw):
            rows, cols = self.geom.window_slices(k // kw, k % kw)
            dx[:, :, rows, cols] += g * (self.winner == k)
        return (dx[:, :, ph : ph + h, pw : pw + w],)
        # END TASK
