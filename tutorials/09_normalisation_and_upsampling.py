# %% [markdown]
# # 9. Batch normalisation and upsampling: the layers of the U-Net family
#
# **You will learn:** why a batch-normalised network computes something different in training and in
# evaluation (and what the running statistics are for); the compact closed form of batch
# normalisation's input gradient, derived and checked against central differences; where bilinear
# interpolation samples the input with `align_corners=True` and `False`, and why its backward pass is
# its adjoint; the soft Dice loss and its gradient; and why the U-Net family upsamples bilinearly and
# then convolves rather than using a stride-2 transposed convolution with a 3x3 kernel.
#
# **Your tasks in this notebook:**
#
# | task | file | what you write |
# |---|---|---|
# | `norm.batch_norm_backward` | `minigrad/functional/norm.py` | `BatchNorm.backward` |
# | `interp.upsample_backward` | `minigrad/functional/interp.py` | `Interpolate.backward` |
# | `loss.dice_backward` | `unet/losses.py` | `SoftDice.backward` |
#
# Check each with `python -m minigrad_course check <task>`. Needs: notebooks 1-4 (the last section runs
# a transposed convolution and a convolution).

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad_course import require, verdict


def numeric_gradient(f, x, eps=1e-6):
    """Central differences of a scalar NumPy function f at x (float64): the reference for the
    backward passes below, independent of minigrad's engine."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f(x)
        x[idx] = old - eps
        down = f(x)
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def values(t):
    """A tensor's (or buffer's) values as a NumPy array."""
    return mg.backend.to_numpy(getattr(t, "data", t))


# %% [markdown]
# ## Batch normalisation in training: each batch normalises itself
# `BatchNorm2d(C)` normalises every channel over the batch and the pixels, then scales and shifts it
# with two learned vectors: for channel $c$, over the $M = N H W$ values of that channel,
# $$\mu_c = \frac{1}{M}\sum x,\qquad \sigma_c^2 = \frac{1}{M}\sum (x - \mu_c)^2,\qquad
# y = \gamma_c\,\frac{x - \mu_c}{\sqrt{\sigma_c^2 + \varepsilon}} + \beta_c .$$
# In **training** $\mu_c, \sigma_c^2$ are the statistics of the batch at hand, so every channel of the
# output has mean $\beta_c$ and (almost) variance $\gamma_c^2$, whatever the input's scale. Each step
# also updates the **running** statistics, an exponential average over batches
# ($r \leftarrow (1 - m)\,r + m\,\mu$ with momentum $m = 0.1$; the running variance averages the
# *unbiased* batch variance, $\frac{M}{M-1}\sigma^2$, as PyTorch does).

# %%
rng = np.random.default_rng(0)
channel_means, channel_scales = np.array([2.0, -1.0, 5.0]), np.array([1.0, 3.0, 0.5])


def batch(n, rng=rng):
    """n images of 3 channels, 4x4 pixels: channel c ~ Normal(channel_means[c], channel_scales[c])."""
    return channel_means[:, None, None] + channel_scales[:, None, None] * rng.standard_normal((n, 3, 4, 4))


bn = nn.BatchNorm2d(3)
xa = batch(8)
ya = bn(mg.tensor(xa)).numpy()  # a new module is in training mode
print("per-channel mean of the output:", ya.mean(axis=(0, 2, 3)).round(12) + 0.0)
print("per-channel variance of the output:", ya.var(axis=(0, 2, 3)).round(6))
print("running mean after one step:", values(bn.running_mean), " running variance:", values(bn.running_var))
m = 8 * 4 * 4
assert np.allclose(ya.mean(axis=(0, 2, 3)), 0, atol=1e-12)
assert np.allclose(ya.var(axis=(0, 2, 3)), xa.var(axis=(0, 2, 3)) / (xa.var(axis=(0, 2, 3)) + 1e-5))
assert np.allclose(values(bn.running_mean), 0.1 * xa.mean(axis=(0, 2, 3)))
assert np.allclose(values(bn.running_var), 0.9 + 0.1 * xa.var(axis=(0, 2, 3)) * m / (m - 1))

# %% [markdown]
# The price: in training, an image's output depends on **the other images in its batch**. Below, the same
# image 0 goes through the layer twice, with two different sets of batch mates. Batch normalisation is an
# affine map per channel, $y = a\,x + b$, so we can draw it: one line per batch, and they differ.
#
# In **evaluation** (`bn.eval()`) the layer uses the running statistics instead, the same affine map for
# every image: a prediction no longer depends on what else is in the batch (or on the batch size: a
# single image works, which in training would be refused for a 1x1 map, its one value per channel has no
# variance).

# %%
xb = np.concatenate([xa[:1], batch(7)])  # image 0 again, with different batch mates
yb = bn(mg.tensor(xb)).numpy()
bn.eval()
eval_a, eval_b = bn(mg.tensor(xa)).numpy(), bn(mg.tensor(xb)).numpy()
eval_alone = bn(mg.tensor(xa[:1])).numpy()
bn.train()

fig, ax = plt.subplots(figsize=(7, 4.5))
channel = 1
for y, label, style in [(ya, "training, batch A", "o"), (yb, "training, batch B", "s"),
                        (eval_a, "evaluation (running statistics)", "x")]:
    ax.plot(xa[0, channel].ravel(), y[0, channel].ravel(), style, label=label, alpha=0.8)
ax.set_xlabel(f"input values of image 0, channel {channel}")
ax.set_ylabel("output values")
ax.set_title("the same image through BatchNorm2d: one affine map per batch in training")
ax.legend()
plt.show()
assert not np.allclose(ya[0], yb[0]), "in training, image 0's output depends on its batch mates"
assert np.array_equal(eval_a[0], eval_b[0]) and np.allclose(eval_alone[0], eval_a[0], rtol=1e-12, atol=1e-12)
rm, rv = values(bn.running_mean).astype(float), values(bn.running_var).astype(float)
# (the running statistics are float32 buffers, so evaluation agrees to float32's precision)
assert np.allclose(eval_a, (xa - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5), rtol=1e-6, atol=1e-6)
try:  # training on a single 1x1 image: one value per channel, no variance to normalise by
    nn.BatchNorm2d(3)(mg.tensor(xa[:1, :, :1, :1]))
except ValueError as err:
    print("refused in training:", err)
else:
    raise AssertionError("a batch with one value per channel must be refused in training")
bn.eval()
print("accepted in evaluation, shape", bn(mg.tensor(xa[:1, :, :1, :1])).shape)
bn.train()

# %% [markdown]
# The running statistics are there for evaluation: after enough training steps they are the statistics of
# the data, and the evaluation output has (nearly) the same distribution as the training output had.

# %%
bn_long = nn.BatchNorm2d(3)
history = []
for step in range(60):
    bn_long(mg.tensor(batch(8)))
    history.append(values(bn_long.running_mean).copy())
history = np.array(history)
fig, ax = plt.subplots(figsize=(7, 3.5))
for c in range(3):
    ax.plot(history[:, c], color=f"C{c}", label=f"running mean, channel {c}")
    ax.axhline(channel_means[c], color=f"C{c}", ls=":")
ax.set_xlabel("training step (momentum 0.1)")
ax.legend()
plt.show()
assert np.allclose(history[-1], channel_means, atol=0.3)
bn_long.eval()
fresh = bn_long(mg.tensor(batch(64))).numpy()
print("evaluation output, per-channel mean and std:", fresh.mean(axis=(0, 2, 3)).round(2),
      fresh.std(axis=(0, 2, 3)).round(2))
assert np.allclose(fresh.mean(axis=(0, 2, 3)), 0, atol=0.3) and np.allclose(fresh.std(axis=(0, 2, 3)), 1, atol=0.3)

# %% [markdown]
# ## The backward pass in closed form
# Autograd could differentiate through the mean and the variance op by op, but the result simplifies to a
# compact formula that needs only what forward saved: $\hat x = (x - \mu)/s$ with $s = \sqrt{\sigma^2 +
# \varepsilon}$, and $1/s$. Write $\hat g = \gamma\,g$ for the gradient reaching $\hat x$ ($g$ = the upstream
# gradient, all sums over the $M$ values of one channel). Then
# $$\frac{\partial \mu}{\partial x_j} = \frac1M,\qquad \frac{\partial \sigma^2}{\partial x_j} = \frac{2}{M}(x_j - \mu),
# \qquad \frac{\partial \hat x_i}{\partial x_j} = \frac{1}{s}\Big(\delta_{ij} - \frac1M\Big) - \frac{\hat x_i\,\hat x_j}{M s},$$
# and summing $\hat g_i\,\partial \hat x_i/\partial x_j$ over $i$:
# $$\frac{\partial L}{\partial x} = \frac{1}{M s}\Big(M \hat g - \sum \hat g - \hat x \sum \hat g\,\hat x\Big),\qquad
# \frac{\partial L}{\partial \gamma} = \sum g\,\hat x,\qquad \frac{\partial L}{\partial \beta} = \sum g .$$
# Two things follow that we can check: per channel, $\sum \partial L/\partial x = 0$ (shifting a whole
# channel changes nothing after normalisation) and $\sum \hat x\,\partial L/\partial x = 0$ (nor does
# scaling it; exactly so only for $\varepsilon = 0$, as $\varepsilon$ lets the output grow a little with
# the channel's scale, so the cell checks the two sums with `eps=0`). In evaluation the statistics are constants and the gradient is just $\gamma\,g/\sqrt{r_{\sigma^2} + \varepsilon}$.
#
# ## Your turn: `BatchNorm.backward`
# Forward saved `x_hat` and `inv_std` (see the docstring in `minigrad/functional/norm.py`). The cell compares
# your gradients for the input, $\gamma$ and $\beta$ with central differences of a NumPy batch norm written
# here, in training and in evaluation, and checks the two identities above.

# %%
require("norm.batch_norm_backward", "autograd.toposort")
xs, gs = rng.standard_normal((3, 2, 3, 2)) * 2 + 1, rng.standard_normal((3, 2, 3, 2))
gamma, beta = np.array([1.5, -0.7]), np.array([0.2, 0.3])
eps = 1e-5


def bn_train_numpy(x, gamma, beta):
    mu, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    return gamma[:, None, None] * (x - mu) / np.sqrt(var + eps) + beta[:, None, None]


x_t, w_t, b_t = (mg.tensor(v.copy(), requires_grad=True) for v in (xs, gamma, beta))
F.batch_norm(x_t, mg.zeros(2, dtype=np.float64), mg.ones(2, dtype=np.float64), w_t, b_t, training=True).backward(gs)
loss = lambda x, w, b: (bn_train_numpy(x, w, b) * gs).sum()  # noqa: E731
verdict("norm.batch_norm_backward", "dL/dx in training", x_t.grad, numeric_gradient(lambda x: loss(x, gamma, beta), xs.copy()), 1e-7)
verdict("norm.batch_norm_backward", "dL/dgamma", w_t.grad, numeric_gradient(lambda w: loss(xs, w, beta), gamma.copy()), 1e-7)
verdict("norm.batch_norm_backward", "dL/dbeta", b_t.grad, numeric_gradient(lambda b: loss(xs, gamma, b), beta.copy()), 1e-7)
x_0 = mg.tensor(xs.copy(), requires_grad=True)  # the identities, exact for eps = 0
F.batch_norm(x_0, None, None, mg.tensor(gamma), None, training=True, eps=0.0).backward(gs)
x_hat = (xs - xs.mean(axis=(0, 2, 3), keepdims=True)) / xs.std(axis=(0, 2, 3), keepdims=True)
# the two sums must be 0: compared as 1 + sum with 1, so the relative error measures them absolutely
verdict("norm.batch_norm_backward", "per-channel sum of dL/dx (zero)", x_0.grad.sum(axis=(0, 2, 3)) + 1.0, np.ones(2), 1e-12)
verdict("norm.batch_norm_backward", "per-channel sum of x_hat * dL/dx (zero)",
        (x_hat * x_0.grad).sum(axis=(0, 2, 3)) + 1.0, np.ones(2), 1e-12)

running_mean, running_var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
x_e = mg.tensor(xs.copy(), requires_grad=True)
F.batch_norm(x_e, mg.tensor(running_mean), mg.tensor(running_var), mg.tensor(gamma), mg.tensor(beta),
             training=False).backward(gs)
verdict("norm.batch_norm_backward", "dL/dx in evaluation", x_e.grad,
        gs * (gamma / np.sqrt(running_var + eps))[:, None, None], 1e-12);

# %% [markdown]
# ## Upsampling by interpolation: where each output pixel samples the input
# `F.interpolate(x, scale_factor=2, mode="bilinear")` gives every output pixel a *source position* in the
# input's pixel coordinates (pixel $k$ has its centre at $k$) and mixes the four input pixels around it,
# weighted by how close they are. Where that position lies is what `align_corners` decides (per axis,
# input size $n$, output size $o$):
#
# * `align_corners=True`: $\text{src} = i\,\frac{n-1}{o-1}$: the centres of the corner pixels line up, the
#   grid is stretched between them.
# * `align_corners=False` (PyTorch's default): $\text{src} = (i + \tfrac12)\,\frac{n}{o} - \tfrac12$: the *edges*
#   of the images line up and each output pixel samples at its own centre; positions left of the first
#   pixel's centre are clamped to it (and past the last pixel the last one is used).
#
# Bilinear interpolation reproduces a linear function exactly, so interpolating the images "row index"
# and "column index" gives each output pixel's source position. Drawn over the input's 4x4 pixels:
# circles are the positions the formula gives, crosses where the layer actually sampled (the same, but
# clamped at the borders).

# %%
n, o = 4, 8
rows_ramp, cols_ramp = np.indices((n, n)).astype(float)
fig, axes = plt.subplots(1, 2, figsize=(12, 6))
source = {}
for ax, corners in zip(axes, (True, False)):
    ramps = mg.tensor(np.stack([rows_ramp, cols_ramp])[None])
    up = F.interpolate(ramps, scale_factor=2, mode="bilinear", align_corners=corners).numpy()[0]
    source[corners] = up[1, 0]  # the column each output pixel of row 0 samples
    i = np.arange(o)
    formula = i * (n - 1) / (o - 1) if corners else (i + 0.5) * n / o - 0.5
    for k in range(n + 1):  # the input's pixels, edges at k - 0.5
        ax.axhline(k - 0.5, color="0.6", lw=1)
        ax.axvline(k - 0.5, color="0.6", lw=1)
    pc_r, pc_c = np.indices((n, n))
    ax.plot(pc_c.ravel(), pc_r.ravel(), "k.", ms=12, label="input pixel centres")
    fr, fc = np.meshgrid(formula, formula, indexing="ij")
    ax.plot(fc.ravel(), fr.ravel(), "o", mfc="none", mec="tab:blue", ms=9, label="formula's source positions")
    ax.plot(up[1].ravel(), up[0].ravel(), "x", color="tab:red", ms=8, mew=2, label="where the layer sampled")
    ax.set_xlim(-0.9, n - 0.1)
    ax.set_ylim(n - 0.1, -0.9)
    ax.set_aspect("equal")
    ax.set_title(f"4x4 -> 8x8, align_corners={corners}")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=9)
    assert np.allclose(source[corners], np.clip(formula, 0, n - 1), atol=1e-12)
plt.show()
print("align_corners=True  samples columns", source[True].round(3))
print("align_corners=False samples columns", source[False].round(3))
assert source[True][0] == 0 and source[True][-1] == n - 1  # corner centres on corner centres
assert np.allclose(np.diff(source[False])[1:-1], n / o)  # evenly spaced, half an input pixel apart

# %% [markdown]
# ## Your turn: the backward pass of bilinear upsampling
# Each output value is a weighted sum of (at most) four input pixels, $y = A x$ for a sparse matrix $A$ with
# the bilinear weights in its rows. So $\partial L/\partial x = A^\top g$: **each output's gradient goes back
# to the pixels it was interpolated from, with the same weights**, and where several outputs read one pixel
# their contributions add. Bilinear is separable: a 1-D interpolation along the rows, then one along the
# columns, so the adjoint is the two 1-D adjoints in the opposite order. Forward saved, per axis, the two
# source indices and the weights of every output position (see `minigrad/functional/interp.py`).
#
# The cell builds $A$ column by column (the forward pass of every one-hot image), and compares your
# backward pass with $A^\top g$, upsampling and downsampling, with both `align_corners`.

# %%
require("interp.upsample_backward", "autograd.toposort")


def interpolation_matrix(shape, **kw):
    """A with interpolate(x).ravel() = A @ x.ravel(), built from the forward pass of each one-hot image."""
    columns = []
    for k in range(int(np.prod(shape))):
        one = np.zeros(int(np.prod(shape)))
        one[k] = 1.0
        with mg.no_grad():
            columns.append(F.interpolate(mg.tensor(one.reshape(shape)), **kw).numpy().ravel())
    return np.stack(columns, axis=1)


for shape, kw in [((1, 2, 3, 4), dict(scale_factor=2, align_corners=False)),
                  ((1, 1, 4, 3), dict(scale_factor=2, align_corners=True)),
                  ((2, 1, 5, 7), dict(size=(3, 4), align_corners=False)),
                  ((1, 1, 3, 3), dict(size=(7, 5), align_corners=True))]:
    A = interpolation_matrix(shape, mode="bilinear", **kw)
    xi = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    yi = F.interpolate(xi, mode="bilinear", **kw)
    gi = rng.standard_normal(yi.shape)
    yi.backward(gi)
    verdict("interp.upsample_backward", f"{shape[2:]} -> {yi.shape[2:]}, align_corners={kw['align_corners']}",
            xi.grad, (A.T @ gi.ravel()).reshape(shape), 1e-12)

# %% [markdown]
# ## Your turn: the soft Dice loss
# The family's losses compare a predicted probability map $p$ (the sigmoid of the logits) with a binary target
# $t$. The soft Dice coefficient of one image, with a smoothing constant $s$ that keeps an empty target and an
# empty prediction at $D = 1$, is
# $$D = \frac{2 I + s}{S + s},\qquad I = \sum p\,t,\quad S = \sum p + \sum t,$$
# and `soft_dice_loss` (in `unet/losses.py`, UNet++'s $s = 10^{-5}$) is $1 - D$ averaged over the $G$ images
# (or, with `per_image=False`, one $D$ over the whole batch). By the quotient rule, for every pixel
# $$\frac{\partial D}{\partial p} = \frac{2t\,(S + s) - (2I + s)}{(S + s)^2} = \frac{2t - D}{S + s}:$$
# raising $p$ on an object pixel raises $D$ (lowers the loss) and on a background pixel lowers it.
# Forward saved `inter` $= 2I + s$ and `total` $= S + s$ per image, shaped to broadcast against $p$. The
# cell compares your backward pass with central differences of a NumPy Dice, per image and per batch.

# %%
require("loss.dice_backward", "autograd.toposort")
from unet.losses import soft_dice_loss  # noqa: E402

probs = rng.uniform(0.05, 0.95, (2, 1, 5, 6))
target = (rng.random((2, 1, 5, 6)) < 0.4).astype(float)


def dice_numpy(p, per_image, s=1e-5):
    axes = (1, 2, 3) if per_image else (0, 1, 2, 3)
    inter, total = (p * target).sum(axis=axes), (p + target).sum(axis=axes)
    return float(np.mean(1 - (2 * inter + s) / (total + s)))


for per_image in (True, False):
    p_t = mg.tensor(probs.copy(), requires_grad=True)
    dice_value = soft_dice_loss(p_t, target, per_image=per_image)
    verdict("loss.dice_backward", f"the loss value, per_image={per_image}", dice_value.item(),
            dice_numpy(probs, per_image), 1e-12)
    dice_value.backward()
    verdict("loss.dice_backward", f"dL/dp, per_image={per_image}", p_t.grad,
            numeric_gradient(lambda p: dice_numpy(p, per_image), probs.copy()), 1e-7)

# %% [markdown]
# ## The checkerboard: transposed convolution against upsample-then-convolve
# Notebook 4 counted the kernel stamps of a stride-2 transposed convolution: with a 3x3 kernel the output
# pixels receive 1, 2 or 4 of them, a pattern that repeats every second pixel. With trained weights the
# pattern shows up as a *checkerboard artefact* (Odena, Dumoulin and Olah, "Deconvolution and checkerboard
# artifacts", Distill 2016). Bilinear upsampling followed by an ordinary 3x3 convolution treats every output
# pixel alike. Below, a smooth 16x16 image doubled both ways, with the same random positive 3x3 kernel (times
# 4 for the transposed convolution, which spreads each input pixel over 4 output pixels, so that both outputs
# have the same mean level).
#
# We measure the artefact as the share of the output at the **alternation frequencies**, the patterns
# $(-1)^r$, $(-1)^c$ and $(-1)^{r+c}$: $\max_\text{pattern} |\sum y \cdot \text{pattern}| / \sum |y|$ over the interior
# (two border pixels dropped). A smooth image has almost none.

# %%
require("conv.conv_transpose2d", "conv.conv2d_backward", "conv.im2col", "conv.col2im")


def checkerboard(y, margin=2):
    """The largest share of y (interior) at the three alternation frequencies of a 2x2 period."""
    y = y[margin:-margin, margin:-margin]
    r, c = np.indices(y.shape)
    return max(abs((y * (-1.0) ** p).sum()) for p in (r, c, r + c)) / np.abs(y).sum()


size = 16
r16, c16 = np.indices((size, size))
smooth = 1 + 0.5 * np.sin(2 * np.pi * r16 / size) * np.cos(2 * np.pi * c16 / (1.5 * size))
kernel = rng.uniform(0.5, 1.5, (1, 1, 3, 3))
kernel /= kernel.sum()
with mg.no_grad():
    x16 = mg.tensor(smooth[None, None])
    transposed = F.conv_transpose2d(x16, mg.tensor(4 * kernel), stride=2, padding=1, output_padding=1).numpy()[0, 0]
    upsampled = F.interpolate(x16, scale_factor=2, mode="bilinear", align_corners=False)
    bilinear_conv = F.conv2d(upsampled, mg.tensor(kernel), padding=1).numpy()[0, 0]
measured = {"transposed": checkerboard(transposed), "bilinear": checkerboard(bilinear_conv)}

fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
low, high = min(transposed.min(), bilinear_conv.min()), max(transposed.max(), bilinear_conv.max())
axes[0].imshow(smooth, cmap="viridis")
axes[0].set_title("input, 16x16")
for ax, img, title in [(axes[1], transposed, f"conv_transpose2d, 3x3, stride 2\ncheckerboard {measured['transposed']:.3f}"),
                       (axes[2], bilinear_conv, f"bilinear x2, then conv2d 3x3\ncheckerboard {measured['bilinear']:.4f}")]:
    im = ax.imshow(img, cmap="viridis", vmin=low, vmax=high)
    ax.set_title(title)
fig.colorbar(im, ax=axes[1:], label="output value (one scale for both outputs)", shrink=0.85)
plt.show()
print("checkerboard share:", {k: round(float(v), 4) for k, v in measured.items()})
assert transposed.shape == bilinear_conv.shape == (32, 32)
assert measured["transposed"] > 0.1 and measured["bilinear"] < 0.01
assert measured["transposed"] > 20 * measured["bilinear"]

# %% [markdown]
# ## Exercises
# **1.** A new `BatchNorm2d` (running mean 0, momentum 0.1) sees 10 training batches whose channel mean is
# exactly 2. What is its running mean then? Give a formula, and check it with the cell.

# %%
running_mean_after_10 = None  # exercise 1: a number

# %%
if running_mean_after_10 is None:
    print("Exercise 1: not tried yet")
else:
    ex_bn = nn.BatchNorm2d(1)
    for _ in range(10):
        noise = rng.standard_normal((4, 1, 3, 3))
        ex_bn(mg.tensor(2.0 + noise - noise.mean()))
    assert abs(running_mean_after_10 - values(ex_bn.running_mean)[0]) < 1e-9, (
        "each step keeps 0.9 of the running mean and adds 0.1 of the batch mean")
    print("Exercise 1: correct")

# %% [markdown]
# **2.** Upsampling a row of 4 pixels to 8, which input column does output pixel 3 sample with
# `align_corners=True`, and which with `align_corners=False`?

# %%
column_true_3 = None  # exercise 2: a number
column_false_3 = None  # exercise 2: a number

# %%
if column_true_3 is None or column_false_3 is None:
    print("Exercise 2: not tried yet")
else:
    assert abs(column_true_3 - source[True][3]) < 1e-12, "align_corners=True: i (n - 1) / (o - 1)"
    assert abs(column_false_3 - source[False][3]) < 1e-12, "align_corners=False: (i + 1/2) n / o - 1/2"
    print("Exercise 2: correct")

# %% [markdown]
# **3.** Upsample an 8x8 image of ones by 2 (bilinear, `align_corners=False`) and sum the output. Which
# gradient does each input pixel receive? (Every pixel gets the same, borders included: find out why, the
# clamped positions of the figure above help. With `align_corners=True` they would not.)

# %%
adjoint_of_ones = None  # exercise 3: a number

# %%
if adjoint_of_ones is None:
    print("Exercise 3: not tried yet")
else:
    ones_in = mg.tensor(np.ones((1, 1, 8, 8)), requires_grad=True)
    F.interpolate(ones_in, scale_factor=2, mode="bilinear", align_corners=False).sum().backward()
    assert np.allclose(ones_in.grad, adjoint_of_ones), (
        f"the gradients are {np.unique(ones_in.grad.round(6))}: each output's weights sum to 1, and there are 4 outputs per input")
    print("Exercise 3: correct")

# %% [markdown]
# **4.** In the Dice loss, raising $p$ on a background pixel (target 0): does the loss go up (+1) or down (-1)?

# %%
background_sign = None  # exercise 4: +1 or -1

# %%
if background_sign is None:
    print("Exercise 4: not tried yet")
else:
    background = np.argwhere(target.ravel() == 0)[0, 0]
    assert background_sign == np.sign(p_t.grad.ravel()[background]), "dD/dp = (2t - D) / (S + s) with t = 0"
    print("Exercise 4: correct")

# %% [markdown]
# *Measured run time: 27 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 10.8); about 8 s as a script on the same machine.*
