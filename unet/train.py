"""Training: weighted softmax cross-entropy on augmented tiles, evaluation on held-out data
each epoch, atomic checkpoints that resume exactly, metrics.json and figures."""
from __future__ import annotations

import glob
import json
import math
import os
import shutil
import signal
import tempfile
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

import minigrad as mg
import minigrad.functional as F

from . import metrics
from .data import sample_batch, split_dataset
from .inference import predict_mask
from .io import save_figure, write_json
from .model import UNet


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
    device: str = "cpu"
    mask_kind: str = "instance"
    out: str = "runs/unet"

    def model_config(self) -> dict:
        return dict(in_channels=1, num_classes=2, depth=self.depth, base_channels=self.base_channels,
                    padding=self.padding, dropout=self.dropout)


MODEL_KEYS = ("depth", "base_channels", "padding", "dropout")

# Settings a resumed run may take from the command line, and what they mean there; every other
# setting of the checkpoint's config (including ones added later, e.g. a model name) is refused
# by name when it differs from the value the run was started with.
RESUMABLE_CHANGES = {
    "epochs": "the total number of epochs: a larger value extends the run",
    "device": "where the remaining steps run (results agree across devices only up to rounding)",
}

_CHOICES = {"optimizer": ("sgd", "adam"), "lr_schedule": ("cosine", "constant"), "padding": ("valid", "same"),
            "mask_kind": ("instance", "class")}


def flag(name: str) -> str:
    """The command-line spelling of a config key (``batch_size`` -> ``--batch-size``)."""
    return "--" + name.replace("_", "-")


def check_config(cfg: TrainConfig) -> None:
    """Refuse a setting that is the wrong type, non-finite or out of range, by its flag name,
    before any data is loaded or any file is written."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.type in ("int", int):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{flag(f.name)} must be an integer, got {value!r}")
        elif f.type in ("float", float):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{flag(f.name)} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{flag(f.name)} must be a finite number, got {value}")
        elif f.type in ("str", str) and not isinstance(value, str):
            raise ValueError(f"{flag(f.name)} must be a string, got {value!r}")
    for name in ("epochs", "steps_per_epoch", "batch_size", "depth", "base_channels", "tile"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{flag(name)} must be at least 1, got {getattr(cfg, name)}")
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ValueError(f"{flag(name)} must be one of {', '.join(choices)}; got {getattr(cfg, name)!r}")
    ranges = {"lr": (cfg.lr > 0, "> 0"), "w0": (cfg.w0 >= 0, ">= 0"), "sigma": (cfg.sigma > 0, "> 0"),
              "dropout": (0 <= cfg.dropout < 1, "in [0, 1)"), "momentum": (0 <= cfg.momentum < 1, "in [0, 1)"),
              "seed": (cfg.seed >= 0, ">= 0")}
    for name, (ok, expected) in ranges.items():
        if not ok:
            raise ValueError(f"{flag(name)} must be {expected}, got {getattr(cfg, name)}")
    if cfg.device.split(":")[0] not in mg.backend.devices():
        raise ValueError(f"--device must be one of {', '.join(mg.backend.devices())}; got {cfg.device!r}")
    if not cfg.data:
        raise ValueError("--data must be nuclei, synthetic or a folder, got an empty string")
    if not cfg.out:
        raise ValueError("--out must name a folder, got an empty string")


def build(cfg: TrainConfig):
    check_config(cfg)
    mg.manual_seed(cfg.seed)
    model = UNet(**cfg.model_config())
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


def train_step(model, opt, images, targets, weights, device: str, lr: float) -> float:
    """One optimiser step on a host batch; returns the loss as a Python float.

    The batch (images (N, C, H, W), class targets and the weight map (N, h, w)) is copied to
    ``device`` once: three host -> device copies. Forward, backward and the update then run
    there without any transfer, and ``loss.item()`` is the step's one device -> host copy.
    """
    model.train()
    x = mg.tensor(images, device=device)
    loss = F.cross_entropy(model(x), mg.backend.to_device(targets, device),
                           pixel_weight=mg.backend.to_device(weights, device))
    opt.zero_grad()
    loss.backward()
    opt.lr = lr
    opt.step()
    return loss.item()


def load_checkpoint(path):
    """(TrainConfig, checkpoint dict) from a file written by ``train``.

    The run's settings are one JSON dict under ``"config"`` (every field of ``TrainConfig``);
    keys this version does not know are refused by name rather than dropped, and keys it
    added since the checkpoint was written take their defaults."""
    ckpt = mg.load(path)
    for key in ("model", "optim", "config", "step"):
        if key not in ckpt:
            raise ValueError(f"'{path}' is a minigrad file but not a U-Net checkpoint (no '{key}' entry)")
    saved = json.loads(str(ckpt["config"]))
    if not isinstance(saved, dict):
        raise ValueError(f"'{path}': its 'config' entry is not a dict of settings")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ValueError(f"'{path}' was written with settings this version does not know: {', '.join(unknown)}")
    return TrainConfig(**saved), ckpt


def resume_config(path, given: dict) -> TrainConfig:
    """The config of a run resumed from ``path``: the checkpoint's settings, with the
    command-line flags in ``given`` (name -> value, only those the user typed) laid over it.
    ``train`` then refuses any that may not change (see ``RESUMABLE_CHANGES``)."""
    cfg, _ = load_checkpoint(path)
    cfg.out = os.path.dirname(os.path.abspath(path))
    for key, value in given.items():
        setattr(cfg, key, value)
    return cfg


def _check_resume(cfg: TrainConfig, saved: TrainConfig, path, step: int) -> None:
    """Refuse, by flag name, a setting that differs from the run's and may not change."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.realpath(cfg.out) != os.path.realpath(folder):
        raise ValueError(f"--out cannot be changed on --resume: a resumed run continues in its checkpoint's "
                         f"folder '{folder}', got --out '{cfg.out}'")
    for f in fields(TrainConfig):
        if f.name in RESUMABLE_CHANGES or f.name == "out":
            continue
        mine, theirs = getattr(cfg, f.name), getattr(saved, f.name)
        if mine != theirs:
            raise ValueError(f"{flag(f.name)} cannot be changed on --resume (the run was started with {theirs!r}, "
                             f"got {mine!r}); start a new run in another --out folder to change it")
    done_epochs = math.ceil(step / cfg.steps_per_epoch)
    if cfg.epochs < done_epochs:
        raise ValueError(f"--epochs {cfg.epochs} on --resume is fewer than the {done_epochs} epoch(s) this "
                         f"checkpoint has already trained (--epochs is the run's total)")


