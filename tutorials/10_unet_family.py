# %% [markdown]
# # 10. The U-Net family: UNet++, Attention U-Net, TernausNet
#
# **You will learn:** what each of three well-known descendants of the U-Net changes, and why: UNet++'s
# dense, nested skip connections and its deep supervision (and the pruning that deep supervision buys),
# the Attention U-Net's gates on the skips, and TernausNet's encoder borrowed from an ImageNet classifier;
# how to read each network's layer table; what a trained Attention U-Net's gates look at; what a trained
# UNet++'s four heads see, and what pruning it to L1..L4 costs and saves (measured); and what a four-fold
# comparison on our one nuclei image does and does not show.
#
# **Your task in this notebook:**
#
# | task | file | what you write |
# |---|---|---|
# | `unetpp.forward` | `unet/family.py` | the nested skip wiring in `UNetPlusPlus.nodes` |
#
# Check it with `python -m minigrad_course check unetpp.forward`. Needs: notebooks 1-9 (these networks
# run every layer of the course: convolutions, pooling, transposed convolutions, batch normalisation,
# bilinear upsampling).

# %%
import csv
import json
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
import unet
from minigrad_course import require, verdict
from minigrad.torch_bridge import export_for_torch
from unet import UNet
from unet.data import split_dataset
from unet.family import AttentionUNet, TernausNet, UNetPlusPlus, vgg11_features
from unet.metrics import evaluate

# %% [markdown]
# ## One skeleton, three changes
# All four networks are an encoder that halves the resolution level by level, a decoder that doubles it
# back, and skip connections that hand the encoder's fine detail to the decoder. They differ in what
# travels along the skips and where the encoder comes from:
#
# | network | what changes | why (the authors' argument) |
# |---|---|---|
# | U-Net (2015) | the skip hands encoder level $i$ to decoder level $i$ unchanged (crop + concat) | the decoder needs fine detail the bottleneck lost |
# | UNet++ (2018) | each skip becomes a column of nested convolution blocks $X^{i,j}$, each seeing *all* earlier nodes of its level and the upsampled node below; a head on every top node $X^{0,j}$ | the encoder's map and the decoder's are semantically far apart: bridge the gap step by step. The heads give deep supervision, and a network that can be cut after any head (pruning) |
# | Attention U-Net (2018) | an additive *gate* multiplies every skip pixel by a coefficient $\alpha \in (0, 1)$ computed from the skip and the coarser decoder map | let the coarse, semantic map say which fine pixels matter; suppress irrelevant background in the skips |
# | TernausNet (2018) | the encoder is VGG11's feature extractor, with ImageNet weights | a pretrained encoder learns from few images and converges faster |
#
# Unlike the paper's U-Net, all three pad their convolutions ("same"), so the output has the input's size,
# and they use batch normalisation (notebook 9) except TernausNet, whose VGG11 has none.

# %% [markdown]
# ## The layer tables
# Each network describes itself without a forward pass (`describe(n)`, printed by `summary(n)`), like the
# U-Net in notebook 5. First the reference configurations: their parameter counts are those of the authors'
# code (the tests load the reference weights into these very networks and compare outputs).

# %%
references = {
    "UNet++ (NestedUNet, 3 input channels)": (UNetPlusPlus(), 9_163_329),
    "UNet++ with deep supervision": (UNetPlusPlus(deep_supervision=True), 9_163_329 + 99),
    "TernausNet (UNet11)": (TernausNet(), 22_927_393),
    "Attention U-Net, feature_scale 4 (2-D)": (AttentionUNet(), None),
}
for name, (net, expected) in references.items():
    print(f"{name:42s} {net.num_parameters():>12,} parameters")
    if expected is not None:
        assert net.num_parameters() == expected
print(UNetPlusPlus(in_channels=1, base_channels=8, depth=2).summary(64))

# %% [markdown]
# Read the UNet++ table bottom-up along a column: `conv0_2` concatenates $X^{0,0}$, $X^{0,1}$ and the
# upsampled $X^{1,1}$, so its input has $2 \cdot 8 + 16 = 32$ channels. The deep-supervision variant adds
# one 1x1 head per top node (99 parameters at 32 filters: three more heads of 33). The Attention U-Net's
# table shows its gates (`attentionblock2..4`) and its four deep-supervision outputs fused by `final`:

