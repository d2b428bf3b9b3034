"""The U-Net family (unet.family) against PyTorch twins of its reference code.

Each twin below is a PyTorch port, written here, of the reference implementation with the
reference's module names (4uiiurz1/pytorch-nested-unet ``NestedUNet``; ozan-oktay/
Attention-Gated-Networks ``unet_CT_single_att_dsv_3D`` made 2-D; ternaus/TernausNet
``UNet11`` with torchvision's VGG11 feature layout). The twin's weights (random, with
random BatchNorm statistics) travel to minigrad through ``minigrad.torch_bridge`` and load
with strict=True; outputs and input gradients then agree to rounding in float64, in eval
mode and in train mode (batch statistics, running statistics updated alike). Parity runs
at small inputs and widths; the full-size parameter counts are checked by construction.
"""
import numpy as np
import pytest

import minigrad as mg
from conftest import assert_close
from minigrad.torch_bridge import export_for_torch, import_from_torch, torch_load_npz, torch_save_npz
from unet.family import AttentionUNet, TernausNet, UNetPlusPlus


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These small float64 networks run faster on one PyTorch thread than on two (10x on a
    loaded 2-core machine, measured); the previous setting is restored after each test."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---- the PyTorch twins ----------------------------------------------------------------------
def torch_twins(torch):
    """The three reference networks as PyTorch modules (built inside a function so that
    torch is imported only when the oracle is available)."""
    nn, tf = torch.nn, torch.nn.functional

    class VGGBlock(nn.Module):
        def __init__(self, c_in, c_mid, c_out):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv1, self.bn1 = nn.Conv2d(c_in, c_mid, 3, padding=1), nn.BatchNorm2d(c_mid)
            self.conv2, self.bn2 = nn.Conv2d(c_mid, c_out, 3, padding=1), nn.BatchNorm2d(c_out)

        def forward(self, x):
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))

    class NestedUNet(nn.Module):
        """NestedUNet(num_classes, input_channels, deep_supervision) with its 5 levels spelled
        out; nb_filter is a knob here (the reference fixes 32..512) to keep the tests small."""

        def __init__(self, num_classes, input_channels=3, deep_supervision=False, nb_filter=(32, 64, 128, 256, 512)):
            super().__init__()
            f = nb_filter
            self.deep_supervision = deep_supervision
            self.pool = nn.MaxPool2d(2, 2)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv0_0 = VGGBlock(input_channels, f[0], f[0])
            self.conv1_0 = VGGBlock(f[0], f[1], f[1])
            self.conv2_0 = VGGBlock(f[1], f[2], f[2])
            self.conv3_0 = VGGBlock(f[2], f[3], f[3])
            self.conv4_0 = VGGBlock(f[3], f[4], f[4])
            self.conv0_1 = VGGBlock(f[0] + f[1], f[0], f[0])
            self.conv1_1 = VGGBlock(f[1] + f[2], f[1], f[1])
            self.conv2_1 = VGGBlock(f[2] + f[3], f[2], f[2])
            self.conv3_1 = VGGBlock(f[3] + f[4], f[3], f[3])
            self.conv0_2 = VGGBlock(2 * f[0] + f[1], f[0], f[0])
            self.conv1_2 = VGGBlock(2 * f[1] + f[2], f[1], f[1])
            self.conv2_2 = VGGBlock(2 * f[2] + f[3], f[2], f[2])
            self.conv0_3 = VGGBlock(3 * f[0] + f[1], f[0], f[0])
            self.conv1_3 = VGGBlock(3 * f[1] + f[2], f[1], f[1])
            self.conv0_4 = VGGBlock(4 * f[0] + f[1], f[0], f[0])
            if deep_supervision:
                self.final1 = nn.Conv2d(f[0], num_classes, 1)
                self.final2 = nn.Conv2d(f[0], num_classes, 1)
                self.final3 = nn.Conv2d(f[0], num_classes, 1)
                self.final4 = nn.Conv2d(f[0], num_classes, 1)
            else:
                self.final = nn.Conv2d(f[0], num_classes, 1)

        def forward(self, x):
            up, pool, cat = self.up, self.pool, torch.cat
            x0_0 = self.conv0_0(x)
            x1_0 = self.conv1_0(pool(x0_0))
            x0_1 = self.conv0_1(cat([x0_0, up(x1_0)], 1))
            x2_0 = self.conv2_0(pool(x1_0))
            x1_1 = self.conv1_1(cat([x1_0, up(x2_0)], 1))
            x0_2 = self.conv0_2(cat([x0_0, x0_1, up(x1_1)], 1))
            x3_0 = self.conv3_0(pool(x2_0))
            x2_1 = self.conv2_1(cat([x2_0, up(x3_0)], 1))
            x1_2 = self.conv1_2(cat([x1_0, x1_1, up(x2_1)], 1))
            x0_3 = self.conv0_3(cat([x0_0, x0_1, x0_2, up(x1_2)], 1))
            x4_0 = self.conv4_0(pool(x3_0))
            x3_1 = self.conv3_1(cat([x3_0, up(x4_0)], 1))
            x2_2 = self.conv2_2(cat([x2_0, x2_1, up(x3_1)], 1))
            x1_3 = self.conv1_3(cat([x1_0, x1_1, x1_2, up(x2_2)], 1))
            x0_4 = self.conv0_4(cat([x0_0, x0_1, x0_2, x0_3, up(x1_3)], 1))
            if self.deep_supervision:
                return [self.final1(x0_1), self.final2(x0_2), self.final3(x0_3), self.final4(x0_4)]
            return self.final(x0_4)

    class PaperBlock(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)

        def forward(self, x):
            return self.relu(self.conv2(self.relu(self.conv1(x))))

    class PaperUNetPlusPlus(nn.Module):
        """The paper's original form (Zhou et al. 2018, Fig. 1): 2x2 stride-2 transposed
        convolutions to the node's level, no BatchNorm, a head on every X(0,j); the names
        unet.UNetPlusPlus gives them (this form has no PyTorch reference to borrow them from)."""

        def __init__(self, in_channels, num_classes, filters):
            super().__init__()
            self.depth = depth = len(filters) - 1
            self.pool = nn.MaxPool2d(2)
            for i in range(depth + 1):
                setattr(self, f"conv{i}_0", PaperBlock(in_channels if i == 0 else filters[i - 1], filters[i]))
            for j in range(1, depth + 1):
                for i in range(depth + 1 - j):
                    setattr(self, f"up{i + 1}_{j - 1}", nn.ConvTranspose2d(filters[i + 1], filters[i], 2, stride=2))
                    setattr(self, f"conv{i}_{j}", PaperBlock(filters[i] * (j + 1), filters[i]))
            for j in range(1, depth + 1):
                setattr(self, f"final{j}", nn.Conv2d(filters[0], num_classes, 1))

        def forward(self, x):
            X = {(0, 0): self.conv0_0(x)}
            for i in range(1, self.depth + 1):
                X[i, 0] = getattr(self, f"conv{i}_0")(self.pool(X[i - 1, 0]))
            for j in range(1, self.depth + 1):  # column by column: every input is ready
                for i in range(self.depth + 1 - j):
                    up = getattr(self, f"up{i + 1}_{j - 1}")(X[i + 1, j - 1])
                    X[i, j] = getattr(self, f"conv{i}_{j}")(torch.cat([X[i, k] for k in range(j)] + [up], 1))
            return [getattr(self, f"final{j}")(X[0, j]) for j in range(1, self.depth + 1)]

    def conv_bn_relu(c_in, c_out, k=3, p=1):
        return nn.Sequential(nn.Conv2d(c_in, c_out, k, 1, p), nn.BatchNorm2d(c_out), nn.ReLU())

    class UnetConv2(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1, self.conv2 = conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)

        def forward(self, x):
            return self.conv2(self.conv1(x))

    class UnetGridGatingSignal2(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1 = conv_bn_relu(c_in, c_out, 1, 0)

        def forward(self, x):
            return self.conv1(x)

    class GridAttentionBlock2D(nn.Module):
        def __init__(self, in_channels, gating_channels, inter_channels):
            super().__init__()
            self.W = nn.Sequential(nn.Conv2d(in_channels, in_channels, 1), nn.BatchNorm2d(in_channels))
            self.theta = nn.Conv2d(in_channels, inter_channels, 2, stride=2, bias=False)
            self.phi = nn.Conv2d(gating_channels, inter_channels, 1, bias=True)
            self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)

        def forward(self, x, g):
            theta_x = self.theta(x)
            phi_g = tf.interpolate(self.phi(g), size=theta_x.shape[2:], mode="bilinear", align_corners=False)
            sig = torch.sigmoid(self.psi(tf.relu(theta_x + phi_g)))
            sig = tf.interpolate(sig, size=x.shape[2:], mode="bilinear", align_corners=False)
            return self.W(sig.expand_as(x) * x), sig

    class MultiAttentionBlock(nn.Module):
        def __init__(self, in_size, gate_size, inter_size):
            super().__init__()
            self.gate_block_1 = GridAttentionBlock2D(in_size, gate_size, inter_size)
            self.combine_gates = conv_bn_relu(in_size, in_size, 1, 0)

        def forward(self, x, g):
            gate, att = self.gate_block_1(x, g)
            return self.combine_gates(gate), att

    class UnetUp2_CT(nn.Module):
        def __init__(self, in_size, out_size):
            super().__init__()
            self.conv = UnetConv2(in_size + out_size, out_size)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear")

        def forward(self, skip, below):
            below = self.up(below)
            offset = below.shape[2] - skip.shape[2]
            skip = tf.pad(skip, 2 * [offset // 2, offset // 2])
            return self.conv(torch.cat([skip, below], 1))

    class UnetDsv2(nn.Module):
        def __init__(self, in_size, out_size, scale_factor):
            super().__init__()
            self.dsv = nn.Sequential(nn.Conv2d(in_size, out_size, 1),
                                     nn.Upsample(scale_factor=scale_factor, mode="bilinear"))

        def forward(self, x):
            return self.dsv(x)

    class AttentionUNet2D(nn.Module):
        """unet_CT_single_att_dsv_3D with Conv3d/BatchNorm3d/MaxPool3d/trilinear made 2-D."""

        def __init__(self, feature_scale=4, n_classes=2, in_channels=1):
            super().__init__()
            f = [int(c / feature_scale) for c in (64, 128, 256, 512, 1024)]
            self.conv1, self.maxpool1 = UnetConv2(in_channels, f[0]), nn.MaxPool2d(2)
            self.conv2, self.maxpool2 = UnetConv2(f[0], f[1]), nn.MaxPool2d(2)
            self.conv3, self.maxpool3 = UnetConv2(f[1], f[2]), nn.MaxPool2d(2)
            self.conv4, self.maxpool4 = UnetConv2(f[2], f[3]), nn.MaxPool2d(2)
            self.center = UnetConv2(f[3], f[4])
            self.gating = UnetGridGatingSignal2(f[4], f[4])
            self.attentionblock2 = MultiAttentionBlock(f[1], f[2], f[1])
            self.attentionblock3 = MultiAttentionBlock(f[2], f[3], f[2])
            self.attentionblock4 = MultiAttentionBlock(f[3], f[4], f[3])
            self.up_concat4 = UnetUp2_CT(f[4], f[3])
            self.up_concat3 = UnetUp2_CT(f[3], f[2])
            self.up_concat2 = UnetUp2_CT(f[2], f[1])
            self.up_concat1 = UnetUp2_CT(f[1], f[0])
            self.dsv4 = UnetDsv2(f[3], n_classes, 8)
            self.dsv3 = UnetDsv2(f[2], n_classes, 4)
            self.dsv2 = UnetDsv2(f[1], n_classes, 2)
            self.dsv1 = nn.Conv2d(f[0], n_classes, 1)
            self.final = nn.Conv2d(n_classes * 4, n_classes, 1)

        def forward(self, x):
            conv1 = self.conv1(x)
            conv2 = self.conv2(self.maxpool1(conv1))
            conv3 = self.conv3(self.maxpool2(conv2))
            conv4 = self.conv4(self.maxpool3(conv3))
            center = self.center(self.maxpool4(conv4))
            gating = self.gating(center)
            g_conv4, att4 = self.attentionblock4(conv4, gating)
            up4 = self.up_concat4(g_conv4, center)
            g_conv3, att3 = self.attentionblock3(conv3, up4)
            up3 = self.up_concat3(g_conv3, up4)
            g_conv2, att2 = self.attentionblock2(conv2, up3)
            up2 = self.up_concat2(g_conv2, up3)
            up1 = self.up_concat1(conv1, up2)
            heads = [self.dsv1(up1), self.dsv2(up2), self.dsv3(up3), self.dsv4(up4)]
            return self.final(torch.cat(heads, 1)), [att2, att3, att4]

    def vgg11_features():
        layers, c_in = [], 3
        for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU()]
                c_in = item
        return nn.Sequential(*layers)

    class ConvRelu(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv, self.activation = nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.activation(self.conv(x))

    class DecoderBlock(nn.Module):
        def __init__(self, c_in, c_mid, c_out):
            super().__init__()
            self.block = nn.Sequential(ConvRelu(c_in, c_mid),
                                       nn.ConvTranspose2d(c_mid, c_out, 3, stride=2, padding=1, output_padding=1),
                                       nn.ReLU())

        def forward(self, x):
            return self.block(x)

    class UNet11(nn.Module):
        def __init__(self, num_filters=32):
            # the reference's channel arithmetic, which assumes num_filters=32 (nf * 16 = the
            # encoder's 512 channels); unet.TernausNet counts the encoder's channels instead
            super().__init__()
            nf = num_filters
            self.pool = nn.MaxPool2d(2, 2)
            self.encoder = vgg11_features()
            self.relu = self.encoder[1]
            self.conv1, self.conv2 = self.encoder[0], self.encoder[3]
            self.conv3s, self.conv3 = self.encoder[6], self.encoder[8]
            self.conv4s, self.conv4 = self.encoder[11], self.encoder[13]
            self.conv5s, self.conv5 = self.encoder[16], self.encoder[18]
            self.center = DecoderBlock(nf * 16, nf * 16, nf * 8)
            self.dec5 = DecoderBlock(nf * 24, nf * 16, nf * 8)
            self.dec4 = DecoderBlock(nf * 24, nf * 16, nf * 4)
            self.dec3 = DecoderBlock(nf * 12, nf * 8, nf * 2)
            self.dec2 = DecoderBlock(nf * 6, nf * 4, nf)
            self.dec1 = ConvRelu(nf * 3, nf)
            self.final = nn.Conv2d(nf, 1, 1)

        def forward(self, x):
            r, p = self.relu, self.pool
            conv1 = r(self.conv1(x))
            conv2 = r(self.conv2(p(conv1)))
            conv3 = r(self.conv3(r(self.conv3s(p(conv2)))))
            conv4 = r(self.conv4(r(self.conv4s(p(conv3)))))
            conv5 = r(self.conv5(r(self.conv5s(p(conv4)))))
            center = self.center(p(conv5))
            dec5 = self.dec5(torch.cat([center, conv5], 1))
            dec4 = self.dec4(torch.cat([dec5, conv4], 1))
            dec3 = self.dec3(torch.cat([dec4, conv3], 1))
            dec2 = self.dec2(torch.cat([dec3, conv2], 1))
            return self.final(self.dec1(torch.cat([dec2, conv1], 1)))

    return dict(NestedUNet=NestedUNet, PaperUNetPlusPlus=PaperUNetPlusPlus, AttentionUNet2D=AttentionUNet2D,
                UNet11=UNet11, vgg11_features=vgg11_features)


# ---- helpers --------------------------------------------------------------------------------
def randomise(torch, module, seed=0):
    """Random weights and BatchNorm statistics, so eval mode is not the identity on BN."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                value.fill_(3)
            elif name.endswith("running_var"):
                value.copy_(0.5 + torch.rand(value.shape, generator=gen, dtype=value.dtype))
            elif name.endswith("running_mean") or name.endswith("bias"):
                value.copy_(0.2 * torch.randn(value.shape, generator=gen, dtype=value.dtype))
            elif name.endswith(".weight") and value.ndim == 1:  # BatchNorm's gamma
                value.copy_(1 + 0.2 * torch.randn(value.shape, generator=gen, dtype=value.dtype))
    return module


def transfer(torch, twin, model, tmp_path):
    """twin's state dict -> bridge .npz -> model.load_state_dict(strict=True); keys and shapes
    (buffers included) must be identical, in the same order."""
    path = tmp_path / "twin.npz"
    torch_save_npz(twin, path)
    state = import_from_torch(path)
    ours = model.state_dict()
    assert list(ours) == list(twin.state_dict()), "state_dict keys differ from the reference's"
    for name, value in twin.state_dict().items():
        assert tuple(np.shape(ours[name])) == tuple(value.shape), name
    model.to(np.float64)  # first: load_state_dict casts to each parameter's dtype
    model.load_state_dict(state, strict=True)
    return model


def _report(what, ours, theirs):
    """Print the worst difference relative to the output's scale (pytest -s shows it)."""
    e = theirs.detach().numpy()
    scale = float(np.abs(e).max()) or 1.0
    print(f"{what}: max |difference| / max |value| = {float(np.abs(np.asarray(ours) - e).max()) / scale:.1e}")


def unique_count(torch_module):
    return sum(p.numel() for p in torch_module.parameters())  # PyTorch lists a shared parameter once


def compare(torch, model, twin, x, train, twin_outputs=lambda out: out, rtol=1e-10, atol=1e-12):
    """Outputs and the input gradient of sum(outputs * R), minigrad against the twin."""
    model.train(train)
    twin.train(train)
    xt = torch.tensor(x, requires_grad=True)
    out_t = twin_outputs(twin(xt))
    xm = mg.tensor(x, requires_grad=True)
    out_m = model(xm)
    out_t = out_t if isinstance(out_t, list) else [out_t]
    out_m = out_m if isinstance(out_m, list) else [out_m]
    assert len(out_m) == len(out_t)
    rng = np.random.default_rng(5)
    loss_t, loss_m = 0, 0
    for k, (a, b) in enumerate(zip(out_m, out_t)):
        assert_close(a.data, b, rtol=rtol, atol=atol, what=f"output {k} (train={train})")
        _report(f"{type(model).__name__} output {k} (train={train})", a.data, b)
        r = rng.standard_normal(tuple(b.shape))
        loss_t = loss_t + (b * torch.tensor(r)).sum()
        loss_m = loss_m + (a * mg.tensor(r)).sum()
    loss_t.backward()
    loss_m.backward()
    assert_close(xm.grad, xt.grad, rtol=rtol, atol=atol, what=f"input gradient (train={train})")
    _report(f"{type(model).__name__} input gradient (train={train})", xm.grad, xt.grad)
    for name, value in twin.state_dict().items():  # running statistics moved alike in train mode
        if "running" in name:
            assert_close(model.state_dict()[name], value, rtol=1e-10, atol=1e-12, what=name)


# ---- parameter counts (construction only, no forward) -----------------------------------------
def test_reference_parameter_counts(torch):
    twins = torch_twins(torch)
    counts = {
        "NestedUNet": (UNetPlusPlus().num_parameters(), unique_count(twins["NestedUNet"](1, 3))),
        "NestedUNet + deep supervision": (UNetPlusPlus(deep_supervision=True).num_parameters(),
                                          unique_count(twins["NestedUNet"](1, 3, True))),
        "UNet11": (TernausNet().num_parameters(), unique_count(twins["UNet11"]())),
        "AttentionUNet 2-D": (AttentionUNet().num_parameters(), unique_count(twins["AttentionUNet2D"]())),
    }
    for name, (ours, theirs) in counts.items():
        print(f"{name}: minigrad {ours:,}, PyTorch twin {theirs:,}")
        assert ours == theirs, name
    assert counts["NestedUNet"][0] == 9_163_329
    assert counts["NestedUNet + deep supervision"][0] == 9_163_329 + 99
    assert counts["UNet11"][0] == 22_927_393


def test_full_size_state_dicts_match_their_references(torch):
    """The default-size networks' keys and shapes, buffers included (TernausNet: the encoder
    convolutions listed twice), without running them."""
    twins = torch_twins(torch)
    for ours, theirs in ((UNetPlusPlus(deep_supervision=True), twins["NestedUNet"](1, 3, True)),
                         (AttentionUNet(), twins["AttentionUNet2D"]()), (TernausNet(), twins["UNet11"]())):
        mine = ours.state_dict()
        assert list(mine) == list(theirs.state_dict())
        assert [tuple(np.shape(v)) for v in mine.values()] == [tuple(v.shape) for v in theirs.state_dict().values()]


# ---- parity with the references (small sizes) ------------------------------------------------
SMALL_FILTERS = (2, 4, 8, 16, 32)  # the reference's doubling, from 2 instead of 32


@pytest.mark.parametrize("deep_supervision", [False, True])
def test_unetpp_matches_nested_unet(torch, tmp_path, deep_supervision):
    torch.manual_seed(0)
    twin = randomise(torch, torch_twins(torch)["NestedUNet"](2, 3, deep_supervision, SMALL_FILTERS).double())
    model = transfer(torch, twin, UNetPlusPlus(3, 2, deep_supervision, base_channels=2), tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 32))
    compare(torch, model, twin, x, train=False)
    compare(torch, model, twin, x, train=True)
    compare(torch, model, twin, x, train=False)  # eval again, with the running statistics both updated
    # and back: minigrad's weights and statistics load into a fresh reference network (strict)
    export_for_torch(model, tmp_path / "ours.npz")
    fresh = torch_twins(torch)["NestedUNet"](2, 3, deep_supervision, SMALL_FILTERS).double()
    torch_load_npz(tmp_path / "ours.npz", fresh, strict=True)
    compare(torch, model, fresh.double(), x, train=False)


def test_unetpp_paper_form_matches_a_pytorch_twin(torch, tmp_path):
    """upsample="transpose", batch_norm=False: the paper's original UNet++ (depth 3 here)."""
    torch.manual_seed(3)
    twin = randomise(torch, torch_twins(torch)["PaperUNetPlusPlus"](2, 2, (2, 4, 8, 16)).double(), seed=3)
    model = transfer(torch, twin, UNetPlusPlus(2, 2, True, base_channels=2, depth=3, upsample="transpose",
                                               batch_norm=False), tmp_path)
    compare(torch, model, twin, np.random.default_rng(3).standard_normal((2, 2, 16, 24)), train=True)


def test_attention_unet_matches_the_2d_reference(torch, tmp_path):
    torch.manual_seed(1)
    twin = randomise(torch, torch_twins(torch)["AttentionUNet2D"](feature_scale=16, n_classes=3, in_channels=2)
                     .double(), seed=1)
    model = transfer(torch, twin, AttentionUNet(in_channels=2, num_classes=3, feature_scale=16), tmp_path)
    x = np.random.default_rng(1).standard_normal((2, 2, 16, 32))
    for train in (False, True, False):
        compare(torch, model, twin, x, train, twin_outputs=lambda out: out[0])
    # the attention coefficients: one map per gate, at its skip's resolution, as the reference returns
    model.eval()
    twin.eval()
    logits, alphas = model(mg.tensor(x), return_attention=True)
    _, alphas_t = twin(torch.tensor(x))
    assert [a.shape for a in alphas] == [(2, 1, 8, 16), (2, 1, 4, 8), (2, 1, 2, 4)]
    for k, (a, b) in enumerate(zip(alphas, alphas_t)):
        assert_close(a.data, b, rtol=1e-9, atol=1e-12, what=f"alpha{k + 2}")
        assert 0 < float(a.data.min()) and float(a.data.max()) < 1


@pytest.mark.slow
def test_ternausnet_matches_unet11(torch, tmp_path):
    """At the reference's only working width (num_filters=32), on a small input."""
    torch.manual_seed(2)
    twin = randomise(torch, torch_twins(torch)["UNet11"]().double(), seed=2)
    model = transfer(torch, twin, TernausNet(), tmp_path)
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32))
    compare(torch, model, twin, x, train=True)
    # the twice-listed encoder convolutions are one array: loading set both names at once
    assert model.conv3s is model.encoder[6]
    assert model.state_dict()["conv3s.weight"] is model.state_dict()["encoder.6.weight"]


