# %% [markdown]
# # 3. Max-pooling and transposed convolution
#
# **You will learn:** where max-pooling sends gradients, the output-size arithmetic of both
# layers, and why a stride-2 transposed convolution with a 3x3 kernel paints a checkerboard.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F

# %% [markdown]
# ## Where max-pooling's gradient goes
# Each output's gradient goes to the position of its window's maximum (the first one on ties).

# %%
rng = np.random.default_rng(1)
x = mg.tensor(rng.uniform(size=(1, 1, 6, 6)), requires_grad=True)
y = F.max_pool2d(x, 2)
y.backward(np.ones(y.shape))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
for ax, img, title in zip(axes, [x.numpy()[0, 0], y.numpy()[0, 0], x.grad[0, 0]],
                          ["input", "max_pool2d(2)", "gradient of sum(output)"]):
    ax.imshow(img, cmap="viridis")
    ax.set_title(title)
plt.show()

# %% [markdown]
# ## Output sizes
# conv / pool: `floor((n + 2p - d(k-1) - 1) / s) + 1`; transposed conv: `(n-1)s - 2p + d(k-1) + output_padding + 1`.

# %%
for n, k, s, p in [(572, 3, 1, 0), (568, 2, 2, 0), (7, 3, 2, 1)]:
    print(f"n={n} k={k} s={s} p={p}: conv/pool -> {F.conv_output_size(n, k, s, p)}, "
          f"transposed -> {F.conv_transpose_output_size(n, k, s, p)}")

# %% [markdown]
# ## The checkerboard
# A transposed convolution adds a kernel-sized stamp for every input pixel. With stride 2 and
# a 3x3 kernel the stamps overlap unevenly: some output pixels get 1 stamp, some 2, some 4.
# The U-Net uses 2x2 kernels with stride 2: no overlap, no checkerboard.

# %%
ones = mg.tensor(np.ones((1, 1, 6, 6)))
for k in (3, 2):
    out = F.conv_transpose2d(ones, mg.tensor(np.ones((1, 1, k, k))), stride=2).numpy()[0, 0]
    plt.figure(figsize=(4, 4))
    plt.imshow(out, cmap="gray")
    plt.title(f"kernel {k}x{k}, stride 2: values {sorted(set(out.ravel().tolist()))}")
    plt.show()

# %% [markdown]
# ## Exercises
# 1. Pool with `kernel_size=3, stride=1`: windows overlap. How can one input pixel receive
#    more than one gradient? Check with a picture.
# 2. Check `mg.gradcheck` on `F.conv_transpose2d` with `output_padding=1`.
# 3. Which kernel sizes avoid the checkerboard for stride 3?
