# %% [markdown]
# # 4. Max-pooling and transposed convolution
#
# **You will learn:** where max-pooling sends gradients (and which pixel wins a tie), the
# output-size arithmetic of both layers, how a transposed convolution *stamps* its kernel, and
# why a stride-2 transposed convolution with a 3x3 kernel paints a checkerboard.
#
# **Your tasks in this notebook:**
#
# | task | file | what you write |
# |---|---|---|
# | `pool.max_pool2d_backward` | `minigrad/functional/pool.py` | `MaxPool2d.backward` |
# | `conv.conv_transpose2d` | `minigrad/functional/conv.py` | `ConvTranspose2d.forward` and `.backward` |
#
# Check each with `python -m minigrad_course check <task>`. Needs: notebooks 1-3.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad_course import require, verdict


def show_matrix(ax, m, title, fmt="{:g}", cmap="viridis", vmin=None, vmax=None, grid=1):
    """A small matrix with its numbers; thin lines around cells, thick ones every ``grid`` cells."""
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
    for (r, c), v in np.ndenumerate(m):
        red, green, blue, _ = im.cmap(im.norm(v))
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=9,
                color="white" if 0.3 * red + 0.6 * green + 0.1 * blue < 0.5 else "black")
    ax.set_xticks(np.arange(m.shape[1]))
    ax.set_yticks(np.arange(m.shape[0]))
    for k in range(m.shape[1] + 1):
        ax.axvline(k - 0.5, color="white", lw=3 if k % grid == 0 else 0.5)
    for k in range(m.shape[0] + 1):
        ax.axhline(k - 0.5, color="white", lw=3 if k % grid == 0 else 0.5)
    ax.set_title(title)
    return im


# %% [markdown]
# ## Max-pooling and its winners
# `max_pool2d(x, 2)` keeps the largest value of every 2x2 window. Its backward pass sends each
# output's gradient to the **winner** of its window, and nothing to the other three pixels:
# $$\frac{\partial L}{\partial x_{p}} = \sum_{\text{windows } w \,\ni\, p} \frac{\partial L}{\partial y_w}\,[\,p = \text{winner}(w)\,].$$
# On a **tie** the first maximum in row-major order wins (as in PyTorch). Below, an input of
# small integers with ties: the window grid is drawn thick, the winners are circled.

# %%
x_int = np.array([[1, 5, 2, 2, 0, 3],
                  [3, 4, 2, 2, 1, 3],
                  [7, 7, 0, 6, 4, 1],
                  [7, 2, 6, 1, 4, 4],
                  [0, 1, 3, 8, 2, 5],
                  [2, 9, 5, 0, 5, 1]], dtype=float)


