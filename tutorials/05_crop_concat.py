# %% [markdown]
# # 4. Crop and concatenate: the U-Net's skip connections
#
# **You will learn:** why the contracting path's feature maps must be cropped before they are
# concatenated with the expansive path, the paper's size table, and what an invalid input size does.

# %%
import numpy as np

import minigrad as mg
import minigrad.functional as F
from unet import UNet

# %% [markdown]
# ## Valid convolutions shrink the maps
# Every unpadded 3x3 conv trims one pixel per side. So at each level the contracting path's
# map is larger than the upsampled map coming back up, and `center_crop` trims it.

# %%
model = UNet()  # the paper's network: 31,030,658 parameters
print("parameters:", f"{model.num_parameters():,}")
print("572 ->", model.output_size(572))
for skip, up in model.skip_crops(572):
    print(f"skip crop {skip} -> {up}")

# %% [markdown]
# ## A skip connection by hand

# %%
skip = mg.tensor(np.random.default_rng(0).standard_normal((1, 64, 568, 568)).astype(np.float32))
up = mg.tensor(np.zeros((1, 64, 392, 392), np.float32))
joined = mg.cat([F.crop_like(skip, up), up], dim=1)
print("concatenated:", joined.shape)

# %% [markdown]
# ## Invalid sizes
# Pooling halves the size, so every level needs an even size. An invalid input gets an error
# naming the nearest valid sizes.

# %%
try:
    model.output_size(570)
except ValueError as err:
    print(err)
print("valid sizes near 200:", [n for n in range(180, 240) if model._trace(n)])

# %% [markdown]
# ## Exercises
# 1. When the size difference is odd, which side loses the extra pixel? Read `F.center_crop`'s docstring and check.
# 2. Compute the size table for a depth-3 U-Net with 188x188 input.
# 3. Why does `padding="same"` need no crops?
