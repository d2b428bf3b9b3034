# %% [markdown]
# # 3. Convolution as im2col + one matrix product
#
# **You will learn:** how `im2col` turns a convolution into a single matrix product, why `col2im`
# is its *adjoint* (transpose), not its inverse, and therefore *adds*; and how the backward pass of
# a convolution is built from the two.
#
# **Your tasks in this notebook:**
#
# | task | file | what you write |
# |---|---|---|
# | `conv.im2col` | `minigrad/functional/im2col.py` | `im2col` |
# | `conv.col2im` | `minigrad/functional/im2col.py` | `col2im` |
# | `conv.conv2d_backward` | `minigrad/functional/conv.py` | `Conv2d.backward` |
#
# Check each with `python -m minigrad_course check <task>`. Needs: notebooks 1 and 2
# (`autograd.toposort`, `gradcheck.central_difference`).

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad_course import require, verdict
from minigrad.functional.im2col import Geometry, col2im, im2col
from minigrad.gradcheck import central_difference


def show_matrix(ax, m, title, fmt="{:g}", cmap="Blues", vmin=None, vmax=None, xlabel=None, ylabel=None):
    """A small matrix with its numbers in the cells and a line around every cell."""
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
    for (r, c), v in np.ndenumerate(m):
        red, green, blue, _ = im.cmap(im.norm(v))  # dark cell: white text, light cell: black text
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8,
                color="white" if 0.3 * red + 0.6 * green + 0.1 * blue < 0.5 else "black")
    ax.set_xticks(np.arange(m.shape[1]))
    ax.set_yticks(np.arange(m.shape[0]))
    ax.set_xticks(np.arange(-0.5, m.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, m.shape[0]), minor=True)
    ax.grid(which="minor", color="grey", lw=0.5)
    ax.tick_params(which="minor", length=0)
    if m.shape[1] > 10:  # two-digit column numbers would run together: turn them upright
        ax.tick_params(axis="x", which="major", labelsize=7, labelrotation=90)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return im


# %% [markdown]
# ## The column matrix, by hand
# A convolution with a $k_h\times k_w$ kernel reads, for every output pixel, one window of the
# input. `im2col` copies each window into one **column**: row $(c, i, j)$ of the column matrix
# holds input channel $c$ at kernel offset $(i, j)$, column $(n, r, s)$ is output pixel $(r, s)$ of
# sample $n$:
# $$\text{cols}[(c,i,j),\,(n,r,s)] = x_\text{pad}[n,\; c,\; r\,s_h + i\,d_h,\; s\,s_w + j\,d_w]$$
# ($s_h, s_w$ the stride, $d_h, d_w$ the dilation). Then the whole convolution is one matrix product,
# `W.reshape(C_out, C_in*kh*kw) @ cols`. Here it is as a plain loop, on a 4x4 input and a 3x3
# kernel: 4 output pixels, 4 columns of 9 numbers.

# %%
def im2col_loops(xp, kernel, stride=(1, 1), dilation=(1, 1)):
    """The column matrix of a padded (n, C, H, W) input, written as loops (the reference)."""
    n, c, h, w = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((c * kh * kw, n * oh * ow), xp.dtype)
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for ni in range(n):
                    for r in range(oh):
                        for s in range(ow):
                            cols[(ci * kh + i) * kw + j, (ni * oh + r) * ow + s] = xp[ni, ci, r * sh + i * dh, s * sw + j * dw]
    return cols


x44 = np.arange(16.0).reshape(1, 1, 4, 4)
cols44 = im2col_loops(x44, (3, 3))
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), gridspec_kw=dict(width_ratios=[4, 4]))
show_matrix(axes[0], x44[0, 0], "input x (4x4); window of output (0, 0) boxed", vmin=0, vmax=15,
            xlabel="column", ylabel="row")
axes[0].add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, ec="tab:red", lw=2.5))
show_matrix(axes[1], cols44, "im2col(x): one column per output pixel", vmin=0, vmax=15,
            xlabel="output pixel (r, s) = (0,0) (0,1) (1,0) (1,1)", ylabel="kernel offset (i, j), row-major")
