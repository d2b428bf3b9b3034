"""Time every distinct layer of the paper's U-Net (572x572 input, batch 1, float32):
minigrad beside PyTorch CPU, plus NumPy's own matrix product for the same GEMM shape; and the
U-Net family's layers (BatchNorm2d in training mode and bilinear x2 upsampling, batch 4, float32,
at the shapes UNet++ uses on a 256x256 input).

Each framework runs in its own process: PyTorch's OpenMP threads keep spinning after a
call and slow NumPy's BLAS down when both live in one process.

    python benchmarks/bench_layers.py                # all layers, 2 threads
    python benchmarks/bench_layers.py --repeat 5 --rounds 3 --threads 2 --json out.json
    python benchmarks/bench_layers.py --suite family # only the family's BatchNorm and upsampling
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def unet_layers():
    """(name, kind, C_in, C_out, input size) for the paper's U-Net at 572x572."""
    layers, size, c_in = [], 572, 1
    for level, c in enumerate([64, 128, 256, 512, 1024]):
        layers.append((f"conv{level}a {c_in}->{c} @{size}", "conv3", c_in, c, size))
        layers.append((f"conv{level}b {c}->{c} @{size - 2}", "conv3", c, c, size - 2))
        size, c_in = size - 4, c
        if level < 4:
            layers.append((f"pool{level} {c} @{size}", "pool", c, c, size))
            size //= 2
    for level, c in enumerate([512, 256, 128, 64]):
        layers.append((f"up{level} {c * 2}->{c} @{size}", "up", c * 2, c, size))
        size *= 2
        layers.append((f"conv{level}c {c * 2}->{c} @{size}", "conv3", c * 2, c, size))
        layers.append((f"conv{level}d {c}->{c} @{size - 2}", "conv3", c, c, size - 2))
        size -= 4
    layers.append((f"out 64->2 @{size}", "conv1", 64, 2, size))
    return layers


def family_layers():
    """(name, kind, C, input size, align_corners) of the U-Net family at a 256x256 input, batch 4:
    BatchNorm2d after the convolutions of each level (32-512 channels at 256-32 px) and the bilinear
    x2 upsampling into each decoder level (UNet++ and TernausNet use align_corners=True, PyTorch's
    nn.Upsample default is False: both are timed)."""
    layers = [(f"bn {c} @{size}", "bn", c, size, None) for c, size in [(32, 256), (64, 128), (128, 64),
                                                                         (256, 32), (512, 32)]]
    for c, size in [(64, 128), (128, 64), (256, 32), (512, 16)]:
        for corners in (True, False):
            layers.append((f"up2 {c} @{size}->{2 * size} ac={'T' if corners else 'F'}", "bilinear", c, size, corners))
    return layers


def family_op(functional, kind, x, weight, bias, running_mean, running_var, corners):
    if kind == "bn":
        return lambda: functional.batch_norm(x, running_mean, running_var, weight, bias, training=True)
    return lambda: functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=corners)


def run_family_worker(framework, repeat, only):
    """forward (no graph) and forward + backward of each family layer, in one framework."""
    import numpy as np

    rng = np.random.default_rng(0)
    results = {}
    for name, kind, c, size, corners in family_layers():
        if only and only not in name:
            continue
        x_np = rng.standard_normal((4, c, size, size), dtype=np.float32)
        w_np, b_np = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c, dtype=np.float32)
        if framework == "torch":
            import torch
            import torch.nn.functional as TF

            lib, functional, no_grad = torch, TF, torch.no_grad
            x = torch.from_numpy(x_np).requires_grad_()
            w, b = torch.from_numpy(w_np).requires_grad_(), torch.from_numpy(b_np).requires_grad_()
            stats = torch.zeros(c), torch.ones(c)
        else:
            import minigrad as mg
            import minigrad.functional as F

            lib, functional, no_grad = mg, F, mg.no_grad
            x = mg.tensor(x_np, requires_grad=True)
            w, b = mg.tensor(w_np, requires_grad=True), mg.tensor(b_np, requires_grad=True)
            stats = mg.zeros(c), mg.ones(c)
        op = family_op(functional, kind, x, w, b, *stats, corners)
        g = lib.ones_like(op()) if framework == "torch" else np.ones(op().shape, np.float32)

        def fwd():
            with no_grad():
                op()

        def fwd_bwd():
            x.grad = w.grad = b.grad = None
            op().backward(g)

        results[name] = {"fwd": best_of(fwd, repeat), "fwd_bwd": best_of(fwd_bwd, repeat)}
    return results


