"""PyTorch's own sample arguments (its OpInfo database) run through minigrad: every sample of
every op below must give PyTorch's values and gradients (float64), or, where minigrad
deliberately does not support an argument, a NotImplementedError that names it.

PyTorch's test helpers import ``expecttest`` (a test-only package); a stand-in is enough for
building the samples. The full max_pool2d sweep (1440 samples) is marked slow; CI runs every
10th one."""
import sys
import types

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F

torch = pytest.importorskip("torch")
if "expecttest" not in sys.modules:
    try:
        import expecttest  # noqa: F401
    except ImportError:
        import unittest

        sys.modules["expecttest"] = types.SimpleNamespace(TestCase=unittest.TestCase)
try:
    from torch.testing._internal.common_methods_invocations import op_db
except Exception as err:  # pragma: no cover - depends on the torch build
    pytest.skip(f"PyTorch's OpInfo database is not importable: {err}", allow_module_level=True)

MG = {  # (OpInfo name, variant) -> the minigrad call taking the same arguments
    ("nn.functional.conv2d", ""): F.conv2d,
    ("nn.functional.conv_transpose2d", ""): F.conv_transpose2d,
    ("nn.functional.max_pool2d", ""): F.max_pool2d,
    ("nn.functional.batch_norm", ""): F.batch_norm,
    ("nn.functional.batch_norm", "without_cudnn"): F.batch_norm,
    ("nn.functional.upsample_nearest", ""): F.upsample_nearest,
    ("nn.functional.upsample_bilinear", ""): F.upsample_bilinear,
    ("nn.functional.cross_entropy", ""): F.cross_entropy,
    ("nn.functional.binary_cross_entropy_with_logits", ""): F.binary_cross_entropy_with_logits,
    ("nn.functional.mse_loss", ""): F.mse_loss,
    ("nn.functional.relu", ""): F.relu,
    ("nn.functional.dropout", ""): F.dropout,  # random: shapes only
    ("sigmoid", ""): F.sigmoid,
    ("softmax", ""): F.softmax,
    ("softmax", "with_dtype"): F.softmax,
    ("log_softmax", ""): F.log_softmax,
    ("log_softmax", "with_dtype"): F.log_softmax,
    ("max", "reduction_with_dim"): mg.max,
    ("max", "reduction_no_dim"): mg.max,
    ("max", "binary"): mg.max,
    ("min", "reduction_with_dim"): mg.min,
    ("min", "reduction_no_dim"): mg.min,
    ("min", "binary"): mg.min,
    ("maximum", ""): mg.maximum,
    ("minimum", ""): mg.minimum,
    ("amax", ""): mg.amax,
    ("amin", ""): mg.amin,
    ("argmax", ""): mg.argmax,
    ("argmin", ""): mg.argmin,
    ("sum", ""): mg.ops.sum,
    ("mean", ""): mg.ops.mean,
    ("pow", ""): mg.ops.pow,
    ("transpose", ""): mg.ops.transpose,
}
for _mode in ("constant", "reflect", "replicate", "replicate_negative", "circular"):
    MG[("nn.functional.pad", _mode)] = F.pad
# interpolate: nearest, nearest-exact and bilinear on 4-D input run; the other modes, and 3-D / 5-D
# input, are refused by name (test_interpolate_refusals_are_the_listed_ones checks which)
for _mode in ("nearest", "nearest-exact", "bilinear", "linear", "bicubic", "trilinear", "area"):
    MG[("nn.functional.interpolate", _mode)] = F.interpolate
OPS = {(op.name, op.variant_test_name): op for op in op_db if (op.name, op.variant_test_name) in MG}


def to_mg(value):
    if isinstance(value, torch.Tensor):
        arr = value.detach().numpy().copy()
        return mg.tensor(arr, requires_grad=value.requires_grad and arr.dtype.kind == "f")
    if isinstance(value, torch.dtype):
        return {torch.float64: np.float64, torch.float32: np.float32}[value]
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(to_mg(v) for v in value)
    return value


def outputs(result):
    return list(result) if isinstance(result, tuple) else [result]