# ---- behaviour --------------------------------------------------------------------------------
def _small_pp(**kw):
    mg.manual_seed(4)
    cfg = dict(in_channels=1, num_classes=1, base_channels=2, depth=3, deep_supervision=True)
    cfg.update(kw)
    return UNetPlusPlus(**cfg).to(np.float64)


@pytest.mark.parametrize("upsample,batch_norm", [("bilinear", True), ("transpose", False)])
def test_unetpp_passes_directional_gradcheck(upsample, batch_norm):
    model = _small_pp(upsample=upsample, batch_norm=batch_norm, depth=2)
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)), requires_grad=True)

    def total(x, *params):
        heads = model(x)
        return heads[0] * 0.3 + heads[1]

    named = dict(model.named_parameters())
    some = [named[k] for k in named if k.startswith(("conv0_1.", "conv1_0.conv1", "up1_0", "final1"))]
    assert len(some) >= 4
    assert mg.gradcheck(total, [x, *some], mode="directional", n_directions=2)


def test_attention_unet_passes_directional_gradcheck():
    mg.manual_seed(5)
    model = AttentionUNet(1, 2, feature_scale=32).to(np.float64)
    x = mg.tensor(np.random.default_rng(1).standard_normal((2, 1, 16, 16)), requires_grad=True)
    named = dict(model.named_parameters())
    # one of each kind: the gate's theta, phi, psi and W (conv + BN), a decoder conv, the heads
    some = [named[k] for k in ("attentionblock3.gate_block_1.theta.weight", "attentionblock3.gate_block_1.phi.weight",
                               "attentionblock2.gate_block_1.psi.bias", "attentionblock4.gate_block_1.W.1.weight",
                               "gating.conv1.0.weight", "up_concat2.conv.conv1.0.weight", "dsv3.dsv.0.weight",
                               "final.weight")]
    assert mg.gradcheck(lambda x, *p: model(x), [x, *some], mode="directional", n_directions=2)


