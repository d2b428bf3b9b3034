# %% [markdown]
# # 5. Gradient checking
#
# **You will learn:** central finite differences, why they need float64, full versus
# directional checks, how to read a `GradcheckError`, and how gradcheck catches a planted bug.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from unet import UNet

# %% [markdown]
# ## Central differences and the choice of eps
# `(f(x+eps) - f(x-eps)) / 2eps` has truncation error ~eps^2 and rounding error ~(machine epsilon)/eps.

# %%
f, df = np.tanh, lambda x: 1 - np.tanh(x) ** 2
eps_values = np.logspace(-12, -1, 40)
for dtype in (np.float32, np.float64):
    x0 = dtype(0.7)
    errors = [abs((f(x0 + dtype(e)) - f(x0 - dtype(e))) / (2 * dtype(e)) - df(0.7)) for e in eps_values]
    plt.loglog(eps_values, np.maximum(errors, 1e-17), label=str(np.dtype(dtype)))
plt.xlabel("eps")
plt.ylabel("error of the central difference")
plt.legend()
plt.title("float32 never gets better than ~1e-4: check in float64")
plt.show()

# %% [markdown]
# ## Full and directional checks
# `mode="full"` builds whole Jacobians (fine for small inputs); `mode="directional"` compares
# one number per random direction, cheap enough for a whole U-Net.

# %%
x = mg.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)), requires_grad=True)
w = mg.tensor(np.random.default_rng(1).standard_normal((3, 2, 3, 3)), requires_grad=True)
print("conv2d, full:", mg.gradcheck(lambda x, w: F.conv2d(x, w, padding=1), [x, w]))
mg.manual_seed(0)
net = UNet(depth=2, base_channels=2).to(np.float64)
xs = mg.tensor(np.random.default_rng(2).standard_normal((1, 1, 44, 44)), requires_grad=True)
print("small U-Net, directional:", mg.gradcheck(lambda x, *p: net(x), [xs, *net.parameters()], mode="directional"))

# %% [markdown]
# ## Catching a planted bug
# Here ReLU's backward lets gradients through where x < 0 too. Read the report: it names the
# input, the worst element, both values and the tolerances.

# %%
class LeakyBug(mg.Function):
    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, g):
        return (g,)  # wrong: should be g * (x > 0)


try:
    mg.gradcheck(lambda x: LeakyBug.apply(x), [mg.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)])
except mg.GradcheckError as err:
    print("GradcheckError:", err)

# %% [markdown]
# ## Exercises
# 1. Run the conv2d check in float32. What warning do you get, and does it pass?
# 2. Plant a bug in a copy of `Mul.backward` (forget to unbroadcast). Which shapes catch it?
# 3. Why can gradcheck not be trusted exactly at a ReLU kink or a max-pool tie?
