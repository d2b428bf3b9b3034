# %% [markdown]
# # 5. Crop and concatenate: the U-Net's skip connections
#
# **You will learn:** the U-Net's shape, layer by layer (a size table and a diagram drawn from the
# model itself); why the contracting path's feature maps must be cropped before they are
# concatenated with the expansive path; where the gradient of a crop and of a concatenation goes;
# and which input sizes a valid-padding U-Net accepts.
#
# **Your tasks in this notebook:**
#
# | task | file | what you write |
# |---|---|---|
# | `crop.backward` | `minigrad/functional/crop.py` | `CenterCrop.backward` |
# | `unet.forward` | `unet/model.py` | the crop-and-concatenate lines of `UpBlock.forward` |
#
# Check each with `python -m minigrad_course check <task>`. Needs: notebooks 1-4 (the U-Net's
# forward and backward run every layer you wrote so far).

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad_course import require, verdict
from unet import UNet

# %% [markdown]
# ## The network, layer by layer
# Every unpadded ("valid") 3x3 convolution trims one pixel per side, every 2x2 max-pool halves, every 2x2
# up-convolution doubles. `UNet.describe(n)` lists each layer for an $n\times n$ input (computed from the
# layers' own settings, no forward pass needed) and `UNet.summary(n)` prints it. The paper's network:

# %%
model = UNet()  # the paper's network
rows = model.describe(572)
print(model.summary(572))
assert rows[0]["shape_in"] == (1, 572, 572) and rows[-1]["shape_out"] == (2, 388, 388)
assert sum(r["parameters"] for r in rows) == model.num_parameters() == 31_030_658
assert [r["crop"] for r in rows if r["crop"]] == [(64, 56), (136, 104), (280, 200), (568, 392)]

# %% [markdown]
# Drawn from the same rows: the contracting path goes down the left, the expansive path up the right,
# and at every level the skip connection carries the left map across, **cropped** to the size of the
# upsampled map it is concatenated with.

# %%
def draw_unet(model, n, ax):
    rows = model.describe(n)
    level, x, pos = 0, 0.0, {}
    for r in rows:
        name = r["layer"]
        if name.startswith("pool"):
            level += 1
        elif name.endswith(".up"):
            level -= 1
        if name.endswith(".up") or name.startswith("pool") or name.endswith("concat"):
            continue
        c, h, _ = r["shape_out"]
        x += 1.0
        pos[name] = (x, -level)
        color = "tab:orange" if name == "head" else ("tab:green" if name.startswith("bottleneck") else "tab:blue")
        ax.add_patch(plt.Rectangle((x - 0.35, -level - 0.3), 0.7, 0.6, color=color, alpha=0.25))
        ax.text(x, -level, f"{c}\n{h}x{h}", ha="center", va="center", fontsize=7)
    names = list(pos)
    for a, b in zip(names, names[1:]):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        kind = "pool" if y1 < y0 else ("up" if y1 > y0 else "conv")
        color = {"pool": "tab:red", "up": "tab:purple", "conv": "black"}[kind]
        ax.annotate("", xy=(x1 - 0.35, y1), xytext=(x0 + 0.35, y0),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2))
    for r in rows:
        if r["crop"]:
            lv = int(r["layer"][2:].split(".")[0])
            src, dst = pos[f"down{lv}.conv2"], pos[f"up{lv}.conv.conv1"]
            ax.annotate("", xy=(dst[0] - 0.35, dst[1] + 0.15), xytext=(src[0] + 0.35, src[1] + 0.15),
                        arrowprops=dict(arrowstyle="-|>", color="grey", ls="--", lw=1.2))
            ax.text((src[0] + dst[0]) / 2, src[1] + 0.22, f"crop {r['crop'][0]} -> {r['crop'][1]}, concat",
                    ha="center", fontsize=8, color="dimgrey")
    for label, color in (("3x3 conv + ReLU", "black"), ("2x2 max-pool", "tab:red"),
                         ("2x2 up-conv", "tab:purple"), ("skip: crop + concat", "grey")):
        ax.plot([], [], color=color, label=label)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0.3, x + 0.7)
    ax.set_ylim(-model.depth - 0.6, 0.6)
    ax.set_xticks([])
    ax.set_yticks(-np.arange(model.depth + 1))
    ax.set_yticklabels([f"level {k}" for k in range(model.depth + 1)])
    ax.set_title(f"U-Net (depth {model.depth}) on a {n}x{n} input: boxes give channels and size of each conv's output")


