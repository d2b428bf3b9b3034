"""Where one U-Net training step's time goes in minigrad: per op (forward and backward), by
kind of work, against NumPy's own matrix products for the same shapes.

Every ``Function`` subclass's ``forward`` and ``backward`` is wrapped in a timer (a few
microseconds per call), and the step is run as ``bench_unet_step.py`` runs it (same model,
loss and SGD update). The breakdown:

  conv products   NumPy's matrix products alone on the step's convolution shapes (the floor,
                  ``bench_unet_step.numpy_gemm_floor``), timed in the same process
  conv, rest      the convolution ops' time minus that floor: building and scattering columns,
                  padding, cropping, bias, layout copies, and products slower than the floor
  max-pool, crop/concat, element-wise, loss, ...   the other ops, forward + backward
  autograd and optimiser   the step's time outside every op: the graph walk, gradient
                  accumulation, the SGD update, Python

    python benchmarks/profile_step.py [--config teaching|paper] [--steps 3] [--threads 2] [--textbook]

``--textbook`` profiles the textbook path (the task blocks, MINIGRAD_ACCELERATED=0).
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

KINDS = {  # op class name -> kind of work
    "Conv2d": "conv", "ConvTranspose2d": "conv",
    "MaxPool2d": "max-pool", "DilatedMaxPool2d": "max-pool",
    "CenterCrop": "crop/concat", "Cat": "crop/concat", "GetItem": "crop/concat",
    "CrossEntropy": "loss", "LogSoftmax": "loss",
}


def all_functions(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_functions(sub)


def instrument(totals):
    from minigrad.tensor import Function

    def timed(name, phase, method):
        def run(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                totals[(name, phase)] += time.perf_counter() - t0
        return run

    seen = set()
    for cls in list(all_functions(Function)):
        for phase in ("forward", "backward"):
            method = cls.__dict__.get(phase)
            if method is not None and (cls, phase) not in seen:
                seen.add((cls, phase))
                setattr(cls, phase, timed(cls.__name__, phase, method))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["teaching", "paper"], default="teaching")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--textbook", action="store_true", help="profile the task blocks alone")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args.textbook:
        os.environ["MINIGRAD_ACCELERATED"] = "0"
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np

    import minigrad as mg
    try:  # its subclasses are instrumented too, where present (a student copy has none)
        import minigrad.accelerated  # noqa: F401
    except ImportError:
        pass
    from bench_unet_step import CONFIGS, minigrad_step, numpy_gemm_floor

    cfg = CONFIGS[args.config]
    rng = np.random.default_rng(0)
    step = minigrad_step(cfg, rng, rng.standard_normal((cfg["batch"], 1, cfg["size"], cfg["size"]), dtype=np.float32))

    totals = collections.Counter()
    instrument(totals)
    step()  # warm-up
    best, best_totals = float("inf"), None
    for _ in range(args.steps):
        totals.clear()
        t0 = time.perf_counter()
        step()
        seconds = time.perf_counter() - t0
        if seconds < best:
            best, best_totals = seconds, dict(totals)
    floor = numpy_gemm_floor(args.config)["seconds"]

    by_kind = collections.Counter()
    for (name, _), s in best_totals.items():
        by_kind[KINDS.get(name, "element-wise and other ops")] += s
    ops = sum(best_totals.values())
    rows = [("conv products (NumPy floor)", floor), ("conv, rest (columns, copies, bias)", by_kind.pop("conv") - floor)]
    rows += sorted(by_kind.items(), key=lambda kv: -kv[1])
    rows.append(("autograd and optimiser (outside ops)", best - ops))
    path = "textbook" if args.textbook else ("accelerated" if mg.backends.accelerated.is_available() else "textbook")
    print(f"{args.config} step, {path} path, {args.threads} threads: {best:.3f} s (best of {args.steps})")
    for name, s in rows:
        print(f"  {name:40s} {s:7.3f} s  {100 * s / best:5.1f} %")
    print("  per op (forward + backward), largest first:")
    per_op = collections.Counter()
    for (name, phase), s in best_totals.items():
        per_op[(name, phase)] += s
    for (name, phase), s in per_op.most_common(12):
        print(f"    {name:22s} {phase:8s} {s:7.3f} s  {100 * s / best:5.1f} %")


if __name__ == "__main__":
    main()
