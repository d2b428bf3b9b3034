"""Training: weighted softmax cross-entropy on augmented tiles, evaluation on held-out data
each epoch, atomic checkpoints that resume exactly, metrics.json and figures."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

import minigrad as mg
import minigrad.functional as F

from . import metrics, zoo
from .data import sample_batch, split_dataset
from .inference import predict_mask
from .io import save_figure, write_json


@dataclass
class TrainConfig:
    """Defaults: a small U-Net that learns the nuclei image in a few minutes on 2 CPU cores."""

    data: str = "nuclei"
    epochs: int = 20
    steps_per_epoch: int = 25
    batch_size: int = 4
    tile: int = 188  # input tile size; the loss sees the network's (smaller) output
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # or "constant"
    optimizer: str = "adam"
    momentum: float = 0.99  # for SGD, as in the paper
    depth: int = 3
    base_channels: int = 16
    padding: str = "valid"
    dropout: float = 0.0
    w0: float = 10.0
    sigma: float = 5.0
    seed: int = 0
    fold: int = -1  # the held-out quadrant of a single image (0..3: TL, TR, BL, BR; -1 = BR)
    device: str = "cpu"
    mask_kind: str = "instance"
    out: str = "runs/unet"
    # the family (unet.zoo): which network, its own settings, and its loss ("" = the model's own)
    model: str = "unet"  # unet, unet++, attention, ternaus
    loss: str = ""  # weighted-ce, bce-dice, bce-jaccard, dice
    deep_supervision: bool = False  # UNet++
    upsample: str = "bilinear"  # UNet++: or "transpose" (the paper's original form)
    batch_norm: bool = True  # UNet++
    feature_scale: int = 4  # Attention U-Net: filters 64..1024 / feature_scale
    num_filters: int = 32  # TernausNet's decoder width
    pretrained: str = ""  # TernausNet: a bridge .npz of VGG11's features

    def model_config(self) -> dict:
        return dict(in_channels=1, num_classes=2, depth=self.depth, base_channels=self.base_channels,
                    padding=self.padding, dropout=self.dropout)


MODEL_KEYS = ("depth", "base_channels", "padding", "dropout", "model", "loss", "deep_supervision", "upsample",
              "batch_norm", "feature_scale", "num_filters", "pretrained")


def build(cfg: TrainConfig):
    if cfg.optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {cfg.optimizer!r}")
    for name in ("epochs", "steps_per_epoch", "batch_size"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {cfg.lr_schedule!r}")
    if cfg.lr <= 0:
        raise ValueError(f"lr must be positive, got {cfg.lr}")
    mg.manual_seed(cfg.seed)
    model = zoo.model_from_config(cfg)
    zoo.loss_name(cfg)  # an unknown --loss fails here, before any work
    model.check_input_size(cfg.tile, "--tile")
    model.to(cfg.device)
    if cfg.optimizer == "adam":
        opt = mg.optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        opt = mg.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    return model, opt


def learning_rate(cfg: TrainConfig, step: int, total: int) -> float:
    """The step's learning rate: constant, or a cosine decay from lr to lr/20 (a pure
    function of the step, so resumed runs follow the same schedule)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    floor = cfg.lr / 20
    # math, not NumPy: a Python float, so the optimiser's float32 update stays float32 everywhere
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))


def train_step(model, opt, images, targets, weights, device: str, lr: float, loss_fn=None) -> float:
    """One optimiser step on a host batch; returns the loss as a Python float.

    The batch (images (N, C, H, W), class targets and the weight map (N, h, w)) is copied to
    ``device`` once: three host -> device copies. Forward, backward and the update then run
    there without any transfer, and ``loss.item()`` is the step's one device -> host copy.
    """
    model.train()
    x = mg.tensor(images, device=device)
    targets, weights = mg.backend.to_device(targets, device), mg.backend.to_device(weights, device)
    if loss_fn is None:  # the paper's weighted cross-entropy
        loss = F.cross_entropy(model(x), targets, pixel_weight=weights)
    else:  # a family member's own loss (unet.zoo.loss_function)
        loss = loss_fn(model(x), targets, weights)
    opt.zero_grad()
    loss.backward()
    opt.lr = lr
    opt.step()
    return loss.item()


def load_checkpoint(path):
    """(TrainConfig, checkpoint dict) from a file written by ``train``."""
    ckpt = mg.load(path)
    for key in ("model", "optim", "config", "step"):
        if key not in ckpt:
            raise ValueError(f"'{path}' is a minigrad file but not a U-Net checkpoint (no '{key}' entry)")
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in json.loads(ckpt["config"]).items() if k in known})
    return cfg, ckpt


def model_from_checkpoint(path, device="cpu"):
    cfg, ckpt = load_checkpoint(path)
    model = zoo.model_from_config(cfg, load_pretrained=False)
    model.load_state_dict(ckpt["model"])
    return model.to(device), cfg


def evaluate(model, regions, device="cpu"):
    """Metrics over held-out regions (pixel-weighted mean of each region's metrics)."""
    results = []
    for region in regions:
        pred = predict_mask(model, region.image, device=device)
        results.append((region.image.size, metrics.evaluate(pred, region.instances)))
    total = sum(n for n, _ in results)
    return {k: float(sum(n * r[k] for n, r in results) / total) for k in results[0][1]}


def save_checkpoint(path, model, opt, cfg, step, history, epoch_losses):
    mg.save(
        {
            "model": model.state_dict(),
            "optim": opt.state_dict(),
            "config": json.dumps(asdict(cfg)),
            "step": int(step),
            "history": json.dumps(history),
            "epoch_losses": np.asarray(epoch_losses, dtype=np.float64),
        },
        path,
    )


