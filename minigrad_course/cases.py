"""Grading cases: what each task's code is run on, and how its answer is judged.

A task's grade is the share of its cases that pass. A case is inputs (arrays drawn from a
generator seeded by the task and case name, so a case never depends on what else runs) and a
driver in ``probe.py`` that calls the task's code on them inside the sandbox and hands out
named arrays. The grader, outside the sandbox, runs the same driver on the reference tree (its
own sandbox, cached per reference tree) and compares: same names, shapes and dtypes, finite
where the reference is, ``allclose(rtol, atol)``. The first mismatch is reported as one line
("grad_x[0, 2, 1, 3]: got 0.5, expected 1.25"). Nothing inside the sandbox can change a
verdict: it only writes arrays, and the expected values never enter it.

Visible cases are listed here (students read them; their expected values ship with the student
copy as ``minigrad_course/expected/<task>.npz`` so ``check`` scores them exactly as ``grade``
does). Hidden cases live in the reference tree's ``tests/hidden/cases.py`` (never copied to
students, never inside a sandbox): a module with ``CASES = [case(...), ...]`` written with the
same ``case`` function (marked hidden when loaded), each with a name the instructor chooses;
feedback shows their names and how many passed, nothing more.

How to add a task's cases (``WEEK5_CASES`` below is a worked example: four tasks ported from
their pytest-marked tests, one driver each in ``probe.py``):
1. In ``probe.py`` write ``drive_<name>(params, arrays) -> dict of arrays`` that builds the
   inputs as tensors (``_t``), calls the public function, runs backward with the upstream
   gradient through ``_backward(out, arrays["g"])`` (``out.backward(g)``: no other task's op such
   as Mul in the way, so ``check`` is not "blocked" by an unrelated stub) and returns outputs and
   gradients (``_g`` gives NaN for a gradient that backward left as None, so a lost gradient
   fails). A module with parameters: load them from arrays ``p0, p1, ...`` (``_load_parameters``),
   and return the input gradients too. The probe may import only NumPy and the tree.
2. Here, add ``case(task, name, driver, params, make=lambda r: {...}, rtol=..., atol=...)``
   entries to ``CASES``: ``params`` is JSON (shapes, strides, flags), ``make(rng)`` returns the
   input arrays (``_n(r, *shape)`` for normal draws, ``r.integers`` for labels and ties; float64
   unless the case is about float32, whose tolerance is then ~1e-5). Pick cases that catch the
   usual mistakes (offsets, padding, ties, broadcasting, a lost gradient, a missed term) and name
   each for what it probes: the name is what a student reads beside the first mismatch.
3. ``python -m minigrad_course expected TASK`` writes ``minigrad_course/expected/TASK.npz``
   from the reference tree (commit it); ``tests/instructor/test_grader_attacks.py`` fails while
   it is stale. Hidden cases: the same ``case(...)`` calls in the reference tree's
   ``tests/hidden/cases.py`` (``CASES = [...]``), named as students may read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import runpy
import shutil
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED_DIR = os.path.join(HERE, "expected")
MAX_OUTPUT_BYTES = 64 << 20  # what a run may hand out in all


@dataclasses.dataclass(frozen=True)
class Case:
    task: str
    name: str
    driver: str
    params: dict
    make: object  # rng -> {name: array}
    rtol: float = 1e-6
    atol: float = 1e-8
    hidden: bool = False

    @property
    def key(self) -> str:
        return f"{self.task}/{self.name}"

    def inputs(self) -> dict:
        seed = int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "little")
        return {k: np.asarray(v) for k, v in self.make(np.random.default_rng(seed)).items()}


def case(task, name, driver, params=None, make=lambda r: {}, rtol=1e-6, atol=1e-8, hidden=False) -> Case:
    return Case(task, name, driver, dict(params or {}), make, rtol, atol, hidden)


def _n(r, *shape):
    return r.standard_normal(shape)


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def conv_out(hw, k, stride, padding, dilation):
    s, p, d = _pair(stride), _pair(padding), _pair(dilation)
    return tuple((hw[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))


def convt_out(hw, k, stride, padding, output_padding, dilation):
    s, p, op, d = _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation)
    return tuple((hw[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i in range(2))


def _conv_case(task, name, driver, n, cin, cout, hw, k, stride=1, padding=0, dilation=1, bias=True, **extra):
    kh, kw = (k, k) if isinstance(k, int) else k
    if driver == "conv2d":
        oh, ow = conv_out(hw, (kh, kw), stride, padding, dilation)
        w_shape = (cout, cin // extra.get("groups", 1), kh, kw)
    else:
        oh, ow = convt_out(hw, (kh, kw), stride, padding, extra.get("output_padding", 0), dilation)
        w_shape = (cin, cout, kh, kw)
    params = dict(stride=stride, padding=padding, dilation=dilation, **extra)

    def make(r):
        a = {"x": _n(r, n, cin, *hw), "w": _n(r, *w_shape), "g": _n(r, n, cout, oh, ow)}
        if bias:
            a["b"] = _n(r, cout)
        return a

    return case(task, name, driver, params, make)


def _geom_case(task, name, driver, n, c, hp, wp, k, s, d):
    oh = (hp - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (wp - d[1] * (k[1] - 1) - 1) // s[1] + 1
    params = dict(kernel=list(k), stride=list(s), dilation=list(d), out_hw=[oh, ow])
    if driver == "im2col":
        return case(task, name, driver, params, lambda r: {"src": _n(r, n, c, hp, wp)})
    cols = (c * k[0] * k[1], n * oh * ow)
    return case(task, name, driver, params, lambda r: {"cols": _n(r, *cols), "dst": _n(r, n, c, hp, wp)})


def _tie_pool(r, *shape):
    return r.integers(0, 3, shape).astype(np.float64)  # few values: many ties in a window


def _instances(r, h, w, objects):
    img = np.zeros((h, w), dtype=np.int64)
    for k in range(1, objects + 1):
        y, x = r.integers(0, h - 3), r.integers(0, w - 3)
        img[y:y + r.integers(2, 4), x:x + r.integers(2, 4)] = k
    return img


def _optimizer_case(task, name, optimizer, hyper, steps=3, shapes=((3, 4), (5,)), dtype=np.float64):
    params = dict(optimizer=optimizer, hyper=hyper, steps=steps, n_params=len(shapes))

    def make(r):
        a = {f"p{k}": _n(r, *s).astype(dtype) for k, s in enumerate(shapes)}
        a.update({f"g{k}": _n(r, steps, *s).astype(dtype) for k, s in enumerate(shapes)})
        return a

    return case(task, name, "optimizer", params, make, rtol=1e-5 if dtype == np.float32 else 1e-7)


# node k = op(node i, node j) after the leaves; a node reached along two paths must be done
# (its gradient complete) before it passes the gradient on
DIAMOND = [["tanh", 0, 0], ["max", 2, 1], ["max", 3, 2], ["cat", 4, 2]]
WIDE = [["max", 0, 1], ["tanh", 2, 2], ["max", 3, 0], ["cat", 4, 2], ["tanh", 5, 5], ["cat", 6, 3]]

CASES = [
    # autograd.toposort: diamonds (a gradient reached along two paths), a deep chain
    case("autograd.toposort", "diamond graph", "toposort", {"graph": DIAMOND},
         lambda r: {"x": _n(r, 2, 3), "g": _n(r, 6)}),
    case("autograd.toposort", "shared leaf, six ops", "toposort", {"graph": WIDE},
         lambda r: {"x": _n(r, 2, 4), "g": _n(r, 12)}),
    case("autograd.toposort", "chain of 3000 ops (no recursion)", "chain", {"length": 3000},
         lambda r: {"x": _n(r, 3) * 0.1}, rtol=1e-9),
    # gradcheck.central_difference
    case("gradcheck.central_difference", "exp of a product, d/dx", "central_difference",
         {"fn": "mul_exp", "wrt": 0, "eps": 1e-6}, lambda r: {"x": _n(r, 2, 3) * 0.3, "y": _n(r, 2, 3) * 0.3},
         rtol=1e-5, atol=1e-7),
    case("gradcheck.central_difference", "scalar output, d/dy", "central_difference",
         {"fn": "exp_sum", "wrt": 1, "eps": 1e-6}, lambda r: {"x": _n(r, 4) * 0.3, "y": _n(r, 4)}, rtol=1e-5, atol=1e-7),
    case("gradcheck.central_difference", "division, d/dy (inputs restored)", "central_difference",
         {"fn": "div", "wrt": 1, "eps": 1e-6}, lambda r: {"x": _n(r, 3), "y": 2 + r.random(3)}, rtol=1e-5, atol=1e-7),
    # autograd.elementwise: every op, with broadcasting on both sides
    *[case("autograd.elementwise", f"{op} {xs} with {ys}", "elementwise", {"op": op},
           lambda r, xs=xs, ys=ys, op=op: {
               "x": (1 + r.random(xs)) if op in ("pow", "div") else _n(r, *xs),
               "y": (0.5 + r.random(ys)) if op in ("pow", "div") else _n(r, *ys),
               "g": _n(r, *np.broadcast_shapes(xs, ys))})
      for op, xs, ys in [("add", (2, 3), (3,)), ("sub", (4, 1), (1, 5)), ("mul", (2, 1, 3), (4, 1)),
                         ("div", (3, 4), (4,)), ("pow", (2, 3), (2, 1)), ("mul", (), (2, 2))]],
    *[case("autograd.elementwise", f"{op} {xs}", "elementwise", {"op": op},
           lambda r, xs=xs, op=op: {"x": (0.2 + r.random(xs)) if op == "log" else _n(r, *xs), "g": _n(r, *xs)})
      for op, xs in [("exp", (3, 4)), ("log", (5,)), ("relu", (4, 5))]],
    # autograd.matmul: 2-D, batched with broadcasting, vectors
    *[case("autograd.matmul", f"{xs} @ {ys}", "matmul", {},
           lambda r, xs=xs, ys=ys, os_=os_: {"x": _n(r, *xs), "y": _n(r, *ys), "g": _n(r, *os_)})
      for xs, ys, os_ in [((3, 4), (4, 5), (3, 5)), ((2, 3, 4), (4, 2), (2, 3, 2)), ((2, 1, 3, 4), (5, 4, 2), (2, 5, 3, 2)),
                          ((4,), (4, 3), (3,)), ((3, 4), (4,), (3,))]],
    # conv.im2col / conv.col2im: strides (different per axis), dilation, batches, a 1x1 kernel
    _geom_case("conv.im2col", "3x3, stride 1", "im2col", 2, 3, 6, 7, (3, 3), (1, 1), (1, 1)),
    _geom_case("conv.im2col", "2x3, stride (2, 1)", "im2col", 1, 2, 9, 8, (2, 3), (2, 1), (1, 1)),
    _geom_case("conv.im2col", "3x3, dilation 2, stride 2", "im2col", 2, 2, 11, 11, (3, 3), (2, 2), (2, 2)),
    _geom_case("conv.im2col", "1x1 pointwise", "im2col", 1, 4, 5, 5, (1, 1), (1, 1), (1, 1)),
    _geom_case("conv.col2im", "3x3, stride 1 (overlaps add up)", "col2im", 2, 3, 6, 7, (3, 3), (1, 1), (1, 1)),
    _geom_case("conv.col2im", "2x3, stride (2, 1)", "col2im", 1, 2, 9, 8, (2, 3), (2, 1), (1, 1)),
    _geom_case("conv.col2im", "3x3, dilation 2, stride 2", "col2im", 2, 2, 11, 11, (3, 3), (2, 2), (2, 2)),
    # conv.conv2d_backward
    _conv_case("conv.conv2d_backward", "3x3, padding 1", "conv2d", 2, 3, 4, (6, 5), 3, padding=1),
    _conv_case("conv.conv2d_backward", "stride 2, no bias", "conv2d", 1, 2, 3, (7, 8), 3, stride=2, bias=False),
    _conv_case("conv.conv2d_backward", "dilation 2, padding 2", "conv2d", 2, 2, 2, (7, 7), 3, padding=2, dilation=2),
    _conv_case("conv.conv2d_backward", "2x3 kernel, stride (2, 1), padding (1, 0)", "conv2d", 1, 3, 2, (6, 6), (2, 3),
               stride=[2, 1], padding=[1, 0]),
    _conv_case("conv.conv2d_backward", "1x1", "conv2d", 2, 4, 3, (4, 4), 1),
    # conv.conv_transpose2d: forward and backward
    _conv_case("conv.conv_transpose2d", "2x2, stride 2 (U-Net's up-convolution)", "conv_transpose2d", 2, 4, 2, (3, 4), 2,
               stride=2, output_padding=0),
    _conv_case("conv.conv_transpose2d", "3x3, stride 2, padding 1, output_padding 1", "conv_transpose2d", 1, 2, 3, (4, 3),
               3, stride=2, padding=1, output_padding=1),
    _conv_case("conv.conv_transpose2d", "3x3, dilation 2, no bias", "conv_transpose2d", 1, 3, 2, (4, 4), 3, dilation=2,
               bias=False, output_padding=0),
    # pool.max_pool2d_backward: ties (the first maximum wins, as PyTorch), padding, overlap
    *[case("pool.max_pool2d_backward", name, "max_pool2d", dict(kernel=k, stride=s, padding=p),
           lambda r, shape=shape, k=k, s=s, p=p: {
               "x": _tie_pool(r, *shape),
               "g": _n(r, shape[0], shape[1], (shape[2] + 2 * p - k) // s + 1, (shape[3] + 2 * p - k) // s + 1)})
      for name, shape, k, s, p in [("2x2 stride 2, ties", (2, 3, 6, 8), 2, 2, 0),
                                   ("3x3 stride 2, padding 1, ties", (1, 2, 7, 7), 3, 2, 1),
                                   ("3x3 stride 1 (overlapping windows), ties", (1, 2, 5, 6), 3, 1, 0),
                                   ("2x2 stride 2, odd size", (1, 1, 5, 7), 2, 2, 0)]],
    # crop.backward
    *[case("crop.backward", f"{shape} to {size}", "center_crop", {"size": size},
           lambda r, shape=shape, size=size: {"x": _n(r, *shape), "g": _n(r, shape[0], shape[1], size[0], size[1])})
      for shape, size in [((2, 3, 8, 8), [4, 4]), ((1, 2, 9, 7), [4, 3]), ((1, 1, 5, 6), [5, 6])]],
    # unet.forward: the up block with the skip connection (cropped, concatenated in order)
    *[case("unet.forward", name, "up_block", {"in_channels": c, "padding": pad},
           lambda r, c=c, pad=pad, hw=hw, shw=shw: {
               "x": _n(r, 1, c, hw, hw).astype(np.float32), "skip": _n(r, 1, c // 2, shw, shw).astype(np.float32),
               "g": _n(r, 4096).astype(np.float32),
               **{f"p{k}": _n(r, size) * 0.3 for k, size in enumerate(_up_block_sizes(c))}},
           rtol=1e-4, atol=1e-5)
      for name, c, pad, hw, shw in [("valid padding, skip cropped", 4, 0, 6, 16), ("same padding", 4, 1, 3, 6)]],
    # loss.cross_entropy_backward
    case("loss.cross_entropy_backward", "mean over a batch", "cross_entropy", {"reduction": "mean"},
         lambda r: {"logits": _n(r, 5, 4), "target": r.integers(0, 4, 5), "g": np.array(1.3)}),
    case("loss.cross_entropy_backward", "sum, class weights, ignore_index", "cross_entropy",
         {"reduction": "sum", "ignore_index": 2},
         lambda r: {"logits": _n(r, 6, 3), "target": np.array([0, 2, 1, 2, 0, 1]), "weight": 0.5 + r.random(3),
                    "g": np.array(0.7)}),
    case("loss.cross_entropy_backward", "weighted mean over pixels (N, C, H, W)", "cross_entropy", {"reduction": "mean"},
         lambda r: {"logits": _n(r, 2, 3, 4, 5), "target": r.integers(0, 3, (2, 4, 5)), "weight": 0.5 + r.random(3),
                    "g": np.array(1.0)}),
    case("loss.cross_entropy_backward", "reduction none", "cross_entropy", {"reduction": "none"},
         lambda r: {"logits": _n(r, 4, 3), "target": r.integers(0, 3, 4), "g": _n(r, 4)}),
    case("loss.cross_entropy_backward", "label smoothing 0.1", "cross_entropy",
         {"reduction": "mean", "label_smoothing": 0.1},
         lambda r: {"logits": _n(r, 5, 4), "target": r.integers(0, 4, 5), "g": np.array(1.0)}),
    # unet.weight_map
    case("unet.weight_map", "three objects, balanced", "weight_map", {"w0": 10.0, "sigma": 5.0},
         lambda r: {"instances": _instances(r, 16, 18, 3)}, rtol=1e-5, atol=1e-6),
    case("unet.weight_map", "one object (d2 infinite)", "weight_map", {"w0": 10.0, "sigma": 5.0},
         lambda r: {"instances": _instances(r, 12, 12, 1)}, rtol=1e-5, atol=1e-6),
    case("unet.weight_map", "touching objects, sigma 3, no class weights", "weight_map",
         {"w0": 5.0, "sigma": 3.0, "class_weights": None},
         lambda r: {"instances": np.kron(np.array([[1, 2], [3, 0]]), np.ones((5, 6), dtype=np.int64))},
         rtol=1e-5, atol=1e-6),
    # optim.sgd / optim.adam: several steps (the state carries over)
    _optimizer_case("optim.sgd", "plain", "SGD", {"lr": 0.1}),
    _optimizer_case("optim.sgd", "momentum", "SGD", {"lr": 0.1, "momentum": 0.9}),
    _optimizer_case("optim.sgd", "Nesterov with weight decay", "SGD",
                    {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    _optimizer_case("optim.sgd", "momentum, float32", "SGD", {"lr": 0.1, "momentum": 0.5}, dtype=np.float32),
    _optimizer_case("optim.adam", "defaults", "Adam", {"lr": 0.01}),
    _optimizer_case("optim.adam", "betas and weight decay", "Adam", {"lr": 0.02, "betas": [0.8, 0.99],
                                                                     "weight_decay": 0.1}, steps=4),
    _optimizer_case("optim.adam", "float32, large eps", "Adam", {"lr": 0.1, "eps": 0.1}, dtype=np.float32),
]


def _bn_case(name, shape, training, affine=(True, True), dtype=np.float64, running=True, **options):
    """F.batch_norm on (N, C, *) input: shifted and scaled so a wrong mean or variance shows."""
    c = shape[1]

    def make(r):
        a = {"x": _n(r, *shape) * 2.5 + 1.5, "g": _n(r, *shape)}
        if affine[0]:
            a["w"] = r.uniform(0.5, 2.0, c) * r.choice([-1.0, 1.0], c)
        if affine[1]:
            a["b"] = _n(r, c)
        if running:
            a["running_mean"], a["running_var"] = _n(r, c), r.uniform(0.5, 2.0, c)
        return {k: v.astype(dtype) for k, v in a.items()}

    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-9)
    return case("norm.batch_norm_backward", name, "batch_norm", dict(training=training, **options), make, **tol)


def _resize_out(hw, size=None, scale_factor=None):
    if size is not None:
        return tuple(_pair(size))
    return tuple(int(np.floor(n * s)) for n, s in zip(hw, _pair(scale_factor)))


def _interp_case(name, shape, mode, align_corners=None, size=None, scale_factor=None, dtype=np.float64, **kw):
    params = {"mode": mode, "align_corners": align_corners, "size": size, "scale_factor": scale_factor}
    out = _resize_out(shape[2:], size, scale_factor)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-9)
    return case("interp.upsample_backward", name, "interpolate", {k: v for k, v in params.items() if v is not None},
                lambda r: {"x": _n(r, *shape).astype(dtype), "g": _n(r, *shape[:2], *out).astype(dtype)},
                **{**tol, **kw})


def _dice_case(name, shape, per_image, smooth=1e-5, dtype=np.float64, empty=(), zeros=False, g=1.0):
    """Probabilities in (0, 1) (all 0 with ``zeros``) against a 0/1 target; the images listed in
    ``empty`` have no object pixels."""
    def make(r):
        p = np.zeros(shape) if zeros else r.uniform(0.02, 0.98, shape)
        t = (r.random(shape) < 0.4).astype(np.float64)
        for k in empty:
            t[k] = 0
        return {"p": p.astype(dtype), "t": t.astype(dtype), "g": np.array(g, dtype=dtype)}

    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-8, atol=1e-11)
    return case("loss.dice_backward", name, "soft_dice", {"per_image": per_image, "smooth": smooth}, make, **tol)


def _unetpp_case(name, depth, hw, deep_supervision=False, prune=None, **options):
    """A small UNet++ (base_channels 2, batch 2, float64) on weights drawn from ``theta``."""
    params = dict(num_classes=options.pop("num_classes", 1), deep_supervision=deep_supervision, base_channels=2,
                  depth=depth, **options)
    if prune is not None:
        params["prune"] = prune
    return case("unetpp.forward", name, "unetpp", params,
                lambda r: {"x": _n(r, 2, 1, hw, hw), "theta": _n(r, 4099), "g": _n(r, 4 * hw * hw * depth)},
                rtol=1e-6, atol=1e-9)


WEEK5_CASES = [
    # norm.batch_norm_backward: training (the two extra terms) and eval, with and without weight
    # and bias, float32 and float64, (N, C, H, W), (N, C, L) and (N, C) input
    _bn_case("training, weight and bias", (4, 3, 3, 3), True),
    _bn_case("training, no weight or bias", (3, 2, 4, 2), True, affine=(False, False)),
    _bn_case("training, weight without bias, momentum 0.3", (2, 4, 3, 5), True, affine=(True, False), momentum=0.3),
    _bn_case("eval (running statistics)", (3, 3, 2, 4), False),
    _bn_case("eval, no weight or bias", (2, 2, 3, 3), False, affine=(False, False)),
    _bn_case("training, float32", (4, 3, 4, 4), True, dtype=np.float32),
    _bn_case("eval, float32", (2, 3, 3, 3), False, dtype=np.float32),
    _bn_case("training, (N, C, L) input", (5, 3, 7), True),
    _bn_case("training, (N, C) input, no running statistics", (6, 4), True, running=False),
    # interp.upsample_backward: every mode, size and scale_factor, up and down, non-square
    _interp_case("nearest, scale_factor 2", (2, 2, 3, 4), "nearest", scale_factor=2),
    _interp_case("nearest, size (5, 7) from 4x3", (1, 2, 4, 3), "nearest", size=[5, 7]),
    _interp_case("nearest, down to (2, 3) from 5x7", (1, 2, 5, 7), "nearest", size=[2, 3]),
    _interp_case("nearest-exact, scale_factor (1.5, 2.5)", (1, 2, 4, 3), "nearest-exact", scale_factor=[1.5, 2.5]),
    _interp_case("nearest-exact, down by 0.5", (1, 1, 6, 8), "nearest-exact", scale_factor=0.5),
    _interp_case("bilinear, align_corners, scale_factor 2", (2, 2, 3, 4), "bilinear", True, scale_factor=2),
    _interp_case("bilinear, align_corners, size (7, 5) from 3x4", (1, 2, 3, 4), "bilinear", True, size=[7, 5]),
    _interp_case("bilinear, align_corners, down to (3, 2) from 7x5", (1, 2, 7, 5), "bilinear", True, size=[3, 2]),
    _interp_case("bilinear, scale_factor 2", (2, 2, 3, 4), "bilinear", False, scale_factor=2),
    _interp_case("bilinear, size (9, 7) from 4x5", (1, 2, 4, 5), "bilinear", False, size=[9, 7]),
    _interp_case("bilinear, down by (0.5, 0.75)", (1, 2, 6, 8), "bilinear", False, scale_factor=[0.5, 0.75]),
    _interp_case("bilinear, scale_factor (1.7, 1.3)", (1, 1, 5, 6), "bilinear", False, scale_factor=[1.7, 1.3]),
    _interp_case("bilinear x2, float32", (2, 3, 4, 4), "bilinear", True, scale_factor=2, dtype=np.float32),
    # loss.dice_backward: per image and per batch, empty targets, smoothing, upstream gradient
    _dice_case("per image", (3, 1, 4, 5), True),
    _dice_case("per batch, upstream gradient 2.5", (2, 1, 4, 4), False, g=2.5),
    _dice_case("per image, one image without object pixels", (3, 1, 3, 4), True, empty=(1,)),
    _dice_case("per batch, empty target and prediction", (2, 1, 3, 3), False, empty=(0, 1), zeros=True),
    _dice_case("two channels, smooth 1", (2, 2, 3, 3), True, smooth=1.0, g=0.7),
    _dice_case("per image, float32", (2, 1, 5, 5), True, dtype=np.float32),
    # unetpp.forward: every node of the nested wiring, depth 2-4, deep supervision, pruning
    _unetpp_case("depth 2", 2, 8),
    _unetpp_case("depth 3, deep supervision (three heads)", 3, 8, deep_supervision=True),
    _unetpp_case("depth 4", 4, 16),
    _unetpp_case("depth 3, deep supervision, pruned to L^2", 3, 8, deep_supervision=True, prune=2),
    _unetpp_case("depth 2, transposed-convolution upsampling, no batch norm, two classes", 2, 8,
                 upsample="transpose", batch_norm=False, num_classes=2),
]
CASES += WEEK5_CASES


def _up_block_sizes(c):
    """Sizes of UpBlock(c)'s parameters in ``parameters()`` order: up-conv weight and bias, then
    two 3x3 convs (weight, bias each) from c to c/2 channels."""
    h = c // 2
    return [c * h * 4, h, h * c * 9, h, h * h * 9, h]


# ---- which cases a task has ---------------------------------------------------------------------
def visible_cases(task: str) -> list:
    return [c for c in CASES if c.task == task]


def hidden_cases(reference: str, task: str) -> list:
    """The instructor's hidden cases of ``task`` (``tests/hidden/cases.py`` in the reference tree)."""
    path = os.path.join(reference, "tests", "hidden", "cases.py")
    if not os.path.exists(path):
        return []
    found = runpy.run_path(path).get("CASES", [])
    return [dataclasses.replace(c, hidden=True) for c in found if c.task == task]