fig, ax = plt.subplots(figsize=(15, 5.5))
draw_unet(model, 572, ax)
plt.show()

# %% [markdown]
# ## Crop: the centre, and which side loses an odd pixel
# `F.center_crop(x, size)` keeps the centre: `top = (H - h) // 2`. When $H - h$ is odd the extra
# pixel is cut from the bottom (and from the right): cropping 5 rows to 2 keeps rows 1 and 2.

# %%
x5 = mg.tensor(np.arange(25.0).reshape(1, 1, 5, 5))
print(F.center_crop(x5, 2).numpy()[0, 0])
assert np.array_equal(F.center_crop(x5, 2).numpy()[0, 0], [[6, 7], [11, 12]])  # rows 1-2, columns 1-2
assert np.array_equal(F.center_crop(x5, 3).numpy()[0, 0], np.arange(25.0).reshape(5, 5)[1:4, 1:4])

# %% [markdown]
# ## Your turn: `CenterCrop.backward`
# A crop only selects, so its gradient is the upstream gradient put back where the kept pixels came
# from, with zeros for the pixels that were cut away (forward saved `self.window` and `self.x_shape`).

# %%
require("crop.backward", "autograd.toposort", "gradcheck.central_difference")
rng = np.random.default_rng(0)
xc = mg.tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
gc = rng.standard_normal((2, 3, 4, 3))
F.center_crop(xc, (4, 3)).backward(gc)
expected = np.zeros((2, 3, 7, 6))
expected[:, :, 1:5, 1:4] = gc  # top = (7 - 4) // 2 = 1, left = (6 - 3) // 2 = 1
verdict("crop.backward", "gradient of a (7, 6) -> (4, 3) crop", xc.grad, expected, 0)
xc.zero_grad()
assert mg.gradcheck(lambda x: F.center_crop(x, (4, 3)), [xc])
print("crop.backward: gradcheck OK")

# %% [markdown]
# ## A skip connection and its gradient
# The expansive path's map `up` is concatenated with the crop of the skip `skip`:
# `joined = cat([crop_like(skip, up), up], dim=1)`. Backward, the concatenation splits the gradient by
# channels, and the crop pads the skip's share with zeros: the border of the skip map that was cut
# away gets **no** gradient through the skip (it still gets one through the layers below it).

# %%
skip = mg.tensor(rng.uniform(size=(1, 1, 8, 8)), requires_grad=True)
up = mg.tensor(rng.uniform(size=(1, 1, 4, 4)), requires_grad=True)
joined = mg.cat([F.crop_like(skip, up), up], dim=1)
G = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 2.0)])[None]  # dL/djoined: 1 on channel 0, 2 on channel 1
joined.backward(G)
fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), gridspec_kw=dict(width_ratios=[4, 4, 8, 4]))
for ax, img, title in ((axes[0], G[0, 0], "G = dL/djoined, channel 0\n(the skip's channel)"),
                       (axes[1], G[0, 1], "G, channel 1\n(up's channel)"),
                       (axes[2], skip.grad[0, 0], "dL/dskip (8x8): channel 0 of G,\nzero outside the crop's window"),
                       (axes[3], up.grad[0, 0], "dL/dup (4x4):\nchannel 1 of G")):
    im = ax.imshow(img, cmap="viridis", vmin=0, vmax=2)
    for (r, c), v in np.ndenumerate(img):
        ax.text(c, r, f"{v:g}", ha="center", va="center", color="white" if v < 1.5 else "black", fontsize=9)
    ax.set_title(title, fontsize=10)
axes[2].add_patch(plt.Rectangle((1.5, 1.5), 4, 4, fill=False, ec="tab:red", lw=2))
fig.colorbar(im, ax=axes, label="gradient (one scale)", shrink=0.8)
plt.show()
print("concatenated:", joined.shape)
assert joined.shape == (1, 2, 4, 4)
assert skip.grad[0, 0, 2:6, 2:6].min() == 1 and skip.grad.sum() == 16 and np.all(up.grad == 2)

# %% [markdown]
# ## Your turn: `UpBlock.forward`
# One up step of the U-Net: upsample, crop the skip to the upsampled map's size, concatenate **skip first**
# (the paper's order, and the order the trained weights expect), then two 3x3 convolutions. The cell
# compares a small U-Net's output with the same network written out by hand from its own layers.

