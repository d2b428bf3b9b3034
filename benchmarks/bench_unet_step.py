"""One U-Net training step (forward, backward, SGD update), minigrad beside PyTorch CPU.

Two configurations, float32:
  paper     depth 4, 64 base channels, 572x572, batch 1 (31 M parameters)
  teaching  depth 3, 16 base channels, 188x188, batch 8

Also times NumPy's own matrix product on the step's convolution GEMM shapes in the same run:
the floor an im2col framework cannot beat on this BLAS.

Each framework runs in its own process (PyTorch's spinning OpenMP threads slow NumPy's
BLAS when both share one). Peak memory is the process's peak resident size during the
steps minus its resident size just before them (model and optimiser already built).

    python benchmarks/bench_unet_step.py [--config paper|teaching|both] [--steps 3] [--rounds 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {
    "paper": dict(depth=4, base=64, size=572, batch=1),
    "teaching": dict(depth=3, base=16, size=188, batch=8),
}


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def conv_gemms(depth, base, size, batch):
    """(M, K, N) of each convolution's forward matrix product in the U-Net (valid 3x3 convs,
    2x2 stride-2 up-convolutions, the 1x1 output); each backward does two more of the same size."""
    gemms, s, c_in = [], size, 1
    for level in range(depth + 1):
        c = base * 2**level
        gemms += [(c, 9 * c_in, batch * (s - 2) ** 2), (c, 9 * c, batch * (s - 4) ** 2)]
        s, c_in = s - 4, c
        if level < depth:
            s //= 2
    for level in reversed(range(depth)):
        c = base * 2**level
        gemms.append((4 * c, 2 * c, batch * s * s))  # up-convolution: (C_out*2*2, C_in) @ (C_in, H*W)
        s *= 2
        gemms += [(c, 18 * c, batch * (s - 2) ** 2), (c, 9 * c, batch * (s - 4) ** 2)]
        s -= 4
    gemms.append((2, base, batch * s * s))
    return gemms


def numpy_gemm_floor(name, repeats=3):
    """Seconds NumPy's own float32 matrix product needs for a step's convolution GEMMs
    (3 per layer: forward, weight gradient, input gradient), timed on 8192-column slices."""
    import numpy as np

    cfg = CONFIGS[name]
    rng = np.random.default_rng(0)
    total = 0.0
    for m, k, n in conv_gemms(cfg["depth"], cfg["base"], cfg["size"], cfg["batch"]):
        width = min(n, 8192)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, width), dtype=np.float32)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        total += 3 * best * n / width
    return {"seconds": total, "peak_mib": 0.0}


def minigrad_step(cfg, rng, x_np):
    """One minigrad training step of the configuration's U-Net (weighted cross-entropy, SGD)."""
    import numpy as np

    import minigrad as mg
    from unet import UNet

    model = UNet(depth=cfg["depth"], base_channels=cfg["base"])
    out = model.output_size(cfg["size"])
    opt = mg.optim.SGD(model.parameters(), lr=1e-4, momentum=0.99)
    target = rng.integers(0, 2, (cfg["batch"], out, out))
    weight = rng.uniform(0.5, 5, (cfg["batch"], out, out)).astype(np.float32)

    def step():
        loss = mg.functional.cross_entropy(model(mg.tensor(x_np)), target, pixel_weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def worker(framework, name, steps):
    import numpy as np

    if framework == "numpy":
        return numpy_gemm_floor(name)
    cfg = CONFIGS[name]
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((cfg["batch"], 1, cfg["size"], cfg["size"]), dtype=np.float32)
    if framework == "minigrad":
        step = minigrad_step(cfg, rng, x_np)
    else:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as tf

        def double(cin, cout):
            return tnn.Sequential(tnn.Conv2d(cin, cout, 3), tnn.ReLU(), tnn.Conv2d(cout, cout, 3), tnn.ReLU())

        class TorchUNet(tnn.Module):
            def __init__(self, depth, base):
                super().__init__()
                ch = [base * 2**i for i in range(depth + 1)]
                self.downs = tnn.ModuleList([double(1 if i == 0 else ch[i - 1], ch[i]) for i in range(depth)])
                self.bottom = double(ch[depth - 1], ch[depth])
                self.ups = tnn.ModuleList([tnn.ConvTranspose2d(ch[i + 1], ch[i], 2, 2) for i in reversed(range(depth))])
                self.convs = tnn.ModuleList([double(ch[i + 1], ch[i]) for i in reversed(range(depth))])
                self.head = tnn.Conv2d(base, 2, 1)

            def forward(self, x):
                skips = []
                for d in self.downs:
                    x = d(x)
                    skips.append(x)
                    x = tf.max_pool2d(x, 2)
                x = self.bottom(x)
                for up, conv, skip in zip(self.ups, self.convs, reversed(skips)):
                    x = up(x)
                    t, l = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
                    x = conv(torch.cat([skip[:, :, t:t + x.shape[2], l:l + x.shape[3]], x], 1))
                return self.head(x)

        model = TorchUNet(cfg["depth"], cfg["base"])
        x = torch.from_numpy(x_np)
        with torch.no_grad():
            out = model(x[:1]).shape[-1]
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.99)
        target = torch.from_numpy(rng.integers(0, 2, (cfg["batch"], out, out)))
        weight = torch.from_numpy(rng.uniform(0.5, 5, (cfg["batch"], out, out)).astype(np.float32))

        def step():
            per_pixel = tf.cross_entropy(model(x), target, reduction="none")
            loss = (per_pixel * weight).sum() / weight.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()

    base = rss_mib()
    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "peak_mib": peak_mib() - base}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["paper", "teaching", "both"], default="both")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2,
                        help="run the workers this many times, alternating, and keep the best of each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.steps)))
        return
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
        env[var] = str(args.threads)
    names = ["paper", "teaching"] if args.config == "both" else [args.config]
    for name in names:
        res = {}
        for _ in range(args.rounds):  # alternate, keep the best: shared machines have noisy moments
            for fw in ("numpy", "minigrad", "torch"):
                out = subprocess.run([sys.executable, __file__, "--worker", fw, name, "--steps", str(args.steps)],
                                     env=env, capture_output=True, text=True)
                if out.returncode:
                    print(out.stderr, file=sys.stderr)
                    raise SystemExit(f"{fw} worker failed")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                res[fw] = {k: min(v, res.get(fw, {}).get(k, float("inf"))) for k, v in got.items()}
        m, t, g = res["minigrad"], res["torch"], res["numpy"]
        print(f"{name:9s} step: minigrad {m['seconds']:.3f} s, torch {t['seconds']:.3f} s, "
              f"time ratio {m['seconds'] / t['seconds']:.2f} | peak memory: minigrad {m['peak_mib']:.0f} MiB, "
              f"torch {t['peak_mib']:.0f} MiB, ratio {m['peak_mib'] / max(t['peak_mib'], 1):.2f}\n"
              f"{'':9s} NumPy's matrix products alone (the step's conv GEMMs): {g['seconds']:.3f} s; "
              f"minigrad / that {m['seconds'] / g['seconds']:.2f}, torch / that {t['seconds'] / g['seconds']:.2f}")


if __name__ == "__main__":
    main()
