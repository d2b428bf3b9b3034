# %% [markdown]
# # 2. Convolution as im2col + one matrix product
#
# **You will learn:** how `im2col` turns a convolution into a single matrix product, how to
# check it against a naive loop, and why `col2im` is the *adjoint* (transpose) of `im2col`,
# not its inverse, and therefore *adds*.
#
# Code: `minigrad/functional/im2col.py` and `minigrad/functional/conv.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad.functional.im2col import Geometry, col2im, im2col

# %% [markdown]
# ## The column matrix
# A 1-channel 5x5 input and a 3x3 kernel: 9 output positions, each a column of 9 values.

# %%
x = np.arange(25.0).reshape(1, 1, 5, 5)
geom = Geometry(kernel=(3, 3), stride=(1, 1), dilation=(1, 1), out_hw=(3, 3))
cols = im2col(x, geom, 0, 3)
print("columns:", cols.shape)
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].imshow(x[0, 0], cmap="viridis")
axes[0].set_title("input 5x5 (values 0..24)")
axes[1].imshow(cols, cmap="viridis")
axes[1].set_title("im2col: one column per output position")
axes[1].set_xlabel("output position")
axes[1].set_ylabel("kernel offset (i, j)")
plt.show()

# %% [markdown]
# ## Check against a naive loop
# conv2d = weight (C_out, C_in*kh*kw) @ columns: compare with four nested loops.

# %%
rng = np.random.default_rng(0)
xb = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 2))
fast = F.conv2d(mg.tensor(xb), mg.tensor(w), stride=(2, 1), padding=1).numpy()
xp = np.pad(xb, ((0, 0), (0, 0), (1, 1), (1, 1)))
naive = np.zeros_like(fast)
for n in range(2):
    for o in range(4):
        for r in range(fast.shape[2]):
            for c in range(fast.shape[3]):
                naive[n, o, r, c] = (xp[n, :, 2 * r : 2 * r + 3, c : c + 2] * w[o]).sum()
print("max |im2col - naive| =", np.abs(fast - naive).max())

# %% [markdown]
# ## col2im is the adjoint of im2col
# For any x and any column matrix c: <im2col(x), c> = <x, col2im(c)>. That is exactly the
# property the input gradient needs. It is not an inverse: an input pixel sits in several
# windows, so col2im *adds* its copies. col2im of all-ones counts how often each pixel was used.

# %%
c = rng.standard_normal(cols.shape)
lhs = (im2col(x, geom, 0, 3) * c).sum()
rhs = (x * col2im(c, np.zeros_like(x), geom, 0, 3)).sum()
print("<im2col(x), c> =", lhs, " <x, col2im(c)> =", rhs)
counts = col2im(np.ones_like(cols), np.zeros_like(x), geom, 0, 3)
plt.imshow(counts[0, 0], cmap="magma")
plt.colorbar(label="windows containing the pixel")
plt.title("col2im(ones): the centre pixel is in all 9 windows")
plt.show()

# %% [markdown]
# ## The same input gradient, a second way
# With stride 1 the input gradient is also a convolution: pad g by kernel-1 on every side and
# slide the kernel flipped in space, with input and output channels swapped. Each input pixel
# then gathers the gradients of exactly the outputs whose windows held it. minigrad uses this
# form when C_in >= C_out, because im2col's copies of g are cheaper than col2im's adds.
#
# The same columns of padded g give the weight gradient too, so the backward needs no second
# im2col (of x): column (u, v) holds every output gradient that saw pixel x[u, v], and
# multiplying by x's pixels sums exactly the products dW needs. The result comes out flipped and
# transposed, like the kernel that made it.

# %%
w4 = rng.standard_normal((2, 3, 3, 3))  # C_out=2, C_in=3, 3x3
g4 = rng.standard_normal((1, 2, 4, 4))  # the gradient of a (1, 3, 6, 6) input's 4x4 output
geom4 = Geometry(kernel=(3, 3), stride=(1, 1), dilation=(1, 1), out_hw=(4, 4))
via_col2im = col2im(w4.reshape(2, -1).T @ g4.reshape(2, -1), np.zeros((1, 3, 6, 6)), geom4, 0, 4)
flipped = mg.tensor(w4[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy())  # (C_in, C_out, 3, 3)
via_full_conv = F.conv2d(mg.tensor(g4), flipped, padding=2).numpy()
print("largest difference:", np.abs(via_full_conv - via_col2im).max())

# %%
x4 = rng.standard_normal((1, 3, 6, 6))
g_cols = im2col(np.pad(g4, ((0, 0), (0, 0), (2, 2), (2, 2))), Geometry((3, 3), (1, 1), (1, 1), (6, 6)), 0, 6)
dw_flipped = x4.reshape(3, -1) @ g_cols.T  # (C_in, 36) @ (36, C_out*3*3)
dw_from_g_cols = dw_flipped.reshape(3, 2, 3, 3)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
dw_from_x_cols = g4.reshape(2, -1) @ im2col(x4, geom4, 0, 4).T  # the textbook way: g @ im2col(x)^T
print("largest difference:", np.abs(dw_from_g_cols - dw_from_x_cols.reshape(2, 3, 3, 3)).max())

# %% [markdown]
# ## Exercises
# 1. Change the stride to 2: how does the column matrix change? Redo the count picture.
# 2. Why does minigrad rebuild the columns in chunks of output rows instead of once for the
#    whole image? (Hint: 64 channels at 570x570 in float32.)
# 3. Show numerically that col2im(im2col(x)) is *not* x.
# 4. Why does the "full convolution" form of the input gradient need stride 1 here? (Hint: with
#    stride 2, what would have to be inserted between g's values first?)
# 5. Check the weight-gradient cell's claim by hand for one entry: which products of x and g
#    does dW[0, 0, 0, 0] sum, and where do they sit in g_cols?