def _prepare_out(out: str, model, optimizer: str) -> str:
    """Create ``out``, refuse one that is a file, read-only or on a disk without room for a
    checkpoint (one clear error before training), and remove temporary files that an
    interrupted atomic write left there. Returns the checkpoint path."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out '{out}' is a file, not a folder")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ValueError(f"--out '{out}' cannot be written to: {err.strerror or err}") from None
    for tmp in glob.glob(os.path.join(glob.escape(out), ".tmp-*")):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    slots = 3 if optimizer == "adam" else 2  # weights, plus Adam's two moments or SGD's momentum
    needed = sum(int(p.data.nbytes) for p in model.parameters()) * slots + (1 << 20)
    free = shutil.disk_usage(out).free
    if free < needed:
        raise ValueError(f"--out '{out}': only {free / 2**20:.1f} MiB free on its disk, a checkpoint needs about "
                         f"{needed / 2**20:.1f} MiB")
    return os.path.join(out, "checkpoint.npz")


def _parameters_finite(model) -> bool:
    """All weights finite: a float64 sum of every weight (a float32 sum could overflow), added
    up where the weights live, with one device -> host copy."""
    total = sum(mg.backend.array_module(p.data).sum(p.data, dtype=np.float64) for p in model.parameters())
    return math.isfinite(float(mg.backend.to_numpy(total)))


class _StopNow(BaseException):
    """A signal that is not deferred: the run stops where it is, writing nothing."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class _Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM, deferred while ``deferring``: the handler only records the
    signal, and the training loop stops at its next consistent point (after the step, with its
    count and losses, and any end-of-epoch evaluation) and checkpoints there. A second signal
    while one is pending, or any signal while not deferring, stops at once without writing
    (a checkpoint on disk is always whole: it is written atomically). Handlers are installed
    only in the main thread (Python's rule); elsewhere signals keep their default meaning."""

    def __init__(self):
        self.signum, self.deferring, self._previous = None, False, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        if not self.deferring or self.signum is not None:
            raise _StopNow(signum)
        self.signum = signum
        name = signal.Signals(signum).name
        # os.write, not print: a handler may run while the main code is inside print
        os.write(2, (f"\n{name} received: finishing this step, then saving a checkpoint "
                     f"(send it again to stop at once, keeping the last checkpoint)\n").encode())


def model_from_checkpoint(path, device="cpu"):
    cfg, ckpt = load_checkpoint(path)
    model = UNet(**cfg.model_config())
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


def _figures(out, history, step_losses, model, region, device):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(step_losses) + 1), step_losses, lw=0.7, alpha=0.5, label="training step")
    if history:
        spe = len(step_losses) / max(len(history), 1)
        ax.plot([h["epoch"] * spe for h in history], [h["loss"] for h in history], "o-", label="epoch mean")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted cross-entropy")
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
          verbose: bool = True, fast_weights: bool = False) -> dict:
    """Train, evaluate each epoch, write OUT/checkpoint.npz, OUT/metrics.json and figures.

    Every step draws its tiles from a generator seeded by (seed, step) and its dropout masks
    from a seed made of (seed, step), so a run resumed from a checkpoint computes exactly the
    numbers an uninterrupted run would. With ``resume``, ``cfg`` must hold the checkpoint's
    settings (``resume_config`` makes it); only those in ``RESUMABLE_CHANGES`` may differ.

    SIGINT and SIGTERM during the loop are deferred to the end of the step (and of the
    epoch's evaluation when one is running), a checkpoint is written there, and the run
    raises ``SystemExit(128 + signal number)``: 130 for Ctrl-C, 143 for SIGTERM. A second
    signal stops at once with the same status, writing nothing.

    ``fast_weights`` (the command line's choice): weight maps by ``weight_map_fast``, equal to
    the task's ``weight_map`` bit for bit; off by default, so a student's own code is used.
    """
    start = 0
    check_config(cfg)
    if resume:
        saved_cfg, ckpt = load_checkpoint(resume)
        start = int(ckpt["step"])
        _check_resume(cfg, saved_cfg, resume, start)
    with _Interrupts() as interrupts:
        try:
            return _train(cfg, resume, ckpt if resume else None, start, interrupts, progress, figures, verbose,
                          fast_weights)
        except _StopNow as stop:
            print(f"\n{signal.Signals(stop.signum).name}: stopped at once; the last checkpoint on disk is unchanged",
                  file=sys.stderr)
            raise SystemExit(128 + stop.signum) from None