# %%
print(AttentionUNet(in_channels=1, num_classes=2, feature_scale=8).summary(64))

# %% [markdown]
# TernausNet's encoder is VGG11's, 9.2 million parameters whatever the decoder's width (`num_filters`,
# 32 in the reference): the price of a pretrained encoder is that its width is the ImageNet classifier's,
# not one chosen for this task. Narrowing the decoder for CPU training (our default is 8) leaves the
# encoder as the bulk of the network:

# %%
for nf in (32, 8):
    rows = TernausNet(num_filters=nf).describe(64)
    encoder = sum(r["parameters"] for r in rows if "(encoder." in r["layer"])
    total = sum(r["parameters"] for r in rows)
    print(f"num_filters {nf:2d}: {total:>11,} parameters, {encoder / total:.0%} of them in the VGG11 encoder")
    assert encoder == 9_220_480  # VGG11's features: the same for every decoder width
    assert (encoder / total > 0.75) == (nf == 8)

# %% [markdown]
# ## UNet++: nested skips
# UNet++ names its nodes $X^{i,j}$: level $i$ (0 at the top, full resolution), column $j$. Column 0 is the
# encoder, $X^{i,0} = H(\mathrm{pool}(X^{i-1,0}))$. Every other node sees **all** earlier nodes of its own
# level and the upsampled node one level down, one column left:
# $$X^{i,j} = H\Big(\big[\,X^{i,0},\ X^{i,1},\ \dots,\ X^{i,j-1},\ \mathrm{up}(X^{i+1,j-1})\,\big]\Big),
# \qquad j \ge 1,$$
# with $[\dots]$ the concatenation along channels and $H$ = (3x3 conv, BN, ReLU) x 2, the block stored as
# `conv{i}_{j}`. The U-Net is the special case that keeps only the outer rim: $X^{i,0}$ down, then
# $X^{3,1}, X^{2,2}, X^{1,3}, X^{0,4}$ up, each seeing only its level's encoder node. `nodes(x)` computes
# them diagonal by diagonal ($i + j = k$ for $k = 0, 1, \dots$), so each node's inputs already exist.
#
# ## Your turn: the nested skip wiring
# Write the two lines of `UNetPlusPlus.nodes` that build node $X^{i,j}$ from the formula: the list of its
# inputs (`self._up(i + 1, j - 1, ...)` upsamples the node below), concatenated, through its block. The cell
# wires a small float64 network's nodes by hand from its blocks and compares every node.

# %%
require("unetpp.forward", "conv.im2col")
mg.manual_seed(0)
small = UNetPlusPlus(in_channels=1, base_channels=4, depth=3).to(np.float64).eval()
x = mg.tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 32)))
with mg.no_grad():
    got = small.nodes(x)
    hand = {(i, 0): got[i, 0] for i in range(4)}  # the encoder column is not part of the task
    for k in range(1, 4):
        for j in range(1, k + 1):
            i = k - j
            below = F.interpolate(hand[i + 1, j - 1], scale_factor=2, mode="bilinear", align_corners=True)
            block = getattr(small, f"conv{i}_{j}")
            hand[i, j] = block(mg.cat([hand[i, c] for c in range(j)] + [below], dim=1))
for i, j in sorted(hand, key=lambda n: (n[0] + n[1], n[1])):
    if j:
        verdict("unetpp.forward", f"X^({i},{j}) {tuple(got[i, j].shape)}", got[i, j].numpy(), hand[i, j].numpy(),
                1e-12)
assert sorted(got) == sorted(hand)

# %% [markdown]
# ## Deep supervision: four heads, four networks in one
# With `deep_supervision=True` every top node $X^{0,1} \dots X^{0,4}$ gets a 1x1 head, and the training
# loss is the mean of the four heads' losses (here BCE + soft Dice, the UNet++ paper's). Head $X^{0,d}$
# depends only on the nodes $i + j \le d$: it is the output of a complete smaller UNet++ of depth $d$, the
# **pruned** network $L^d$, trained jointly with the others. At inference the paper offers two modes:
# "accurate" averages the four heads' probabilities, "fast" reads one head, and `forward(x, prune=d)`
# computes only the nodes $L^d$ needs.
#
# The package ships a UNet++ of depth 4 trained this way on the nuclei image (three quadrants; a short run
# of 4 epochs of 25 steps, made with the command in `scripts/make_family_checkpoints.py`), as float16
# weights. Its four heads on the held-out quadrant, side by side:

