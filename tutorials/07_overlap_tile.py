# %% [markdown]
# # 7. Overlap-tile inference
#
# **You will learn:** how a valid-padding U-Net segments an image larger than any tile (the paper's
# Fig. 2): mirror the borders, slide tiles whose outputs tile the image, stitch; and why the tile
# stride must be a multiple of $2^\text{depth}$, shown with a stride that is not.
#
# **Tasks:** none new. This notebook runs the U-Net's forward pass, so it needs the tasks of notebooks
# 3-5 (`conv.im2col`, `conv.col2im`, `conv.conv_transpose2d`, `unet.forward`); check them with
# `python -m minigrad_course check <task>`.

# %%
import math

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad_course import require
from unet import UNet
from unet.data import synthetic_cells
from unet.inference import predict_probabilities, tile_plan

# %% [markdown]
# ## The plan
# A valid U-Net maps an input tile of size $t$ to the $o \times o$ pixels at its centre, $o < t$: every
# output pixel needs a margin $m = (t - o)/2$ of context on each side. So we mirror the image's borders
# by $m$, and slide input tiles so that their **outputs** tile the image. `tile_plan` chooses the stride:
# the largest multiple of $2^\text{depth}$ that is at most $o$.

# %%
require("unet.forward", "conv.im2col", "conv.col2im", "conv.conv_transpose2d")
mg.manual_seed(0)
model = UNet(depth=2, base_channels=4).to(np.float64)
image, _ = synthetic_cells(size=200, n_cells=25, seed=3)
stride, margin, (ny, nx), out = tile_plan(model, *image.shape, tile=92)
print(f"input tile 92 -> output {out}, stride {stride}, margin {margin}, {ny} x {nx} tiles")
assert (out, margin, stride) == (52, 20, 52) and stride % 2**model.depth == 0

# %%
fig, ax = plt.subplots(figsize=(7, 7))
full = (ny - 1) * stride + out  # the outputs cover full x full pixels, a bit more than the image
padded_view = np.pad(image, ((margin, full - 200 + margin), (margin, full - 200 + margin)), mode="symmetric")
ax.imshow(padded_view, cmap="gray")
ax.add_patch(patches.Rectangle((margin - 0.5, margin - 0.5), 200, 200, fill=False, ec="cyan", lw=1.5, ls="--"))
for i in range(ny):
    for j in range(nx):
        ax.add_patch(patches.Rectangle((j * stride + margin - 0.5, i * stride + margin - 0.5), out, out,
                                       fill=False, ec="red"))
ax.add_patch(patches.Rectangle((-0.5, -0.5), 92, 92, fill=False, ec="yellow", lw=2.5))
ax.set_title("cyan: the image; outside it, its mirror image\nred: output tiles; yellow: the first input tile")
ax.set_xlabel("x (pixels of the mirrored image)")
ax.set_ylabel("y")
plt.show()

# %% [markdown]
# ## Tiles equal the whole image at once
# A network made of convolutions is translation equivariant, with one exception: a 2x2 max-pool sees the
# pixel grid in blocks of 2, and after `depth` pools in blocks of $2^\text{depth}$. Two tiles whose origins
# differ by a multiple of $2^\text{depth}$ see their pools' blocks line up exactly as they do in one pass
# over the whole image. Then stitching tiles gives **the same numbers** as running the network on the whole
# (mirror-padded) image. Here is the stitching written out, with the stride as a parameter:

# %%
def stitch(model, image, tile, stride):
    """Overlap-tile prediction with a given stride: class probabilities (2, H, W)."""
    out = model.output_size(tile)
    margin = (tile - out) // 2
    h, w = image.shape
    n = max(1, math.ceil((max(h, w) - out) / stride) + 1)  # tiles per axis
    full = (n - 1) * stride + out
    padded = np.pad(image, ((margin, full - h + margin), (margin, full - w + margin)), mode="symmetric")
    probs = np.zeros((2, full, full))
    with mg.no_grad():
        for y in range(0, n * stride, stride):
            for x in range(0, n * stride, stride):
                logits = model(mg.tensor(padded[None, None, y : y + tile, x : x + tile].astype(np.float64)))
                probs[:, y : y + out, x : x + out] = F.softmax(logits, dim=1).numpy()[0]  # later tiles overwrite
    return probs[:, :h, :w]


whole = predict_probabilities(model, image, tile=model.valid_input_size(200 + 2 * margin))  # one tile: all of it
tiled = predict_probabilities(model, image, tile=92)
differences = {s: np.abs(stitch(model, image, 92, s) - whole).max() for s in (52, 48, 50)}
print("max difference, predict_probabilities tiled vs whole:", np.abs(tiled - whole).max())
for s, d in differences.items():
    print(f"stride {s} ({'a' if s % 4 == 0 else 'NOT a'} multiple of 2^depth = 4): max difference from whole {d:.2g}")
assert np.abs(tiled - whole).max() < 1e-6
assert differences[52] < 1e-6 and differences[48] < 1e-6  # multiples of 4: identical up to float32 storage
assert differences[50] > 0.01  # the counterexample: the pools' blocks no longer line up

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
for ax, s in zip(axes, (48, 50)):
    diff = np.abs(stitch(model, image, 92, s) - whole)[1]
    im = ax.imshow(diff, cmap="magma", vmin=0, vmax=0.1)
    ax.set_title(f"stride {s}: |tiled - whole| of the object probability\nlargest difference {diff.max():.2g}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
fig.colorbar(im, ax=axes, label="absolute difference (one scale; clipped at 0.1)", shrink=0.8)
plt.show()

# %% [markdown]
# With stride 50 the first row and column of tiles still agree (their origin 0 is a multiple of 4), every
# tile that starts at 50, 100 or 150 does not: the differences form bands. That is why `tile_plan` rounds
# the stride down to a multiple of $2^\text{depth}$ (and why the paper's input tiles are $572 = 16k + 12$).

# %% [markdown]
# ## Exercises
# **1.** Which strides between 40 and 52 give stitched tiles identical to the whole image for this
# depth-2 network? Predict, then measure with `stitch`.

# %%
good_strides = None  # exercise 1: a set of integers

# %%
if good_strides is None:
    print("Exercise 1: not tried yet")
else:
    assert set(good_strides) == {40, 44, 48, 52}, "multiples of 2^depth = 4"
    print("Exercise 1: correct")

# %% [markdown]
# **2.** Mirror versus zeros: pad the image with zeros instead of mirroring (`mode="constant"` in
# `stitch`). Do the predictions near the image border change, `True` or `False`?

# %%
border_changes = None  # exercise 2: True or False

# %%
if border_changes is None:
    print("Exercise 2: not tried yet")
else:
    assert border_changes is True, "the border pixels' context is the padding: change it and they change"
    print("Exercise 2: correct: mirrored context looks like tissue, zeros look like an empty dish")

# %% [markdown]
# *Measured run time: 3.9 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 4.5).*
