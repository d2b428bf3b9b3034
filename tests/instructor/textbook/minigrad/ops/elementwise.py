        # BEGIN TASK autograd.elementwise
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])
        # END TASK

        # BEGIN TASK autograd.elementwise
        return unbroadcast(g, self.shapes[0]), unbroadcast(-g, self.shapes[1])
        # END TASK

        # BEGIN TASK autograd.elementwise
        return unbroadcast(g * self.b, _shape(self.a)), unbroadcast(g * self.a, _shape(self.b))
        # END TASK

        # BEGIN TASK autograd.elementwise
        return unbroadcast(g / self.b, _shape(self.a)), unbroadcast(-g * self.a / self.b**2, _shape(self.b))
        # END TASK

        # BEGIN TASK autograd.elementwise
        xp = backend.array_module(self.out)
        da = g * self.b * self.a ** (self.b - 1)
        db = None
        if self.needs_input_grad[1]:
            db = unbroadcast(g * self.out * xp.log(self.a), _shape(self.b))
        return unbroadcast(da, _shape(self.a)), db
        # END TASK

        # BEGIN TASK autograd.elementwise
        return (g * self.out,)
        # END TASK

        # BEGIN TASK autograd.elementwise
        return (g / self.x,)
        # END TASK

        # BEGIN TASK autograd.elementwise
        return (g * (self.out > 0),)
        # END TASK
