"""nn.Module, init, optimisers against PyTorch, save/load, and gradcheck itself."""
import os

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from conftest import assert_close


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))

    def forward(self, x):
        return self.head(self.conv(x)) * self.scale


def test_module_registers_parameters_in_order_and_modes():
    m = Tiny()
    assert [n for n, _ in m.named_parameters()] == ["conv.weight", "conv.bias", "scale"]
    m.eval()
    assert not m.head[1].training
    m.train()
    assert m.head[1].training
    m(mg.tensor(np.ones((1, 1, 5, 5), np.float32))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_to_float64_and_state_dict_roundtrip(tmp_path):
    m = Tiny().to(np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    path = tmp_path / "m.npz"
    mg.save(m.state_dict(), path)
    other = Tiny().to(np.float64)
    other.load_state_dict(mg.load(path))
    for (n, a), (_, b) in zip(m.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)
    assert not any(name.startswith(".tmp") for name in os.listdir(tmp_path))  # atomic write left nothing


@pytest.mark.skipif(os.name != "posix", reason="POSIX file permissions")
def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    """The temporary file behind an atomic write is private (0600); the renamed result must
    not be: a checkpoint or figure gets 0666 minus the umask, like any file open() makes."""
    old_umask = os.umask(0o022)
    try:
        mg.save({"w": np.ones(3)}, tmp_path / "ckpt.npz")
        with open(tmp_path / "plain.npz", "wb"):
            pass
        os.umask(0o077)
        mg.save({"w": np.ones(3)}, tmp_path / "private.npz")
    finally:
        os.umask(old_umask)
    mode = lambda name: (tmp_path / name).stat().st_mode & 0o777  # noqa: E731
    assert mode("ckpt.npz") == mode("plain.npz") == 0o644
    assert mode("private.npz") == 0o600


def test_load_state_dict_names_the_first_mismatch(tmp_path):
    m = Tiny()
    state = dict(m.state_dict())
    state["conv.weight"] = np.zeros((3, 1, 3, 3))
    path = tmp_path / "bad.npz"
    mg.save(state, path)
    with pytest.raises(ValueError, match=r"bad.npz.*'conv.weight' has shape \(3, 1, 3, 3\), the model expects \(2, 1, 3, 3\)"):
        m.load_state_dict(mg.load(path))
    del state["conv.weight"]
    with pytest.raises(KeyError, match="missing parameter 'conv.weight'"):
        m.load_state_dict(state)
    state["conv.weight"], state["extra"] = m.conv.weight.data, np.ones(1)
    with pytest.raises(KeyError, match="unexpected key 'extra'"):
        m.load_state_dict(state)
    m.load_state_dict(state, strict=False)


def test_load_rejects_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mg.load(tmp_path / "nope.npz")
    good = tmp_path / "good.npz"
    mg.save({"a": np.arange(100.0)}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:150])
    with pytest.raises(ValueError, match="truncated.npz"):
        mg.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(2))
    with pytest.raises(ValueError, match="foreign.npz.*not a minigrad state file"):
        mg.load(foreign)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="text.npz"):
        mg.load(tmp_path / "text.npz")


def test_save_load_keeps_nesting_and_scalars(tmp_path):
    state = {"model": {"w": np.arange(3.0)}, "epoch": 4, "lr": 0.5, "name": "x", "betas": (0.9, 0.99)}
    mg.save(state, tmp_path / "s.npz")
    back = mg.load(tmp_path / "s.npz")
    assert back["epoch"] == 4 and back["lr"] == 0.5 and back["name"] == "x" and list(back["betas"]) == [0.9, 0.99]
    np.testing.assert_array_equal(back["model"]["w"], np.arange(3.0))


def test_kaiming_normal_has_the_papers_std():
    mg.manual_seed(1)
    conv = nn.Conv2d(64, 128, 3)
    std = conv.weight.numpy().std()
    assert abs(std - np.sqrt(2 / (64 * 9))) < 0.01 * np.sqrt(2 / (64 * 9)) * 10
    assert np.all(conv.bias.numpy() == 0)