@pytest.mark.slow
def test_ternausnet_passes_directional_gradcheck():
    mg.manual_seed(6)
    model = TernausNet(num_filters=1).to(np.float64)
    x = mg.tensor(np.random.default_rng(2).standard_normal((1, 1, 32, 32)), requires_grad=True)
    params = [model.conv5.weight, model.dec2.block[1].weight]  # shared encoder conv, a transposed conv
    assert mg.gradcheck(lambda x, *p: model(x), [x, *params], mode="directional", n_directions=1)


def test_unetpp_pruning_reads_the_same_head_with_fewer_nodes():
    model = _small_pp()
    x = mg.tensor(np.random.default_rng(3).standard_normal((2, 1, 16, 16)))
    for train in (False, True):
        model.train(train)
        heads = model(x)
        assert len(heads) == 3 and all(h.shape == (2, 1, 16, 16) for h in heads)
        for d in (1, 2, 3):
            nodes = model.nodes(x, prune=d)
            assert sorted(nodes) == sorted((i, j) for i in range(d + 1) for j in range(d + 1 - i))
            # X^{0,d} depends only on the nodes i + j <= d: the pruned network is the same function
            assert_close(model(x, prune=d).data, heads[d - 1].data, rtol=1e-12, atol=1e-13, what=f"L{d}")
    full = sum(r["parameters"] for r in model.describe(16))
    assert full == model.num_parameters()
    # the pruned networks' tables: fewer nodes, fewer parameters, the deepest is the whole network minus
    # the other heads
    used = [sum(r["parameters"] for r in model.describe(16, prune=d)) for d in (1, 2, 3)]
    assert used[0] < used[1] < used[2] == full - 2 * model.final1.num_parameters()
    assert [r["layer"] for r in model.describe(16, prune=1) if r["layer"].startswith(("conv", "final"))] == [
        "conv0_0", "conv1_0", "conv0_1", "final1"]
    with pytest.raises(ValueError, match="prune must be an integer in \\[1, 3\\]"):
        model(x, prune=4)
    plain = _small_pp(deep_supervision=False)
    with pytest.raises(ValueError, match="deep_supervision=True"):
        plain(x, prune=2)
    assert plain(x).shape == (2, 1, 16, 16)