def _figures(out, history, step_losses, model, region, device, loss_label="weighted cross-entropy"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(step_losses) + 1), step_losses, lw=0.7, alpha=0.5, label="training step")
    if history:
        spe = len(step_losses) / max(len(history), 1)
        ax.plot([h["epoch"] * spe for h in history], [h["loss"] for h in history], "o-", label="epoch mean")
    ax.set_xlabel("step")
    ax.set_ylabel(loss_label)
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("U-Net training loss")
    save_figure(fig, os.path.join(out, "loss.png"))
    plt.close(fig)

    pred = predict_mask(model, region.image, device=device)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    panels = [(region.image, "image", "gray"), (region.target, "truth (borders separated)", "gray"),
              (pred, "prediction", "gray"), (region.weights, "weight map w(x)", "jet")]
    for ax, (img, title, cmap) in zip(axes, panels):
        im = ax.imshow(img, cmap=cmap)
        ax.set_title(title)
        ax.axis("off")
    fig.colorbar(im, ax=axes[-1], fraction=0.046)
    save_figure(fig, os.path.join(out, "prediction.png"))
    plt.close(fig)


def train(cfg: TrainConfig, resume: str | None = None, progress: bool = True, figures: bool = True,
          verbose: bool = True) -> dict:
    """Train, evaluate each epoch, write OUT/checkpoint.npz, OUT/metrics.json and figures.

    Every step draws its tiles from a generator seeded by (seed, step), so a run resumed
    from a checkpoint computes exactly the numbers an uninterrupted run would.
    """
    history, step_losses, epoch_losses, start = [], [], [], 0
    if resume:
        saved_cfg, ckpt = load_checkpoint(resume)
        for key in MODEL_KEYS + ("optimizer", "seed", "tile", "batch_size", "steps_per_epoch", "data", "w0", "lr",
                                 "lr_schedule", "epochs", "fold"):
            setattr(cfg, key, getattr(saved_cfg, key))
    model, opt = build(cfg)
    loss_fn = zoo.loss_function(cfg)
    if resume:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optim"])
        start = int(ckpt["step"])
        history = json.loads(ckpt["history"])
        epoch_losses = [float(v) for v in np.atleast_1d(ckpt["epoch_losses"])]
        step_losses = [h for e in history for h in e.get("step_losses", [])] + epoch_losses
    train_regions, eval_regions = split_dataset(cfg.data, w0=cfg.w0, sigma=cfg.sigma, mask_kind=cfg.mask_kind,
                                                seed=cfg.seed, fold=cfg.fold)
    out_size = model.output_size(cfg.tile)
    total = cfg.epochs * cfg.steps_per_epoch
    os.makedirs(cfg.out, exist_ok=True)
    ckpt_path = os.path.join(cfg.out, "checkpoint.npz")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc="unet train", unit="step", dynamic_ncols=True)
    step = start
    t0 = time.time()
    step_seconds = []  # forward + backward + update of each step of this session (no data, no evaluation)
    try:
        while step < total:
            rng = np.random.default_rng([cfg.seed, step])
            mg.manual_seed(cfg.seed * 1_000_003 + step)  # dropout draws
            images, targets, weights = sample_batch(train_regions, cfg.batch_size, cfg.tile, out_size, rng)
            t_step = time.perf_counter()
            value = train_step(model, opt, images, targets, weights, cfg.device, learning_rate(cfg, step, total),
                               loss_fn)
            step_seconds.append(time.perf_counter() - t_step)
            if not np.isfinite(value):
                raise FloatingPointError(f"the loss became {value} at step {step}; try a smaller --lr")
            step += 1
            epoch_losses.append(value)
            step_losses.append(value)
            if bar is not None:
                bar.set_postfix(loss=f"{value:.4f}", epoch=f"{(step - 1) // cfg.steps_per_epoch + 1}/{cfg.epochs}")
                bar.update(1)
            if step % cfg.steps_per_epoch == 0:
                scores = evaluate(model, eval_regions, cfg.device)
                history.append(dict(epoch=step // cfg.steps_per_epoch, loss=float(np.mean(epoch_losses)),
                                    step_losses=epoch_losses, **scores))
                epoch_losses = []
                save_checkpoint(ckpt_path, model, opt, cfg, step, history, epoch_losses)
                if verbose:
                    (bar.write if bar is not None else print)(f"epoch {history[-1]['epoch']:3d}: loss {history[-1]['loss']:.4f}  "
                              f"iou {scores['iou']:.3f}  dice {scores['dice']:.3f}  "
                              f"object F1 {scores['object_f1']:.3f}  pixel error {scores['pixel_error']:.4f}")
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        save_checkpoint(ckpt_path, model, opt, cfg, step, history, epoch_losses)
        print(f"\ninterrupted at step {step}; checkpoint saved to {ckpt_path}; "
              f"continue with: unet train --resume {ckpt_path}")
        raise SystemExit(130) from None
    finally:
        if bar is not None:
            bar.close()
    final = history[-1] if history else evaluate(model, eval_regions, cfg.device)
    result = {
        "config": asdict(cfg),
        "seconds": time.time() - t0,
        "steps": step,
        "step_seconds": float(np.median(step_seconds)) if step_seconds else None,
        "history": [{k: v for k, v in h.items() if k != "step_losses"} for h in history],
        **{k: final[k] for k in ("iou", "dice", "pixel_error", "object_f1")},
    }
    write_json(os.path.join(cfg.out, "metrics.json"), result)
    if figures:
        _figures(cfg.out, history, step_losses, model, eval_regions[0], cfg.device,
                 zoo.LOSS_LABELS[zoo.loss_name(cfg)])
    return result
