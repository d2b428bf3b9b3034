        # BEGIN TASK optim.sgd
        g = p.grad + self.weight_decay * p.data
        if self.momentum:
            buf = self.state["momentum_buffer"][i]
            buf = g.copy() if buf is None else self.momentum * buf + g
            self.state["momentum_buffer"][i] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= (self.lr * g).astype(p.dtype)
        # END TASK

        # BEGIN TASK optim.adam
        xp = backend.array_module(p.data)
        b1, b2 = self.betas
        t = self.step_count
        g = p.grad + self.weight_decay * p.data
        if self.state["exp_avg"][i] is None:
            self.state["exp_avg"][i] = xp.zeros_like(p.data)
            self.state["exp_avg_sq"][i] = xp.zeros_like(p.data)
        m = b1 * self.state["exp_avg"][i] + (1 - b1) * g
        v = b2 * self.state["exp_avg_sq"][i] + (1 - b2) * g * g
        self.state["exp_avg"][i], self.state["exp_avg_sq"][i] = m, v
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p.data -= (self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)).astype(p.dtype)
        # END TASK
