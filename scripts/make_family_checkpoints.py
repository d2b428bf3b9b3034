"""Make the two small trained networks tutorial 10 looks inside: unet/data/family_unetpp.npz (a UNet++
of depth 4 with deep supervision, for its heads and its pruning) and unet/data/family_attention.npz (an
Attention U-Net, for its gates).

Both come from ``unet train --model KIND`` at that model's defaults (seed 0, the bottom-right quadrant
held out). The machine was shared by many jobs when they were made (load average ~12 on 2 cores, so
about 10x slower than quiet), hence the short runs. Exactly these commands made them (one BLAS thread):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 unet train --model unet++ --deep-supervision --epochs 4 --out runs/family_unetpp --quiet
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 unet train --model attention --feature-scale 8 --tile 128 --out runs/family_attention --quiet
    python scripts/make_family_checkpoints.py runs/family_unetpp/checkpoint.npz runs/family_attention/checkpoint.npz

The UNet++ run is complete (4 epochs of 25 steps). The Attention U-Net's file is the checkpoint its
run writes after an epoch (the shipped file's history says which; its configuration keeps the run's
20 epochs): a snapshot taken while the run went on, as every epoch's checkpoint is the same whether the
run is then stopped or not (``--feature-scale 8 --tile 128`` are its defaults, spelled out).

The last step keeps what the notebook needs (no optimiser state): the floating-point weights and
BatchNorm statistics as float16 (the notebook casts them back to float32; the integer batch counters
stay integers), the training configuration, the model's constructor settings, and each epoch's held-out
scores. Training is deterministic for one BLAS setup only; another thread count or CPU lands near, not
on, these weights.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "unet", "data")
EXPECTED = {"family_unetpp.npz": dict(model="unet++", deep_supervision=True, depth=4),
            "family_attention.npz": dict(model="attention")}


def shrink(checkpoint: str, out: str) -> dict:
    """Write the notebook's small copy of a ``unet train`` checkpoint; returns its config."""
    import minigrad as mg
    from unet.train import load_checkpoint
    from unet.zoo import model_settings

    cfg, ckpt = load_checkpoint(checkpoint)
    config = json.loads(ckpt["config"])
    config.pop("out", None)
    history = [{k: v for k, v in h.items() if k != "step_losses"} for h in json.loads(ckpt["history"])]
    model = {k: (np.asarray(v).astype(np.float16) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
             for k, v in ckpt["model"].items()}
    mg.save({"model": model, "config": json.dumps(config, sort_keys=True),
             "settings": json.dumps(model_settings(cfg), sort_keys=True), "history": json.dumps(history)}, out)
    return config


def load_small(path: str):
    """(network in float32, eval mode; config dict; history list) from a file written by ``shrink``."""
    import minigrad as mg
    from unet.zoo import build_model

    state = mg.load(path)
    config = json.loads(state["config"])
    model = build_model(config["model"], **json.loads(state["settings"]))
    model.load_state_dict({k: (np.asarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
                           for k, v in state["model"].items()})
    return model.eval(), config, json.loads(state["history"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("unetpp", help="checkpoint.npz of the UNet++ run (--deep-supervision --depth 4)")
    parser.add_argument("attention", help="checkpoint.npz of the Attention U-Net run")
    parser.add_argument("--out", default=DATA, help="folder for the two files (default unet/data)")
    args = parser.parse_args(argv)
    for src, name in ((args.unetpp, "family_unetpp.npz"), (args.attention, "family_attention.npz")):
        path = os.path.join(args.out, name)
        config = shrink(src, path)
        wrong = {k: config.get(k) for k, v in EXPECTED[name].items() if config.get(k) != v}
        if wrong:
            os.remove(path)
            raise SystemExit(f"{src} was trained with {wrong}, expected {EXPECTED[name]}")
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