def test_unetpp_inference_modes():
    model = _small_pp().eval()
    x = mg.tensor(np.random.default_rng(4).standard_normal((1, 1, 16, 16)))
    heads = [1 / (1 + np.exp(-h.numpy())) for h in model(x)]
    accurate = model.probabilities(x, mode="accurate").numpy()
    np.testing.assert_allclose(accurate[:, 1:], np.mean(heads, axis=0), rtol=1e-12)
    np.testing.assert_allclose(accurate.sum(1), 1.0, rtol=1e-12)
    fast = model.probabilities(x, mode="fast", prune=2).numpy()
    np.testing.assert_allclose(fast[:, 1:], heads[1], rtol=1e-12)
    with pytest.raises(ValueError, match="mode must be 'accurate' or 'fast'"):
        model.probabilities(x, mode="quick")


def test_ternausnet_repeats_a_grey_image_and_loads_vgg11_features(torch, tmp_path):
    twins = torch_twins(torch)
    torch.manual_seed(7)
    features = twins["vgg11_features"]()
    torch_save_npz(features, tmp_path / "features.npz")
    model = TernausNet(num_filters=2, pretrained=tmp_path / "features.npz")
    for index in (0, 3, 6, 8, 11, 13, 16, 18):
        assert_close(model.encoder[index].weight.data, features[index].weight.float(), rtol=0, atol=0,
                     what=f"encoder.{index}")
    # a whole VGG11 (features.N.*, classifier ignored) is accepted too
    whole = torch.nn.Module()
    whole.features, whole.classifier = features, torch.nn.Linear(2, 2)
    torch_save_npz(whole, tmp_path / "vgg11.npz")
    again = TernausNet(num_filters=2, pretrained=tmp_path / "vgg11.npz")
    assert_close(again.conv5.bias.data, features[18].bias.float(), rtol=0, atol=0, what="conv5.bias")
    # something else is refused by name
    torch_save_npz(torch.nn.Conv2d(3, 4, 3), tmp_path / "other.npz")
    with pytest.raises(ValueError, match="pretrained=.*is not VGG11's features"):
        TernausNet(num_filters=2, pretrained=tmp_path / "other.npz")
    grey = np.random.default_rng(5).random((1, 1, 32, 32)).astype(np.float32)
    model.eval()
    with mg.no_grad():
        assert_close(model(mg.tensor(grey)).data, model(mg.tensor(np.repeat(grey, 3, axis=1))).data,
                     rtol=0, atol=0, what="grey = repeated to RGB")


