"""Make the two small trained U-Nets that tutorial 06 compares: unet/data/w0_10.npz and w0_0.npz.

They are the default ``unet train`` recipe (depth 3, 16 base channels, 188 px tiles, batch 4,
Adam, 20 epochs of 25 steps, seed 0) with the border weight w0 = 10 (the paper's) and w0 = 0
(no border term). Exactly these commands made them (on 2 CPU cores, one BLAS thread each):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 unet train --w0 10 --out runs/w0_10 --quiet
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 unet train --w0 0 --out runs/w0_0 --quiet
    python scripts/make_w0_checkpoints.py runs/w0_10/checkpoint.npz runs/w0_0/checkpoint.npz

The last step keeps only what the notebook needs (no optimiser state): the weights as float16
(half the size; the notebook casts them back to float32), the training configuration, and
each epoch's held-out scores. Training is deterministic for one BLAS setup; another thread
count or CPU sums in another order, so a re-run lands near, not on, these weights
(tests/instructor/test_w0_checkpoints.py re-creates them and compares within a tolerance).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "unet", "data")


def shrink(checkpoint: str, out: str) -> dict:
    """Write the notebook's small copy of a ``unet train`` checkpoint; returns its config."""
    import minigrad as mg

    ckpt = mg.load(checkpoint)
    config = json.loads(ckpt["config"])
    config.pop("out", None)
    history = [{k: v for k, v in h.items() if k != "step_losses"} for h in json.loads(ckpt["history"])]
    model = {k: np.asarray(v).astype(np.float16) for k, v in ckpt["model"].items()}
    mg.save({"model": model, "config": json.dumps(config, sort_keys=True), "history": json.dumps(history)}, out)
    return config


def load_small(path: str):
    """(UNet in float32, config dict, history list) from a file written by ``shrink``."""
    import minigrad as mg
    from unet import UNet

    state = mg.load(path)
    config = json.loads(state["config"])
    model = UNet(in_channels=1, num_classes=2, depth=config["depth"], base_channels=config["base_channels"],
                 padding=config["padding"], dropout=config["dropout"])
    model.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in state["model"].items()})
    model.eval()
    return model, config, json.loads(state["history"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("w0_10", help="checkpoint.npz of the --w0 10 run")
    parser.add_argument("w0_0", help="checkpoint.npz of the --w0 0 run")
    parser.add_argument("--out", default=DATA, help="folder for w0_10.npz and w0_0.npz (default unet/data)")
    args = parser.parse_args(argv)
    for src, name, w0 in ((args.w0_10, "w0_10.npz", 10.0), (args.w0_0, "w0_0.npz", 0.0)):
        config = shrink(src, os.path.join(args.out, name))
        if config["w0"] != w0:
            raise SystemExit(f"{src} was trained with w0 = {config['w0']}, expected {w0}")
        print(f"wrote {os.path.join(args.out, name)} ({os.path.getsize(os.path.join(args.out, name)) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