def run_sample(key, sample):
    """None when minigrad agrees with PyTorch (or refuses an unsupported argument by name),
    else a one-line description of the disagreement."""
    fn = MG[key]
    args_t = [sample.input, *sample.args]
    args_m = [to_mg(a) for a in args_t]
    kwargs_m = {k: to_mg(v) for k, v in sample.kwargs.items()}
    what = f"{key[0]}[{key[1]}] input {tuple(sample.input.shape)} args {sample.args} kwargs {sample.kwargs}"
    out_t = outputs(OPS[key].op(*args_t, **sample.kwargs))
    try:
        out_m = outputs(fn(*args_m, **kwargs_m))
    except NotImplementedError as err:  # a refusal must name the argument
        return None if "does not support the PyTorch argument" in str(err) else f"{what}: unclear refusal {err}"
    except Exception as err:  # noqa: BLE001 - every other exception is a disagreement
        return f"{what}: {type(err).__name__}: {err}"
    if len(out_m) != len(out_t):
        return f"{what}: {len(out_m)} outputs, PyTorch {len(out_t)}"
    random_op = key[0] == "nn.functional.dropout"
    for m, t in zip(out_m, out_t):
        if tuple(m.shape) != tuple(t.shape):
            return f"{what}: shape {m.shape}, PyTorch {tuple(t.shape)}"
        if not random_op and not np.allclose(m.numpy(), t.detach().numpy(), rtol=1e-9, atol=1e-12, equal_nan=True):
            return f"{what}: values differ by {np.nanmax(np.abs(m.numpy() - t.detach().numpy()))}"
    # gradients of the first (floating) output with respect to every floating input
    m0, t0 = out_m[0], out_t[0]
    if random_op:  # different random streams: the mask is checked by test_layers' dropout test
        return None
    if not (t0.requires_grad and m0.requires_grad):
        return None if t0.requires_grad == m0.requires_grad else f"{what}: requires_grad {m0.requires_grad}, PyTorch {t0.requires_grad}"
    g = np.random.default_rng(0).standard_normal(t0.shape)
    leaves_t = [a for a in args_t if isinstance(a, torch.Tensor) and a.requires_grad]
    leaves_m = [a for a in args_m if isinstance(a, mg.Tensor) and a.requires_grad]
    grads_t = torch.autograd.grad(t0, leaves_t, torch.tensor(g), allow_unused=True)
    m0.backward(g)
    for i, (lm, gt) in enumerate(zip(leaves_m, grads_t)):
        gm = lm.grad if lm.grad is not None else np.zeros(lm.shape)
        gt = np.zeros(lm.shape) if gt is None else gt.numpy()
        if not np.allclose(gm, gt, rtol=1e-8, atol=1e-10, equal_nan=True):
            return f"{what}: gradient of argument {i} differs by {np.nanmax(np.abs(gm - gt))}"
    return None


@pytest.mark.parametrize("key", sorted(MG), ids=lambda k: f"{k[0]}-{k[1] or 'default'}")
def test_pytorch_sample_arguments_agree(key, request):
    if key not in OPS:
        pytest.skip(f"PyTorch's OpInfo database has no {key}")
    samples = list(OPS[key].sample_inputs("cpu", torch.float64, requires_grad=True))
    slow = request.config.getoption("-m", default="") == "slow"
    if key[0] == "nn.functional.max_pool2d" and not slow:
        samples = samples[::10]  # the full sweep: test_max_pool2d_every_pytorch_sample (slow)
    failures = [f for f in (run_sample(key, s) for s in samples) if f]
    assert not failures, f"{len(failures)} of {len(samples)} samples disagree:\n" + "\n".join(failures[:10])


@pytest.mark.slow
def test_max_pool2d_every_pytorch_sample():
    key = ("nn.functional.max_pool2d", "")
    samples = list(OPS[key].sample_inputs("cpu", torch.float64, requires_grad=True))
    failures = [f for f in (run_sample(key, s) for s in samples) if f]
    assert not failures, f"{len(failures)} of {len(samples)} samples disagree:\n" + "\n".join(failures[:10])


def test_interpolate_refusals_are_the_listed_ones():
    """Every interpolate sample minigrad refuses is one docs/pytorch.md lists: a mode other than
    nearest / nearest-exact / bilinear, or an input that is not 4-D. All 4-D samples of the
    three supported modes run (none is refused)."""
    refused, ran = [], 0
    for mode in ("nearest", "nearest-exact", "bilinear", "linear", "bicubic", "trilinear", "area"):
        key = ("nn.functional.interpolate", mode)
        for s in OPS[key].sample_inputs("cpu", torch.float64, requires_grad=True):
            try:
                F.interpolate(to_mg(s.input), *[to_mg(a) for a in s.args], **s.kwargs)
                ran += 1
            except NotImplementedError as err:
                refused.append((mode, s.input.ndim, str(err)))
    for mode, ndim, message in refused:
        assert mode in ("linear", "bicubic", "trilinear", "area") or ndim != 4, (mode, ndim, message)
        assert (f"mode={mode!r}" in message) or (f"input of {ndim} dimensions" in message), message
    assert ran == 8 + 8 + 24  # the 4-D samples: nearest 8, nearest-exact 8, bilinear 24
    assert len(refused) >= 100  # 3-D / 5-D nearest samples, and every linear/bicubic/trilinear/area one
