"""Task-tagged tests of the week-5 course tasks: batch normalisation's closed-form input
gradient, bilinear (and nearest) interpolation's adjoint, and the soft Dice loss's backward.
Each test carries the marker of the one task it grades and needs only that task and its
prerequisites (see course.toml); the hidden ones (``@pytest.mark.hidden``) run in grading only.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from conftest import assert_close, assert_on, on_device


# ---- norm.batch_norm_backward ----------------------------------------------------------------
def _bn_numpy(x, w, b, eps=1e-5):
    """Training-mode batch norm in NumPy: the function whose derivative the task writes."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)


@st.composite
def bn_shapes(draw):
    """(N, C, *spatial) with at least four values per channel: training needs a variance, and two
    nearly equal values would make it tiny and the central differences ill-conditioned."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    if n * int(np.prod(spatial)) < 4:
        n = 4
    return (n, c) + spatial


@pytest.mark.norm_batch_norm_backward
@given(shape=bn_shapes(), affine=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_norm_training_gradients_match_central_differences(shape, affine, seed):
    """gradcheck (float64 central differences) of the input gradient in training mode, where
    the batch mean and variance depend on x, with and without an affine weight."""
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape) * 3 + 1, requires_grad=True)
    w = mg.tensor(rng.uniform(0.5, 2.0, shape[1]) * rng.choice([-1, 1], shape[1]), requires_grad=True)
    b = mg.tensor(rng.standard_normal(shape[1]), requires_grad=True)
    if affine:
        assert mg.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b])
    else:
        assert mg.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x])


@pytest.mark.norm_batch_norm_backward
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_match_torch(training, device, torch):
    rng = np.random.default_rng(1)
    x0, g = rng.standard_normal((3, 4, 5, 2)) * 2 - 1, rng.standard_normal((3, 4, 5, 2))
    w0, b0 = rng.uniform(-2, 2, 4), rng.standard_normal(4)
    rm0, rv0 = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    x, w, b = (on_device(v, device) for v in (x0, w0, b0))
    rm, rv = on_device(rm0, device, False), on_device(rv0, device, False)
    y = F.batch_norm(x, rm, rv, w, b, training=training)
    y.backward(on_device(g, device, False).data)
    assert_on(device, y, x.grad, w.grad, b.grad)
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    yt = torch.nn.functional.batch_norm(xt, torch.tensor(rm0), torch.tensor(rv0), wt, bt, training=training)
    yt.backward(torch.tensor(g))
    assert_close(y.data, yt, what="output")
    assert_close(x.grad, xt.grad, rtol=1e-9, atol=1e-11, what="dx")
    assert_close(w.grad, wt.grad, rtol=1e-9, atol=1e-11, what="dweight")
    assert_close(b.grad, bt.grad, what="dbias")


@pytest.mark.norm_batch_norm_backward
def test_batch_norm_input_gradient_ignores_shifting_and_scaling_a_channel():
    """In training the output does not change when a channel is shifted or scaled, so per
    channel sum(dx) = 0 and sum(x_hat * dx) = 0, whatever the upstream gradient (the second
    exactly only for eps = 0: eps makes the output change a little with the channel's scale)."""
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((4, 3, 3, 3)) * 5 + 2
    x = mg.tensor(x0, requires_grad=True)
    F.batch_norm(x, None, None, mg.tensor(np.array([2.0, -1.0, 0.5])), None, training=True, eps=0.0).backward(
        rng.standard_normal(x0.shape))
    x_hat = _bn_numpy(x0, np.ones(3), np.zeros(3), eps=0.0)
    scale = np.abs(x.grad).sum(axis=(0, 2, 3))
    assert np.all(scale > 1e-3), "the input gradient is (nearly) zero"
    np.testing.assert_allclose(x.grad.sum(axis=(0, 2, 3)) / scale, 0, atol=1e-13)
    np.testing.assert_allclose((x_hat * x.grad).sum(axis=(0, 2, 3)) / scale, 0, atol=1e-13)


@pytest.mark.hidden
@pytest.mark.norm_batch_norm_backward
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_float32_and_a_3d_input_match_torch(training, torch):
    """Hidden from students: float32 input (the gradient keeps the dtype), no affine weight,
    and an (N, C, L) input (the statistics reduce over N and L)."""
    rng = np.random.default_rng(5)
    for shape, affine in (((4, 8, 16, 16), False), ((5, 3, 7), True)):
        x0 = (rng.standard_normal(shape) * 3 + 4).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        c = shape[1]
        w0 = rng.uniform(0.5, 2, c).astype(np.float32) if affine else None
        rm0, rv0 = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
        x = mg.tensor(x0, requires_grad=True)
        y = F.batch_norm(x, mg.tensor(rm0.copy()), mg.tensor(rv0.copy()), None if w0 is None else mg.tensor(w0),
                         training=training)
        y.backward(g)
        assert x.grad.dtype == np.float32
        xt = torch.tensor(x0, requires_grad=True)
        yt = torch.nn.functional.batch_norm(xt, torch.tensor(rm0), torch.tensor(rv0),
                                            None if w0 is None else torch.tensor(w0), training=training)
        yt.backward(torch.tensor(g))
        assert_close(x.grad, xt.grad, rtol=2e-4, atol=2e-5, what=f"dx of {shape}")


# ---- interp.upsample_backward ----------------------------------------------------------------
MODES = [dict(mode="nearest"), dict(mode="nearest-exact"), dict(mode="bilinear", align_corners=True),
         dict(mode="bilinear", align_corners=False)]


@st.composite
def resize_cases(draw):
    """An input shape and size= or scale_factor= (integer or fractional, up or down)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    mode = draw(st.sampled_from(MODES))
    if draw(st.booleans()):
        resize = dict(size=(draw(st.integers(1, 9)), draw(st.integers(1, 9))))
    else:
        factors = st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0])
        sh, sw = draw(factors), draw(factors)
        if int(h * sh) < 1 or int(w * sw) < 1:
            sh = sw = 2.0
        resize = dict(scale_factor=(sh, sw))
    return (n, c, h, w), {**mode, **resize}


def _interpolation_matrix(shape, kw):
    """A with interpolate(x).ravel() = A @ x.ravel(): the forward pass of every one-hot input."""
    columns = []
    size = int(np.prod(shape))
    for k in range(size):
        one = np.zeros(size)
        one[k] = 1.0
        with mg.no_grad():
            columns.append(F.interpolate(mg.tensor(one.reshape(shape)), **kw).numpy().ravel())
    return np.stack(columns, axis=1)


@pytest.mark.interp_upsample_backward
@given(case=resize_cases(), seed=st.integers(0, 2**16))
def test_interpolate_backward_is_the_adjoint_of_the_forward(case, seed):
    """dx = A^T g, with A built column by column from the forward pass: each output's gradient
    goes back to the pixels it was sampled from, with the same weights."""
    shape, kw = case
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    y = F.interpolate(x, **kw)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    expected = (_interpolation_matrix(shape, kw).T @ g.ravel()).reshape(shape)
    assert_close(x.grad, expected, rtol=1e-12, atol=1e-13, what=str(kw))


@pytest.mark.interp_upsample_backward
@pytest.mark.parametrize("kw", MODES, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_interpolate_gradients_match_torch(kw, device, torch):
    rng = np.random.default_rng(3)
    for shape, resize in (((2, 3, 5, 4), dict(scale_factor=2)), ((1, 2, 7, 9), dict(size=(4, 5)))):
        x0 = rng.standard_normal(shape)
        x = on_device(x0, device)
        y = F.interpolate(x, **resize, **kw)
        g = rng.standard_normal(y.shape)
        y.backward(on_device(g, device, False).data)
        assert_on(device, y, x.grad)
        xt = torch.tensor(x0, requires_grad=True)
        torch.nn.functional.interpolate(xt, **resize, **kw).backward(torch.tensor(g))
        assert_close(x.grad, xt.grad, what=f"{shape} {resize} {kw}")


@pytest.mark.interp_upsample_backward
def test_bilinear_upsampling_gradcheck():
    x = mg.tensor(np.random.default_rng(4).standard_normal((1, 2, 3, 4)), requires_grad=True)
    for corners in (True, False):
        assert mg.gradcheck(lambda x: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=corners), [x])


@pytest.mark.hidden
@pytest.mark.interp_upsample_backward
def test_one_output_gradient_lands_on_its_four_source_pixels():
    """Hidden from students: a one-hot upstream gradient at output (2, 3) of a 4x5 -> 9x7
    bilinear resize (align_corners=False) reaches exactly the four pixels around its source
    position, with the bilinear weights; and float32 stays float32."""
    x = mg.tensor(np.zeros((1, 1, 4, 5), dtype=np.float32), requires_grad=True)
    y = F.interpolate(x, size=(9, 7), mode="bilinear", align_corners=False)
    g = np.zeros(y.shape, dtype=np.float32)
    g[0, 0, 2, 3] = 1.0
    y.backward(g)
    assert x.grad.dtype == np.float32
    src_r, src_c = (2 + 0.5) * 4 / 9 - 0.5, (3 + 0.5) * 5 / 7 - 0.5  # 0.6111..., 2.0
    expected = np.zeros((4, 5))
    for r, wr in ((0, 1 - (src_r - 0)), (1, src_r - 0)):
        for c, wc in ((2, 1 - (src_c - 2)), (3, src_c - 2)):
            expected[r, c] += wr * wc
    np.testing.assert_allclose(x.grad[0, 0], expected, rtol=1e-6, atol=1e-7)


# ---- loss.dice_backward ----------------------------------------------------------------------
def _dice_torch(torch, p, t, smooth, per_image):
    """The soft Dice loss written in PyTorch (autograd differentiates it): the oracle."""
    axes = tuple(range(1, p.ndim)) if per_image else tuple(range(p.ndim))
    dice = (2 * (p * t).sum(dim=axes) + smooth) / (p.sum(dim=axes) + t.sum(dim=axes) + smooth)
    return 1 - dice.mean()


@pytest.mark.loss_dice_backward
@given(shape=st.lists(st.integers(1, 3), min_size=2, max_size=4), per_image=st.booleans(),
       smooth=st.sampled_from([1e-5, 1.0]), seed=st.integers(0, 2**16))
def test_soft_dice_gradient_matches_central_differences(shape, per_image, smooth, seed):
    from unet.losses import soft_dice_loss

    rng = np.random.default_rng(seed)
    p = mg.tensor(rng.uniform(0.05, 0.95, shape), requires_grad=True)
    t = (rng.random(shape) < 0.5).astype(np.float64)
    assert mg.gradcheck(lambda p: soft_dice_loss(p, t, smooth=smooth, per_image=per_image), [p])


@pytest.mark.loss_dice_backward
@pytest.mark.parametrize("per_image", [True, False])
def test_soft_dice_gradient_matches_torch(per_image, device, torch):
    """Upstream gradient 2.5 (a weighted sum of losses), images with and without object pixels."""
    from unet.losses import soft_dice_loss

    rng = np.random.default_rng(6)
    p0 = rng.uniform(0, 1, (3, 1, 4, 5))
    t0 = (rng.random((3, 1, 4, 5)) < 0.3).astype(np.float64)
    t0[1] = 0  # an image without object pixels
    p = on_device(p0, device)
    loss = soft_dice_loss(p, on_device(t0, device, False), per_image=per_image)
    loss.backward(on_device(np.array(2.5), device, False).data)
    assert_on(device, loss, p.grad)
    pt = torch.tensor(p0, requires_grad=True)
    lt = _dice_torch(torch, pt, torch.tensor(t0), 1e-5, per_image)
    (2.5 * lt).backward()
    assert_close(loss.data, lt, what="loss")
    assert_close(p.grad, pt.grad, rtol=1e-9, atol=1e-12, what="dp")


@pytest.mark.loss_dice_backward
def test_soft_dice_gradient_pulls_object_pixels_up_and_background_down():
    """dD/dp = (2t - D) / (S + s): the loss falls where p rises on the object, rises on the
    background; and the target gets no gradient."""
    from unet.losses import soft_dice_loss

    p = mg.tensor(np.full((1, 1, 2, 3), 0.5), requires_grad=True)
    t = mg.tensor(np.array([[[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]]), requires_grad=True)
    soft_dice_loss(p, t, smooth=0.0).backward()
    # I = 1.5, S = 3 + 3 = 6, D = 0.5: dloss/dp = -(2t - 0.5) / 6
    np.testing.assert_allclose(p.grad, -(2 * t.numpy() - 0.5) / 6, rtol=1e-14)
    assert t.grad is None


@pytest.mark.hidden
@pytest.mark.loss_dice_backward
def test_soft_dice_float32_and_an_empty_batch_match_torch(torch):
    """Hidden from students: float32 stays float32; an all-empty target and prediction over the
    whole batch (dice = s / s = 1) still has the finite gradient the formula gives."""
    from unet.losses import soft_dice_loss

    rng = np.random.default_rng(8)
    for p0, t0, per_image in ((rng.uniform(0, 1, (2, 1, 8, 8)).astype(np.float32),
                               (rng.random((2, 1, 8, 8)) < 0.5).astype(np.float32), True),
                              (np.zeros((2, 1, 3, 3)), np.zeros((2, 1, 3, 3)), False)):
        p = mg.tensor(p0, requires_grad=True)
        soft_dice_loss(p, t0, per_image=per_image).backward()
        assert p.grad.dtype == p0.dtype and np.all(np.isfinite(p.grad))
        pt = torch.tensor(p0, requires_grad=True)
        _dice_torch(torch, pt, torch.tensor(t0), 1e-5, per_image).backward()
        rtol = 1e-5 if p0.dtype == np.float32 else 1e-10
        assert_close(p.grad, pt.grad, rtol=rtol, atol=rtol * 1e-3, what=f"dp, per_image={per_image}")