# %%
DATA = os.path.join(os.path.dirname(unet.__file__), "data")


def load_shipped(name):
    """(network in float32, eval mode; its training configuration; held-out scores per epoch) of a
    checkpoint written by scripts/make_family_checkpoints.py."""
    from unet.zoo import build_model

    state = mg.load(os.path.join(DATA, f"{name}.npz"))
    config = json.loads(state["config"])
    net = build_model(config["model"], **json.loads(state["settings"]))
    net.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in state["model"].items()})
    return net.eval(), config, json.loads(state["history"])


_, held_out = split_dataset("nuclei")  # fold 3: the bottom-right quadrant, never seen in training
held_out = held_out[0]
image = mg.tensor(held_out.image[None, None])
upp, upp_config, upp_history = load_shipped("family_unetpp")
assert upp.deep_supervision and upp.depth == 4 and upp_config["fold"] in (-1, 3)
with mg.no_grad():
    head_probs = [F.sigmoid(h).numpy()[0, 0] for h in upp(image)]
head_scores = [evaluate(p > 0.5, held_out.instances) for p in head_probs]
accurate = np.mean(head_probs, axis=0)
accurate_scores = evaluate(accurate > 0.5, held_out.instances)

fig, axes = plt.subplots(1, 5, figsize=(22, 4.8))
axes[0].imshow(held_out.image, cmap="gray")
axes[0].set_title("held-out quadrant")
for d, (ax, p, s) in enumerate(zip(axes[1:], head_probs, head_scores), start=1):
    ax.imshow(p, cmap="magma", vmin=0, vmax=1)
    ax.contour(held_out.instances > 0, levels=[0.5], colors="cyan", linewidths=0.5)
    ax.set_title(f"head X(0,{d}) = L{d}: IoU {s['iou']:.3f}, object F1 {s['object_f1']:.3f}")
for ax in axes:
    ax.axis("off")
fig.suptitle("a trained UNet++'s deep-supervision heads (probability of 'nucleus'; cyan: true outlines)")
plt.show()
for d, s in enumerate(head_scores, start=1):
    print(f"L{d}: IoU {s['iou']:.3f}  Dice {s['dice']:.3f}  object F1 {s['object_f1']:.3f}")
print(f"'accurate' (the four heads averaged): IoU {accurate_scores['iou']:.3f}, object F1 {accurate_scores['object_f1']:.3f}")

# %% [markdown]
# ## Pruning: what L1..L4 cost and what they score
# `forward(x, prune=d)` computes only the nodes with $i + j \le d$ and reads head $X^{0,d}$: $L^1$ runs 3 of
# the 15 nodes, $L^4$ all of them. Time each on the held-out quadrant (the best of three runs, so another
# job on the machine does not decide the result) against its IoU:

# %%
def best_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


pruned = {}
with mg.no_grad():
    for d in range(1, 5):
        seconds = best_time(lambda: upp(image, prune=d))
        prob = F.sigmoid(upp(image, prune=d)).numpy()[0, 0]
        pruned[d] = dict(seconds=seconds, nodes=len(upp.nodes(image, prune=d)),
                         parameters=sum(r["parameters"] for r in upp.describe(256, prune=d)),
                         **evaluate(prob > 0.5, held_out.instances))
        assert np.allclose(prob, head_probs[d - 1], atol=1e-5)  # the pruned network is exactly head X(0,d)

fig, ax = plt.subplots(figsize=(7, 4.5))
ax.plot([pruned[d]["seconds"] for d in pruned], [pruned[d]["iou"] for d in pruned], "o-")
for d, r in pruned.items():
    ax.annotate(f"L{d}: {r['nodes']} nodes, {r['parameters']:,} parameters", (r["seconds"], r["iou"]),
                textcoords="offset points", xytext=(6, -12), fontsize=8)
