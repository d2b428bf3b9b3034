"""The family's registry: build any of the four networks by name, each with its own loss.

    kind         network                          default loss (its authors' training)
    unet         unet.UNet (the paper's, valid)   weighted-ce: softmax cross-entropy weighted by
                                                  the border map w(x) (Ronneberger et al. eq. 1-2)
    unet++       unet.UNetPlusPlus, 1 logit       bce-dice: 0.5 BCE + (1 - soft Dice), smooth 1e-5
                                                  (4uiiurz1/pytorch-nested-unet's BCEDiceLoss);
                                                  with deep supervision averaged over the heads
    attention    unet.AttentionUNet, 2 classes    dice: the soft Dice loss of the softmax over all
                                                  classes, per image, smooth 0.01 (the authors'
                                                  SoftDiceLoss; their segmentation configs set
                                                  "criterion": "dice_loss")
    ternaus      unet.TernausNet, 1 logit         bce-jaccard: BCE - log(soft Jaccard) (Iglovikov &
                                                  Shvets 2018, eq. 2)

``--loss weighted-ce`` gives any model the paper's border-weighted cross-entropy (a
single-logit model: the weighted binary cross-entropy, the same loss for two classes).
A two-class model trained with a binary loss uses its logit difference z1 - z0, whose
sigmoid is the softmax's foreground probability.
"""
from __future__ import annotations

import minigrad as mg
import minigrad.functional as F

KINDS = ("unet", "unet++", "attention", "ternaus")
LOSSES = ("weighted-ce", "bce-dice", "bce-jaccard", "dice")
LOSS_LABELS = {"weighted-ce": "weighted cross-entropy", "bce-dice": "0.5 BCE + (1 - Dice)",
               "bce-jaccard": "BCE - log Jaccard", "dice": "soft Dice loss"}
DEFAULT_LOSS = {"unet": "weighted-ce", "unet++": "bce-dice", "attention": "dice", "ternaus": "bce-jaccard"}
# the TrainConfig fields each kind's constructor reads
SETTINGS = {
    "unet": ("depth", "base_channels", "padding", "dropout"),
    "unet++": ("deep_supervision", "base_channels", "depth", "upsample", "batch_norm"),
    "attention": ("feature_scale",),
    "ternaus": ("num_filters", "pretrained"),
}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"model must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def build_model(kind: str, **settings):
    """A network of the family by name: ``build_model("unet++", deep_supervision=True)``.
    ``settings`` are the constructor's keyword arguments; the family members get the
    nuclei data's channels (one grey channel in; UNet and Attention U-Net two classes out,
    UNet++ and TernausNet one logit) unless given."""
    from .family import AttentionUNet, TernausNet, UNetPlusPlus
    from .model import UNet

    check_kind(kind)
    if kind == "unet":
        return UNet(**settings)
    if kind == "unet++":
        return UNetPlusPlus(**{"in_channels": 1, "num_classes": 1, **settings})
    if kind == "attention":
        return AttentionUNet(**{"in_channels": 1, "num_classes": 2, **settings})
    if kind == "ternaus":
        settings = dict(settings)
        if not settings.get("pretrained"):
            settings["pretrained"] = None
        return TernausNet(**settings)


def model_settings(cfg) -> dict:
    """The constructor arguments a TrainConfig gives its kind of model."""
    kind = check_kind(getattr(cfg, "model", "unet"))
    if getattr(cfg, "deep_supervision", False) and kind != "unet++":
        raise ValueError(f"deep_supervision applies to unet++ only, not to model {kind!r}")
    if kind == "unet":
        return cfg.model_config() if hasattr(cfg, "model_config") else {k: getattr(cfg, k) for k in SETTINGS[kind]}
    return {key: getattr(cfg, key) for key in SETTINGS[kind]}


def model_from_config(cfg, load_pretrained: bool = True):
    """The TrainConfig's model (``cfg.model``, default "unet"). ``load_pretrained=False`` skips
    TernausNet's VGG11 file (a checkpoint's weights replace it anyway, and the file need not
    travel with the checkpoint)."""
    settings = model_settings(cfg)
    if not load_pretrained:
        settings.pop("pretrained", None)
    return build_model(getattr(cfg, "model", "unet"), **settings)


def train_config(kind: str = "unet", **overrides):
    """``unet train --model KIND``'s configuration: TrainConfig's defaults with this kind's own
    (model size, tile, loss), then ``overrides``."""
    from .train import TrainConfig

    cfg = TrainConfig(model=check_kind(kind))
    for key, value in {**KIND_DEFAULTS.get(kind, {}), **overrides}.items():
        if not hasattr(cfg, key):
            raise ValueError(f"train_config: TrainConfig has no setting {key!r}")
        setattr(cfg, key, value)
    cfg.out = overrides.get("out", f"runs/{kind.replace('+', 'p')}")
    return cfg


