# %% [markdown]
# # 8. The same code on a GPU (CuPy)
#
# **You will learn:** that minigrad runs unchanged on a GPU: only `minigrad/backend.py` knows
# NumPy from CuPy, every op takes its array module from its inputs. On a machine without a
# GPU this notebook says so and skips the GPU part.

# %%
import time

import numpy as np

import minigrad as mg
from unet import UNet

print("GPU available:", mg.gpu_available())

# %%
def time_step(device, size=188, batch=2):
    mg.manual_seed(0)
    model = UNet(depth=3, base_channels=16).to(device)
    x = mg.tensor(np.random.default_rng(0).standard_normal((batch, 1, size, size)).astype(np.float32), device=device)
    model(x).sum().backward()  # warm-up
    mg.backend.synchronize(device)
    t0 = time.perf_counter()
    model(x).sum().backward()
    mg.backend.synchronize(device)
    return time.perf_counter() - t0


print(f"CPU step: {time_step('cpu'):.3f} s")
if mg.gpu_available():
    print(f"GPU step: {time_step('cuda'):.3f} s")
else:
    print("No usable GPU here (CuPy missing or no CUDA device): skipped the GPU timing.")

# %% [markdown]
# ## Exercises
# 1. On a GPU machine: move a trained model with `model.to("cuda")` and predict an image.
# 2. Save a checkpoint on the GPU and load it on the CPU: why does this just work? (`minigrad.save` stores host arrays.)