# %%
require("unet.forward", "crop.backward", "conv.conv_transpose2d", "pool.max_pool2d_backward",
        "conv.conv2d_backward", "conv.im2col", "conv.col2im", "autograd.toposort", "autograd.elementwise",
        "autograd.matmul")
mg.manual_seed(0)
small = UNet(depth=2, base_channels=4).to(np.float64)
xu = mg.tensor(rng.standard_normal((1, 1, 60, 60)))


def by_hand(net, x):
    s1 = net.down1(x)
    s2 = net.down2(F.max_pool2d(s1, 2))
    h = net.bottleneck(F.max_pool2d(s2, 2))
    for block, skip_map in ((net.up2, s2), (net.up1, s1)):
        h = block.up(h)
        top = (skip_map.shape[2] - h.shape[2]) // 2
        cropped = mg.tensor(skip_map.numpy()[:, :, top : top + h.shape[2], top : top + h.shape[3]])
        h = block.conv(mg.cat([cropped, h], dim=1))
    return net.head(h)


out = small(xu)
print("output:", out.shape, " describe() says:", small.describe(60)[-1]["shape_out"])
assert out.shape[1:] == small.describe(60)[-1]["shape_out"]
verdict("unet.forward", "small U-Net output", out, by_hand(small, xu), 1e-12)
xg = mg.tensor(rng.standard_normal((1, 1, 44, 44)), requires_grad=True)
assert mg.gradcheck(lambda x, *p: small(x), [xg, *small.parameters()], mode="directional")
print("unet.forward: directional gradcheck of the whole network OK")

# %% [markdown]
# ## Which input sizes work
# Every pooling needs an even size, and the bottom must keep at least one pixel. For the paper's depth-4
# valid U-Net that means $n + 4$ divisible by $2^4 = 16$ (and $n \ge 188$). An invalid input gets an error
# naming the nearest valid sizes.

# %%
try:
    model.output_size(570)
    message = None
except ValueError as err:
    message = str(err)
print(message)
assert message is not None and "556 or 572" in message
valid = [n for n in range(180, 240) if model.valid_input_size(n) == n]
print("valid sizes in 180..239:", valid, " outputs:", [model.output_size(n) for n in valid])
assert valid == [188, 204, 220, 236] and all((n + 4) % 16 == 0 for n in valid)

# %% [markdown]
# ## Exercises
# **1.** Cropping 7 rows to 4 ($H - h$ odd): which rows of the input are kept?

# %%
rows_kept = None  # exercise 1: a list of row indices

# %%
if rows_kept is None:
    print("Exercise 1: not tried yet")
else:
    kept = F.center_crop(mg.tensor(np.arange(7.0).reshape(1, 1, 7, 1)), (4, 1)).numpy().ravel().astype(int).tolist()
    assert list(rows_kept) == kept, "top = (H - h) // 2"
    print("Exercise 1: correct: the extra row goes from the bottom")

# %% [markdown]
# **2.** Work out by hand the output size and the three skip crops of the default training
# network, `UNet(depth=3, base_channels=16)`, on a 188x188 tile; then check with `describe`.

# %%
out_188 = None  # exercise 2: the output size (an integer)
crops_188 = None  # exercise 2: the crops, bottom-up, as [(skip size, cropped size), ...]

# %%
if out_188 is None or crops_188 is None:
    print("Exercise 2: not tried yet")
else:
    net3 = UNet(depth=3, base_channels=16)
    assert out_188 == net3.output_size(188), "188 -> 184 -> 92 -> 88 -> 44 -> 40 -> 20 -> 16 -> ..."
    assert [tuple(c) for c in crops_188] == [r["crop"] for r in net3.describe(188) if r["crop"]]
    print("Exercise 2: correct")

# %% [markdown]
# **3.** With `padding="same"`, how many pixels does each skip crop remove? Answer, then check with
# `UNet(padding="same").describe(...)` (pick a size divisible by 16).

# %%
same_crop_pixels = None  # exercise 3: an integer

# %%
if same_crop_pixels is None:
    print("Exercise 3: not tried yet")
else:
    removed = {a - b for a, b in (r["crop"] for r in UNet(depth=2, base_channels=2, padding="same").describe(64) if r["crop"])}
    assert removed == {same_crop_pixels}, "padded convolutions keep the size: skip and upsampled map match"
    print("Exercise 3: correct: no crops needed")

# %% [markdown]
# *Measured run time: 5.3 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 4.5).*