# each kind's defaults for `unet train --model KIND` (a same-padding model's tile is its output too):
# small networks that train on 2 CPU cores in minutes, with TrainConfig's schedule (20 epochs of 25
# steps, batch 4, Adam 2e-3, cosine). UNet++ at depth 4 so that --deep-supervision gives L1..L4;
# Attention U-Net at 1/8 of the reference's filters (8..128); TernausNet keeps VGG11's encoder whole
# (ImageNet weights fit it) with a decoder 1/4 of the reference's width, and Adam at 1e-3: at 2e-3 its
# object F1 wandered between 0.79 and 0.82 over the last epochs (IoU 0.86-0.88), at 1e-3 it ends at
# IoU 0.900 / F1 0.909 and 5e-4 at 0.898 / 0.893 (2026-11-28). Measured: docs/family_comparison.md.
KIND_DEFAULTS = {
    "unet": {},
    "unet++": dict(base_channels=8, depth=4, tile=96),
    "attention": dict(feature_scale=8, tile=128),
    "ternaus": dict(num_filters=8, tile=96, lr=1e-3),
}


# ---- losses -----------------------------------------------------------------------------------
def loss_name(cfg) -> str:
    name = getattr(cfg, "loss", "") or DEFAULT_LOSS[check_kind(getattr(cfg, "model", "unet"))]
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
    return name


def foreground_logit(logits):
    """The foreground logit (N, H, W) of a one-logit network, or z1 - z0 of a two-class one
    (sigmoid(z1 - z0) is softmax's foreground probability)."""
    if logits.shape[1] == 1:
        return logits[:, 0]
    if logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]
    raise ValueError(f"a binary loss needs one or two output channels, got {logits.shape[1]} "
                     "(use --loss weighted-ce or dice for more classes)")


def weighted_cross_entropy(logits, targets, weights):
    """The paper's loss: cross-entropy weighted per pixel by the border map, divided by the sum
    of the weights (``F.cross_entropy``'s pixel_weight mean); one logit: the same for BCE."""
    if logits.shape[1] == 1:
        total = F.binary_cross_entropy_with_logits(logits[:, 0], (targets > 0).astype(logits.dtype), weight=weights,
                                                   reduction="sum")
        return total / weights.sum()  # the weights' sum stays on the device: no transfer
    return F.cross_entropy(logits, targets, pixel_weight=weights)


def softmax_dice_loss(logits, targets, smooth: float = 0.01):
    """Attention U-Net's ``SoftDiceLoss``: 1 - mean over images b and classes c of
    2 (sum_x p_bc(x) t_bc(x) + s) / (sum_x p_bc(x) + sum_x t_bc(x) + s), with p the softmax
    (a one-logit network: [1 - sigmoid, sigmoid]), t one-hot and s = 0.01, as the reference
    writes it (its smoothing enters the numerator twice)."""
    from .family import logits_to_probabilities

    probs = logits_to_probabilities(logits)
    n, c = probs.shape[:2]
    xp = mg.backend.array_module(targets)
    one_hot = (targets[:, None] == xp.arange(c).reshape(1, c, 1, 1)).astype(probs.dtype)
    inter = (probs * one_hot).sum(dim=(2, 3)) + smooth
    union = probs.sum(dim=(2, 3)) + one_hot.sum(axis=(2, 3)) + smooth
    return 1.0 - (2.0 * inter / union).sum() * (1.0 / (n * c))


def loss_function(cfg):
    """loss(outputs, targets, weights) for the configuration's model and loss: ``outputs`` the
    network's logits, or its list of deep-supervision heads (the loss averaged over them, as
    the UNet++ reference trains); targets (N, H, W) class indices, weights (N, H, W) the
    border map (used by weighted-ce only). Returns None for the U-Net's default (train_step's
    own weighted cross-entropy, unchanged)."""
    name = loss_name(cfg)
    if getattr(cfg, "model", "unet") == "unet" and name == "weighted-ce":
        return None

    def single(logits, targets, weights):
        if name == "weighted-ce":
            return weighted_cross_entropy(logits, targets, weights)
        if name == "dice":
            return softmax_dice_loss(logits, targets)
        from . import losses

        z = foreground_logit(logits)
        t = (targets > 0).astype(z.dtype)
        if name == "bce-dice":
            return losses.bce_dice_loss(z, t)
        return losses.bce_jaccard_loss(z, t)

    def loss(outputs, targets, weights):
        if isinstance(outputs, (list, tuple)):
            from .losses import deep_supervision_loss

            return deep_supervision_loss(outputs, targets, lambda head, t: single(head, t, weights), reduction="mean")
        return single(outputs, targets, weights)

    loss.name = name
    return loss
