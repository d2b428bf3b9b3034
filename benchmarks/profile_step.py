"""Where one U-Net training step's time goes in minigrad: per op (forward and backward), by
kind of work, against NumPy's own matrix products for the same shapes.

Every ``Function`` subclass's ``forward`` and ``backward`` is wrapped in a timer (a few
microseconds per call), and the step is run as ``bench_unet_step.py`` runs it (same model,
loss and SGD update). The breakdown:

  conv products   NumPy's matrix products alone on the step's convolution shapes (the floor,
                  ``bench_unet_step.numpy_gemm_floor``), timed in the same process
  conv columns    building and scattering columns (im2col, col2im) and padding, timed inside
  conv, rest      what remains of the convolution ops' time: products slower than the floor,
                  bias, layout copies
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


#: the functions that build, scatter and pad columns, where the ops call them from (timed inside the ops)
COLUMN_FUNCTIONS = {
    "minigrad.functional.conv": ("im2col", "col2im", "_pad_hw"),
    "minigrad.accelerated.columns": ("im2col_rows", "col2im_rows"),
    "minigrad.accelerated.conv": ("_pad_hw",),
}


def all_functions(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_functions(sub)


def instrument(totals, layers):
    from minigrad.tensor import Function

    def timed(name, phase, method):
        def run(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                seconds = time.perf_counter() - t0
                totals[(name, phase)] += seconds
                if name in ("Conv2d", "ConvTranspose2d"):  # also by layer: (input shape, weight shape)
                    layers[(name, tuple(self.x.shape), tuple(self.weight.shape), phase)] += seconds
        return run

    import importlib

    def timed_function(module, name):
        fn = getattr(module, name)

        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[("columns", name)] += time.perf_counter() - t0
        setattr(module, name, run)

    for module_name, names in COLUMN_FUNCTIONS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # no accelerated path here
            continue
        for name in names:
            timed_function(module, name)

    seen = set()
    for cls in list(all_functions(Function)):
        for phase in ("forward", "backward"):
            method = cls.__dict__.get(phase)
            if method is not None and (cls, phase) not in seen:
                seen.add((cls, phase))
                setattr(cls, phase, timed(cls.__name__, phase, method))


def gemm_seconds(name, x_shape, w_shape, repeats=3):
    """NumPy's time for a convolution layer's three products (forward, both gradients), as
    ``bench_unet_step.numpy_gemm_floor`` times them: (M, K) @ (K, 8192) slices, scaled."""
    import numpy as np

    n, c, h, w = x_shape
    if name == "Conv2d":
        o, _, kh, kw = w_shape
        m, k, cols = o, c * kh * kw, n * (h - kh + 1) * (w - kw + 1)
    else:  # ConvTranspose2d, stride = kernel: (C_out*kh*kw, C_in) @ (C_in, H*W)
        _, o, kh, kw = w_shape
        m, k, cols = o * kh * kw, c, n * h * w
    rng = np.random.default_rng(0)
    width = min(cols, 8192)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, width), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 3 * best * cols / width


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

    totals, layers = collections.Counter(), collections.Counter()
    instrument(totals, layers)
    step()  # warm-up
    best, best_totals = float("inf"), None
    for _ in range(args.steps):
        totals.clear()
        layers.clear()
        t0 = time.perf_counter()
        step()
        seconds = time.perf_counter() - t0
        if seconds < best:
            best, best_totals, best_layers = seconds, dict(totals), dict(layers)
    floor = numpy_gemm_floor(args.config)["seconds"]

    columns = sum(s for (name, _), s in best_totals.items() if name == "columns")
    ops_only = {key: s for key, s in best_totals.items() if key[0] != "columns"}
    by_kind = collections.Counter()
    for (name, _), s in ops_only.items():
        by_kind[KINDS.get(name, "element-wise and other ops")] += s
    ops = sum(ops_only.values())
    conv = by_kind.pop("conv")
    rows = [("conv products (NumPy floor)", floor),
            ("conv columns (im2col, col2im, padding)", columns),
            ("conv, rest (products over the floor, bias)", conv - floor - columns)]
    rows += sorted(by_kind.items(), key=lambda kv: -kv[1])
    rows.append(("autograd and optimiser (outside ops)", best - ops))
    path = "textbook" if args.textbook else ("accelerated" if mg.backends.accelerated.is_available() else "textbook")
    print(f"{args.config} step, {path} path, {args.threads} threads: {best:.3f} s (best of {args.steps})")
    for name, s in rows:
        print(f"  {name:40s} {s:7.3f} s  {100 * s / best:5.1f} %")
    print("  per op (forward + backward), largest first:")
    per_op = collections.Counter()
    for (name, phase), s in ops_only.items():
        per_op[(name, phase)] += s
    for (name, phase), s in per_op.most_common(12):
        print(f"    {name:22s} {phase:8s} {s:7.3f} s  {100 * s / best:5.1f} %")
    print("  convolutions by layer (input shape, weight shape): forward, backward, and their NumPy floor:")
    shapes = sorted({key[:3] for key in best_layers}, key=lambda k: -sum(best_layers.get(k + (p,), 0)
                                                                         for p in ("forward", "backward")))
    for name, x_shape, w_shape in shapes:
        fwd, bwd = (best_layers.get((name, x_shape, w_shape, p), 0.0) for p in ("forward", "backward"))
        floor_s = gemm_seconds(name, x_shape, w_shape)
        print(f"    {name:15s} x {str(x_shape):20s} w {str(w_shape):18s} fwd {fwd:6.3f} s  bwd {bwd:6.3f} s  "
              f"floor {floor_s:6.3f} s  ({(fwd + bwd) / floor_s:4.1f}x)")


if __name__ == "__main__":
    main()