def flops(kind, c_in, c_out, size):
    """Forward multiply-adds x 2 (backward is about twice this)."""
    if kind == "conv3":
        return 2 * c_out * c_in * 9 * (size - 2) ** 2
    if kind == "conv1":
        return 2 * c_out * c_in * size**2
    if kind == "up":
        return 2 * c_out * c_in * 4 * size**2
    return c_in * size**2  # pooling: one comparison per input element


def gemm_shape(kind, c_in, c_out, size):
    if kind == "conv3":
        return c_out, c_in * 9, (size - 2) ** 2
    if kind == "conv1":
        return c_out, c_in, size**2
    if kind == "up":
        return c_out * 4, c_in, size**2
    return None


def layer_op(functional, kind, x, w, b):
    """The layer as a no-argument call, for either framework's functional module."""
    if kind in ("conv3", "conv1"):
        return lambda: functional.conv2d(x, w, b)
    if kind == "up":
        return lambda: functional.conv_transpose2d(x, w, b, stride=2)
    return lambda: functional.max_pool2d(x, 2)


def best_of(fn, repeat):
    fn()  # warm up (allocations, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_worker(framework, repeat, only):
    import numpy as np

    rng = np.random.default_rng(0)
    results = {}
    for name, kind, c_in, c_out, size in unet_layers():
        if only and only not in name:
            continue
        x_np = rng.standard_normal((1, c_in, size, size), dtype=np.float32)
        w_shape = {"conv3": (c_out, c_in, 3, 3), "conv1": (c_out, c_in, 1, 1), "up": (c_in, c_out, 2, 2)}.get(kind)
        w_np = rng.standard_normal(w_shape, dtype=np.float32) * 0.05 if w_shape else None
        b_np = np.zeros(c_out, np.float32)
        needs_x = not name.startswith("conv0a")
        if framework == "numpy":
            shape = gemm_shape(kind, c_in, c_out, size)
            if shape is None:
                continue
            m, k, n = shape
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            results[name] = {"gemm": best_of(lambda: a @ b, repeat)}
            continue
        if framework == "torch":
            import torch
            import torch.nn.functional as TF

            x = torch.from_numpy(x_np).requires_grad_(needs_x)
            w = torch.from_numpy(w_np).requires_grad_() if w_np is not None else None
            b = torch.from_numpy(b_np).requires_grad_()
            op = layer_op(TF, kind, x, w, b)
            g = torch.ones_like(op())

            def fwd():
                with torch.no_grad():
                    op()

            def fwd_bwd():
                x.grad = None
                op().backward(g)
        else:
            import minigrad as mg
            import minigrad.functional as F

            x = mg.tensor(x_np, requires_grad=needs_x)
            w = mg.tensor(w_np, requires_grad=True) if w_np is not None else None
            b = mg.tensor(b_np, requires_grad=True)
            op = layer_op(F, kind, x, w, b)
            g = np.ones(op().shape, np.float32)

            def fwd():
                with mg.no_grad():
                    op()

            def fwd_bwd():
                x.grad = None
                if w is not None:
                    w.grad = b.grad = None
                op().backward(g)

        if kind == "pool":
            x.requires_grad = True
        results[name] = {"fwd": best_of(fwd, repeat), "fwd_bwd": best_of(fwd_bwd, repeat)}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2,
                        help="run the workers this many times, alternating, and keep each layer's best time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="run only layers whose name contains this")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--suite", choices=["all", "unet", "family"], default="all",
                        help="the paper's U-Net layers, the family's BatchNorm and upsampling layers, or both")
    parser.add_argument("--worker", choices=["minigrad", "torch", "numpy"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        out = {}
        if args.suite in ("all", "unet"):
            out.update(run_worker(args.worker, args.repeat, args.only))
        if args.suite in ("all", "family") and args.worker != "numpy":
            out.update(run_family_worker(args.worker, args.repeat, args.only))
        print(json.dumps(out))
        return
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
        env[var] = str(args.threads)
    # The machines are shared: a neighbour's burst can slow a whole worker for tens of seconds.
    # Alternating the frameworks over several rounds and keeping each layer's best time gives
    # every framework the same chance of a quiet moment.
    results = {}
    for _ in range(args.rounds):
        for framework in ("numpy", "minigrad", "torch") if args.suite != "family" else ("minigrad", "torch"):
            cmd = [sys.executable, __file__, "--worker", framework, "--repeat", str(args.repeat), "--only", args.only,
                   "--suite", args.suite]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                raise SystemExit(f"{framework} worker failed")
            best = results.setdefault(framework, {})
            for layer, times in json.loads(out.stdout.strip().splitlines()[-1]).items():
                for key, value in times.items():
                    best.setdefault(layer, {})[key] = min(value, best.get(layer, {}).get(key, float("inf")))

    mg, pt, npy = results["minigrad"], results["torch"], results.get("numpy", {})
    if args.suite in ("all", "unet"):
        report_unet(mg, pt, npy)
    if args.suite in ("all", "family"):
        report_family(mg, pt)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def report_family(mg, pt):
    print(f"\n{'family layer (batch 4)':30s} {'fwd ms':>8s} {'torch':>8s} {'ratio':>6s} | "
          f"{'f+b ms':>8s} {'torch':>8s} {'ratio':>6s}")
    kinds = {}
    for name, kind, *_ in family_layers():
        if name not in mg:
            continue
        m, p = mg[name], pt[name]
        print(f"{name:30s} {m['fwd'] * 1e3:8.1f} {p['fwd'] * 1e3:8.1f} {m['fwd'] / p['fwd']:6.2f} | "
              f"{m['fwd_bwd'] * 1e3:8.1f} {p['fwd_bwd'] * 1e3:8.1f} {m['fwd_bwd'] / p['fwd_bwd']:6.2f}")
        k = kinds.setdefault(kind, [0.0, 0.0])
        k[0] += m["fwd_bwd"]
        k[1] += p["fwd_bwd"]
    for kind, (a, b) in kinds.items():
        print(f"  {kind:8s} forward+backward ratio {a / b:.2f}  ({a:.3f} s vs {b:.3f} s, summed over its shapes)")


def report_unet(mg, pt, npy):
    print(f"{'layer':28s} {'fwd ms':>8s} {'torch':>8s} {'ratio':>6s} | {'f+b ms':>8s} {'torch':>8s} {'ratio':>6s} | "
          f"{'GFLOP/s':>7s} {'torch':>7s} {'numpy GEMM':>10s}")
    totals = {"mg": 0.0, "pt": 0.0, "mg_f": 0.0, "pt_f": 0.0}
    kinds = {}
    for name, kind, c_in, c_out, size in unet_layers():
        if name not in mg:
            continue
        m, p = mg[name], pt[name]
        fl = flops(kind, c_in, c_out, size)
        total_fl = 3 * fl if kind != "pool" else fl
        gemm = npy.get(name, {}).get("gemm")
        gemm_rate = f"{2 * __import__('math').prod(gemm_shape(kind, c_in, c_out, size)) / gemm / 1e9:10.1f}" if gemm else f"{'-':>10s}"
        print(f"{name:28s} {m['fwd'] * 1e3:8.1f} {p['fwd'] * 1e3:8.1f} {m['fwd'] / p['fwd']:6.2f} | "
              f"{m['fwd_bwd'] * 1e3:8.1f} {p['fwd_bwd'] * 1e3:8.1f} {m['fwd_bwd'] / p['fwd_bwd']:6.2f} | "
              f"{total_fl / m['fwd_bwd'] / 1e9:7.1f} {total_fl / p['fwd_bwd'] / 1e9:7.1f} {gemm_rate}")
        totals["mg"] += m["fwd_bwd"]
        totals["pt"] += p["fwd_bwd"]
        totals["mg_f"] += m["fwd"]
        totals["pt_f"] += p["fwd"]
        k = kinds.setdefault(kind, [0.0, 0.0])
        k[0] += m["fwd_bwd"]
        k[1] += p["fwd_bwd"]
    print(f"\nsum over layers, forward:          minigrad {totals['mg_f']:.2f} s, torch {totals['pt_f']:.2f} s, "
          f"ratio {totals['mg_f'] / totals['pt_f']:.2f}")
    print(f"sum over layers, forward+backward: minigrad {totals['mg']:.2f} s, torch {totals['pt']:.2f} s, "
          f"ratio {totals['mg'] / totals['pt']:.2f}")
    for kind, (a, b) in kinds.items():
        print(f"  {kind:6s} forward+backward ratio {a / b:.2f}  ({a:.2f} s vs {b:.2f} s)")


if __name__ == "__main__":
    main()