ax.set_xlabel("forward pass on the 256x256 held-out quadrant (s, best of 3)")
ax.set_ylabel("held-out IoU")
ax.set_title("UNet++ pruned to L1..L4")
plt.show()
for d, r in pruned.items():
    print(f"L{d}: {r['nodes']:2d} nodes, {r['parameters']:>7,} parameters, {r['seconds'] * 1000:6.0f} ms, "
          f"IoU {r['iou']:.3f}, object F1 {r['object_f1']:.3f}")
assert [pruned[d]["nodes"] for d in pruned] == [3, 6, 10, 15]
assert pruned[1]["seconds"] < pruned[4]["seconds"]

# %% [markdown]
# ## Attention gates: what a trained Attention U-Net looks at
# The gate on skip $x$ (encoder level $l$) is driven by $g$, the decoder map one level coarser. With
# $W_x$ a 2x2 stride-2 convolution (no bias; it brings $x$ to $g$'s grid), $W_g$ and $\psi$ 1x1 convolutions,
# $$q = \psi^\top\,\mathrm{ReLU}\big(W_x^\top x + W_g^\top g + b_g\big) + b_\psi,\qquad
# \alpha = \sigma(q) \in (0, 1),$$
# $\alpha$ is resampled bilinearly to $x$'s size and the skip handed to the decoder is $\alpha \cdot x$ (then a
# 1x1 convolution and BN). Additive attention (rather than a product of $x$ and $g$): the authors found it
# more accurate. `forward(x, return_attention=True)` also returns each gate's coefficients.
#
# The shipped Attention U-Net (`unet train --model attention`, its checkpoint after the epoch its history
# ends at; the command is in `scripts/make_family_checkpoints.py`) on the held-out quadrant:

# %%
att, att_config, att_history = load_shipped("family_attention")
with mg.no_grad():
    logits, alphas = att(image, return_attention=True)
att_pred = att.probabilities(image).numpy()[0].argmax(axis=0)
att_scores = evaluate(att_pred, held_out.instances)
fig, axes = plt.subplots(1, 4, figsize=(20, 5.2))
axes[0].imshow(held_out.image, cmap="gray")
axes[0].contour(att_pred, levels=[0.5], colors="lime", linewidths=0.6)
axes[0].set_title(f"prediction (green): IoU {att_scores['iou']:.3f}")
for ax, level, alpha in zip(axes[1:], (2, 3, 4), alphas):
    a = alpha.numpy()[0, 0]
    ax.imshow(held_out.image, cmap="gray")
    im = ax.imshow(a, cmap="jet", alpha=0.5, vmin=0, vmax=1, extent=(-0.5, 255.5, 255.5, -0.5))
    ax.set_title(f"gate on skip conv{level}: alpha at {a.shape[0]}x{a.shape[1]}")
for ax in axes:
    ax.axis("off")
fig.colorbar(im, ax=axes, fraction=0.02, label="attention coefficient alpha")
plt.show()
print(f"trained for {len(att_history)} epochs; held-out IoU {att_scores['iou']:.3f}, object F1 {att_scores['object_f1']:.3f}")

# %% [markdown]
# Do the gates look at the nuclei? Average each gate's $\alpha$ over the cells of its grid that are mostly
# nucleus and over those that are background (a cell of the 32x32 grid covers 8x8 pixels):

# %%
nuclei = held_out.instances > 0
gate_means = {}
for level, alpha in zip((2, 3, 4), alphas):
    a = alpha.numpy()[0, 0]
    cell = nuclei.shape[0] // a.shape[0]
    share = nuclei.reshape(a.shape[0], cell, a.shape[1], cell).mean(axis=(1, 3))  # nucleus share of each cell
    gate_means[level] = (float(a[share > 0.5].mean()), float(a[share < 0.01].mean()))
    print(f"gate on conv{level} ({a.shape[0]}x{a.shape[1]}): mean alpha {gate_means[level][0]:.2f} on nuclei, "
          f"{gate_means[level][1]:.2f} on background")
assert all(0 < float(a.numpy().min()) and float(a.numpy().max()) < 1 + 1e-6 for a in alphas)
assert gate_means[2][0] > gate_means[2][1] and gate_means[3][0] > gate_means[3][1]

# %% [markdown]
# The two finer gates let nucleus pixels through more than background: the decoder, which already knows
# roughly where the nuclei are, turns the fine skips' background down. The coarsest gate need not agree (in
# this network it passes background as much as nuclei, or more): a gate is trained for the loss, not to be a
# saliency map, and at 32x32 its cells mix nuclei with their surroundings. Read the coefficients as what each
# skip lets through, not as where the network "looks".