axes[1].add_patch(plt.Rectangle((-0.5, -0.5), 1, 9, fill=False, ec="tab:red", lw=2.5))
plt.tight_layout()
plt.show()
assert cols44.shape == (9, 4) and list(cols44[:, 0]) == [0, 1, 2, 4, 5, 6, 8, 9, 10]

# %% [markdown]
# ## Your turn: `im2col`
# minigrad's `im2col(src, geom)` takes the **already padded** input `src` (N, C, Hp, Wp) and a
# `Geometry(kernel, stride, dilation, out_hw)`, and returns all the columns, a
# (C kh kw, N OH OW) matrix. Instead of the six loops, loop over the $k_h k_w$ offsets only and
# copy one strided slice of the input per offset (`geom.window_slices(i, j)` gives the slices).
#
# (A U-Net layer's columns are huge: 64 channels x 9 offsets x 568 x 568 pixels in float32 is
# 743 MB. minigrad's accelerated path, which the instructor's tree uses for speed, builds them a
# few output rows at a time into a reused buffer; your im2col builds them all at once, which is
# what a student copy runs.)
#
# The cell compares your columns with the loops above on a batch with 3 channels, stride (2, 1)
# and dilation (1, 2).

# %%
require("conv.im2col")
rng = np.random.default_rng(0)
xb = rng.standard_normal((2, 3, 9, 8))
geom = Geometry(kernel=(3, 2), stride=(2, 1), dilation=(1, 2), out_hw=(4, 6))
reference = im2col_loops(xb, (3, 2), (2, 1), (1, 2))
verdict("conv.im2col", "stride (2, 1), dilation (1, 2)", im2col(xb, geom), reference, 0);

# %% [markdown]
# ## im2col is a matrix $A$ of zeros and ones, col2im is $A^\top$
# im2col only copies, so it is linear: $\text{vec}(\text{cols}) = A\,\text{vec}(x)$ for a 0/1 matrix $A$
# with one 1 per row (which pixel that column entry copies). We can read $A$ off by applying
# im2col to each unit image $e_k$: column $k$ of $A$ is `im2col(e_k)`.
#
# The backward pass needs the *transpose*: the gradient of the input is $A^\top$ times the
# gradient of the columns. $A^\top$ sends every column entry back to the pixel it was copied
# from and **adds** where a pixel was copied several times. That is `col2im`: the adjoint of
# im2col, not its inverse.

# %%
geom44 = Geometry(kernel=(3, 3), stride=(1, 1), dilation=(1, 1), out_hw=(2, 2))
A = np.stack([im2col(np.eye(16)[k].reshape(1, 1, 4, 4), geom44).ravel() for k in range(16)], axis=1)
fig, ax = plt.subplots(figsize=(6, 9))
show_matrix(ax, A, "A (36 x 16): vec(im2col(x)) = A vec(x)", fmt="{:.0f}", vmin=0, vmax=1,
            xlabel="input pixel k = 4 row + column", ylabel="column-matrix entry (offset (i,j), output pixel)")
plt.show()
assert np.array_equal(A @ x44.ravel(), cols44.ravel())
assert set(np.unique(A)) == {0.0, 1.0} and (A.sum(axis=1) == 1).all()  # each entry copies exactly one pixel
print("how often each pixel is copied (column sums of A):", A.sum(axis=0).astype(int))

# %% [markdown]
# ## Your turn: `col2im`
# `col2im(cols, dst, geom)` adds every column entry into the (padded) array `dst` at the
# pixel it came from, and returns `dst`. One observation makes it fast: for a fixed offset $(i, j)$
# no two columns touch the same pixel, so each offset is one strided `+=` (no `np.add.at`).
#
# The cell checks it three ways: against $A^\top$; against the **adjoint identity**
# $\langle \text{im2col}(x), c\rangle = \langle x, \text{col2im}(c)\rangle$ for random $x$ and $c$ (the
# property the input gradient needs); and on the strided, dilated geometry from above.

