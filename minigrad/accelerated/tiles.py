"""Per-channel elementwise work in cache-sized tiles, split over the host's cores.

BatchNorm's passes are elementwise with one coefficient per channel (y = (x - mean[c]) *
alpha[c] + bias[c], ...). Over whole arrays NumPy makes one pass over memory per operation, on
one core. Here the input, viewed as (N, C, L) with L = H * W, is cut into tiles x[:, c0:c1,
l0:l1] of about ``TILE_ELEMENTS`` values, so that every operation of a pass runs on a tile
still in the cache, and the tiles are split between threads (NumPy's ufuncs and BLAS release
the GIL while they compute). A tile holds whole channels whenever one channel's N * L values
fit ``WHOLE_CHANNEL_ELEMENTS``: then a channel's statistics and its normalisation are computed
in one visit to its values, instead of one pass for each.

Results never depend on the number of threads: a tile is always computed the same way, and
per-tile partial sums are combined in tile order, on the calling thread.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import backend

#: Values (over all N samples) in one tile: large enough that Python's cost per NumPy call is
#: small against the arithmetic (a tile takes two dozen calls), small enough for the last-level
#: cache. Tuned by benchmarks/bench_layers.py --suite family --only bn on 2 cores: forward +
#: backward 1.2x-1.7x PyTorch per shape at 262144, 1.2x-1.5x at 524288 (65536: 2.2x-3.2x).
TILE_ELEMENTS = 512 * 1024
#: A whole channel still makes one tile up to this many values (see above).
WHOLE_CHANNEL_ELEMENTS = 1024 * 1024

_pool_lock = threading.Lock()
_pools: dict = {}  # number of helper threads -> its ThreadPoolExecutor (never shut down while in use)
_local = threading.local()  # each thread's scratch buffers


def _forget_pool_after_fork():
    """A forked child inherits the executor objects but not their threads: start afresh."""
    global _pools, _pool_lock
    _pools, _pool_lock = {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _executor(workers: int):
    """A pool of ``workers`` helper threads, made on first use and kept: one per thread count
    asked for (``MINIGRAD_NUM_THREADS`` - 1), so that layers with few tiles do not remake it
    and a caller on another Python thread never finds it shut down under it."""
    with _pool_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="minigrad-tiles")
        return _pools[workers]


def channel_tiles(n: int, c: int, length: int):
    """(c0, c1, l0, l1) tiles of an (n, c, length) array: whole channels, as many as make about
    ``TILE_ELEMENTS`` values (at least one), when a channel's n * length values fit
    ``WHOLE_CHANNEL_ELEMENTS``; else stretches of one channel's positions of about
    ``TILE_ELEMENTS`` values (evened out, so no tile is a thin remainder)."""
    per_channel = max(n * length, 1)
    if per_channel <= max(TILE_ELEMENTS, WHOLE_CHANNEL_ELEMENTS):
        per = max(1, TILE_ELEMENTS // per_channel)
        return [(c0, min(c, c0 + per), 0, length) for c0 in range(0, c, per)]
    pieces = -(-per_channel // TILE_ELEMENTS)
    bounds = [round(i * length / pieces) for i in range(pieces + 1)]
    return [(ch, ch + 1, l0, l1) for ch in range(c) for l0, l1 in zip(bounds, bounds[1:]) if l1 > l0]


def holds_whole_channels(tiles, length: int) -> bool:
    return all(l1 - l0 == length for _, _, l0, l1 in tiles)


def run(tiles, work, threads: int):
    """Call ``work(i, tiles[i])`` for every tile: contiguous runs of tiles on ``threads`` threads
    (the caller's one of them). An exception is raised here, after every thread is done."""
    pool_size, threads = max(1, threads) - 1, max(1, min(threads, len(tiles)))
    if threads == 1:
        for i, tile in enumerate(tiles):
            work(i, tile)
        return
    bounds = [round(k * len(tiles) / threads) for k in range(threads + 1)]

    def run_span(a, b):
        for i in range(a, b):
            work(i, tiles[i])

    pool = _executor(pool_size)  # its size does not depend on this call's number of tiles
    futures = [pool.submit(run_span, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    try:
        run_span(bounds[0], bounds[1])
    finally:
        for future in futures:  # wait for every thread before the results are read (or an error raised)
            future.exception()
    for future in futures:
        future.result()


def scratch(like):
    """This thread's scratch buffer, as an array of ``like``'s shape and dtype (contiguous,
    contents undefined): grown as needed, then reused, so no tile faults in fresh memory."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buf = buffers.get(like.dtype)
    if buf is None or buf.size < like.size:
        buf = buffers[like.dtype] = backend.array_module(like).empty(like.size, like.dtype)
    return buf[:like.size].reshape(like.shape)


def column(values):
    """Per-channel ``values`` (c,) shaped (c, 1) to broadcast along a tile's positions; a single
    channel's value as a scalar (NumPy's fastest loop)."""
    return values[0] if len(values) == 1 else values[:, None]
