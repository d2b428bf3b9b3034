    # BEGIN TASK conv.im2col
    n, c = src.shape[:2]
    (kh, kw), ow = geom.kernel, geom.out_hw[1]
    xp = backend.array_module(src)
    cols = xp.zeros((c, kh, kw, n, r1 - r0, ow), dtype=src.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = geom.window_slices(i, j, r0, r1)
            # (n, c, rows, OW) -> (c, n, rows, OW)
            cols[:, i, j] = src[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * (r1 - r0) * ow)
    # END TASK