# %%
require("conv.col2im")
c = rng.standard_normal(cols44.shape)
mine = col2im(c, np.zeros((1, 1, 4, 4)), geom44)
verdict("conv.col2im", "col2im(c) = A^T c", mine.ravel(), A.T @ c.ravel(), 1e-10)
cb = rng.standard_normal(reference.shape)
lhs = (im2col(xb, geom) * cb).sum()
rhs = (xb * col2im(cb, np.zeros_like(xb), geom)).sum()
print(f"<im2col(x), c> = {lhs:.12f}   <x, col2im(c)> = {rhs:.12f}")
verdict("conv.col2im", "adjoint identity, stride (2, 1), dilation (1, 2)", rhs, lhs, 1e-10);

# %% [markdown]
# col2im of all-ones columns counts how often each pixel was copied (the column sums of $A$):
# the corners of a 6x6 input are in 1 window of a 3x3 kernel, the inner pixels in 9.

# %%
g66 = Geometry(kernel=(3, 3), stride=(1, 1), dilation=(1, 1), out_hw=(4, 4))
counts = col2im(np.ones((9, 16)), np.zeros((1, 1, 6, 6)), g66)[0, 0]
fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")  # (constrained: the colour bar keeps clear of the title)
im = show_matrix(ax, counts, "col2im(ones):\nwindows containing each pixel", fmt="{:.0f}", cmap="magma",
                 vmin=0, vmax=9, xlabel="column", ylabel="row")
fig.colorbar(im, ax=ax, label="windows containing the pixel")
plt.show()
assert counts[0, 0] == 1 and counts[2:4, 2:4].min() == 9 and counts.sum() == 9 * 16

# %% [markdown]
# ## Convolution = weights times columns
# $y = W_\text{mat}\,\text{cols} + b$ with $W_\text{mat}$ the weight reshaped to $(C_\text{out}, C_\text{in} k_h k_w)$.
# `F.conv2d` does exactly that with your im2col; here it is against four nested loops (stride (2, 1), padding 1).

# %%
w = rng.standard_normal((4, 3, 3, 2))
x7 = rng.standard_normal((2, 3, 7, 6))
fast = F.conv2d(mg.tensor(x7), mg.tensor(w), stride=(2, 1), padding=1).numpy()
xp = np.pad(x7, ((0, 0), (0, 0), (1, 1), (1, 1)))
naive = np.zeros_like(fast)
for n in range(2):
    for o in range(4):
        for r in range(fast.shape[2]):
            for s in range(fast.shape[3]):
                naive[n, o, r, s] = (xp[n, :, 2 * r : 2 * r + 3, s : s + 2] * w[o]).sum()
print("max |im2col conv - naive| =", np.abs(fast - naive).max())
assert np.abs(fast - naive).max() < 1e-12

# %% [markdown]
# ## The backward pass, drawn
# With $y = W_\text{mat}\,\text{cols} + b$ and $G = \partial L/\partial y$ (laid out like $y$'s columns):
# $$\frac{\partial L}{\partial W_\text{mat}} = G\,\text{cols}^\top,\qquad
# \frac{\partial L}{\partial b} = \sum_{n,r,s} G,\qquad
# \frac{\partial L}{\partial x} = \text{crop}\big(\text{col2im}(W_\text{mat}^\top G)\big)$$
# (crop removes the padding). On a 4x4 input and a 2x2 kernel, send gradient 1 into a single output
# pixel: the input gradient is the kernel stamped onto that pixel's window (col2im), and the
# weight gradient is the window of the input it read.

# %%
x_tiny = np.arange(16.0).reshape(1, 1, 4, 4)
w_tiny = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
g_tiny = np.zeros((1, 1, 3, 3))
g_tiny[0, 0, 1, 2] = 1.0  # dL/dy: 1 at output pixel (1, 2) only
dx_tiny = col2im(w_tiny.reshape(1, 4).T @ g_tiny.reshape(1, 9), np.zeros_like(x_tiny),
                 Geometry((2, 2), (1, 1), (1, 1), (3, 3)))
