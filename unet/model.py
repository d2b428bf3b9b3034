"""The U-Net of Ronneberger, Fischer & Brox (2015), built only from minigrad layers.

    input 572x572 ----------------------------------------------------------> output 388x388
      [conv3x3+ReLU]x2   64 ---------------- crop 568->392, concat ---- [conv3x3+ReLU]x2  64 -> conv1x1 -> 2
         maxpool 2x2                                                     up-conv 2x2
        [conv3x3+ReLU]x2  128 ------------- crop 280->200, concat --- [conv3x3+ReLU]x2 128
           maxpool                                                     up-conv
          [conv3x3+ReLU]x2 256 ----------- crop 136->104, concat - [conv3x3+ReLU]x2 256
             maxpool                                               up-conv
            [conv3x3+ReLU]x2 512 -------- crop 64->56, concat - [conv3x3+ReLU]x2 512
               maxpool                                          up-conv
                         [conv3x3+ReLU]x2 1024 (bottleneck, optional dropout)

The convolutions are unpadded ("valid"), so every 3x3 conv trims a 1-pixel border and the
output is smaller than the input; the skip connections crop the contracting path's
feature maps to the expansive path's size before concatenating them.
"""
from __future__ import annotations

import numbers

import minigrad as mg
import minigrad.functional as F
from minigrad import nn


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by a ReLU (one row of the paper's figure)."""

    def __init__(self, in_channels: int, out_channels: int, padding: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=padding)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=padding)

    def forward(self, x):
        # in place: a conv's fresh output has no other use, so ReLU need not allocate another
        return F.relu(self.conv2(F.relu(self.conv1(x), inplace=True)), inplace=True)