def test_manual_seed_makes_models_reproducible():
    mg.manual_seed(7)
    a = Tiny()
    mg.manual_seed(7)
    b = Tiny()
    np.testing.assert_array_equal(a.conv.weight.numpy(), b.conv.weight.numpy())


def _torch_twin(torch, m):
    lin = torch.nn.Linear(m.in_features, m.out_features).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(m.weight.numpy()))
        lin.bias.copy_(torch.tensor(m.bias.numpy()))
    return lin


@pytest.mark.parametrize(
    "make, make_t",
    [
        (lambda p: mg.optim.SGD(p, lr=0.1), lambda torch, p: torch.optim.SGD(p, lr=0.1)),
        (lambda p: mg.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
         lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
        (lambda p: mg.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
         lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        (lambda p: mg.optim.Adam(p, lr=0.01), lambda torch, p: torch.optim.Adam(p, lr=0.01)),
        (lambda p: mg.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1),
         lambda torch, p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ],
)
def test_optimizers_match_torch_and_resume_exactly(make, make_t, torch, tmp_path):
    m = nn.Linear(4, 3).to(np.float64)
    lin = _torch_twin(torch, m)
    opt, opt_t = make(m.parameters()), make_t(torch, lin.parameters())
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((5, 4)), rng.standard_normal((5, 3))) for _ in range(6)]

    def step(model, optimizer, x, y):
        optimizer.zero_grad()
        F.mse_loss(model(mg.tensor(x)), y).backward()
        optimizer.step()

    for i, (x, y) in enumerate(batches):
        step(m, opt, x, y)
        opt_t.zero_grad()
        torch.nn.functional.mse_loss(lin(torch.tensor(x)), torch.tensor(y)).backward()
        opt_t.step()
        if i == 2:  # checkpoint half way
            mg.save({"model": m.state_dict(), "optim": opt.state_dict()}, tmp_path / "ckpt.npz")
    assert_close(m.weight.data, lin.weight, rtol=1e-12, atol=1e-14)
    assert_close(m.bias.data, lin.bias, rtol=1e-12, atol=1e-14)

    resumed = nn.Linear(4, 3).to(np.float64)
    ckpt = mg.load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    opt2 = make(resumed.parameters())
    opt2.load_state_dict(ckpt["optim"])
    for x, y in batches[3:]:
        step(resumed, opt2, x, y)
    np.testing.assert_array_equal(resumed.weight.numpy(), m.weight.numpy())


def test_optimizer_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        mg.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got -1"):
        mg.optim.Adam(nn.Linear(2, 2).parameters(), lr=-1)


# ---- gradcheck itself ------------------------------------------------------------------------
class WrongSquare(mg.Function):
    """A deliberately wrong backward: d(x^2)/dx written as x instead of 2x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * self.x,)


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_gradcheck_catches_a_wrong_backward(mode):
    x = mg.tensor(np.array([[1.0, 2.0], [3.0, -1.5]]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(2, 2\)\).*numeric=.*analytic=.*atol=1e-05, rtol=0.001"):
        mg.gradcheck(lambda x: WrongSquare.apply(x), [x], mode=mode)
    assert mg.gradcheck(lambda x: WrongSquare.apply(x), [x], mode=mode, raise_exception=False) is False
    assert mg.gradcheck(lambda x: x * x, [x], mode=mode)


def test_gradcheck_names_the_worst_element():
    x = mg.tensor(np.array([1.0, 2.0, 5.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"worst at input index \(2,\).*numeric=10, analytic=5"):
        mg.gradcheck(lambda x: WrongSquare.apply(x), [x])


def test_gradcheck_warns_on_float32_and_restores_inputs():
    x = mg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    x.grad = np.array([7.0, 7.0], np.float32)
    with pytest.warns(UserWarning, match="float32"):
        mg.gradcheck(lambda x: x * 3, [x], eps=1e-2, atol=1e-2, rtol=1e-2)
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])
