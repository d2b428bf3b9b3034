"""The U-Net family's segmentation losses (unet/losses.py) against the references' formulas
written in PyTorch (values and gradients, float64), central differences, devices, bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fakegpu
import minigrad as mg
import minigrad.functional as F
from conftest import assert_close, assert_on, on_device, to_device
from unet import losses


def torch_dice_loss(torch, probs, target, smooth=1e-5, per_image=True):
    """The soft Dice loss as UNet++'s BCEDiceLoss computes its Dice term (per image), or over the batch."""
    n = target.shape[0] if per_image else 1
    p, t = probs.reshape(n, -1), target.reshape(n, -1)
    dice = (2.0 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)
    return 1 - dice.sum() / n


def torch_bce_dice(torch, logits, target):
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    return 0.5 * bce + torch_dice_loss(torch, torch.sigmoid(logits), target)


def torch_bce_jaccard(torch, logits, target, jaccard_weight=1.0, bce_weight=1.0):
    loss = bce_weight * torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    p, t = torch.sigmoid(logits), (target == 1).to(logits.dtype)
    inter, union = (p * t).sum(), p.sum() + t.sum()
    return loss - jaccard_weight * torch.log((inter + 1e-15) / (union - inter + 1e-15))


def _pair(shape, seed, torch):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    t = (rng.random(shape) > 0.6).astype(np.float64)
    return x, t, torch.tensor(x, requires_grad=True), torch.tensor(t)


@given(n=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6), per_image=st.booleans(),
       seed=st.integers(0, 2**16))
def test_soft_dice_matches_the_formula_in_pytorch(n, h, w, per_image, seed, torch):
    x, t, xt, tt = _pair((n, 1, h, w), seed, torch)
    pt = torch.sigmoid(xt)
    ref = torch_dice_loss(torch, pt, tt, per_image=per_image)
    xm = mg.tensor(x, requires_grad=True)
    ours = losses.soft_dice_loss(F.sigmoid(xm), t, per_image=per_image)
    assert_close(ours.data, ref)
    ref.backward()
    ours.backward()
    assert_close(xm.grad, xt.grad)


@pytest.mark.parametrize("name", ["bce_dice", "bce_jaccard", "bce_jaccard_weighted"])
def test_family_losses_match_their_references(name, torch):
    x, t, xt, tt = _pair((3, 1, 5, 4), 1, torch)
    xm = mg.tensor(x, requires_grad=True)
    if name == "bce_dice":
        ours, ref = losses.bce_dice_loss(xm, t), torch_bce_dice(torch, xt, tt)
    elif name == "bce_jaccard":
        ours, ref = losses.bce_jaccard_loss(xm, t), torch_bce_jaccard(torch, xt, tt)
    else:  # LossBinary(jaccard_weight=0.3)
        ours = losses.bce_jaccard_loss(xm, t, jaccard_weight=0.3, bce_weight=0.7)
        ref = torch_bce_jaccard(torch, xt, tt, 0.3, 0.7)
    assert_close(ours.data, ref)
    ours.backward()
    ref.backward()
    assert_close(xm.grad, xt.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_deep_supervision_loss_over_heads(reduction, torch):
    heads = [_pair((2, 1, 4, 4), k, torch) for k in range(3)]
    t = heads[0][1]
    xs = [mg.tensor(h[0], requires_grad=True) for h in heads]
    ours = losses.deep_supervision_loss(xs, t, reduction=reduction)
    ref = sum(torch_bce_dice(torch, h[2], torch.tensor(t)) for h in heads)
    ref = ref / 3 if reduction == "mean" else ref
    assert_close(ours.data, ref)
    ours.backward()
    ref.backward()
    for xm, h in zip(xs, heads):
        assert_close(xm.grad, h[2].grad)
    weighted = losses.deep_supervision_loss(xs, t, weights=[1, 0, 0])
    assert_close(weighted.data, losses.bce_dice_loss(xs[0], t).data)


@pytest.mark.parametrize("per_image", [True, False])
def test_soft_dice_gradcheck(per_image):
    rng = np.random.default_rng(2)
    p = mg.tensor(rng.random((2, 1, 3, 3)), requires_grad=True)
    t = (rng.random((2, 1, 3, 3)) > 0.5).astype(np.float64)
    assert mg.gradcheck(lambda p: losses.soft_dice_loss(p, t, smooth=0.1, per_image=per_image), [p])
    x = mg.tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
    assert mg.gradcheck(lambda x: losses.bce_jaccard_loss(x, t), [x])


def test_soft_dice_of_a_perfect_and_an_empty_prediction():
    t = np.zeros((2, 1, 3, 3))
    t[0, 0, 1, 1] = 1
    perfect = losses.soft_dice_loss(mg.tensor(t.copy()), t)
    assert abs(perfect.item()) < 1e-12  # image 1 is empty and predicted empty: dice 1 thanks to smooth
    wrong = losses.soft_dice_loss(mg.tensor(1 - t), t)
    assert wrong.item() > 0.99


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_family_losses_on_devices(dtype, device, torch):
    x, t, xt, tt = _pair((2, 1, 4, 5), 3, torch)
    xm, td = on_device(x.astype(dtype), device), to_device(t.astype(dtype), device)
    with fakegpu.no_transfers():
        loss = losses.deep_supervision_loss([xm, xm], td, loss_fn=losses.bce_jaccard_loss)
        loss = loss + losses.bce_dice_loss(xm, td)
        loss.backward()
    assert_on(device, loss, xm.grad)
    assert loss.dtype == dtype and xm.grad.dtype == dtype
    ref = torch_bce_jaccard(torch, xt, tt) + torch_bce_dice(torch, xt, tt)
    ref.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else {}
    assert_close(loss.data, ref, **tol)
    assert_close(xm.grad, xt.grad, **tol)


@pytest.mark.parametrize("call,error,match", [
    (lambda x: losses.soft_dice_loss(x, np.zeros((2, 1, 3))), ValueError, r"target has shape \(2, 1, 3\), expected"),
    (lambda x: losses.soft_dice_loss(x, np.zeros(x.shape), smooth=-1), ValueError, "smooth must be >= 0"),
    (lambda x: losses.bce_dice_loss(x, [0, 1]), TypeError, "target must be a Tensor or an array"),
    (lambda x: losses.deep_supervision_loss([], np.zeros(x.shape)), TypeError, "non-empty list of Tensors"),
    (lambda x: losses.deep_supervision_loss([x], np.zeros(x.shape), reduction="max"), ValueError, "'mean' or 'sum'"),
    (lambda x: losses.deep_supervision_loss([x, x], np.zeros(x.shape), weights=[1]), ValueError, "1 weights for 2 heads"),
])
def test_losses_refuse_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(mg.tensor(np.zeros((2, 1, 3, 3))))
