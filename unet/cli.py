"""The ``unet`` command line: ``unet train`` and ``unet predict``."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def _check_device(device: str) -> None:
    """Refuse ``--device cuda`` before any work, with the reason the GPU probe found."""
    if device != "cuda":
        return
    import minigrad as mg

    if mg.backend.gpu_available():
        return
    why = getattr(mg.backend, "gpu_unavailable_reason", lambda: None)()
    raise RuntimeError(f"device='cuda' was asked for, but no usable GPU was found: "
                       f"{why or 'CuPy is not installed, or found no CUDA device that runs a kernel'} (use --device cpu)")


def _train(args):
    from .train import TrainConfig, resume_config, train

    given = {key: value for key, value in vars(args).items()
             if value is not None and key in TrainConfig.__dataclass_fields__}
    if args.resume:
        cfg = resume_config(args.resume, given)
    else:
        cfg = TrainConfig(**given)
    _check_device(cfg.device)
    # --quiet: no bar, epoch lines only; fast_weights: weight_map_fast, equal to the task's weight_map
    result = train(cfg, resume=args.resume, progress=not args.quiet, fast_weights=True)
    print(f"held-out: iou {result['iou']:.3f}  dice {result['dice']:.3f}  object F1 {result['object_f1']:.3f}  "
          f"pixel error {result['pixel_error']:.4f}  ({result['seconds']:.0f} s)")
    print(f"wrote {os.path.join(cfg.out, 'checkpoint.npz')}, metrics.json, loss.png, prediction.png")


def _overlay(image, mask):
    """Grey image with predicted objects tinted and their outlines drawn in red."""
    from scipy import ndimage

    grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    rgb = np.stack([grey] * 3, axis=-1).astype(np.float32)
    fg = mask > 0
    rgb[fg] = 0.6 * rgb[fg] + 0.4 * np.array([0, 255, 0])
    outline = fg & ~ndimage.binary_erosion(fg)
    rgb[outline] = [255, 0, 0]
    return rgb.astype(np.uint8)


def output_stems(paths) -> list:
    """The output name stem of each input image: its file name without the extension.
    Two different inputs with one stem (``a/x.png`` and ``b/x.png``, or ``x.png`` and
    ``x.tif``) are refused before anything is written: one would overwrite the other's."""
    seen, stems = {}, []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        other = seen.setdefault(stem, path)
        if os.path.realpath(other) != os.path.realpath(path):
            raise ValueError(f"'{other}' and '{path}' would both be written as {stem}_mask.png; "
                             f"predict them into different --out folders")
        stems.append(stem)
    return stems


def _predict(args):
    from tqdm import tqdm

    from .data import normalize
    from .inference import predict_mask
    from .io import read_image, write_png
    from .train import model_from_checkpoint

    stems = output_stems(args.images)
    for path in args.images:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such image file: '{path}'")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out '{args.out}' is a file, not a folder")
    _check_device(args.device)
    model, _ = model_from_checkpoint(args.checkpoint, device=args.device)
    if args.tile is not None:
        model.check_input_size(args.tile, "--tile")
    os.makedirs(args.out, exist_ok=True)
    done = set()
    for path, stem in zip(tqdm(args.images, desc="unet predict", unit="image", disable=args.quiet), stems):
        if stem in done:  # the same file named twice
            continue
        done.add(stem)
        image = normalize(read_image(path))
        mask = predict_mask(model, image, tile=args.tile, device=args.device)
        write_png(os.path.join(args.out, f"{stem}_mask.png"), (mask > 0).astype(np.uint8) * 255)
        write_png(os.path.join(args.out, f"{stem}_overlay.png"), _overlay(image, mask))
        print(f"{path}: {int((mask > 0).sum())} foreground pixels -> {args.out}/{stem}_mask.png, {stem}_overlay.png")


def build_parser():
    parser = argparse.ArgumentParser(prog="unet", description="The U-Net (Ronneberger et al. 2015) on minigrad.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on the bundled nuclei image, synthetic cells or a folder")
    t.add_argument("--data", help="nuclei (default), synthetic, or a folder with images/ and masks/")
    t.add_argument("--mask-kind", dest="mask_kind", choices=["instance", "class"], help="folder masks: instance ids or class indices")
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps-per-epoch", dest="steps_per_epoch", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--tile", type=int, help="input tile size (must be a valid U-Net input size)")
    t.add_argument("--lr", type=float)
    t.add_argument("--lr-schedule", dest="lr_schedule", choices=["cosine", "constant"])
    t.add_argument("--optimizer", choices=["sgd", "adam"])
    t.add_argument("--depth", type=int)
    t.add_argument("--base-channels", dest="base_channels", type=int)
    t.add_argument("--padding", choices=["valid", "same"])
    t.add_argument("--dropout", type=float)
    t.add_argument("--w0", type=float, help="border weight w0 of the paper's weight map (0 turns it off)")
    t.add_argument("--sigma", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", choices=["cpu", "cuda"])
    t.add_argument("--out", help="output folder (default runs/unet)")
    t.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint.npz")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)
    p = sub.add_parser("predict", help="overlap-tile segmentation of images with a trained checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default="predictions")
    p.add_argument("--tile", type=int)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_predict)
    return parser


def _one_line(err: BaseException) -> str | None:
    """The message for an error a user can cause and fix, or None for a bug (which keeps its
    traceback). CuPy's OutOfMemoryError is matched by name: CuPy may not be installed."""
    if type(err).__name__ == "OutOfMemoryError" or isinstance(err, MemoryError):
        return f"out of memory ({err}); try a smaller --tile or --batch-size, or --device cpu"
    if isinstance(err, ImportError):
        return f"{err} (a dependency is missing: reinstall with pip install -e \".[dev]\", or .[gpu] for --device cuda)"
    if isinstance(err, OSError):
        name = f" '{err.filename}'" if err.filename else ""
        return f"{err.strerror or err}{name}" if err.strerror else str(err)
    if isinstance(err, KeyError):
        return str(err.args[0]) if err.args else repr(err)
    if isinstance(err, (ValueError, RuntimeError, FloatingPointError)):
        return str(err)
    return None


def main(argv=None):
    """Run ``unet``; returns the exit status: 0, 2 for a user error (one line on stderr, no
    traceback), 130 after Ctrl-C, 143 after SIGTERM (see ``unet.train.train``)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:  # outside training's own handling (e.g. while loading or predicting)
        print(f"unet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = _one_line(err)
        if message is None:
            raise
        print(f"unet {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