def test_ternausnet_optimiser_sees_each_shared_convolution_once():
    model = TernausNet(num_filters=2)
    names = [n for n, _ in model.named_parameters()]
    assert "encoder.0.weight" in names and "conv1.weight" in names
    ids = [id(p) for p in model.parameters()]
    assert len(ids) == len(set(ids)) == len(names) - 16


@pytest.mark.parametrize("make,bad,message", [
    (lambda: UNetPlusPlus(depth=4, base_channels=2), 100, "multiple of 16 .*nearest valid sizes: 96 or 112"),
    (lambda: AttentionUNet(feature_scale=32), 40, "multiple of 16 .*nearest valid sizes: 32 or 48"),
    (lambda: TernausNet(num_filters=1), 48, "multiple of 32 .*nearest valid sizes: 32 or 64"),
    (lambda: TernausNet(num_filters=1), 20, "nearest valid sizes: 32$"),
])
def test_invalid_input_sizes_name_the_nearest_valid_ones(make, bad, message):
    model = make()
    with pytest.raises(ValueError, match=message):
        model.check_input_size(bad)
    channels = 3 if isinstance(model, UNetPlusPlus) else 1
    with pytest.raises(ValueError, match="input height"):
        model(mg.zeros(1, channels, bad, model.valid_input_size(bad)))
    assert model.output_size(model.valid_input_size(bad)) == model.valid_input_size(bad)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="upsample must be 'bilinear' or 'transpose', got 'nearest'"):
        UNetPlusPlus(upsample="nearest")
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        UNetPlusPlus(depth=0)
    with pytest.raises(ValueError, match="feature_scale 128 leaves no filters"):
        AttentionUNet(feature_scale=128)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, H, W\) with C = 1, got \(1, 3, 16, 16\)"):
        AttentionUNet(feature_scale=32)(mg.zeros(1, 3, 16, 16))