dw_tiny = g_tiny.reshape(1, 9) @ im2col(x_tiny, Geometry((2, 2), (1, 1), (1, 1), (3, 3))).T
fig, axes = plt.subplots(2, 3, figsize=(12, 8), gridspec_kw=dict(wspace=0.5, hspace=0.35))
show_matrix(axes[0, 0], g_tiny[0, 0], "upstream G = dL/dy", vmin=0, vmax=1)
show_matrix(axes[0, 1], w_tiny[0, 0], "times the kernel W", vmin=0, vmax=4)
show_matrix(axes[0, 2], dx_tiny[0, 0], "dL/dx = col2im(W^T G)", vmin=0, vmax=4)
axes[0, 2].add_patch(plt.Rectangle((1.5, 0.5), 2, 2, fill=False, ec="tab:red", lw=2.5))
show_matrix(axes[1, 0], g_tiny[0, 0], "upstream G = dL/dy", vmin=0, vmax=1)
show_matrix(axes[1, 1], x_tiny[0, 0], "times the input x", vmin=0, vmax=15)
axes[1, 1].add_patch(plt.Rectangle((1.5, 0.5), 2, 2, fill=False, ec="tab:red", lw=2.5))
show_matrix(axes[1, 2], dw_tiny.reshape(2, 2), "dL/dW = G cols^T", vmin=0, vmax=15)
for row in axes:
    for left, right in zip(row, row[1:]):
        right.add_artist(plt.matplotlib.patches.ConnectionPatch(
            (1.02, 0.5), (-0.12, 0.5), "axes fraction", "axes fraction", axesA=left, axesB=right,
            arrowstyle="-|>", color="tab:red", lw=2, mutation_scale=20))
fig.suptitle("gradient flow through a 2x2 convolution: the gradient 1 at output y[1, 2]\n"
             "stamps W onto that output's window of x (top), and dL/dW is that window of x (bottom)")
plt.show()
assert np.array_equal(dx_tiny[0, 0, 1:3, 2:4], w_tiny[0, 0]) and dx_tiny.sum() == w_tiny.sum()
assert np.array_equal(dw_tiny.reshape(2, 2), x_tiny[0, 0, 1:3, 2:4])

# %% [markdown]
# ## Your turn: `Conv2d.backward`
# Write it from the three formulas (the file's comments give the helpers that do the matrix
# products chunk by chunk). The cell compares all three gradients of a strided, padded
# convolution with central differences (your `central_difference` from notebook 2).

# %%
require("conv.conv2d_backward", "autograd.toposort", "gradcheck.central_difference", "conv.im2col", "conv.col2im")
xg = mg.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
wg = mg.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
bg = mg.tensor(rng.standard_normal(3), requires_grad=True)
Gy = rng.standard_normal(F.conv2d(xg, wg, bg, stride=2, padding=1).shape)


def loss(x, w, b):
    return (F.conv2d(x, w, b, stride=2, padding=1) * mg.tensor(Gy)).sum()


loss(xg, wg, bg).backward()
for name, t in (("dL/dx", xg), ("dL/dW", wg), ("dL/db", bg)):
    numeric = central_difference(loss, [xg, wg, bg], t, 1e-6).reshape(t.shape)
    verdict("conv.conv2d_backward", name, t.grad, numeric, 1e-6)

# %% [markdown]
# ## The same input gradient, a second way
# With stride 1 the input gradient is also a convolution: pad $G$ by $k-1$ on every side and
# slide the kernel **flipped** in space, with input and output channels swapped. Each input pixel
# then gathers the gradients of exactly the outputs whose windows held it. Your `conv2d_backward`
# uses im2col of $x$ and col2im; minigrad's accelerated path (the instructor's tree, for speed)
# uses this form when $C_\text{in} \ge C_\text{out}$, because im2col's copies of $G$ are cheaper
# than col2im's adds.
#
# The same columns of padded $G$ give the weight gradient too, so the backward needs no second
# im2col (of $x$): column $(u, v)$ holds every output gradient that saw pixel $x[u, v]$, and
# multiplying by $x$'s pixels sums exactly the products $dW$ needs. The result comes out flipped and
# transposed, like the kernel that made it.