# %% [markdown]
# ## TernausNet: an encoder from ImageNet
# TernausNet's encoder is torchvision's `vgg11().features`, layer for layer (the convolutions at indices
# 0, 3, 6, 8, 11, 13, 16, 18), so ImageNet weights fit it. They cannot be downloaded here, and minigrad never
# unpickles a `torch.save` file. Where torch and torchvision are installed, one line writes them in the
# bridge's plain .npz format:
#
# ```python
# from minigrad.torch_bridge import torch_save_npz
# torch_save_npz(torchvision.models.vgg11(weights="IMAGENET1K_V1").features, "vgg11_features.npz")
# ```
#
# and `TernausNet(pretrained="vgg11_features.npz")` (or `unet train --model ternaus --pretrained
# vgg11_features.npz`) starts from them. The mechanism, shown with a randomly initialised VGG11 written
# by minigrad's side of the bridge (the same file format):

# %%
mg.manual_seed(1)
vgg = vgg11_features()
os.makedirs("runs", exist_ok=True)
export_for_torch(vgg, "runs/vgg11_features_random.npz")
tern = TernausNet(num_filters=8, pretrained="runs/vgg11_features_random.npz").eval()
for index, name in ((0, "conv1"), (18, "conv5")):
    assert np.array_equal(getattr(tern, name).weight.numpy(), vgg[index].weight.numpy())
    assert getattr(tern, name) is tern.encoder[index]  # one layer, registered under two names
print("encoder loaded:", tern.pretrained)

# %% [markdown]
# VGG11 was trained on colour photographs; a grey image is repeated into the three colour channels, so
# both inputs below are the same to the network:

# %%
grey = held_out.image[None, None, :64, :64]
with mg.no_grad():
    from_grey = tern(mg.tensor(grey)).numpy()
    from_rgb = tern(mg.tensor(np.repeat(grey, 3, axis=1))).numpy()
assert np.array_equal(from_grey, from_rgb)
print("grey input == the same values in R, G and B:", np.array_equal(from_grey, from_rgb))

# %% [markdown]
# ## The family side by side
# `unet compare` trains the four networks at their `unet train` defaults on the quadrant folds of the nuclei
# image (three quadrants train, the fourth is held out, each in turn) and tabulates held-out IoU, Dice and
# object F1 with their spread over the folds. A comparison takes far longer than a notebook should, so here
# is the committed output of a run (`docs/family_comparison.md` says when, on what machine and under what
# load):

# %%
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(unet.__file__)))
with open(os.path.join(ROOT, "docs", "family_comparison.csv"), newline="") as f:
    runs = list(csv.DictReader(f))
models = list(dict.fromkeys(r["model"] for r in runs))
table = {}
for m in models:
    mine = [r for r in runs if r["model"] == m]
    table[m] = {k: np.array([float(r[k]) for r in mine]) for k in ("iou", "dice", "object_f1", "step_seconds")}
    table[m]["parameters"] = int(mine[0]["parameters"])
    table[m]["folds"] = [r["held_out"] for r in mine]
print(f"{'model':10s} {'parameters':>11s} {'step (s)':>9s}   {'IoU':>13s}   {'object F1':>13s}   folds")
for m, t in table.items():
    print(f"{m:10s} {t['parameters']:>11,} {np.median(t['step_seconds']):9.2f}   "
          f"{t['iou'].mean():.3f} ± {t['iou'].std(ddof=1) if len(t['iou']) > 1 else 0:.3f}   "
          f"{t['object_f1'].mean():.3f} ± {t['object_f1'].std(ddof=1) if len(t['object_f1']) > 1 else 0:.3f}   "
          f"{', '.join(t['folds'])}")

fig, ax = plt.subplots(figsize=(8, 4.5))
for k, m in enumerate(models):
    ax.plot([k] * len(table[m]["iou"]), table[m]["iou"], "o", color=f"C{k}", alpha=0.7)
    ax.hlines(table[m]["iou"].mean(), k - 0.25, k + 0.25, color=f"C{k}", lw=3)