@pytest.mark.parametrize("kind", ["unet++", "attention", "ternaus"])
def test_family_runs_on_a_device(device, kind):
    """Forward and backward on the device (fakegpu: no implicit host <-> device copy) equal the CPU's."""
    mg.manual_seed(8)
    if kind == "unet++":
        model, shape = UNetPlusPlus(1, 1, True, base_channels=2, depth=2), (2, 1, 8, 8)
    elif kind == "attention":
        model, shape = AttentionUNet(1, 2, feature_scale=32), (2, 1, 16, 16)
    else:
        model, shape = TernausNet(num_filters=1), (1, 1, 32, 32)
    model.to(np.float64)
    x = np.random.default_rng(9).standard_normal(shape)

    def run(where):
        model.to(where).train()
        model.zero_grad()
        xt = mg.tensor(mg.backend.to_device(x, where), requires_grad=True)
        out = model(xt)
        out = out if isinstance(out, list) else [out]
        total = out[0].sum()
        for o in out[1:]:
            total = total + o.sum()
        total.backward()
        assert xt.grad is not None and mg.backend.device_of(xt.grad) == where
        return [mg.backend.to_numpy(o.data) for o in out], mg.backend.to_numpy(xt.grad)

    cpu_out, cpu_grad = run("cpu")
    dev_out, dev_grad = run(device)
    model.to("cpu")
    for a, b in zip(dev_out, cpu_out):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dev_grad, cpu_grad, rtol=1e-10, atol=1e-12)


def test_describe_tables_add_up():
    for model, n in ((UNetPlusPlus(base_channels=2, upsample="transpose", batch_norm=False), 32),
                     (AttentionUNet(feature_scale=16), 32), (TernausNet(num_filters=2), 64)):
        rows = model.describe(n)
        assert sum(r["parameters"] for r in rows) == model.num_parameters(), type(model).__name__
        assert rows[-1]["shape_out"][1:] == (n, n)
        text = model.summary(n)
        assert f"total parameters: {model.num_parameters():,}" in text
        with pytest.raises(ValueError, match="nearest valid sizes"):
            model.describe(n + 1)