def _train(cfg, resume, ckpt, start, interrupts, progress, figures, verbose, fast_weights):
    history, step_losses, epoch_losses = [], [], []
    model, opt = build(cfg)
    if resume:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optim"])
        history = json.loads(str(ckpt["history"]))
        epoch_losses = [float(v) for v in np.atleast_1d(ckpt["epoch_losses"])]
        step_losses = [h for e in history for h in e.get("step_losses", [])] + epoch_losses
    ckpt_path = _prepare_out(cfg.out, model, cfg.optimizer)
    train_regions, eval_regions = split_dataset(cfg.data, w0=cfg.w0, sigma=cfg.sigma, mask_kind=cfg.mask_kind,
                                                seed=cfg.seed, min_size=model.output_size(cfg.tile),
                                                fast=fast_weights)
    out_size = model.output_size(cfg.tile)
    total = cfg.epochs * cfg.steps_per_epoch
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc="unet train", unit="step", dynamic_ncols=True)
    step, saved_step = start, (start if resume else None)
    t0 = time.time()
    interrupts.deferring = True  # from here on a signal waits for the step (and evaluation) to finish
    try:
        while step < total and interrupts.signum is None:
            rng = np.random.default_rng([cfg.seed, step])
            mg.manual_seed(cfg.seed * 1_000_003 + step)  # dropout draws
            images, targets, weights = sample_batch(train_regions, cfg.batch_size, cfg.tile, out_size, rng)
            value = train_step(model, opt, images, targets, weights, cfg.device, learning_rate(cfg, step, total))
            if not math.isfinite(value) or not _parameters_finite(model):
                what = f"the loss became {value}" if not math.isfinite(value) else "the weights became non-finite"
                where = f"'{ckpt_path}' (step {saved_step})" if saved_step is not None else "no checkpoint"
                raise FloatingPointError(f"{what} at step {step + 1}; stopped, the last good checkpoint is {where}; "
                                         f"try a smaller --lr")
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
                saved_step = step
                if verbose:
                    (bar.write if bar is not None else print)(f"epoch {history[-1]['epoch']:3d}: loss {history[-1]['loss']:.4f}  "
                              f"iou {scores['iou']:.3f}  dice {scores['dice']:.3f}  "
                              f"object F1 {scores['object_f1']:.3f}  pixel error {scores['pixel_error']:.4f}")
        if interrupts.signum is not None:
            if bar is not None:
                bar.close()
            if saved_step != step:
                save_checkpoint(ckpt_path, model, opt, cfg, step, history, epoch_losses)
            name = signal.Signals(interrupts.signum).name
            print(f"\n{name}: stopped after step {step}; checkpoint saved to {ckpt_path}; "
                  f"continue with: unet train --resume {ckpt_path}", file=sys.stderr)
            raise SystemExit(128 + interrupts.signum)
    finally:
        interrupts.deferring = False
        if bar is not None:
            bar.close()
    final = history[-1] if history else evaluate(model, eval_regions, cfg.device)
    result = {
        "config": asdict(cfg),
        "seconds": time.time() - t0,
        "steps": step,
        "history": [{k: v for k, v in h.items() if k != "step_losses"} for h in history],
        **{k: final[k] for k in ("iou", "dice", "pixel_error", "object_f1")},
    }
    write_json(os.path.join(cfg.out, "metrics.json"), result)
    if figures:
        _figures(cfg.out, history, step_losses, model, eval_regions[0], cfg.device)
    return result
