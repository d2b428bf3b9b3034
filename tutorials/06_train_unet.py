# %% [markdown]
# # 6. Training the U-Net on real nuclei
#
# **You will learn:** the paper's weight map (eq. 2) and separation borders, elastic
# deformation, and what the border weight w0 does for touching nuclei. The training runs
# here are short (well under a minute each); `unet train` runs the full recipe.

# %%
import matplotlib.pyplot as plt
import numpy as np

from unet.data import elastic_displacement, load_nuclei, sample_tile, split_dataset
from unet.inference import predict_mask
from unet.metrics import evaluate
from unet.train import TrainConfig, model_from_checkpoint, train
from unet.weights import separate_touching, weight_map

# %% [markdown]
# ## The image and its weight map
# Background pixels between touching nuclei become a thin separation line of their own, with
# a large weight: w = w_c + w0 exp(-(d1 + d2)^2 / 2 sigma^2).

# %%
image, instances = load_nuclei()
crop = (slice(0, 160), slice(0, 160))
w = weight_map(instances[crop])
fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
axes[0].imshow(image[crop], cmap="gray")
axes[0].set_title("image")
axes[1].imshow(separate_touching(instances[crop]) > 0, cmap="gray")
axes[1].set_title("target with separation borders")
im = axes[2].imshow(w, cmap="jet")
axes[2].set_title("weight map (w0=10, sigma=5)")
fig.colorbar(im, ax=axes[2])
plt.show()

# %% [markdown]
# ## Elastic deformation
# Random displacement vectors on a coarse 3x3 grid (std 10 px), interpolated smoothly.

# %%
rng = np.random.default_rng(0)
train_regions, eval_regions = split_dataset("nuclei")
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
for ax in axes:
    tile, target, _ = sample_tile(train_regions[0], 188, 100, rng)
    ax.imshow(tile, cmap="gray")
    ax.set_title("augmented tile")
plt.show()
dy, dx = elastic_displacement((40, 40), np.random.default_rng(1))
plt.quiver(dx[::3, ::3], -dy[::3, ::3])
plt.title("a smooth displacement field")
plt.show()

# %% [markdown]
# ## Two short trainings: w0 = 10 and w0 = 0

# %%
results = {}
for w0 in (10.0, 0.0):
    cfg = TrainConfig(epochs=3, steps_per_epoch=12, batch_size=2, w0=w0, out=f"runs/tutorial_w0_{int(w0)}")
    results[w0] = train(cfg, progress=False, figures=False)
    print(f"w0={w0:4}: iou {results[w0]['iou']:.3f}, object F1 {results[w0]['object_f1']:.3f}")

# %%
plt.plot([h["loss"] for h in results[10.0]["history"]], "o-", label="w0=10")
plt.plot([h["loss"] for h in results[0.0]["history"]], "o-", label="w0=0")
plt.xlabel("epoch")
plt.ylabel("weighted cross-entropy")
plt.legend()
plt.show()

# %%
region = eval_regions[0]
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
axes[0].imshow(region.instances > 0, cmap="gray")
axes[0].set_title("truth")
for ax, w0 in zip(axes[1:], (10.0, 0.0)):
    model, _ = model_from_checkpoint(f"runs/tutorial_w0_{int(w0)}/checkpoint.npz")
    pred = predict_mask(model, region.image)
    ax.imshow(pred, cmap="gray")
    ax.set_title(f"w0={w0}: object F1 {evaluate(pred, region.instances)['object_f1']:.2f}")
plt.show()

# %% [markdown]
# ## Exercises
# 1. Train longer (`unet train`) and compare w0 = 10 with w0 = 0 on object F1.
# 2. Turn off the elastic deformation in `sample_tile`. What happens to held-out scores?
# 3. Plot the weight map for sigma = 2 and sigma = 10.
