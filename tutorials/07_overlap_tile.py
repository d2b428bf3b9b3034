# %% [markdown]
# # 7. Overlap-tile inference
#
# **You will learn:** how a valid-padding U-Net segments an image larger than any tile:
# mirror the borders, slide tiles whose outputs tile the image, stitch, and why the tile
# stride must be a multiple of 2^depth.

# %%
import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
from unet import UNet
from unet.data import synthetic_cells
from unet.inference import predict_probabilities, tile_plan

# %%
mg.manual_seed(0)
model = UNet(depth=2, base_channels=4).to(np.float64)
image, _ = synthetic_cells(size=200, n_cells=25, seed=3)
stride, margin, (ny, nx), out = tile_plan(model, *image.shape, tile=92)
print(f"input tile 92 -> output {out}, stride {stride}, margin {margin}, {ny} x {nx} tiles")

# %%
fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(np.pad(image, margin, mode="symmetric"), cmap="gray")
for i in range(ny):
    for j in range(nx):
        ax.add_patch(patches.Rectangle((j * stride + margin, i * stride + margin), out, out, fill=False, ec="red"))
ax.add_patch(patches.Rectangle((0, 0), 92, 92, fill=False, ec="yellow", lw=2))
ax.set_title("red: output tiles; yellow: the first input tile (with mirrored context)")
plt.show()

# %% [markdown]
# ## Tiles equal the whole image at once
# Because the stride is a multiple of 2^depth, the pooling grids of all tiles line up.

# %%
tiled = predict_probabilities(model, image, tile=92)
whole = predict_probabilities(model, image, tile=model.valid_input_size(200 + 2 * margin))
print("max difference tiled vs whole:", np.abs(tiled - whole).max())

# %% [markdown]
# ## Exercises
# 1. Force a stride that is not a multiple of 4 (edit `tile_plan`) and measure the difference.
# 2. Why does mirroring give better borders than zero padding?