def first_max_winners(x2d, k):
    """(row, col) of the first maximum (row-major) of each k x k window, stride k: the reference."""
    winners = {}
    for r in range(x2d.shape[0] // k):
        for c in range(x2d.shape[1] // k):
            window = x2d[r * k : (r + 1) * k, c * k : (c + 1) * k]
            i, j = np.unravel_index(np.argmax(window), window.shape)  # argmax: first maximum
            winners[r, c] = (r * k + i, c * k + j)
    return winners


winners = first_max_winners(x_int, 2)
pooled = F.max_pool2d(mg.tensor(x_int[None, None]), 2).numpy()[0, 0]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw=dict(width_ratios=[6, 3]))
im = show_matrix(axes[0], x_int, "input: 2x2 windows, winners circled (first max on ties)", fmt="{:.0f}",
                 vmin=0, vmax=9, grid=2)
for (r, c), (i, j) in winners.items():
    axes[0].add_patch(plt.Circle((j, i), 0.38, fill=False, ec="tab:red", lw=2.5))
show_matrix(axes[1], pooled, "max_pool2d(x, 2)", fmt="{:.0f}", vmin=0, vmax=9)
fig.colorbar(im, ax=axes, label="value (one scale for both panels)", shrink=0.8)
plt.show()
assert np.array_equal(pooled, [[5, 2, 3], [7, 6, 4], [9, 8, 5]])
assert winners[0, 1] == (0, 2) and winners[1, 0] == (2, 0)  # ties: 2,2,2,2 and 7,7,7,2 -> the first one

# %% [markdown]
# ## Your turn: `MaxPool2d.backward`
# Forward saved `self.winner`: for every window the kernel offset $k = i\,k_w + j$ of its (first)
# maximum. Route each output's gradient to that offset, using `self.geom.window_slices(i, j)`
# for the input pixels offset $(i, j)$ covers. Overlapping windows (stride < kernel, or dilated
# taps, even with stride >= kernel) may send several gradients to one pixel: they add. The cell
# checks the integer example (ties included), an overlapping pool with padding, and that a window
# of equal values sends its gradient to its first pixel.

# %%
require("pool.max_pool2d_backward", "autograd.toposort")
xt = mg.tensor(x_int[None, None], requires_grad=True)
g = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # a different gradient for every window
F.max_pool2d(xt, 2).backward(g)
expected = np.zeros_like(x_int)
for (r, c), (i, j) in winners.items():
    expected[i, j] += g[0, 0, r, c]
verdict("pool.max_pool2d_backward", "2x2 pool, ties to the first maximum", xt.grad[0, 0], expected, 0)

rng = np.random.default_rng(0)
xo = mg.tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
go = rng.standard_normal(F.max_pool2d(xo, 3, stride=2, padding=1).shape)
F.max_pool2d(xo, 3, stride=2, padding=1).backward(go)
x_pad = np.pad(xo.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
naive = np.zeros_like(x_pad)
for n, ch, r, c in np.ndindex(go.shape):
    window = x_pad[n, ch, 2 * r : 2 * r + 3, 2 * c : 2 * c + 3]
    i, j = np.unravel_index(np.argmax(window), window.shape)
    naive[n, ch, 2 * r + i, 2 * c + j] += go[n, ch, r, c]
verdict("pool.max_pool2d_backward", "3x3 pool, stride 2, padding 1 (overlapping windows add)", xo.grad,
        naive[:, :, 1:-1, 1:-1], 1e-14)

flat = mg.tensor(np.full((1, 1, 4, 4), 3.0), requires_grad=True)
F.max_pool2d(flat, 2).sum().backward()
print("gradient of a pool over equal values:\n", flat.grad[0, 0])
verdict("pool.max_pool2d_backward", "tie: the first pixel of each window wins", flat.grad[0, 0],
        np.tile([[1.0, 0.0], [0.0, 0.0]], (2, 2)), 0);

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
show_matrix(axes[0], g[0, 0], "upstream gradient dL/dy (3x3)", fmt="{:.0f}", vmin=0, vmax=9)
im = show_matrix(axes[1], xt.grad[0, 0], "dL/dx: each window's gradient on its winner", fmt="{:.0f}",
                 vmin=0, vmax=9, grid=2)
fig.colorbar(im, ax=axes, label="gradient (one scale)", shrink=0.8)
plt.show()

# %% [markdown]
# ## Output sizes
# For a convolution or a pool, $o = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1$; for a transposed
# convolution, $o = (n-1)s - 2p + d(k-1) + p_\text{out} + 1$ ($p_\text{out}$ = `output_padding`), which undoes the first when the
# floor drops nothing. The paper's first layers: a valid 3x3 convolution trims 2 pixels, a 2x2 pool halves,
# a 2x2 stride-2 up-convolution doubles.

# %%
for n, k, s, p in [(572, 3, 1, 0), (568, 2, 2, 0), (7, 3, 2, 1), (8, 3, 2, 1)]:
    o = F.conv_output_size(n, k, s, p)
    print(f"n={n} k={k} s={s} p={p}: conv/pool -> {o}, and the transposed convolution of {o} -> "
          f"{F.conv_transpose_output_size(o, k, s, p)}")
# 8 -> 4 -> 7: the floor dropped a pixel; output_padding=1 gives it back
assert F.conv_transpose_output_size(F.conv_output_size(8, 3, 2, 1), 3, 2, 1, output_padding=1) == 8
assert F.conv_output_size(572, 3) == 570 and F.conv_output_size(568, 2, 2) == 284
assert F.conv_transpose_output_size(284, 2, 2) == 568 and F.conv_transpose_output_size(28, 2, 2) == 56
assert F.conv_transpose_output_size(F.conv_output_size(7, 3, 2, 1), 3, 2, 1) == 7

# %% [markdown]
# ## A transposed convolution stamps its kernel
# `conv_transpose2d(x, W, stride=s)` is the *adjoint* of `conv2d(., W, stride=s)`: where conv2d reads a
# window per output pixel, the transposed convolution **adds a copy of the kernel, scaled by the input
# pixel, at stride-spaced places**. Written as a loop (the reference for your turn), a 2x2 input and a
# 3x3 kernel of ones, stride 2: four stamps that overlap on the shared row and column.

# %%
def conv_transpose_loops(x, w, stride):
    """Sum of kernel stamps: y[n, o, s*r + i, s*c + j] += x[n, ci, r, c] * w[ci, o, i, j]."""
    n, c_in, h, wd = x.shape
    _, c_out, kh, kw = w.shape
    y = np.zeros((n, c_out, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for b, ci, r, c in np.ndindex(n, c_in, h, wd):
        y[b, :, r * stride : r * stride + kh, c * stride : c * stride + kw] += x[b, ci, r, c] * w[ci]
    return y


x22 = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
w33 = np.ones((1, 1, 3, 3))
fig, axes = plt.subplots(1, 5, figsize=(18, 3.8))
for ax, (r, c) in zip(axes, [(0, 0), (0, 1), (1, 0), (1, 1)]):
    one = np.zeros_like(x22)
    one[0, 0, r, c] = x22[0, 0, r, c]
    show_matrix(ax, conv_transpose_loops(one, w33, 2)[0, 0], f"stamp of x[{r}, {c}] = {x22[0, 0, r, c]:.0f}",
                fmt="{:.0f}", vmin=0, vmax=10)
stamped = conv_transpose_loops(x22, w33, 2)[0, 0]
im = show_matrix(axes[4], stamped, "their sum: conv_transpose2d", fmt="{:.0f}", vmin=0, vmax=10)
fig.colorbar(im, ax=axes, label="value (one scale)", shrink=0.8)
plt.show()
assert stamped[2, 2] == 1 + 2 + 3 + 4 and stamped[0, 0] == 1 and stamped[0, 2] == 1 + 2

# %% [markdown]
# ## Your turn: `ConvTranspose2d`
# minigrad computes the stamps without loops: $y = \text{crop}\big(\text{col2im}(W_2^\top x)\big) + b$ with
# $W_2$ the weight reshaped to $(C_\text{in}, C_\text{out} k_h k_w)$: each input pixel's column $W_2^\top x$ is
# its stamp, and col2im adds the stamps where they belong (crop removes `padding`). Its backward is a
# plain convolution of the gradient: $dx = W_2\,\text{im2col}(\text{pad}(g))$,
# $dW_2 = x\,\text{im2col}(\text{pad}(g))^\top$, $db = \sum g$.
#
# The cell compares your forward with the stamp loop, checks that it is conv2d's adjoint,
# $\langle \text{conv2d}(x, W), y\rangle = \langle x, \text{convT}(y, W)\rangle$ (convT = `conv_transpose2d`), and runs gradcheck on
# the backward with padding and `output_padding`.

# %%
require("conv.conv_transpose2d", "autograd.toposort", "gradcheck.central_difference", "conv.im2col", "conv.col2im")
xs = rng.standard_normal((2, 3, 4, 5))
ws = rng.standard_normal((3, 2, 3, 3))  # (C_in, C_out, kh, kw), as in PyTorch
verdict("conv.conv_transpose2d", "forward = the sum of stamps", F.conv_transpose2d(mg.tensor(xs), mg.tensor(ws), stride=2).numpy(),
        conv_transpose_loops(xs, ws, 2), 1e-12)
x_big = rng.standard_normal((2, 2, 9, 11))  # conv2d maps x_big (2 channels) to 3 channels: W is (3, 2, 3, 3)
y_small = rng.standard_normal(F.conv2d(mg.tensor(x_big), mg.tensor(ws), stride=2, padding=1).shape)
lhs = (F.conv2d(mg.tensor(x_big), mg.tensor(ws), stride=2, padding=1).numpy() * y_small).sum()
rhs = (x_big * F.conv_transpose2d(mg.tensor(y_small), mg.tensor(ws), stride=2, padding=1).numpy()).sum()
verdict("conv.conv_transpose2d", "adjoint of conv2d", rhs, lhs, 1e-12)
xg = mg.tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True)
wg = mg.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
bg = mg.tensor(rng.standard_normal(2), requires_grad=True)
assert mg.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), [xg, wg, bg])
print("conv.conv_transpose2d: gradcheck of the backward OK")

# %% [markdown]
# ## The checkerboard
# Stamp an all-ones 6x6 input with a kernel of ones: with a 3x3 kernel and stride 2, neighbouring stamps
# overlap on every other row and column, so output pixels receive 1, 2 or 4 stamps: a checkerboard that a
# network must learn to cancel. The U-Net uses 2x2 kernels with stride 2: the stamps tile the output exactly,
# every pixel gets one.

# %%
ones = mg.tensor(np.ones((1, 1, 6, 6)))
outs = {k: F.conv_transpose2d(ones, mg.tensor(np.ones((1, 1, k, k))), stride=2).numpy()[0, 0] for k in (3, 2)}
fig, axes = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw=dict(width_ratios=[13, 12]))
for ax, k in zip(axes, (3, 2)):
    counts_seen = sorted({int(v) for v in outs[k].ravel()})
    im = show_matrix(ax, outs[k], f"kernel {k}x{k}, stride 2: stamps per pixel {counts_seen}",
                     fmt="{:.0f}", vmin=0, vmax=4, grid=2 if k == 2 else 1)