ax.set_xticks(range(len(models)), models)
ax.set_ylabel("held-out IoU (dots: folds; bar: mean)")
ax.set_title("the family on the nuclei image")
plt.show()
assert set(models) == {"unet", "unet++", "attention", "ternaus"}

# %% [markdown]
# ## Exercises
# **1.** In a UNet++ with `base_channels=8` (filters 8, 16, 32, ...), how many channels enter the block of
# node $X^{0,3}$ (`conv0_3`)?

# %%
channels_into_x03 = None  # exercise 1: an integer

# %%
if channels_into_x03 is None:
    print("Exercise 1: not tried yet")
else:
    assert channels_into_x03 == UNetPlusPlus(base_channels=8).conv0_3.conv1.in_channels, (
        "X(0,0), X(0,1), X(0,2) at 8 channels each, plus X(1,2) upsampled at 16")
    print("Exercise 1: correct: 3 x 8 + 16")

# %% [markdown]
# **2.** One attention coefficient by hand. At one pixel of the gate's grid, $W_x^\top x = (0.5, -1.0)$ and
# $W_g^\top g + b_g = (0.25, 0.5)$; $\psi = (2, -1)$ with bias $b_\psi = -0.5$. What is $\alpha$?

# %%
alpha_by_hand = None  # exercise 2: a number

# %%
if alpha_by_hand is None:
    print("Exercise 2: not tried yet")
else:
    gate = F.sigmoid(mg.tensor(np.array([2.0, -1.0]) @ np.maximum(np.array([0.5, -1.0]) + np.array([0.25, 0.5]), 0)
                               - 0.5)).item()
    assert np.isclose(alpha_by_hand, gate), "q = psi . ReLU(theta + phi) + b_psi, then the sigmoid"
    print(f"Exercise 2: correct: sigmoid(2 * 0.75 - 1 * 0 - 0.5) = sigmoid(1) = {gate:.4f}")

# %% [markdown]
# **3.** For a 256x256 input to the Attention U-Net, the skip `conv2` is 128x128. On what grid (rows,
# columns) does its gate compute $q$, before $\alpha$ is resampled to the skip's size?

# %%
gate_grid_conv2 = None  # exercise 3: a pair (rows, columns)

# %%
if gate_grid_conv2 is None:
    print("Exercise 3: not tried yet")
else:
    theta = att.attentionblock2.gate_block_1.theta
    with mg.no_grad():
        grid = tuple(theta(mg.tensor(np.zeros((1, theta.in_channels, 128, 128), np.float32))).shape[2:])
    assert tuple(gate_grid_conv2) == grid, "theta is a 2x2 convolution with stride 2"
    print("Exercise 3: correct: theta's stride 2 halves the skip's grid, to the gating signal's")

# %% [markdown]
# **What this does and does not show.** The UNet++ paper (Zhou et al. 2019) reports **+3.9 IoU points**
# over the U-Net, averaged over its six segmentation tasks, each with many images and networks of millions
# of parameters trained for hours. This comparison cannot confirm or refute that number:
#
# * **One image.** The folds are quadrants of one 512x512 image, about 30 nuclei each, and three of them are
#   shared by any two training sets; the spread between folds is of the order of the differences between the
#   models. A difference smaller than that spread is not evidence for either network.
# * **Short schedules, small networks.** Each run is a fraction of `unet train`'s already short schedule, at
#   CPU widths (8 to 16 base filters), far from the papers' budgets; a model that converges faster wins here
#   whatever it would reach in the end.
# * **Everything differs at once.** Each model trains with its own loss (weighted cross-entropy, BCE + Dice,
#   soft Dice, BCE - log Jaccard), tile size and padding, so a difference mixes architecture, loss and
#   schedule; our U-Net is the valid-padding one with the border-weighted loss, not the paper's baseline.
#
# What it does show: each variant learns this image within minutes on a CPU, what each costs per training
# step, and how much the held-out score moves from one quadrant to another, which is the yardstick for any
# claim made from a single image.

# %%
for m, t in table.items():
    assert 0.5 < t["iou"].mean() <= 1.0, (m, t["iou"])  # every variant learns the image

# %% [markdown]
# *Measured run time: 54 s with `pytest --nbmake` (36 s in a student copy with the textbook solutions), on
# 2 CPU cores shared with other jobs (load average 9-11; about 13 s of CPU time).*
