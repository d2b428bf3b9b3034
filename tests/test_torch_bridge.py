"""Weights both ways between minigrad and PyTorch: train a few steps on one side, move the
weights through the .npz bridge, and get the same logits from the other side's U-Net."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from conftest import assert_close
from minigrad.torch_bridge import export_for_torch, import_from_torch, torch_load_npz, torch_save_npz
from unet import UNet


def torch_twin(torch, depth, base, in_channels=1, num_classes=2):
    """The U-Net as a torch.nn.Module with minigrad's module names (so state dicts match)."""
    tnn, tf = torch.nn, torch.nn.functional

    class DoubleConv(tnn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(c_in, c_out, 3), tnn.Conv2d(c_out, c_out, 3)

        def forward(self, x):
            return tf.relu(self.conv2(tf.relu(self.conv1(x))))

    class UpBlock(tnn.Module):
        def __init__(self, c_in):
            super().__init__()
            self.up, self.conv = tnn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2), DoubleConv(c_in, c_in // 2)

        def forward(self, x, skip):
            x = self.up(x)
            top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
            return self.conv(torch.cat([skip[:, :, top:top + x.shape[2], left:left + x.shape[3]], x], 1))

    class TwinUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            channels = [base * 2**level for level in range(depth + 1)]
            c_in = in_channels
            for level in range(depth):
                setattr(self, f"down{level + 1}", DoubleConv(c_in, channels[level]))
                c_in = channels[level]
            self.bottleneck = DoubleConv(c_in, channels[depth])
            for level in reversed(range(depth)):
                setattr(self, f"up{level + 1}", UpBlock(channels[level + 1]))
            self.head = tnn.Conv2d(channels[0], num_classes, 1)

        def forward(self, x):
            skips = []
            for level in range(1, depth + 1):
                x = getattr(self, f"down{level}")(x)
                skips.append(x)
                x = tf.max_pool2d(x, 2)
            x = self.bottleneck(x)
            for level in range(depth, 0, -1):
                x = getattr(self, f"up{level}")(x, skips[level - 1])
            return self.head(x)

    return TwinUNet().double()


def batch(seed, model, size=44, n=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, size, size))
    out = model.output_size(size)
    return x, rng.integers(0, 2, (n, out, out)), rng.uniform(0.5, 3.0, (n, out, out))


def test_minigrad_trained_weights_give_the_same_logits_in_the_pytorch_twin(tmp_path, torch):
    mg.manual_seed(0)
    model = UNet(depth=2, base_channels=4).to(np.float64)
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(3):  # train a few steps in minigrad, with the paper's weighted loss
        x, t, w = batch(step, model)
        loss = F.cross_entropy(model(mg.tensor(x)), t, pixel_weight=w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    checkpoint = tmp_path / "checkpoint.npz"
    mg.save({"model": model.state_dict(), "step": 3}, checkpoint)  # as unet train writes it
    names = export_for_torch(checkpoint, tmp_path / "for_torch.npz")
    assert names == [n for n, _ in model.named_parameters()]
    twin = torch_load_npz(tmp_path / "for_torch.npz", torch_twin(torch, 2, 4))
    x, _, _ = batch(10, model)
    with torch.no_grad():
        logits_t = twin(torch.tensor(x))
    assert_close(model(mg.tensor(x)).data, logits_t, rtol=1e-10, atol=1e-12, what="logits")
    tensors = torch_load_npz(tmp_path / "for_torch.npz")  # or as a plain dict of tensors
    assert set(tensors) == set(names) and tensors["head.weight"].dtype == torch.float64


def test_pytorch_trained_weights_give_the_same_logits_in_minigrad(tmp_path, torch):
    torch.manual_seed(0)
    twin = torch_twin(torch, 2, 4)
    model = UNet(depth=2, base_channels=4).to(np.float64)
    opt = torch.optim.SGD(twin.parameters(), lr=1e-2, momentum=0.9)
    for step in range(3):  # train a few steps in PyTorch
        x, t, _ = batch(step, model)
        loss = torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(t), label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch_save_npz(twin, tmp_path / "from_torch.npz")
    model.load_state_dict(import_from_torch(tmp_path / "from_torch.npz"))
    x, _, _ = batch(11, model)
    with torch.no_grad():
        logits_t = twin(torch.tensor(x))
    assert_close(model(mg.tensor(x)).data, logits_t, rtol=1e-10, atol=1e-12, what="logits")
    # and back again: minigrad -> PyTorch reproduces the twin's state exactly
    export_for_torch(model, tmp_path / "again.npz")
    again = torch_load_npz(tmp_path / "again.npz")
    for name, value in twin.state_dict().items():
        assert torch.equal(again[name], value), name


def test_bridge_refuses_pickles_and_mismatched_models(tmp_path, torch):
    pickle_path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickle_path)
    with pytest.raises(ValueError, match="torch.save pickle"):
        import_from_torch(pickle_path)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(2))
    with pytest.raises(ValueError, match="marker"):
        torch_load_npz(plain)
    export_for_torch(UNet(depth=1, base_channels=2), tmp_path / "small.npz")
    with pytest.raises(RuntimeError, match="size mismatch|Missing key"):
        torch_load_npz(tmp_path / "small.npz", torch_twin(torch, 2, 4))
    with pytest.raises(KeyError, match="missing parameter"):
        UNet(depth=2, base_channels=2).load_state_dict(import_from_torch(tmp_path / "small.npz"))