class UpBlock(nn.Module):
    """2x2 up-convolution halving the channels, then crop the skip (the contracting path's larger
    map) to its centre and concatenate along channels, skip first: cat([skip, x]) (the order the
    paper's weights and the torch bridge expect), then two 3x3 convs."""

    def __init__(self, in_channels: int, padding: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DoubleConv(in_channels, in_channels // 2, padding)

    def forward(self, x, skip):
        x = self.up(x)
        # BEGIN TASK unet.forward
        skip = F.crop_like(skip, x)  # the contracting path's map is larger: crop its centre
        return self.conv(mg.cat([skip, x], dim=1))
        # END TASK


MAX_PARAMETERS = 10**9  # 4 GB of float32 weights: refuse before allocating anything larger


def unet_parameter_count(in_channels: int, num_classes: int, depth: int, base_channels: int) -> int:
    """The number of parameters ``UNet(...)`` would allocate, from the sizes alone
    (3x3 convolutions with bias; each up block: a 2x2 transposed conv halving the channels,
    then a double conv on the concatenation)."""
    def double(c_in, c_out):
        return 9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out

    channels = [base_channels * 2**level for level in range(depth + 1)]
    total, c_in = 0, in_channels
    for level in range(depth):
        total += double(c_in, channels[level])
        c_in = channels[level]
    total += double(c_in, channels[depth])
    for level in range(depth):
        c = channels[level]
        total += 4 * 2 * c * c + c + double(2 * c, c)
    return total + channels[0] * num_classes + num_classes


class UNet(nn.Module):
    """U-Net: ``depth`` poolings, ``base_channels`` at the top, channels doubling per level.

    ``padding="valid"`` is the paper's network (572 -> 388 at depth 4); ``"same"`` pads the
    3x3 convolutions so the output has the input's size.
    """

    def __init__(self, in_channels=1, num_classes=2, depth=4, base_channels=64, padding="valid", dropout=0.0):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"UNet: padding must be 'valid' or 'same', got {padding!r}")
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("depth", depth),
                            ("base_channels", base_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"UNet: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"UNet: dropout must be in [0, 1), got {dropout}")
        count = unet_parameter_count(in_channels, num_classes, depth, base_channels)
        if count > MAX_PARAMETERS:
            deepest = max((d for d in range(1, depth) if unet_parameter_count(in_channels, num_classes, d,
                                                                             base_channels) <= MAX_PARAMETERS), default=0)
            hint = f"depth <= {deepest} at base_channels={base_channels}" if deepest else "fewer base_channels"
            raise ValueError(f"UNet: depth={depth} with base_channels={base_channels} would have {count:.3g} parameters "
                             f"({4 * count / 2**30:.3g} GiB in float32), more than the {MAX_PARAMETERS:.0e} allowed; "
                             f"use {hint} (the paper's network: depth 4, 64 channels, 3.1e7 parameters)")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.base_channels, self.padding, self.dropout_p = base_channels, padding, dropout
        pad = 0 if padding == "valid" else 1
        channels = [base_channels * 2**level for level in range(depth + 1)]
        # registration order = the order the forward pass uses the parameters
        c_in = in_channels
        for level in range(depth):  # contracting path, top-down
            setattr(self, f"down{level + 1}", DoubleConv(c_in, channels[level], pad))
            c_in = channels[level]
        self.bottleneck = DoubleConv(c_in, channels[depth], pad)
        self.dropout = nn.Dropout(dropout)
        for level in reversed(range(depth)):  # expansive path, bottom-up
            setattr(self, f"up{level + 1}", UpBlock(channels[level + 1], pad))
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    # ---- sizes -----------------------------------------------------------------------------
    def _trace(self, n: int):
        """Sizes through the network for an n x n input, or None if n is not valid."""
        trim = 4 if self.padding == "valid" else 0
        skips = []
        for _ in range(self.depth):
            n -= trim
            if n < 2 or n % 2:
                return None
            skips.append(n)
            n //= 2
        n -= trim
        if n < 1:
            return None
        crops = []
        for skip in reversed(skips):
            n *= 2
            crops.append((skip, n))
            n -= trim
            if n < 1:
                return None
        return n, crops

    def output_size(self, n: int) -> int:
        """Output height/width for an n x n input (raises for an invalid n)."""
        self.check_input_size(n)
        return self._trace(n)[0]

    def skip_crops(self, n: int):
        """[(contracting size, cropped size)] for each skip, bottom-up (572: 64->56 ... 568->392)."""
        self.check_input_size(n)
        return self._trace(n)[1]

    def valid_input_size(self, n: int) -> int:
        """The smallest valid input size >= n."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise ValueError(f"UNet: the size must be an integer number of pixels, got {n!r}")
        m = max(int(n), 1)
        while self._trace(m) is None:
            m += 1
        return m

    def nearest_valid_sizes(self, n: int):
        below = next((m for m in range(int(n), 0, -1) if self._trace(m) is not None), None)
        return below, self.valid_input_size(n)

    def check_input_size(self, n: int, what: str = "input size"):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise ValueError(f"UNet: {what} must be an integer number of pixels, got {n!r}")
        if self._trace(int(n)) is None:
            below, above = self.nearest_valid_sizes(n)
            rule = (f"(n + 4) divisible by {2 ** self.depth}" if self.padding == "valid"
                    else f"n divisible by {2 ** self.depth}")
            options = f"{below} or {above}" if below else f"{above}"
            raise ValueError(
                f"UNet: {what} {n} is not valid for a depth-{self.depth} '{self.padding}' U-Net "
                f"({rule}, bottom at least 1 pixel); nearest valid sizes: {options}"
            )

    # ---- layer table -------------------------------------------------------------------------
    def describe(self, n: int = 572) -> list:
        """The network layer by layer for an n x n input, in the order the forward pass runs.

        One dict per row: ``layer`` (the module's name, e.g. ``"down1.conv1"``), ``op``,
        ``shape_in`` and ``shape_out`` as (channels, height, width), ``parameters`` (of that
        layer) and ``crop`` ((skip size, cropped size) on the crop-and-concat rows, else None).
        The sizes come from the layers' own settings, so the table needs no forward pass;
        ``summary(n)`` prints it. Raises ValueError for an invalid n, like ``output_size``.
        """
        self.check_input_size(n)
        rows = []

        def add(layer, op, shape_in, shape_out, module=None, crop=None):
            params = sum(p.size for p in module.parameters()) if module is not None else 0
            rows.append(dict(layer=layer, op=op, shape_in=tuple(shape_in), shape_out=tuple(shape_out),
                             parameters=params, crop=crop))

        def double(prefix, block, c, size):
            for name in ("conv1", "conv2"):
                conv = getattr(block, name)
                pad = conv.padding if isinstance(conv.padding, int) else conv.padding[0]
                out = F.conv_output_size(size, conv.kernel_size[0], 1, pad)
                add(f"{prefix}.{name}", "conv3x3 + ReLU", (c, size, size), (conv.out_channels, out, out), conv)
                c, size = conv.out_channels, out
            return c, size

        c, size, skips = self.in_channels, int(n), []
        for level in range(1, self.depth + 1):
            c, size = double(f"down{level}", getattr(self, f"down{level}"), c, size)
            skips.append((c, size))
            add(f"pool{level}", "max-pool 2x2", (c, size, size), (c, size // 2, size // 2))
            size //= 2
        c, size = double("bottleneck", self.bottleneck, c, size)
        for level in range(self.depth, 0, -1):
            block = getattr(self, f"up{level}")
            up = block.up
            out = F.conv_transpose_output_size(size, up.kernel_size[0], up.kernel_size[0])
            add(f"up{level}.up", "up-conv 2x2", (c, size, size), (up.out_channels, out, out), up)
            c, size = up.out_channels, out
            skip_c, skip_size = skips[level - 1]
            add(f"up{level}.concat", "crop skip + concat", (skip_c, skip_size, skip_size),
                (skip_c + c, size, size), crop=(skip_size, size))
            c, size = double(f"up{level}.conv", block.conv, skip_c + c, size)
        add("head", "conv1x1", (c, size, size), (self.head.out_channels, size, size), self.head)
        return rows

    def summary(self, n: int = 572) -> str:
        """``describe(n)`` as a printable table, with the total number of parameters."""
        rows = self.describe(n)
        fmt = "{:<17} {:<19} {:>18} {:>18} {:>12}  {}"
        shape = lambda s: " x ".join(map(str, s))  # noqa: E731
        lines = [fmt.format("layer", "op", "in (C x H x W)", "out (C x H x W)", "parameters", "crop"),
                 "-" * 97]
        for r in rows:
            crop = f"{r['crop'][0]} -> {r['crop'][1]}" if r["crop"] else ""
            lines.append(fmt.format(r["layer"], r["op"], shape(r["shape_in"]), shape(r["shape_out"]),
                                    f"{r['parameters']:,}", crop).rstrip())
        lines += ["-" * 97, f"total parameters: {sum(r['parameters'] for r in rows):,}"]
        return "\n".join(lines)

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet: input must have shape (N, {self.in_channels}, H, W), got {x.shape}"
            )
        self.check_input_size(x.shape[2], "input height")
        self.check_input_size(x.shape[3], "input width")
        skips = []
        for level in range(self.depth):
            x = getattr(self, f"down{level + 1}")(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.dropout(self.bottleneck(x))
        for level in reversed(range(self.depth)):
            x = getattr(self, f"up{level + 1}")(x, skips[level])
        return self.head(x)

    def extra_repr(self):
        return (f"in_channels={self.in_channels}, num_classes={self.num_classes}, depth={self.depth}, "
                f"base_channels={self.base_channels}, padding='{self.padding}'")

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, num_classes=self.num_classes, depth=self.depth,
                    base_channels=self.base_channels, padding=self.padding, dropout=self.dropout_p)
