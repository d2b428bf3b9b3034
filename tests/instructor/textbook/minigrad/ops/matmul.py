        # BEGIN TASK autograd.matmul
        da = unbroadcast(g @ self.b.swapaxes(-1, -2), self.a.shape)
        db = unbroadcast(self.a.swapaxes(-1, -2) @ g, self.b.shape)
        return da, db
        # END TASK
