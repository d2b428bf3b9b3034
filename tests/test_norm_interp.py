"""Batch normalisation, interpolation and module buffers: PyTorch 2.13 as the oracle (values and
every gradient, float64, hypothesis-drawn shapes, sizes, scale factors and modes), central
differences (mg.gradcheck), the running statistics over several steps, the state dict and the
bridge, devices (cpu and the strict fakegpu stand-in) and the refusals of bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fakegpu
import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import torch_bridge
from conftest import assert_close, assert_on, on_device, to_device

MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", True), ("bilinear", False), ("bilinear", None)]


# ---- interpolate ------------------------------------------------------------------------
@st.composite
def interp_config(draw):
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    mode, align_corners = draw(st.sampled_from(MODES))
    kind = draw(st.sampled_from(["size", "int scale", "float scale", "pair scale", "recompute"]))
    factor = st.one_of(st.integers(1, 4).map(float), st.sampled_from([0.5, 0.6, 0.75, 1.1, 1.3, 1.7, 2.5, 3.3]))
    if kind == "size":
        args = dict(size=(draw(st.integers(1, 11)), draw(st.integers(1, 11))))
    elif kind == "int scale":
        args = dict(scale_factor=draw(st.integers(1, 3)))
    elif kind == "float scale":
        args = dict(scale_factor=draw(factor))
    elif kind == "pair scale":
        args = dict(scale_factor=(draw(factor), draw(factor)))
    else:
        args = dict(scale_factor=draw(factor), recompute_scale_factor=True)
    sf = args.get("scale_factor")
    sf = sf if isinstance(sf, tuple) else (sf, sf)
    if sf[0] is not None and (int(h * sf[0]) < 1 or int(w * sf[1]) < 1):
        args = dict(size=(h, w))  # (a scale that rounds the output down to nothing)
    return (n, c, h, w), dict(mode=mode, align_corners=align_corners, **args)


@given(cfg=interp_config(), data=st.data())
def test_interpolate_matches_pytorch_values_and_gradients(cfg, data, torch):
    shape, kwargs = cfg
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, **kwargs)
    xm = mg.tensor(x, requires_grad=True)
    ym = F.interpolate(xm, **kwargs)
    assert_close(ym.data, yt, what=f"values {shape} {kwargs}")
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    ym.backward(g)
    assert_close(xm.grad, xt.grad, what=f"gradient {shape} {kwargs}")


@pytest.mark.parametrize("mode,align_corners", MODES)
@pytest.mark.parametrize("size", [(3, 5), (9, 8), (2, 2)])
def test_interpolate_gradcheck(mode, align_corners, size):
    x = mg.tensor(np.random.default_rng(1).standard_normal((2, 2, 4, 3)), requires_grad=True)
    assert mg.gradcheck(lambda x: F.interpolate(x, size, mode=mode, align_corners=align_corners), [x])


def test_bilinear_x2_reads_the_documented_source_pixels():
    """align_corners=True puts output 0 and the last output on the corner pixels exactly;
    False samples at (o + 0.5) / 2 - 0.5, so output 1 is 3/4 of pixel 0 and 1/4 of pixel 1."""
    x = mg.tensor(np.arange(3.0).reshape(1, 1, 1, 3) * 4)  # columns 0, 4, 8
    corners = F.interpolate(x, size=(1, 6), mode="bilinear", align_corners=True).numpy().ravel()
    np.testing.assert_allclose(corners, [0, 1.6, 3.2, 4.8, 6.4, 8])
    edges = F.interpolate(x, scale_factor=(1, 2), mode="bilinear", align_corners=False).numpy().ravel()
    np.testing.assert_allclose(edges, [0, 1, 3, 5, 7, 8])
    nearest = F.interpolate(x, scale_factor=(1, 2)).numpy().ravel()
    np.testing.assert_array_equal(nearest, [0, 0, 4, 4, 8, 8])


def test_scale_factor_samples_with_its_reciprocal_unless_recomputed(torch):
    """5 pixels x 1.7 -> 8 outputs: PyTorch samples at 1/1.7 (not 5/8) unless
    recompute_scale_factor=True; the two give different values, and both match PyTorch."""
    x = np.random.default_rng(2).standard_normal((1, 1, 5, 5))
    a = F.interpolate(mg.tensor(x), scale_factor=1.7, mode="bilinear").numpy()
    b = F.interpolate(mg.tensor(x), scale_factor=1.7, mode="bilinear", recompute_scale_factor=True).numpy()
    assert a.shape == b.shape == (1, 1, 8, 8) and not np.allclose(a, b)
    for out, recompute in ((a, None), (b, True)):
        ref = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=1.7, mode="bilinear",
                                              recompute_scale_factor=recompute)
        assert_close(out, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode,align_corners", MODES)
def test_interpolate_on_devices_matches_pytorch(mode, align_corners, dtype, device, torch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    g = rng.standard_normal((2, 3, 10, 7)).astype(dtype)
    xm, gd = on_device(x, device), to_device(g, device)
    with fakegpu.no_transfers():  # the sampling indices are made on the device
        ym = F.interpolate(xm, size=(10, 7), mode=mode, align_corners=align_corners)
        ym.backward(gd)
    assert_on(device, ym, xm.grad)
    assert ym.dtype == dtype and xm.grad.dtype == dtype
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, size=(10, 7), mode=mode, align_corners=align_corners)
    yt.backward(torch.tensor(g))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else {}
    assert_close(ym.data, yt, **tol)
    assert_close(xm.grad, xt.grad, **tol)


def test_upsample_module_and_deprecated_aliases(torch):
    x = np.random.default_rng(4).standard_normal((1, 2, 3, 4))
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    ref = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(torch.tensor(x))
    assert_close(up(mg.tensor(x)).data, ref)
    assert "scale_factor=2" in repr(up)
    with pytest.warns(UserWarning, match="deprecated"):
        assert_close(F.upsample_bilinear(mg.tensor(x), size=(5, 5)).data,
                     torch.nn.functional.interpolate(torch.tensor(x), size=(5, 5), mode="bilinear", align_corners=True))
    with pytest.warns(UserWarning, match="deprecated"):
        assert_close(F.upsample_nearest(mg.tensor(x), scale_factor=3).data,
                     torch.nn.functional.interpolate(torch.tensor(x), scale_factor=3))


@pytest.mark.parametrize("call,error,match", [
    (lambda x: F.interpolate(x, size=4, scale_factor=2), ValueError, "exactly one of size and scale_factor, got both"),
    (lambda x: F.interpolate(x), ValueError, "got neither"),
    (lambda x: F.interpolate(x[0], size=4), NotImplementedError, "input of 3 dimensions"),
    (lambda x: F.interpolate(x.reshape(2, 3, 2, 2, 1), size=4), NotImplementedError, "input of 5 dimensions"),
    (lambda x: F.interpolate(x.reshape(24, 1), size=4), ValueError, r"must be 4-D \(N, C, H, W\), got shape \(24, 1\)"),
    (lambda x: F.interpolate(x, size=4, mode="bicubic"), NotImplementedError, "mode='bicubic'"),
    (lambda x: F.interpolate(x, size=4, mode="area"), NotImplementedError, "mode='area'"),
    (lambda x: F.interpolate(x, size=4, mode="bilinear", antialias=True), NotImplementedError, "antialias=True"),
    (lambda x: F.interpolate(x, size=4, mode="cubic"), ValueError, "mode must be one of"),
    (lambda x: F.interpolate(x, size=4, align_corners=True), ValueError, "align_corners can only be set with mode='bilinear'"),
    (lambda x: F.interpolate(x, scale_factor=0.1), ValueError, r"output \(0, 0\)"),
    (lambda x: F.interpolate(x, scale_factor=-2.0), ValueError, "positive and finite"),
    (lambda x: F.interpolate(x, size=(2, 2, 2)), ValueError, "size must be an int or a pair of ints"),
    (lambda x: F.interpolate(x, size=2.5), ValueError, "size must be an int or a pair of ints"),
    (lambda x: F.interpolate(x, size=4, recompute_scale_factor=True), ValueError, "not meaningful with an explicit size"),
])
def test_interpolate_refuses_bad_input_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call(mg.tensor(np.zeros((1, 2, 3, 4))))


# ---- batch_norm -------------------------------------------------------------------------
@st.composite
def bn_config(draw):
    shape = draw(st.sampled_from([(2, 3), (3, 2, 4), (2, 3, 4, 5), (1, 2, 3, 3), (4, 1, 2, 1)]))
    return shape, draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from([0.1, 0.5, 0.0, 1.0]))


@given(cfg=bn_config(), data=st.data())
def test_batch_norm_matches_pytorch_values_gradients_and_running_stats(cfg, data, torch):
    shape, training, affine, momentum = cfg
    c = shape[1]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    xm, wm, bm = (mg.tensor(a, requires_grad=True) for a in (x, w, b))
    rmm, rvm = mg.tensor(rm), mg.tensor(rv)
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, wt if affine else None, bt if affine else None, training,
                                        momentum, 1e-3)
    ym = F.batch_norm(xm, rmm, rvm, wm if affine else None, bm if affine else None, training, momentum, 1e-3)
    assert_close(ym.data, yt, what="values")
    assert_close(rmm.data, rmt, what="running_mean")
    assert_close(rvm.data, rvt, what="running_var (updated with the unbiased variance)")
    g = rng.standard_normal(shape)
    yt.backward(torch.tensor(g))
    ym.backward(g)
    assert_close(xm.grad, xt.grad, what="input gradient")
    if affine:
        assert_close(wm.grad, wt.grad, what="weight gradient")
        assert_close(bm.grad, bt.grad, what="bias gradient")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training):
    rng = np.random.default_rng(5)
    x = mg.tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    w = mg.tensor(rng.standard_normal(2), requires_grad=True)
    b = mg.tensor(rng.standard_normal(2), requires_grad=True)
    rm, rv = rng.standard_normal(2), rng.random(2) + 0.5
    # (the running statistics are copies: each of gradcheck's forward passes starts from the same ones)
    assert mg.gradcheck(lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training), [x, w, b])


def test_batch_norm_backward_is_not_autograd_through_constants():
    """In training the statistics depend on x: a backward that treated them as constants
    (dx = g * w / std) would give a gradient whose channel sums are not 0; the true one
    has sum(dx) = 0 and sum(dx * x_hat) = 0 per channel whatever g is."""
    rng = np.random.default_rng(6)
    x = mg.tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
    y = F.batch_norm(x, None, None, training=True, eps=0.0)  # (eps = 0: x_hat has exactly unit variance)
    y.backward(rng.standard_normal(y.shape))
    x_hat = y.numpy()
    np.testing.assert_allclose(x.grad.sum(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose((x.grad * x_hat).sum(axis=(0, 2, 3)), 0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_on_devices_matches_pytorch(training, dtype, device, torch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 5, 5)).astype(dtype) * 2 + 1
    g = rng.standard_normal(x.shape).astype(dtype)
    bn = nn.BatchNorm2d(4, device=device, dtype=dtype)
    ref = torch.nn.BatchNorm2d(4, dtype={np.float32: torch.float32, np.float64: torch.float64}[dtype])
    for layer in (bn, ref):
        layer.train(training)
    with torch.no_grad():
        ref.running_mean.copy_(torch.tensor(rng.standard_normal(4)))
        ref.weight.copy_(torch.tensor(rng.standard_normal(4)))
    bn.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    assert_on(device, bn.weight, bn.running_mean, bn.num_batches_tracked)
    xm, gd = on_device(x, device), to_device(g, device)
    with fakegpu.no_transfers():
        ym = bn(xm)
        ym.backward(gd)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(g))
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else {}
    assert ym.dtype == dtype and xm.grad.dtype == dtype and bn.running_var.dtype == dtype
    assert_close(ym.data, yt, **tol)
    assert_close(xm.grad, xt.grad, **tol)
    assert_close(bn.weight.grad, ref.weight.grad, **tol)
    assert_close(bn.bias.grad, ref.bias.grad, **tol)
    for name, value in ref.state_dict().items():
        assert_close(bn.state_dict()[name], value, **tol, what=name)
    assert bn.num_batches_tracked.dtype == np.int64


@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("track", [True, False])
def test_batch_norm2d_running_stats_over_steps_then_eval(momentum, track, torch):
    rng = np.random.default_rng(8)
    bn = nn.BatchNorm2d(3, momentum=momentum, track_running_stats=track, dtype=np.float64)
    ref = torch.nn.BatchNorm2d(3, momentum=momentum, track_running_stats=track, dtype=torch.float64)
    assert list(bn.state_dict()) == list(ref.state_dict())
    for _ in range(4):
        x = rng.standard_normal((2, 3, 3, 4)) * rng.random() * 4 + rng.standard_normal()
        assert_close(bn(mg.tensor(x)).data, ref(torch.tensor(x)))
    for name, value in ref.state_dict().items():
        assert_close(bn.state_dict()[name], value, what=name)
    bn.eval(), ref.eval()
    x = rng.standard_normal((2, 3, 3, 4))
    assert_close(bn(mg.tensor(x)).data, ref(torch.tensor(x)), what="eval output")
    if track:
        assert int(bn.num_batches_tracked.item()) == 4
        x1 = rng.standard_normal((1, 3, 1, 1))  # one value per channel is fine in eval
        assert_close(bn(mg.tensor(x1)).data, ref(torch.tensor(x1)))


@pytest.mark.parametrize("call,match", [
    (lambda: nn.BatchNorm2d(4)(mg.tensor(np.zeros((2, 3, 4, 4)))), r"input has 3 channels .* expected num_features=4"),
    (lambda: nn.BatchNorm2d(3)(mg.tensor(np.zeros((1, 3, 1, 1)))), "more than 1 value per channel"),
    (lambda: F.batch_norm(mg.tensor(np.zeros((1, 3))), None, None, training=True), "more than 1 value per channel"),
    (lambda: nn.BatchNorm2d(3)(mg.tensor(np.zeros((2, 3, 4)))), r"expected 4-D input \(N, C, H, W\)"),
    (lambda: F.batch_norm(mg.tensor(np.zeros((2, 3))), np.zeros(4), np.ones(4)), r"running_mean has shape \(4,\), expected \(3,\)"),
    (lambda: F.batch_norm(mg.tensor(np.zeros((2, 3))), None, None), "must be given in evaluation mode"),
    (lambda: F.batch_norm(mg.tensor(np.zeros((2, 3))), np.zeros(3), np.ones(3), momentum=None), "momentum must be a number"),
    (lambda: nn.BatchNorm2d(0), "num_features must be a positive int"),
    (lambda: nn.BatchNorm2d(3, momentum=1.5), "momentum must be in"),
])
def test_batch_norm_refuses_bad_input_by_name(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---- buffers, modes, state dicts, the bridge --------------------------------------------
class Block(nn.Module):
    """conv -> BatchNorm -> ReLU -> Dropout -> bilinear x2 -> 1x1 conv (the family's decoder step)."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.drop = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Dropout(0.5)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.head = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        return self.head(self.up(self.drop(F.relu(self.bn(self.conv(x))))))


def torch_block(torch):
    """Block's PyTorch twin: the same module names, so the same state-dict keys."""
    tnn = torch.nn

    class TorchBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.drop = tnn.Conv2d(2, 3, 3, padding=1), tnn.BatchNorm2d(3), tnn.Dropout(0.5)
            self.up = tnn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.head = tnn.Conv2d(3, 1, 1)

        def forward(self, x):
            return self.head(self.up(self.drop(torch.relu(self.bn(self.conv(x))))))

    return TorchBlock().double()


def test_buffers_are_registered_saved_moved_and_loaded_like_parameters():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert [n for n, _ in m.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                    "1.num_batches_tracked"]
    assert len(m.parameters()) == 4 and len(m.buffers()) == 3  # buffers are never optimised
    m.to(np.float64)
    assert m[1].running_var.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64
    m.to("fakegpu")
    assert_on("fakegpu", *m.buffers())
    m.to("cpu")
    state = {k: np.array(v) for k, v in m.state_dict().items()}
    state["1.running_mean"] = np.full(2, 3.0)
    m.load_state_dict(state)
    np.testing.assert_array_equal(m[1].running_mean.numpy(), 3.0)
    del state["1.num_batches_tracked"]
    with pytest.raises(KeyError, match="missing buffer '1.num_batches_tracked'"):
        m.load_state_dict(state)
    state["1.num_batches_tracked"], state["1.running_var"] = np.array(0), np.ones(3)
    with pytest.raises(ValueError, match=r"'1.running_var' has shape \(3,\), the model expects \(2,\)"):
        m.load_state_dict(state)
    m.load_state_dict({k: v for k, v in state.items() if k != "1.running_var"}, strict=False)


def test_register_buffer_persistent_none_and_reassignment():
    m = nn.Module()
    m.register_buffer("kept", np.arange(3.0))
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    m.register_buffer("empty", None)
    assert list(m.state_dict()) == ["kept"] and [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
    m.kept = np.ones(3)  # assigning to a buffer's name replaces the buffer's value
    assert isinstance(m.kept, mg.Tensor) and m.state_dict()["kept"].tolist() == [1, 1, 1]
    with pytest.raises(TypeError, match="a buffer must be a Tensor"):
        m.kept = "text"
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("training", np.zeros(1))


def test_train_and_eval_switch_every_batchnorm_and_dropout_below():
    model = nn.Sequential(nn.Sequential(nn.BatchNorm2d(2), nn.Dropout(0.5)), nn.BatchNorm2d(2))
    model.eval()
    assert not any(m.training for _, m in model.named_modules())
    x = mg.tensor(np.random.default_rng(9).standard_normal((2, 2, 3, 3)))
    y = model(x)  # eval: running statistics (0 and 1): y = x / sqrt(1 + eps), no dropout
    np.testing.assert_allclose(y.numpy(), x.numpy() / (1 + 1e-5), rtol=1e-6)
    assert int(model[1].num_batches_tracked.item()) == 0
    model.train()
    assert all(m.training for _, m in model.named_modules())
    model(x)
    assert int(model[1].num_batches_tracked.item()) == 1


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_torch_model_with_batchnorm_and_its_twin_exchange_state_dicts_through_the_bridge(mode, tmp_path, torch):
    torch.manual_seed(0)
    ref = torch_block(torch)
    with torch.no_grad():  # non-trivial running statistics and batch count on the PyTorch side
        ref.train()
        for _ in range(3):
            ref(torch.randn(2, 2, 4, 4, dtype=torch.float64))
    torch_bridge.torch_save_npz(ref, tmp_path / "from_torch.npz")
    ours = Block().to(np.float64)
    ours.load_state_dict(torch_bridge.import_from_torch(tmp_path / "from_torch.npz"), strict=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    torch_bridge.export_for_torch(ours, tmp_path / "back.npz")  # and back again, unchanged
    back = torch_block(torch)
    torch_bridge.torch_load_npz(tmp_path / "back.npz", back, strict=True)
    for name, value in ref.state_dict().items():
        assert back.state_dict()[name].dtype == value.dtype, name
        assert torch.equal(back.state_dict()[name], value), name
    getattr(ours, mode)(), getattr(ref, mode)()
    ours.drop.p = ref.drop.p = 0.0  # (the dropout streams differ; the modes are what is compared)
    x = np.random.default_rng(10).standard_normal((2, 2, 4, 4))
    assert_close(ours(mg.tensor(x)).data, ref(torch.tensor(x)), what=f"{mode} output")
    for name, value in ref.state_dict().items():  # train mode updated both sides' statistics alike
        assert_close(ours.state_dict()[name], value, what=name)


def test_a_network_with_batchnorm_and_upsample_trains_like_pytorch(tmp_path, torch):
    """Same weights (through the bridge), same data, SGD with momentum for 5 steps in train
    mode: the same weights and running statistics at the end (float64)."""
    torch.manual_seed(1)
    ref = torch_block(torch)
    ref.drop.p = 0.0
    torch_bridge.torch_save_npz(ref, tmp_path / "w.npz")
    ours = Block().to(np.float64)
    ours.drop.p = 0.0
    ours.load_state_dict(torch_bridge.import_from_torch(tmp_path / "w.npz"))
    opt = mg.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    opt_t = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(11)
    for _ in range(5):
        x, target = rng.standard_normal((3, 2, 4, 4)), (rng.random((3, 1, 8, 8)) > 0.5).astype(np.float64)
        loss = F.binary_cross_entropy_with_logits(ours(mg.tensor(x)), target)
        opt.zero_grad(), loss.backward(), opt.step()
        loss_t = torch.nn.functional.binary_cross_entropy_with_logits(ref(torch.tensor(x)), torch.tensor(target))
        opt_t.zero_grad(), loss_t.backward(), opt_t.step()
        assert abs(loss.item() - loss_t.item()) < 1e-10
    for name, value in ref.state_dict().items():
        assert_close(ours.state_dict()[name], value, rtol=1e-9, atol=1e-11, what=name)
    assert int(ours.bn.num_batches_tracked.item()) == 5
