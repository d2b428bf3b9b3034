"""Time the U-Net family's networks and UNet++'s pruned networks L1..L4 on minigrad (CPU,
float32): inference (eval mode, no graph) and one training pass (forward + backward), with
each network's parameter count.

    python benchmarks/bench_family.py                       # 256x256, batch 1, defaults
    python benchmarks/bench_family.py --size 128 --repeat 2 --json out.json

The sizes are the reference configurations (UNet++ 32..512 filters, Attention U-Net
feature_scale 4, TernausNet num_filters 32) unless --small, which uses the widths of
``unet train --model KIND``'s defaults (unet.zoo). Medians of --repeat runs after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import minigrad as mg  # noqa: E402
from unet import zoo  # noqa: E402


def networks(small: bool):
    """(label, model, forward kwargs) for every row of the table."""
    if small:
        settings = {kind: zoo.model_settings(zoo.train_config(kind)) for kind in ("unet++", "attention", "ternaus")}
        settings["ternaus"].pop("pretrained", None)
        settings["unet++"]["deep_supervision"] = True
    else:
        settings = {"unet++": dict(deep_supervision=True), "attention": {}, "ternaus": {}}
    pp = zoo.build_model("unet++", **settings["unet++"])
    rows = [(f"UNet++ L{d}" + (" (= the whole network)" if d == pp.depth else ""), pp, dict(prune=d))
            for d in range(1, pp.depth + 1)]
    rows.append(("Attention U-Net", zoo.build_model("attention", **settings["attention"]), {}))
    rows.append(("TernausNet (UNet11)", zoo.build_model("ternaus", **settings["ternaus"]), {}))
    return rows


def used_parameters(model, kwargs) -> int:
    if "prune" in kwargs:
        return sum(r["parameters"] for r in model.describe(model.multiple, prune=kwargs["prune"]))
    return model.num_parameters()


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up: page faults, BLAS threads
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="the unet train defaults' widths")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    results = []
    print(f"minigrad, CPU, float32, batch {args.batch}, {args.size}x{args.size}, median of {args.repeat}")
    print(f"{'network':<32} {'parameters used':>16} {'inference (s)':>14} {'train pass (s)':>15}")
    for label, model, kwargs in networks(args.small):
        channels = 3 if label.startswith("TernausNet") else model.in_channels
        x = rng.standard_normal((args.batch, channels, args.size, args.size)).astype(np.float32)

        def infer():
            model.eval()
            with mg.no_grad():
                model(mg.tensor(x), **kwargs)

        def train_pass():
            model.train()
            model.zero_grad()
            out = model(mg.tensor(x), **kwargs)
            out.sum().backward()

        row = dict(network=label, parameters=used_parameters(model, kwargs),
                   inference_s=median_seconds(infer, args.repeat), train_pass_s=median_seconds(train_pass, args.repeat))
        results.append(row)
        print(f"{label:<32} {row['parameters']:>16,} {row['inference_s']:>14.3f} {row['train_pass_s']:>15.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(size=args.size, batch=args.batch, repeat=args.repeat, small=args.small, rows=results), f,
                      indent=1)


if __name__ == "__main__":
    main()
