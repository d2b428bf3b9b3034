"""The U-Net family on minigrad: UNet++, Attention U-Net and TernausNet.

Each network is written here from minigrad's layers, with the module names of the
reference PyTorch code its authors (or the most used port) published, so a state dict
moves between the two unchanged (``minigrad.torch_bridge``) and the tests prove both
compute the same function:

    UNetPlusPlus   Zhou et al. 2018/2019, as 4uiiurz1/pytorch-nested-unet ``NestedUNet``
    AttentionUNet  Oktay et al. 2018, ozan-oktay/Attention-Gated-Networks
                   ``unet_CT_single_att_dsv_3D`` with every 3-D layer made 2-D
    TernausNet     Iglovikov & Shvets 2018, ternaus/TernausNet ``UNet11`` (VGG11 encoder)

All three pad their convolutions ("same"), so the output has the input's size; the input
must be a multiple of 2^(number of poolings) in height and width. Each has ``describe(n)``
/ ``summary(n)`` (the layer table, without a forward pass), ``valid_input_size(n)`` and
``check_input_size(n)``, and ``config()`` (the keyword arguments that rebuild it).
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import nn


# ---- what the three networks share ----------------------------------------------------------
class SamePaddingNet(nn.Module):
    """Size rules, the layer table and probabilities for a same-padding network whose input
    must be a multiple of ``self.multiple``."""

    multiple = 16
    in_channels = 1
    num_classes = 1

    # sizes
    def valid_input_size(self, n: int) -> int:
        """The smallest valid input size >= n."""
        m = self.multiple
        return max(m, -(-int(n) // m) * m)

    def nearest_valid_sizes(self, n: int):
        m = self.multiple
        below = (int(n) // m) * m
        return (below if below >= m else None), self.valid_input_size(n)

    def check_input_size(self, n: int, what: str = "input size"):
        n = int(n)
        if n < self.multiple or n % self.multiple:
            below, above = self.nearest_valid_sizes(n)
            options = f"{below} or {above}" if below else f"{above}"
            raise ValueError(f"{type(self).__name__}: {what} {n} is not valid: it must be a multiple of "
                             f"{self.multiple} ({self.poolings} poolings of 2); nearest valid sizes: {options}")

    def output_size(self, n: int) -> int:
        """Output height/width for an n x n input: n itself (the convolutions are padded)."""
        self.check_input_size(n)
        return int(n)

    @property
    def poolings(self) -> int:
        return int(np.log2(self.multiple))

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] not in self._accepted_channels():
            want = " or ".join(str(c) for c in self._accepted_channels())
            raise ValueError(f"{type(self).__name__}: input must have shape (N, C, H, W) with C = {want}, "
                             f"got {tuple(x.shape)}")
        self.check_input_size(x.shape[2], "input height")
        self.check_input_size(x.shape[3], "input width")

    def _accepted_channels(self):
        return (self.in_channels,)

    # the layer table
    def describe(self, n: int = 256, **options) -> list:
        """The network block by block for an n x n input, in the order the forward pass runs:
        one dict per row with ``layer`` (the module's name), ``op``, ``shape_in`` and
        ``shape_out`` as (channels, height, width) and ``parameters``. Computed from the
        layers' settings, without a forward pass; ``summary(n)`` prints it."""
        self.check_input_size(n)
        table = _Table()
        self._describe(table, int(n), **options)
        return table.rows

    def summary(self, n: int = 256, **options) -> str:
        """``describe(n)`` as a printable table, with the total number of parameters."""
        rows = self.describe(n, **options)
        fmt = "{:<20} {:<60} {:>16} {:>16} {:>11}"
        shape = lambda s: " x ".join(map(str, s))  # noqa: E731
        lines = [f"{type(self).__name__}({self.extra_repr()}), input {n} x {n}",
                 fmt.format("layer", "op", "in (C x H x W)", "out (C x H x W)", "parameters"), "-" * 127]
        for r in rows:
            lines.append(fmt.format(r["layer"], r["op"], shape(r["shape_in"]), shape(r["shape_out"]),
                                    f"{r['parameters']:,}"))
        lines += ["-" * 127, f"total parameters: {sum(r['parameters'] for r in rows):,}"]
        return "\n".join(lines)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # inference
    def probabilities(self, x):
        """Per-pixel class probabilities (N, max(C, 2), H, W): a softmax over C > 1 logits,
        or [1 - p, p] with p = sigmoid(logit) for a single-logit network."""
        return logits_to_probabilities(self(x))


def logits_to_probabilities(logits):
    """Softmax over the classes, or for one logit channel the two-class form [1 - p, p]."""
    if logits.shape[1] == 1:
        p = F.sigmoid(logits)
        return mg.cat([1 - p, p], dim=1)
    return F.softmax(logits, dim=1)


class _Table:
    def __init__(self):
        self.rows = []

    def add(self, layer, op, shape_in, shape_out, *modules):
        params = sum(p.size for m in modules for p in _unique(m.parameters()))
        self.rows.append(dict(layer=layer, op=op, shape_in=tuple(shape_in), shape_out=tuple(shape_out),
                              parameters=params))


def _unique(params):
    """Parameters without repeats (a module registered under two names lists its own twice)."""
    seen, out = set(), []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _positive_int(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _conv_bn_relu(c_in, c_out, kernel_size=3, padding=1, batch_norm=True):
    """Sequential(conv, BN, ReLU): the names 0, 1, 2 that the Attention U-Net's reference uses."""
    layers = [nn.Conv2d(c_in, c_out, kernel_size, padding=padding)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# ---- UNet++ ---------------------------------------------------------------------------------
class VGGBlock(nn.Module):
    """(3x3 conv, BN, ReLU) x 2: the node function H of UNet++ (``batch_norm=False``: no BN)."""

    def __init__(self, in_channels, middle_channels, out_channels, batch_norm=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, middle_channels, 3, padding=1)
        if batch_norm:
            self.bn1 = nn.BatchNorm2d(middle_channels)
        self.conv2 = nn.Conv2d(middle_channels, out_channels, 3, padding=1)
        if batch_norm:
            self.bn2 = nn.BatchNorm2d(out_channels)
        self.batch_norm = batch_norm

    def forward(self, x):
        x = self.conv1(x)
        if self.batch_norm:
            x = self.bn1(x)
        x = self.relu(x)
        x = self.conv2(x)
        if self.batch_norm:
            x = self.bn2(x)
        return self.relu(x)


class UNetPlusPlus(SamePaddingNet):
    """UNet++ (Zhou et al. 2018, arXiv 1807.10165; 2019, arXiv 1912.05074).

    Nodes X^{i,j} (level i = 0..depth from the top, column j): the encoder X^{i,0} =
    H(pool(X^{i-1,0})), and every other node sees all earlier nodes of its level and the
    upsampled node below-left: X^{i,j} = H(cat[X^{i,0}, ..., X^{i,j-1}, up(X^{i+1,j-1})]),
    H = (3x3 conv, BN, ReLU) x 2 with base_channels * 2^i filters at level i.

    The defaults are 4uiiurz1/pytorch-nested-unet's ``NestedUNet`` (module names
    ``conv{i}_{j}``, heads ``final`` or ``final1``..``final{depth}``, bilinear x2 upsampling
    with align_corners=True). ``upsample="transpose"`` and ``batch_norm=False`` give the
    paper's original form: 2x2 stride-2 transposed convolutions (``up{i+1}_{j-1}`` upsamples
    X^{i+1,j-1} to level i's channels) and no BN.

    Deep supervision adds a 1x1 head on every X^{0,j}: ``forward(x)`` then returns the list
    of their logits [X^{0,1} .. X^{0,depth}] (train with a loss over the list).
    ``forward(x, prune=d)`` computes only the nodes i + j <= d and returns head X^{0,d}'s
    logits (UNet++ L^d): cheaper, as the paper's pruned models. ``probabilities(x)`` is the
    paper's inference: "accurate" averages the heads' probabilities, "fast" reads one head
    (X^{0,prune}, default the deepest); ``inference_mode`` holds the default.
    """

    def __init__(self, in_channels=3, num_classes=1, deep_supervision=False, base_channels=32, depth=4,
                 upsample="bilinear", batch_norm=True):
        super().__init__()
        owner = "UNetPlusPlus"
        in_channels = _positive_int(owner, "in_channels", in_channels)
        num_classes = _positive_int(owner, "num_classes", num_classes)
        base_channels = _positive_int(owner, "base_channels", base_channels)
        depth = _positive_int(owner, "depth", depth)
        if upsample not in ("bilinear", "transpose"):
            raise ValueError(f"UNetPlusPlus: upsample must be 'bilinear' or 'transpose', got {upsample!r}")
        self.in_channels, self.num_classes, self.deep_supervision = in_channels, num_classes, bool(deep_supervision)
        self.base_channels, self.depth = base_channels, depth
        self.upsample, self.batch_norm = upsample, bool(batch_norm)
        self.multiple = 2**depth
        self.inference_mode = "accurate"
        filters = [base_channels * 2**i for i in range(depth + 1)]
        self.filters = filters
        self.pool = nn.MaxPool2d(2, 2)
        if upsample == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        # registration order = the reference's: the encoder column, then column by column
        for i in range(depth + 1):
            setattr(self, f"conv{i}_0", VGGBlock(in_channels if i == 0 else filters[i - 1], filters[i], filters[i],
                                                 batch_norm))
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                up_channels = filters[i + 1] if upsample == "bilinear" else filters[i]
                if upsample == "transpose":
                    setattr(self, f"up{i + 1}_{j - 1}", nn.ConvTranspose2d(filters[i + 1], filters[i], 2, stride=2))
                setattr(self, f"conv{i}_{j}", VGGBlock(filters[i] * j + up_channels, filters[i], filters[i],
                                                       batch_norm))
        if self.deep_supervision:
            for j in range(1, depth + 1):
                setattr(self, f"final{j}", nn.Conv2d(filters[0], num_classes, 1))
        else:
            self.final = nn.Conv2d(filters[0], num_classes, 1)

    def _up(self, i, j, x):
        """Upsample node X^{i,j} by 2 for the node X^{i-1,j+1}."""
        if self.upsample == "bilinear":
            return self.up(x)
        return getattr(self, f"up{i}_{j}")(x)

    def _check_prune(self, prune):
        if prune is None:
            return self.depth
        if isinstance(prune, bool) or not isinstance(prune, (int, np.integer)) or not 1 <= prune <= self.depth:
            raise ValueError(f"UNetPlusPlus: prune must be an integer in [1, {self.depth}] (the depth of the pruned "
                             f"network L^d), got {prune!r}")
        if not self.deep_supervision and prune != self.depth:
            raise ValueError(f"UNetPlusPlus: prune={prune} reads head X^(0,{prune}), which exists only with "
                             f"deep_supervision=True (this network has one head, on X^(0,{self.depth}))")
        return int(prune)

    def nodes(self, x, prune=None) -> dict:
        """Every node's feature map {(i, j): X^{i,j}} for the nodes i + j <= prune (default: all)."""
        self._check_input(x)
        d = self._check_prune(prune)
        X = {}
        for k in range(d + 1):  # a new encoder level k, then the nodes of the diagonal i + j = k
            X[k, 0] = getattr(self, f"conv{k}_0")(x if k == 0 else self.pool(X[k - 1, 0]))
            for j in range(1, k + 1):
                i = k - j
                # BEGIN TASK unetpp.forward
                inputs = [X[i, c] for c in range(j)] + [self._up(i + 1, j - 1, X[i + 1, j - 1])]
                X[i, j] = getattr(self, f"conv{i}_{j}")(mg.cat(inputs, dim=1))
                # END TASK
        return X

    def forward(self, x, prune=None):
        X = self.nodes(x, prune)
        d = self._check_prune(prune)
        if prune is not None:
            head = self.final if not self.deep_supervision else getattr(self, f"final{d}")
            return head(X[0, d])
        if self.deep_supervision:
            return [getattr(self, f"final{j}")(X[0, j]) for j in range(1, self.depth + 1)]
        return self.final(X[0, self.depth])

    def probabilities(self, x, mode=None, prune=None):
        """Class probabilities (N, max(C, 2), H, W) by the paper's inference modes: "accurate"
        averages every head's probabilities (deep supervision only), "fast" reads head
        X^{0,prune} (default: the deepest). Without deep supervision both read ``final``."""
        mode = self.inference_mode if mode is None else mode
        if mode not in ("accurate", "fast"):
            raise ValueError(f"UNetPlusPlus: mode must be 'accurate' or 'fast', got {mode!r}")
        if mode == "accurate" and prune is not None:
            raise ValueError("UNetPlusPlus: prune= selects one head, which is the 'fast' mode; "
                             "'accurate' averages them all")
        if mode == "fast" or not self.deep_supervision:
            return logits_to_probabilities(self(x, prune=prune if prune is not None else self.depth))
        heads = [logits_to_probabilities(h) for h in self(x)]
        total = heads[0]
        for h in heads[1:]:
            total = total + h
        return total * (1.0 / len(heads))

    def describe(self, n: int = 256, prune=None) -> list:
        """The layer table (see ``SamePaddingNet.describe``); with ``prune=d`` only what the pruned
        network L^d computes: the nodes i + j <= d and head X^{0,d}."""
        return super().describe(n, prune=prune)

    def summary(self, n: int = 256, prune=None) -> str:
        return super().summary(n, prune=prune)

    def _describe(self, table, n, prune=None):
        d = self._check_prune(prune)
        f, c_in = self.filters, self.in_channels
        block = "(conv3x3 + BN + ReLU) x 2" if self.batch_norm else "(conv3x3 + ReLU) x 2"
        up_op = "bilinear x2 (align_corners)" if self.upsample == "bilinear" else "up-conv 2x2"
        for k in range(d + 1):
            s = n >> k
            if k:
                table.add("pool", "max-pool 2x2", (f[k - 1], 2 * s, 2 * s), (f[k - 1], s, s))
            table.add(f"conv{k}_0", block, (c_in if k == 0 else f[k - 1], s, s), (f[k], s, s),
                      getattr(self, f"conv{k}_0"))
            for j in range(1, k + 1):
                i, s = k - j, n >> (k - j)
                below = f[i + 1] if self.upsample == "bilinear" else f[i]
                ups = [getattr(self, f"up{i + 1}_{j - 1}")] if self.upsample == "transpose" else []
                table.add("up" if not ups else f"up{i + 1}_{j - 1}", f"{up_op} of X({i + 1},{j - 1})",
                          (f[i + 1], s // 2, s // 2), (below, s, s), *ups)
                sources = ", ".join(f"X({i},{c})" for c in range(j))
                block_module = getattr(self, f"conv{i}_{j}")
                table.add(f"conv{i}_{j}", f"cat[{sources}, up] -> H", (f[i] * j + below, s, s), (f[i], s, s),
                          block_module)
        heads = [f"final{j}" for j in range(1, self.depth + 1)] if self.deep_supervision else ["final"]
        if prune is not None:
            heads = [f"final{d}"] if self.deep_supervision else ["final"]
        for name in heads:
            table.add(name, "conv1x1 (head)", (f[0], n, n), (self.num_classes, n, n), getattr(self, name))

    def extra_repr(self):
        return (f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
                f"deep_supervision={self.deep_supervision}, base_channels={self.base_channels}, depth={self.depth}, "
                f"upsample='{self.upsample}', batch_norm={self.batch_norm}")

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, num_classes=self.num_classes,
                    deep_supervision=self.deep_supervision, base_channels=self.base_channels, depth=self.depth,
                    upsample=self.upsample, batch_norm=self.batch_norm)


# ---- Attention U-Net ------------------------------------------------------------------------
def _attention_bn_init(module):
    """The reference's initialisation of its BatchNorm layers: weight ~ N(1, 0.02), bias 0
    (its convolutions are Kaiming-normal, fan_in, as minigrad's are by default)."""
    for _, m in module.named_modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            m.weight.data = (1.0 + 0.02 * mg.backend.host_rng().standard_normal(m.weight.shape)).astype(
                m.weight.dtype)


class UnetConv2(nn.Module):
    """``UnetConv3`` made 2-D: conv1, conv2 = Sequential(3x3 conv, BN, ReLU)."""

    def __init__(self, in_size, out_size):
        super().__init__()
        self.conv1 = _conv_bn_relu(in_size, out_size)
        self.conv2 = _conv_bn_relu(out_size, out_size)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class UnetGridGatingSignal2(nn.Module):
    """The gating signal from the centre: conv1 = Sequential(1x1 conv, BN, ReLU)."""

    def __init__(self, in_size, out_size):
        super().__init__()
        self.conv1 = _conv_bn_relu(in_size, out_size, kernel_size=1, padding=0)

    def forward(self, x):
        return self.conv1(x)


class GridAttentionBlock2D(nn.Module):
    """The additive attention gate (Oktay et al. 2018, eq. 1-2), 'concatenation' mode.

    theta: 2x2 stride-2 conv without bias on the skip x (to the gating grid);
    phi: 1x1 conv with bias on the gating signal g, resampled to theta(x)'s size;
    q = psi(ReLU(theta(x) + phi(g))) (1x1 conv to one channel); alpha = sigmoid(q),
    bilinearly resampled (align_corners=False) to x's size; output W(alpha * x) with
    W = Sequential(1x1 conv, BN). Returns (W(alpha * x), alpha).
    """

    def __init__(self, in_channels, gating_channels, inter_channels):
        super().__init__()
        self.in_channels, self.gating_channels, self.inter_channels = in_channels, gating_channels, inter_channels
        self.W = nn.Sequential(nn.Conv2d(in_channels, in_channels, 1), nn.BatchNorm2d(in_channels))
        self.theta = nn.Conv2d(in_channels, inter_channels, 2, stride=2, bias=False)
        self.phi = nn.Conv2d(gating_channels, inter_channels, 1)
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def forward(self, x, g):
        if x.shape[0] != g.shape[0]:
            raise ValueError(f"GridAttentionBlock2D: x has batch {x.shape[0]}, the gating signal g {g.shape[0]}")
        theta_x = self.theta(x)
        phi_g = F.interpolate(self.phi(g), size=tuple(theta_x.shape[2:]), mode="bilinear", align_corners=False)
        f = F.relu(theta_x + phi_g)
        alpha = F.sigmoid(self.psi(f))
        alpha = F.interpolate(alpha, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)
        return self.W(alpha * x), alpha


class MultiAttentionBlock(nn.Module):
    """One gate (``gate_block_1``) followed by ``combine_gates`` = Sequential(1x1 conv, BN, ReLU)."""

    def __init__(self, in_size, gate_size, inter_size):
        super().__init__()
        self.gate_block_1 = GridAttentionBlock2D(in_size, gate_size, inter_size)
        self.combine_gates = _conv_bn_relu(in_size, in_size, kernel_size=1, padding=0)

    def forward(self, x, g):
        gated, alpha = self.gate_block_1(x, g)
        return self.combine_gates(gated), alpha


class UnetUp2_CT(nn.Module):
    """Bilinear x2 upsampling (align_corners=False) of the coarser map, concatenated after the
    skip, then ``UnetConv2``."""

    def __init__(self, in_size, out_size):
        super().__init__()
        self.conv = UnetConv2(in_size + out_size, out_size)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, skip, below):
        return self.conv(mg.cat([skip, self.up(below)], dim=1))


class UnetDsv2(nn.Module):
    """A deep-supervision head: dsv = Sequential(1x1 conv to the classes, bilinear upsampling)."""

    def __init__(self, in_size, out_size, scale_factor):
        super().__init__()
        self.dsv = nn.Sequential(nn.Conv2d(in_size, out_size, 1),
                                 nn.Upsample(scale_factor=scale_factor, mode="bilinear", align_corners=False))

    def forward(self, x):
        return self.dsv(x)


class AttentionUNet(SamePaddingNet):
    """Attention U-Net (Oktay et al. 2018, arXiv 1804.03999) in 2-D: the authors'
    ``unet_CT_single_att_dsv_3D`` with every 3-D layer replaced by its 2-D counterpart and
    trilinear by bilinear (align_corners=False), module names as in that file.

    Encoder conv1..conv4 + center ((3x3 conv, BN, ReLU) x 2, filters 64..1024 /
    feature_scale), a gating signal (1x1 conv, BN, ReLU) from the centre, attention gates
    on the three coarsest skips (``attentionblock4`` gated by the gating signal, 3 and 2 by
    the decoder map below), decoder ``up_concat4..1``, deep-supervision heads ``dsv4..dsv1``
    upsampled to full size and fused by ``final`` (1x1 conv). ``forward(x,
    return_attention=True)`` returns (logits, [alpha2, alpha3, alpha4]), each gate's
    coefficients (N, 1, h, w) at its skip's resolution.
    """

    multiple = 16

    def __init__(self, in_channels=1, num_classes=2, feature_scale=4):
        super().__init__()
        owner = "AttentionUNet"
        self.in_channels = _positive_int(owner, "in_channels", in_channels)
        self.num_classes = _positive_int(owner, "num_classes", num_classes)
        self.feature_scale = _positive_int(owner, "feature_scale", feature_scale)
        filters = [int(c / feature_scale) for c in (64, 128, 256, 512, 1024)]
        if filters[0] < 1:
            raise ValueError(f"AttentionUNet: feature_scale {feature_scale} leaves no filters at the top "
                             "(64 / feature_scale must be at least 1)")
        self.filters = filters
        for level in range(4):
            setattr(self, f"conv{level + 1}", UnetConv2(in_channels if level == 0 else filters[level - 1],
                                                        filters[level]))
            setattr(self, f"maxpool{level + 1}", nn.MaxPool2d(2))
        self.center = UnetConv2(filters[3], filters[4])
        self.gating = UnetGridGatingSignal2(filters[4], filters[4])
        for level in (2, 3, 4):  # the gate on skip `level` is driven by the map one level below
            setattr(self, f"attentionblock{level}",
                    MultiAttentionBlock(filters[level - 1], filters[level], filters[level - 1]))
        for level in (4, 3, 2, 1):
            setattr(self, f"up_concat{level}", UnetUp2_CT(filters[level], filters[level - 1]))
        for level in (4, 3, 2):
            setattr(self, f"dsv{level}", UnetDsv2(filters[level - 1], num_classes, 2 ** (level - 1)))
        self.dsv1 = nn.Conv2d(filters[0], num_classes, 1)
        self.final = nn.Conv2d(num_classes * 4, num_classes, 1)
        _attention_bn_init(self)

    def forward(self, x, return_attention=False):
        self._check_input(x)
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
        logits = self.final(mg.cat(heads, dim=1))
        return (logits, [att2, att3, att4]) if return_attention else logits

    def _describe(self, table, n):
        f, k = self.filters, self.num_classes
        block = "(conv3x3 + BN + ReLU) x 2"
        c = self.in_channels
        for level in range(4):
            s = n >> level
            table.add(f"conv{level + 1}", block, (c, s, s), (f[level], s, s), getattr(self, f"conv{level + 1}"))
            table.add(f"maxpool{level + 1}", "max-pool 2x2", (f[level], s, s), (f[level], s // 2, s // 2))
            c = f[level]
        s = n >> 4
        table.add("center", block, (f[3], s, s), (f[4], s, s), self.center)
        table.add("gating", "conv1x1 + BN + ReLU (gating signal)", (f[4], s, s), (f[4], s, s), self.gating)
        below = f[4]
        for level in (4, 3, 2):
            s = n >> (level - 1)
            gate = getattr(self, f"attentionblock{level}")
            table.add(f"attentionblock{level}", f"gate(x=conv{level}, g) -> conv1x1 + BN + ReLU",
                      (f[level - 1], s, s), (f[level - 1], s, s), gate)
            up = getattr(self, f"up_concat{level}")
            table.add(f"up_concat{level}", "bilinear x2, cat[gated skip, up] -> " + block,
                      (f[level - 1] + below, s, s), (f[level - 1], s, s), up)
            below = f[level - 1]
        table.add("up_concat1", "bilinear x2, cat[conv1, up] -> " + block, (f[0] + f[1], n, n), (f[0], n, n),
                  self.up_concat1)
        for level in (4, 3, 2):
            s = n >> (level - 1)
            table.add(f"dsv{level}", f"conv1x1, bilinear x{2 ** (level - 1)}", (f[level - 1], s, s), (k, n, n),
                      getattr(self, f"dsv{level}"))
        table.add("dsv1", "conv1x1", (f[0], n, n), (k, n, n), self.dsv1)
        table.add("final", "cat[dsv1..dsv4] -> conv1x1", (4 * k, n, n), (k, n, n), self.final)

    def extra_repr(self):
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, feature_scale={self.feature_scale}"

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, num_classes=self.num_classes, feature_scale=self.feature_scale)


# ---- TernausNet -----------------------------------------------------------------------------
VGG11_CONVS = (0, 3, 6, 8, 11, 13, 16, 18)  # torchvision's vgg11().features: where the convolutions are


def vgg11_features():
    """torchvision's ``vgg11().features`` layout: 8 3x3 convolutions (64, 128, 256, 256, 512,
    512, 512, 512 filters) with ReLUs and 5 max-pools, at the same indices 0..20."""
    layers, c_in = [], 3
    for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = item
    return nn.Sequential(*layers)


class ConvRelu(nn.Module):
    def __init__(self, in_, out):
        super().__init__()
        self.conv = nn.Conv2d(in_, out, 3, padding=1)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.activation(self.conv(x))


class DecoderBlock(nn.Module):
    """block = Sequential(ConvRelu, 3x3 stride-2 transposed conv (padding 1, output_padding 1), ReLU):
    doubles the size."""

    def __init__(self, in_channels, middle_channels, out_channels):
        super().__init__()
        self.block = nn.Sequential(
            ConvRelu(in_channels, middle_channels),
            nn.ConvTranspose2d(middle_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.block(x)


class TernausNet(SamePaddingNet):
    """TernausNet (Iglovikov & Shvets 2018, arXiv 1801.05746): ternaus/TernausNet's ``UNet11``.

    The encoder is VGG11's feature extractor (``encoder``, torchvision's indices), its eight
    convolutions also registered as ``conv1, conv2, conv3s, conv3, conv4s, conv4, conv5s,
    conv5`` exactly as the reference does: the state dict lists each of them twice
    (``encoder.0.weight`` and ``conv1.weight`` are one array), while ``parameters()`` lists
    each once (so an optimiser updates it once). The decoder (``center``, ``dec5``..``dec2``:
    ConvRelu then a 3x3 stride-2 transposed convolution + ReLU; ``dec1``: ConvRelu) ends in
    ``final``, a 1x1 conv to one logit. The reference sizes its decoder as multiples of
    num_filters that equal the encoder's channels only at num_filters=32 (num_filters * 16 =
    512), so other widths fail there; here the decoder counts the encoder's channels, which is
    the same network at 32 and a working one at any width.

    ``pretrained``: the path of a bridge .npz holding VGG11's features, written where torch
    and torchvision are installed with
    ``torch_save_npz(torchvision.models.vgg11(weights="IMAGENET1K_V1").features, path)``
    (keys ``N.weight``; a whole VGG11's ``features.N.weight`` is accepted too, its
    classifier ignored). Nothing is downloaded and nothing is unpickled. The network takes
    3-channel images; a 1-channel image is repeated to three channels, as the reference's
    documentation asks for grey images.
    """

    multiple = 32
    in_channels = 3
    num_classes = 1

    def __init__(self, num_filters=32, pretrained=None):
        super().__init__()
        self.num_filters = nf = _positive_int("TernausNet", "num_filters", num_filters)
        self.pool = nn.MaxPool2d(2, 2)
        self.encoder = vgg11_features()
        self.relu = self.encoder[1]
        for name, index in zip(("conv1", "conv2", "conv3s", "conv3", "conv4s", "conv4", "conv5s", "conv5"),
                               VGG11_CONVS):
            setattr(self, name, self.encoder[index])
        self.center = DecoderBlock(512, nf * 8 * 2, nf * 8)
        self.dec5 = DecoderBlock(512 + nf * 8, nf * 8 * 2, nf * 8)
        self.dec4 = DecoderBlock(512 + nf * 8, nf * 8 * 2, nf * 4)
        self.dec3 = DecoderBlock(256 + nf * 4, nf * 4 * 2, nf * 2)
        self.dec2 = DecoderBlock(128 + nf * 2, nf * 2 * 2, nf)
        self.dec1 = ConvRelu(64 + nf, nf)
        self.final = nn.Conv2d(nf, 1, 1)
        self.pretrained = None
        if pretrained is not None:
            self.load_vgg11(pretrained)

    def load_vgg11(self, path):
        """Load VGG11 encoder weights from a bridge .npz (see the class docstring)."""
        from minigrad.torch_bridge import import_from_torch

        state = import_from_torch(path)
        encoder_state = {}
        for key, value in state.items():
            if key.startswith("classifier."):
                continue
            encoder_state[key[len("features."):] if key.startswith("features.") else key] = value
        try:
            self.encoder.load_state_dict(encoder_state, strict=True)
        except (KeyError, ValueError) as err:
            raise ValueError(f"TernausNet: pretrained={str(path)!r} is not VGG11's features (keys N.weight / "
                             f"N.bias for N in {VGG11_CONVS}, or features.N.*): {err}") from None
        self.pretrained = str(path)
        return self

    def parameters(self):
        return _unique(super().parameters())

    def _accepted_channels(self):
        return (3, 1)

    def forward(self, x):
        self._check_input(x)
        if x.shape[1] == 1:  # a grey image: the same values in the three colour channels
            x = mg.cat([x, x, x], dim=1)
        conv1 = self.relu(self.conv1(x))
        conv2 = self.relu(self.conv2(self.pool(conv1)))
        conv3 = self.relu(self.conv3(self.relu(self.conv3s(self.pool(conv2)))))
        conv4 = self.relu(self.conv4(self.relu(self.conv4s(self.pool(conv3)))))
        conv5 = self.relu(self.conv5(self.relu(self.conv5s(self.pool(conv4)))))
        center = self.center(self.pool(conv5))
        dec5 = self.dec5(mg.cat([center, conv5], dim=1))
        dec4 = self.dec4(mg.cat([dec5, conv4], dim=1))
        dec3 = self.dec3(mg.cat([dec4, conv3], dim=1))
        dec2 = self.dec2(mg.cat([dec3, conv2], dim=1))
        dec1 = self.dec1(mg.cat([dec2, conv1], dim=1))
        return self.final(dec1)

    def _describe(self, table, n):
        nf = self.num_filters
        names = ("conv1", "conv2", "conv3s", "conv3", "conv4s", "conv4", "conv5s", "conv5")
        c, s = 3, n
        for name, index in zip(names, VGG11_CONVS):
            conv = getattr(self, name)
            if name in ("conv2", "conv3s", "conv4s", "conv5s"):
                table.add("pool", "max-pool 2x2", (c, s, s), (c, s // 2, s // 2))
                s //= 2
            table.add(f"{name} (encoder.{index})", "conv3x3 + ReLU (VGG11)", (c, s, s), (conv.out_channels, s, s),
                      conv)
            c = conv.out_channels
        table.add("pool", "max-pool 2x2", (c, s, s), (c, s // 2, s // 2))
        s //= 2
        skips = [("conv5", 512), ("conv4", 512), ("conv3", 256), ("conv2", 128), ("conv1", 64)]
        block = "conv3x3 + ReLU, up-conv 3x3 s2 + ReLU"
        table.add("center", block, (c, s, s), (nf * 8, 2 * s, 2 * s), self.center)
        c, s = nf * 8, 2 * s
        previous = "center"
        for name, (skip, skip_c) in zip(("dec5", "dec4", "dec3", "dec2"), skips):
            module = getattr(self, name)
            out_c = module.block[1].out_channels
            table.add(name, f"cat[{previous}, {skip}] -> {block}", (c + skip_c, s, s), (out_c, 2 * s, 2 * s), module)
            c, s, previous = out_c, 2 * s, name
        table.add("dec1", "cat[dec2, conv1] -> conv3x3 + ReLU", (c + 64, s, s), (nf, s, s), self.dec1)
        table.add("final", "conv1x1 (head)", (nf, s, s), (1, s, s), self.final)

    def extra_repr(self):
        return f"num_filters={self.num_filters}" + (f", pretrained='{self.pretrained}'" if self.pretrained else "")

    def config(self) -> dict:
        return dict(num_filters=self.num_filters)