fig.colorbar(im, ax=axes, label="number of stamps on the pixel (one scale)", shrink=0.7)
plt.show()
assert set(outs[3].ravel()) == {1.0, 2.0, 4.0} and set(outs[2].ravel()) == {1.0}

# %% [markdown]
# ## Exercises
# **1.** Pool with `kernel_size=3, stride=1`: windows overlap. What is the largest number of output
# gradients a single input pixel can receive? Find an input that achieves it and check with the cell.

# %%
x_overlap = None  # exercise 1: a (1, 1, H, W) array whose 3x3 stride-1 pool sends many gradients to one pixel
most_gradients = None  # exercise 1: the largest number of gradients one pixel can receive

# %%
if x_overlap is None or most_gradients is None:
    print("Exercise 1: not tried yet")
else:
    t = mg.tensor(np.asarray(x_overlap, dtype=float), requires_grad=True)
    F.max_pool2d(t, 3, stride=1).sum().backward()
    assert most_gradients == 9, "how many 3x3 windows contain an inner pixel?"
    assert t.grad.max() == 9, f"your input's busiest pixel gets {t.grad.max():.0f} gradients: make one pixel the max of all its windows"
    print("Exercise 1: correct")

# %% [markdown]
# **2.** For stride 3, which kernel sizes between 1 and 9 give every output pixel the same number of
# stamps (no checkerboard)? Try them with the all-ones input.

# %%
even_kernels = None  # exercise 2: a set of kernel sizes

# %%
if even_kernels is None:
    print("Exercise 2: not tried yet")
else:
    assert set(even_kernels) == {3, 6, 9}, "the stamps tile evenly when the kernel is a multiple of the stride"
    print("Exercise 2: correct")

# %% [markdown]
# **3.** The docstring of `MaxPool2d` (in `minigrad/functional/pool.py`) says what forward saves for
# backward. For the integer example above, what is `winner` (the offset $k = i\,k_w + j$) of window (0, 0)?

# %%
winner_00 = None  # exercise 3: an integer 0..3

# %%
if winner_00 is None:
    print("Exercise 3: not tried yet")
else:
    assert winner_00 == 1, "window (0, 0) is [[1, 5], [3, 4]]: the maximum 5 sits at offset (0, 1)"
    print("Exercise 3: correct")

# %% [markdown]
# *Measured run time: 6.2 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 4.5).*