# %%
w4 = rng.standard_normal((2, 3, 3, 3))  # C_out=2, C_in=3, 3x3
g4 = rng.standard_normal((1, 2, 4, 4))  # the gradient of a (1, 3, 6, 6) input's 4x4 output
geom4 = Geometry(kernel=(3, 3), stride=(1, 1), dilation=(1, 1), out_hw=(4, 4))
via_col2im = col2im(w4.reshape(2, -1).T @ g4.reshape(2, -1), np.zeros((1, 3, 6, 6)), geom4)
flipped = mg.tensor(w4[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy())  # (C_in, C_out, 3, 3)
via_full_conv = F.conv2d(mg.tensor(g4), flipped, padding=2).numpy()
print("largest difference, input gradient:", np.abs(via_full_conv - via_col2im).max())
assert np.abs(via_full_conv - via_col2im).max() < 1e-12

x4 = rng.standard_normal((1, 3, 6, 6))
g_cols = im2col(np.pad(g4, ((0, 0), (0, 0), (2, 2), (2, 2))), Geometry((3, 3), (1, 1), (1, 1), (6, 6)))
dw_flipped = x4.reshape(3, -1) @ g_cols.T  # (C_in, 36) @ (36, C_out*3*3)
dw_from_g_cols = dw_flipped.reshape(3, 2, 3, 3)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
dw_from_x_cols = (g4.reshape(2, -1) @ im2col(x4, geom4).T).reshape(2, 3, 3, 3)  # the textbook way
print("largest difference, weight gradient:", np.abs(dw_from_g_cols - dw_from_x_cols).max())
assert np.abs(dw_from_g_cols - dw_from_x_cols).max() < 1e-12

# %% [markdown]
# ## Exercises
# **1.** With stride 2 instead of 1, what shape does the column matrix of a (1, 1, 7, 7) input
# and a 3x3 kernel have? Work it out, then check with `im2col`.

# %%
stride2_shape = None  # exercise 1: a tuple (rows, columns)

# %%
if stride2_shape is None:
    print("Exercise 1: not tried yet")
else:
    assert tuple(stride2_shape) == (9, 9), "rows: C*kh*kw; columns: OH*OW with OH = (7 - 3) // 2 + 1"
    print("Exercise 1: correct")

# %% [markdown]
# **2.** How many MiB would the columns of the paper's first 3x3 convolution after the input
# need, if built at once: 64 input channels, a 570x570 input, float32? (This is why minigrad builds
# them a few output rows at a time.)

# %%
columns_mib = None  # exercise 2: a number

# %%
if columns_mib is None:
    print("Exercise 2: not tried yet")
else:
    assert abs(columns_mib - 64 * 9 * 568 * 568 * 4 / 2**20) < 5, "rows C*3*3, columns 568*568, 4 bytes each"
    print(f"Exercise 2: correct: {64 * 9 * 568 * 568 * 4 / 2**20:.0f} MiB")

# %% [markdown]
# **3.** `col2im(im2col(x))` is not `x`. By what does it multiply each pixel? Set `ratio` to the
# 6x6 array `col2im(im2col(x)) / x` for the 6x6 input and 3x3 kernel of the count picture.

# %%
ratio = None  # exercise 3: a (6, 6) array

# %%
if ratio is None:
    print("Exercise 3: not tried yet")
else:
    assert np.allclose(ratio, counts), "compare with the count picture"
    print("Exercise 3: correct: A^T A is diagonal, holding the counts; col2im is an adjoint, not an inverse")

# %% [markdown]
# **4.** The "full convolution" form of the input gradient needs stride 1. With stride 2, how many
# zeros must be inserted between neighbouring values of $G$ (in each direction) before it works?

# %%
zeros_between = None  # exercise 4: an integer

# %%
if zeros_between is None:
    print("Exercise 4: not tried yet")
else:
    assert zeros_between == 1, "stride s: s - 1 zeros between neighbours (a 'dilated' G)"
    print("Exercise 4: correct (this is what a transposed convolution does, notebook 4)")

# %% [markdown]
# **5.** Check the weight-gradient claim by hand for one entry: `dW[0, 0, 0, 0]` of the last cell sums
# products of `x4` and `g4`. Write it as one NumPy expression in `x4` and `g4`.

# %%
dw0000 = None  # exercise 5: a float, e.g. (x4[...] * g4[...]).sum()

# %%
if dw0000 is None:
    print("Exercise 5: not tried yet")
else:
    assert np.isclose(dw0000, dw_from_x_cols[0, 0, 0, 0]), "output pixel (r, s) reads x[r + 0, s + 0]"
    print("Exercise 5: correct")

# %% [markdown]
# *Measured run time: 6.9 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 4.5).*
