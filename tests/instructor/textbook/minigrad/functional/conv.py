        # BEGIN TASK conv.conv2d_backward
        xp = backend.array_module(g)
        n, c_in, h, w = self.x.shape
        c_out = self.weight.shape[0]
        ph, pw = self.padding
        oh, ow = self.geom.out_hw
        x_pad = _pad_hw(self.x, ph, pw)
        cols = im2col(x_pad, self.geom)  # (C_in*kh*kw, N*OH*OW), columns ordered (n, oh, ow)
        g2 = g.transpose(1, 0, 2, 3).reshape(c_out, n * oh * ow)  # (C_out, N*OH*OW), the same order
        w2 = self.weight.reshape(c_out, -1)
        dw = (g2 @ cols.T).reshape(self.weight.shape)
        db = g.sum(axis=(0, 2, 3)) if self.has_bias else None
        dx_pad = col2im(w2.T @ g2, xp.zeros(x_pad.shape, dtype=g.dtype), self.geom)
        dx = dx_pad[:, :, ph : ph + h, pw : pw + w]
        return dx, dw, db
        # END TASK

        # BEGIN TASK conv.conv_transpose2d
        xp = backend.array_module(x)
        n, c_in, h, w = x.shape
        c_out, kh, kw = weight.shape[1:]
        ph, pw = padding
        oh = conv_transpose_output_size(h, kh, stride[0], ph, output_padding[0], dilation[0])
        ow = conv_transpose_output_size(w, kw, stride[1], pw, output_padding[1], dilation[1])
        # the conv2d this is the adjoint of maps the padded y (oh+2p) to x (h, w)
        self.geom = Geometry((kh, kw), stride, dilation, (h, w))
        self.x, self.weight, self.padding, self.has_bias = x, weight, padding, bias is not None
        x2 = x.transpose(1, 0, 2, 3).reshape(c_in, n * h * w)
        cols = weight.reshape(c_in, -1).T @ x2  # (C_out*kh*kw, N*H*W)
        y_pad = col2im(cols, xp.zeros((n, c_out, oh + 2 * ph, ow + 2 * pw), dtype=x.dtype), self.geom)
        y = y_pad[:, :, ph : ph + oh, pw : pw + ow]
        if bias is not None:
            y = y + bias[:, None, None]
        return y
        # END TASK

        # BEGIN TASK conv.conv_transpose2d
        n, c_in, h, w = self.x.shape
        ph, pw = self.padding
        cols = im2col(_pad_hw(g, ph, pw), self.geom)  # (C_out*kh*kw, N*H*W)
        w2 = self.weight.reshape(c_in, -1)
        dx = (w2 @ cols).reshape(c_in, n, h, w).transpose(1, 0, 2, 3)
        x2 = self.x.transpose(1, 0, 2, 3).reshape(c_in, n * h * w)
        dw = (x2 @ cols.T).reshape(self.weight.shape)
        db = g.sum(axis=(0, 2, 3)) if self.has_bias else None
        return dx, dw, db
        # END TASK