def tasks_with_cases() -> set:
    return {c.task for c in CASES}


# ---- running the driver, and reading what it handed out ----------------------------------------
@dataclasses.dataclass
class CaseOutput:
    arrays: dict | None
    error: str = ""


def stage(io_dir: str, cases) -> None:
    """Write the cases' parameters and inputs for the probe (JSON and .npz: no pickle)."""
    os.makedirs(io_dir, exist_ok=True)
    with open(os.path.join(io_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump([{"task": c.task, "name": c.name, "driver": c.driver, "params": c.params} for c in cases], f)
    arrays = {f"{k}/{name}": v for k, c in enumerate(cases) for name, v in c.inputs().items()}
    np.savez(os.path.join(io_dir, "inputs.npz"), **arrays)


def _read_regular(path: str, limit: int) -> bytes | None:
    """The bytes of a regular file that the sandbox wrote, never following a link it planted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000) or st.st_size > limit:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read(limit + 1)[:limit]
    finally:
        if fd >= 0:
            os.close(fd)


def collect(io_dir: str, cases) -> list:
    """What the probe handed out for each case (a case with neither file: did not finish)."""
    out, budget = [], MAX_OUTPUT_BYTES
    for k, _ in enumerate(cases):
        base = os.path.join(io_dir, "out", str(k))
        data = _read_regular(base + ".npz", budget)
        if data is not None:
            budget -= len(data)
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:  # what it inflates to, before inflating it
                    inflated = sum(info.file_size for info in z.infolist())
                if inflated > budget:
                    raise ValueError(f"it inflates to {inflated} bytes")
                budget -= inflated
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    out.append(CaseOutput({n: z[n] for n in z.files}))
                continue
            except (ValueError, OSError, zipfile.BadZipFile, EOFError, MemoryError, KeyError) as err:
                out.append(CaseOutput(None, f"its output could not be read ({type(err).__name__})"))
                continue
        err = _read_regular(base + ".err", 4096)
        out.append(CaseOutput(None, err.decode("utf-8", "replace").strip()[:400] if err is not None else ""))
    return out


def run_probe(sandbox, tree: str, io_dir: str, cases, limits, slot: int = 0, copy_probe: bool = True):
    """Stage ``cases``, run the probe on ``tree`` in a fresh sandbox, and read back the outputs.
    Returns ([CaseOutput], sandbox Outcome). ``copy_probe=False`` (``check``, on the student's
    own copy, which holds this package) runs the probe where it is instead of copying it in."""
    stage(io_dir, cases)
    probe = "/grading/_course_probe.py"
    if copy_probe:
        shutil.copy(os.path.join(HERE, "probe.py"), os.path.join(tree, "_course_probe.py"))
    else:
        probe = os.path.join(HERE, "probe.py")
    # each case gets a share of the wall limit (at least 10 s), so one endless case costs only itself
    per_case = max(10.0, limits.wall_seconds / max(len(cases), 1) * 2) if limits.wall_seconds else 0
    env = {"PYTHONPATH": "/grading", "PYTHONHASHSEED": "0", "PYTHONSAFEPATH": "1", "CASE_SECONDS": f"{per_case:g}"}
    python = "python3" if sandbox.kind in ("docker", "podman") else _python()
    outcome = sandbox.run(tree, io_dir, [python, probe, "/io"], env, limits, slot)
    return collect(io_dir, cases), outcome


def _python():
    import sys

    return sys.executable


# ---- the verdict: one case --------------------------------------------------------------------
def _index(flat_index, shape):
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) + "]" if shape else ""


def compare(case_: Case, got: CaseOutput, expected: CaseOutput) -> str:
    """"" when ``got`` matches ``expected``, else one line saying where it does not."""
    if expected.arrays is None:
        raise RuntimeError(f"the reference failed its own case {case_.key}: {expected.error}")
    if got.arrays is None:
        return got.error or "no result: the run ended before this case finished (time or memory limit?)"
    missing = [n for n in expected.arrays if n not in got.arrays]
    if missing:
        return f"{missing[0]}: missing from the result"
    for name, want in expected.arrays.items():
        have = got.arrays[name]
        if have.dtype.kind not in "biufc":
            return f"{name}: dtype {have.dtype}, expected {want.dtype}"
        if have.shape != want.shape:
            return f"{name}: shape {have.shape}, expected {want.shape}"
        if have.dtype != want.dtype and not (have.dtype.kind in "iub" and want.dtype.kind in "iub"):
            return f"{name}: dtype {have.dtype}, expected {want.dtype}"
        if want.dtype.kind in "fc":
            w_fin = np.isfinite(want)
            bad = ~np.isfinite(have) & w_fin
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                return f"{name}{_index(k, want.shape)}: got {have.reshape(-1)[k]}, expected {want.reshape(-1)[k]:.6g}"
            close = np.isclose(have, want, rtol=case_.rtol, atol=case_.atol, equal_nan=True)
        else:
            close = have == want
        if not np.all(close):
            k = int(np.flatnonzero(~np.asarray(close).reshape(-1))[0])
            h, w = have.reshape(-1)[k], want.reshape(-1)[k]
            fmt = (lambda v: f"{v:.6g}") if want.dtype.kind in "fc" else str
            return (f"{name}{_index(k, want.shape)}: got {fmt(h)}, expected {fmt(w)} "
                    f"({int((~np.asarray(close)).sum())} of {want.size} values differ)")
    return ""


# ---- expected values: the reference's outputs (cached), and the visible ones shipped to students --
_cache: dict = {}


def tree_key(tree: str, task: str) -> str:
    """A hash of the files a reference run of ``task`` depends on (all of minigrad and unet)."""
    h = hashlib.sha256(task.encode())
    for top in ("minigrad", "unet"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(tree, top)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for n in sorted(filenames):
                if n.endswith(".py"):
                    p = os.path.join(dirpath, n)
                    h.update(os.path.relpath(p, tree).encode())
                    with open(p, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()


#: the sandbox slot of the reference's runs (grade serialises them; students' runs use 0..jobs-1)
REFERENCE_SLOT = 999


def expected_outputs(sandbox, reference_tree: str, task: str, cases, limits) -> list:
    """The reference's outputs for ``cases`` (run once per reference tree and case set)."""
    key = (tree_key(reference_tree, task), tuple(c.key for c in cases))
    if key not in _cache:
        with tempfile.TemporaryDirectory(prefix="minigrad-expected-") as tmp:
            os.chmod(tmp, 0o711)  # a run with its own uid passes through (and lists nothing)
            tree = os.path.join(tmp, "tree")
            shutil.copytree(reference_tree, tree, ignore=shutil.ignore_patterns("__pycache__"))
            # a slot (so a uid) of its own: a run's end kills its uid's processes, and a student's
            # run may be going on beside this one in slot 0, 1, ...
            outs, outcome = run_probe(sandbox, tree, os.path.join(tmp, "io"), cases, limits, REFERENCE_SLOT)
        broken = [(c.key, o.error) for c, o in zip(cases, outs) if o.arrays is None]
        if broken:
            raise RuntimeError(f"the reference tree fails its own case {broken[0][0]}: {broken[0][1] or outcome.log[-800:]}")
        _cache[key] = outs
    return _cache[key]


def save_expected(outputs, cases, path: str):
    from ._atomic import atomic_write

    arrays = {f"{c.name}/{n}": v for c, o in zip(cases, outputs) for n, v in o.arrays.items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def write_expected(reference: str, sandbox, folder: str = EXPECTED_DIR, tasks=None) -> list:
    """Compute the visible cases' expected values from the reference tree and write them to
    ``folder`` (one .npz per task). Returns the paths written."""
    from .trees import make_tree

    written = []
    with tempfile.TemporaryDirectory(prefix="minigrad-expected-") as tmp:
        os.chmod(tmp, 0o711)
        sandbox.prepare(tmp)
        tree = make_tree(reference, os.path.join(tmp, "tree"))
        for task in sorted(tasks or tasks_with_cases()):
            cs = visible_cases(task)
            outs = expected_outputs(sandbox, tree, task, cs, _limits())
            path = os.path.join(folder, f"{task}.npz")
            save_expected(outs, cs, path)
            written.append(path)
    return written


def _limits():
    from .sandbox import Limits

    return Limits()


def load_expected(task: str, cases, folder: str = EXPECTED_DIR):
    """The shipped expected values of ``task``'s visible cases, or None if there are none."""
    path = os.path.join(folder, f"{task}.npz")
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as z:
        by_case = {}
        for name in z.files:
            c, n = name.rsplit("/", 1)
            by_case.setdefault(c, {})[n] = z[name]
    if any(c.name not in by_case for c in cases):
        return None
    return [CaseOutput(by_case[c.name]) for c in cases]
