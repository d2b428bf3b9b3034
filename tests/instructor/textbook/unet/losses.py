        # BEGIN TASK loss.dice_backward
        dp = -g / self.groups * (2 * self.t * self.total - self.inter) / self.total**2
        return dp, None
        # END TASK
