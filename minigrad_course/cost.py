"""What a task's code costs on one mid-size layer: best-of-3 time and peak traced memory.

The grader runs ``measure(task)`` in the tree being graded and in the reference tree and
prints the ratios, ungraded, so students see what the simplest version costs.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np


def _layer(task_id: str):
    import minigrad as mg
    import minigrad.functional as F

    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((2, 32, 64, 64)).astype(np.float32), requires_grad=True)
    if task_id == "conv.im2col":
        w = mg.tensor(rng.standard_normal((32, 32, 3, 3)).astype(np.float32))
        return lambda: F.conv2d(x.detach(), w, padding=1)
    if task_id == "conv.col2im":  # conv2d's input gradient through col2im (C_out > C_in)
        w = mg.tensor(rng.standard_normal((64, 32, 3, 3)).astype(np.float32))
        return lambda: F.conv2d(x, w, padding=1, stride=2).sum().backward()
    if task_id == "conv.conv2d_backward":
        w = mg.tensor(rng.standard_normal((32, 32, 3, 3)).astype(np.float32), requires_grad=True)
        return lambda: F.conv2d(x, w, padding=1).sum().backward()
    if task_id == "conv.conv_transpose2d":
        w = mg.tensor(rng.standard_normal((32, 16, 2, 2)).astype(np.float32), requires_grad=True)
        return lambda: F.conv_transpose2d(x, w, stride=2).sum().backward()
    if task_id == "pool.max_pool2d_backward":
        return lambda: F.max_pool2d(x, 2).sum().backward()
    raise ValueError(f"cost: no layer for task {task_id!r}")


def measure(task_id: str, repeats: int = 3) -> dict:
    run = _layer(task_id)
    run()  # warm up (scratch buffers, caches)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"time": best, "memory": float(peak)}
