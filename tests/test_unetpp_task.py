"""Course task unetpp.forward: UNet++'s nested skip wiring (unet/family.py, UNetPlusPlus.nodes).

Every node X^{i,j}, j >= 1, must be H_{i,j}(cat[X^{i,0}, ..., X^{i,j-1}, up(X^{i+1,j-1})]). The
tests wire the nodes by hand from the network's own blocks (``conv{i}_{j}``, and ``up{i}_{j}`` in the
transposed-convolution form), with the encoder column computed here too, and compare every node,
the heads, the pruned networks and the parameter gradients.
"""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from unet.family import UNetPlusPlus

pytestmark = pytest.mark.unetpp_forward


def hand_nodes(net, x, prune=None):
    """{(i, j): X^{i,j}} for the nodes i + j <= prune, wired from the formula."""
    d = net.depth if prune is None else prune
    X = {(0, 0): net.conv0_0(x)}
    for i in range(1, d + 1):
        X[i, 0] = getattr(net, f"conv{i}_0")(F.max_pool2d(X[i - 1, 0], 2))
    for k in range(1, d + 1):
        for j in range(1, k + 1):
            i = k - j
            if net.upsample == "bilinear":
                below = F.interpolate(X[i + 1, j - 1], scale_factor=2, mode="bilinear", align_corners=True)
            else:
                below = getattr(net, f"up{i + 1}_{j - 1}")(X[i + 1, j - 1])
            X[i, j] = getattr(net, f"conv{i}_{j}")(mg.cat([X[i, c] for c in range(j)] + [below], dim=1))
    return X


def small(dtype=np.float64, **kw):
    mg.manual_seed(0)
    return UNetPlusPlus(**{"in_channels": 1, "num_classes": 1, "base_channels": 2, "depth": 3, **kw}).to(dtype)


def image(shape=(2, 1, 16, 16), dtype=np.float64, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def test_every_node_follows_the_nested_wiring():
    net = small().eval()
    x = image()
    with mg.no_grad():
        got, want = net.nodes(x), hand_nodes(net, x)
        out = net(x).numpy()
    assert sorted(got) == sorted(want)
    for node in want:
        np.testing.assert_allclose(got[node].numpy(), want[node].numpy(), rtol=1e-12, atol=1e-12, err_msg=str(node))
    np.testing.assert_allclose(out, net.final(want[0, 3]).numpy(), rtol=1e-12, atol=1e-12)


def test_deep_supervision_heads_and_pruned_networks():
    net = small(deep_supervision=True).eval()
    x = image(seed=1)
    with mg.no_grad():
        want = hand_nodes(net, x)
        heads = net(x)
        assert len(heads) == 3
        for d in (1, 2, 3):
            expected = getattr(net, f"final{d}")(want[0, d]).numpy()
            np.testing.assert_allclose(heads[d - 1].numpy(), expected, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(net(x, prune=d).numpy(), expected, rtol=1e-12, atol=1e-12)
            assert len(net.nodes(x, prune=d)) == (d + 1) * (d + 2) // 2  # only the nodes i + j <= d


def test_training_gradients_match_the_hand_wired_network():
    """Train mode (batch statistics): the parameters' gradients through the nested skips."""
    net = small()
    x = image(seed=2)
    (net(x) ** 2).mean().backward()
    got = {name: p.grad.copy() for name, p in net.named_parameters()}
    net.zero_grad()
    (net.final(hand_nodes(net, x)[0, 3]) ** 2).mean().backward()
    for name, p in net.named_parameters():
        assert np.abs(p.grad).max() > 0 or name.startswith("conv3_0"), name
        np.testing.assert_allclose(got[name], p.grad, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.hidden
def test_the_papers_form_transposed_convolutions_without_batch_norm():
    net = small(upsample="transpose", batch_norm=False, depth=4, base_channels=3)
    x = image((1, 1, 32, 48), seed=3)
    with mg.no_grad():
        got, want = net.nodes(x), hand_nodes(net, x)
    for node in want:
        np.testing.assert_allclose(got[node].numpy(), want[node].numpy(), rtol=1e-12, atol=1e-12, err_msg=str(node))


@pytest.mark.hidden
def test_float32_batch_of_three():
    net = small(np.float32, deep_supervision=True).eval()
    x = image((3, 1, 16, 32), np.float32, seed=4)
    with mg.no_grad():
        got, want = net.nodes(x, prune=2), hand_nodes(net, x, prune=2)
    assert sorted(got) == sorted(want)
    for node in want:
        assert got[node].dtype == np.float32
        np.testing.assert_allclose(got[node].numpy(), want[node].numpy(), rtol=1e-5, atol=1e-6, err_msg=str(node))
