            # BEGIN TASK norm.batch_norm_backward
            dx_hat = g if self.weight is None else g * self.weight
            if self.training:
                dx_hat = (dx_hat - dx_hat.mean(axis=self.axes, keepdims=True)
                          - self.x_hat * (dx_hat * self.x_hat).mean(axis=self.axes, keepdims=True))
            dx = dx_hat * self.inv_std
            # END TASK
