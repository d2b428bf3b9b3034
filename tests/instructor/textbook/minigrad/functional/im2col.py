    # BEGIN TASK conv.im2col
    xp = backend.array_module(src)
    n, c = src.shape[:2]
    (kh, kw), (oh, ow) = geom.kernel, geom.out_hw
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=src.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = geom.window_slices(i, j)
            cols[:, i, j] = src[:, :, rows, columns].transpose(1, 0, 2, 3)  # (N, C, OH, OW) -> (C, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)
    # END TASK

    # BEGIN TASK conv.col2im
    n, c = dst.shape[:2]
    (kh, kw), (oh, ow) = geom.kernel, geom.out_hw
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    for i in range(kh):
        for j in range(kw):
            rows, columns = geom.window_slices(i, j)
            dst[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dst
    # END TASK
