"""PyTorch parity of the functional surface: the issue's bug list, F.pad modes, max/min and
their indices, BCE's pos_weight and target gradient, and the refusals of unsupported PyTorch
arguments. float64 values and gradients against PyTorch, gradcheck for the new backward passes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from conftest import assert_close, to_device


def make(shape, device, rng, scale=1.0):
    return mg.tensor(to_device(rng.standard_normal(shape) * scale, device), requires_grad=True)


def compare(torch, fn, fn_t, inputs, rtol=1e-10, atol=1e-12):
    """Forward values and the gradients of every input against PyTorch (float64)."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    g = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(to_device(g, out.device))
    ts = [torch.tensor(t.numpy(), requires_grad=True) for t in inputs]
    out_t = fn_t(*ts)
    out_t.backward(torch.tensor(g))
    assert_close(out.data, out_t, rtol, atol, "forward")
    for i, (t, tt) in enumerate(zip(inputs, ts)):
        assert_close(t.grad, tt.grad, rtol, atol, f"gradient of input {i}")


# ---- the bug list ----------------------------------------------------------------------
def test_zero_dim_tensors_reduce_and_transpose_as_torch(torch):
    s = mg.tensor(np.float64(2.5), requires_grad=True)
    cases = [
        (lambda s: s.sum(dim=0, keepdim=True), lambda s: s.sum(dim=0, keepdim=True)),
        (lambda s: s.sum(dim=-1), lambda s: s.sum(dim=-1)),
        (lambda s: s.mean(dim=0), lambda s: s.mean(dim=0)),
        (lambda s: s.max(dim=0).values, lambda s: s.max(dim=0).values),
        (lambda s: s.min(dim=0, keepdim=True)[0], lambda s: s.min(dim=0, keepdim=True)[0]),
        (lambda s: s.amax(dim=0), lambda s: s.amax(dim=0)),
        (lambda s: s.transpose(0, 0), lambda s: s.transpose(0, 0)),
        (lambda s: F.softmax(s, 0), lambda s: torch.softmax(s, 0)),
    ]
    for fn, fn_t in cases:
        s.grad = None
        compare(torch, fn, fn_t, [s])
    assert s.max(dim=0).indices.item() == 0 and s.argmax(dim=0).shape == ()


@pytest.mark.parametrize("dim", [(), []])
@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
def test_empty_dim_list_reduces_every_dimension(name, dim, torch):
    x = make((2, 3), "cpu", np.random.default_rng(0))
    compare(torch, lambda x: getattr(x, name)(dim=dim), lambda x: getattr(x, name)(dim=dim), [x])
    assert getattr(x, name)(dim=dim).shape == ()


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (0.0, 2.0), (0.0, 1.0), (0.0, 0.5), (2.0, 0.0), (-1.5, 2.0), (0.0, -1.0)])
def test_pow_gradients_at_base_zero_as_torch(a, b, torch):
    x = mg.tensor(np.array([a, 1.5]), requires_grad=True)
    e = mg.tensor(np.array([[b], [2.0]]), requires_grad=True)  # broadcast: (2,) ** (2, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x**e
        out.backward(np.ones(out.shape))
    xt, et = (torch.tensor(v.numpy(), requires_grad=True) for v in (x, e))
    (xt**et).backward(torch.ones(2, 2, dtype=torch.float64))
    assert_close(out.data, xt**et, what="forward")
    assert_close(x.grad, xt.grad, what="base gradient")
    assert_close(e.grad, et.grad, what="exponent gradient")


@pytest.mark.parametrize("shape, dim", [((0, 3), 1), ((2, 0), 1), ((2, 0, 3), 0), ((0,), 0)])
def test_softmax_of_empty_tensors_is_empty(shape, dim, torch):
    x = mg.tensor(np.zeros(shape), requires_grad=True)
    for fn, fn_t in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        x.grad = None
        compare(torch, lambda x: fn(x, dim), lambda x: fn_t(x, dim), [x])


def test_pad_constant_mode_is_the_third_argument_and_weight_errors_name_weight():
    x = mg.tensor(np.ones((1, 2, 2)))
    assert F.pad(x, (1, 1), "constant").shape == (1, 2, 4)
    assert F.pad(x, (1, 1), "constant", 3.0).numpy()[0, 0, 0] == 3.0
    with pytest.raises(TypeError, match="mode must be one of .* got 0.5 .*value="):
        F.pad(x, (1, 1), 0.5)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), which does not broadcast to the input's shape \(2, 2\)"):
        F.binary_cross_entropy_with_logits(mg.tensor(np.zeros((2, 2))), np.zeros((2, 2)), weight=np.ones(3))
    with pytest.raises(ValueError, match=r"pos_weight has shape \(3,\)"):
        F.binary_cross_entropy_with_logits(mg.tensor(np.zeros((2, 2))), np.zeros((2, 2)), pos_weight=np.ones(3))


@st.composite
def bce_case(draw):
    shape = draw(st.sampled_from([(), (4,), (3, 4), (2, 3, 4)]))
    last = shape[-1:] if shape else ()
    weight = draw(st.sampled_from([None, "full", "last"]))
    pos = draw(st.sampled_from([None, "full", "last"]))
    return shape, weight, pos, last, draw(st.sampled_from(["mean", "sum", "none"]))


@given(case=bce_case())
def test_bce_with_logits_pos_weight_and_target_gradient(case, device, torch):
    shape, weight, pos, last, reduction = case
    rng = np.random.default_rng(3)
    x, t = make(shape, device, rng, 3.0), mg.tensor(to_device(rng.uniform(0, 1, shape), device), requires_grad=True)
    w = None if weight is None else rng.uniform(0.5, 2.0, shape if weight == "full" else last)
    p = None if pos is None else rng.uniform(0.2, 3.0, shape if pos == "full" else last)
    wd, pd = (None if v is None else to_device(v, device) for v in (w, p))

    def fn(x, t):
        return F.binary_cross_entropy_with_logits(x, t, wd, reduction=reduction, pos_weight=pd)

    def fn_t(x, t):
        as_t = lambda v: None if v is None else torch.tensor(v)  # noqa: E731
        return torch.nn.functional.binary_cross_entropy_with_logits(x, t, as_t(w), reduction=reduction, pos_weight=as_t(p))

    assert mg.gradcheck(fn, [x, t])
    x.grad = t.grad = None
    compare(torch, fn, fn_t, [x, t])


def test_mse_loss_weight_and_broadcasting_as_torch(torch):
    rng = np.random.default_rng(4)
    x, t = make((3, 4), "cpu", rng), make((3, 4), "cpu", rng)
    w = rng.uniform(0.5, 2, (3, 4))
    for reduction in ("mean", "sum", "none"):
        x.grad = t.grad = None
        compare(torch, lambda x, t: F.mse_loss(x, t, reduction=reduction, weight=w),
                lambda x, t: torch.nn.functional.mse_loss(x, t, reduction=reduction, weight=torch.tensor(w)), [x, t])
    b = make((4,), "cpu", rng)
    with pytest.warns(UserWarning, match="broadcast"):
        compare(torch, lambda x, b: F.mse_loss(x, b), lambda x, b: torch.nn.functional.mse_loss(x, b), [x, b])


# ---- max / min / amax / argmax ------------------------------------------------------------
@st.composite
def extremum_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, dim, draw(st.booleans()), draw(st.booleans())


@pytest.mark.parametrize("name", ["max", "min"])
@given(case=extremum_case())
def test_max_min_with_dim_return_values_and_indices(name, case, device, torch):
    shape, dim, keepdim, ties = case
    rng = np.random.default_rng(5)
    values = rng.integers(0, 3, shape).astype(float) if ties else rng.standard_normal(shape)
    x = mg.tensor(to_device(values, device), requires_grad=True)
    out = getattr(x, name)(dim, keepdim)
    ref = getattr(torch.tensor(values), name)(dim, keepdim)
    assert_close(out.indices.data, ref.indices, what="indices")
    assert out.indices.dtype == np.int64
    if not ties:
        assert mg.gradcheck(lambda x: getattr(x, name)(dim, keepdim).values, [x])
    x.grad = None
    compare(torch, lambda x: getattr(x, name)(dim, keepdim)[0], lambda x: getattr(x, name)(dim, keepdim)[0], [x])
    for arg in ("argmax", "argmin"):
        assert_close(getattr(x, arg)(dim, keepdim).data, getattr(torch.tensor(values), arg)(dim, keepdim), what=arg)
        assert_close(getattr(x, arg)().data, getattr(torch.tensor(values), arg)(), what=arg)
    x.grad = None  # full reductions share ties, as torch.max(x)
    compare(torch, lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), [x])


def test_elementwise_max_min_and_module_functions(torch):
    rng = np.random.default_rng(6)
    a, b = make((3, 4), "cpu", rng), make((4,), "cpu", rng)
    b.data[:] = a.data[0]  # some ties: half the gradient to each, as PyTorch
    for name in ("maximum", "minimum"):
        a.grad = b.grad = None
        compare(torch, getattr(mg, name), getattr(torch, name), [a, b])
    a.grad = b.grad = None
    compare(torch, lambda a, b: a.max(b), lambda a, b: a.max(b), [a, b])
    assert mg.max(a, 1).values.shape == (3,) and mg.argmin(a).shape == ()
    with pytest.raises(TypeError, match="dim must be an int"):
        a.max(dim=(0, 1))
    with pytest.raises(ValueError, match="empty"):
        mg.tensor(np.zeros((2, 0))).max(1)


# ---- F.pad -------------------------------------------------------------------------------
@st.composite
def pad_case(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    k = draw(st.integers(1, 3))
    batched = draw(st.booleans())
    spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=k, max_size=k)))
    shape = ((2, 2) if batched else (2,)) + spatial
    widths = []
    for n in reversed(spatial):
        limit = {"reflect": n - 1, "circular": n}.get(mode, 3)
        lo = draw(st.integers(-min(n - 1, 2), limit))
        m = n - max(-lo, 0)
        hi_low = -min(m - 1, 2) if mode != "circular" else -min(m - 1, 2)
        hi = draw(st.integers(hi_low, limit))
        if mode == "circular":  # widths at most the cropped length
            m = n - max(-lo, 0) - max(-hi, 0)
            lo, hi = min(lo, m), min(hi, m)
        widths += [lo, hi]
    return shape, tuple(widths), mode


@given(case=pad_case())
def test_pad_modes_and_negative_widths_against_torch(case, device, torch):
    shape, widths, mode = case
    x = make(shape, device, np.random.default_rng(8))
    fn = lambda x: F.pad(x, widths, mode)  # noqa: E731
    assert mg.gradcheck(fn, [x])
    x.grad = None
    compare(torch, fn, lambda x: torch.nn.functional.pad(x, widths, mode), [x])


def test_pad_errors_name_the_problem():
    x = mg.tensor(np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match="reflect widths must be less than"):
        F.pad(x, (3, 0), "reflect")
    with pytest.raises(ValueError, match="wrap around more than once"):
        F.pad(x, (4, 0), "circular")
    with pytest.raises(ValueError, match="last 1, 2 or 3 dimensions"):
        F.pad(mg.tensor(np.zeros(3)), (1, 1), "replicate")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), "symmetric")


# ---- conv2d / conv_transpose2d: groups, string padding, unbatched input -------------------
@st.composite
def grouped_conv_case(draw, transpose=False):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(4, 7)), draw(st.integers(4, 7))
    unbatched = draw(st.booleans())
    x = (c_in, h, w) if unbatched else (draw(st.integers(1, 2)), c_in, h, w)
    if transpose:
        padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
        op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        return dict(x=x, w=(c_in, c_out // groups, kh, kw), b=(c_out,),
                    args=(stride, padding, op, groups, dilation))
    padding = draw(st.sampled_from(["same", "valid", 0, 1, (1, 0)]))
    if padding == "same":
        stride = (1, 1)
    return dict(x=x, w=(c_out, c_in // groups, kh, kw), b=(c_out,), args=(stride, padding, dilation, groups))


@given(case=grouped_conv_case(), use_bias=st.booleans())
def test_conv2d_groups_string_padding_unbatched_against_torch(case, use_bias, device, torch):
    rng = np.random.default_rng(9)
    inputs = [make(case[k], device, rng) for k in ("x", "w", "b")][: 3 if use_bias else 2]
    extent = [d * (k - 1) + 1 for d, k in zip(case["args"][2], case["w"][2:])]
    pad = case["args"][1]
    pads = (0, 0) if pad in ("valid",) else (extent[0], extent[1]) if pad == "same" else (pad, pad) if isinstance(pad, int) else pad
    if any(e > n + 2 * p for e, n, p in zip(extent, case["x"][-2:], pads)):
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.conv2d(inputs[0], inputs[1], None, *case["args"])
        return

    def fn(x, w, b=None):  # PyTorch's positional order: stride, padding, dilation, groups
        return F.conv2d(x, w, b, *case["args"])

    def fn_t(x, w, b=None):
        return torch.nn.functional.conv2d(x, w, b, *case["args"])

    assert mg.gradcheck(fn, inputs)
    compare(torch, fn, fn_t, inputs, rtol=1e-9, atol=1e-11)


@given(case=grouped_conv_case(transpose=True), use_bias=st.booleans())
def test_conv_transpose2d_groups_unbatched_positional_order_against_torch(case, use_bias, device, torch):
    rng = np.random.default_rng(10)
    inputs = [make(case[k], device, rng) for k in ("x", "w", "b")][: 3 if use_bias else 2]

    def fn(x, w, b=None):  # stride, padding, output_padding, groups, dilation
        return F.conv_transpose2d(x, w, b, *case["args"])

    def fn_t(x, w, b=None):
        return torch.nn.functional.conv_transpose2d(x, w, b, *case["args"])

    assert mg.gradcheck(fn, inputs)
    compare(torch, fn, fn_t, inputs, rtol=1e-9, atol=1e-11)


def test_depthwise_convolution_filters_each_channel_on_its_own():
    x = mg.tensor(np.stack([np.ones((4, 4)), 2 * np.ones((4, 4)), np.zeros((4, 4))])[None])
    w = mg.tensor(np.ones((3, 1, 3, 3)))
    y = F.conv2d(x, w, groups=3).numpy()
    np.testing.assert_array_equal(y[0, :, 0, 0], [9.0, 18.0, 0.0])


def test_conv_errors_name_the_argument():
    x, w = mg.tensor(np.zeros((1, 4, 5, 5))), mg.tensor(np.zeros((6, 2, 3, 3)))
    with pytest.raises(ValueError, match="groups=4 must divide"):
        F.conv2d(x, mg.tensor(np.zeros((6, 1, 3, 3))), groups=4)
    with pytest.raises(ValueError, match="expects 2"):
        F.conv2d(x, w, groups=1)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, w, stride=2, padding="same", groups=2)
    with pytest.raises(ValueError, match="padding must be an int, a pair, 'valid' or 'same', got 'full'"):
        F.conv2d(x, w, padding="full", groups=2)
    with pytest.raises(TypeError, match="conv2d: stride: expected an int or a pair"):
        F.conv2d(x, w, stride=(1, 2, 3), groups=2)


# ---- max_pool2d: dilation, ceil_mode, return_indices -------------------------------------
@st.composite
def pool_case(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    h, w = draw(st.integers(3, 8)), draw(st.integers(3, 8))
    x = (draw(st.integers(1, 2)), h, w) if draw(st.booleans()) else (2, draw(st.integers(1, 2)), h, w)
    return x, kernel, stride, padding, dilation, draw(st.booleans()), draw(st.booleans())


@given(case=pool_case())
def test_max_pool2d_dilation_ceil_mode_return_indices_against_torch(case, device, torch):
    shape, kernel, stride, padding, dilation, ceil_mode, ties = case
    rng = np.random.default_rng(11)
    values = rng.integers(0, 3, shape).astype(float) if ties else rng.standard_normal(shape)
    x = mg.tensor(to_device(values, device), requires_grad=True)
    args = (kernel, stride, padding, dilation, ceil_mode)
    try:
        ref, ref_idx = torch.nn.functional.max_pool2d(torch.tensor(values), *args, return_indices=True)
    except RuntimeError:  # the window does not fit: minigrad refuses too, saying why
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.max_pool2d(x, *args)
        return
    y, idx = F.max_pool2d(x, *args, return_indices=True)
    assert_close(idx.data, ref_idx, what="indices")
    if not ties:
        assert mg.gradcheck(lambda x: F.max_pool2d(x, *args), [x])
    compare(torch, lambda x: F.max_pool2d(x, *args), lambda x: torch.nn.functional.max_pool2d(x, *args), [x])
    layer = mg.nn.MaxPool2d(kernel, stride, padding, dilation, return_indices=True, ceil_mode=ceil_mode)
    assert_close(layer(x)[1].data, ref_idx, what="nn.MaxPool2d indices")


def test_nn_layers_take_pytorch_arguments(torch):
    rng = np.random.default_rng(12)
    x = make((2, 4, 6, 6), "cpu", rng)
    for mode in ("zeros", "reflect", "replicate", "circular"):
        for padding in (1, "same"):
            conv = mg.nn.Conv2d(4, 6, 3, 1, padding, 1, 2, True, mode, dtype=np.float64)
            ref = torch.nn.Conv2d(4, 6, 3, 1, padding, 1, 2, True, mode, dtype=torch.float64)
            with torch.no_grad():
                ref.weight.copy_(torch.tensor(conv.weight.numpy()))
                ref.bias.copy_(torch.tensor(conv.bias.numpy()))
            assert conv.weight.shape == tuple(ref.weight.shape)
            compare(torch, conv, ref, [x])
    up = mg.nn.ConvTranspose2d(4, 6, 2, 2, 0, 0, 2, False, 1, dtype=np.float64)  # groups 7th, bias 8th, dilation 9th
    ref = torch.nn.ConvTranspose2d(4, 6, 2, 2, 0, 0, 2, False, 1, dtype=torch.float64)
    assert up.weight.shape == tuple(ref.weight.shape) and up.bias is None
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(up.weight.numpy()))
    compare(torch, up, ref, [x])


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_picks_pytorchs_implicit_dim(shape, torch):
    x = make(shape, "cpu", np.random.default_rng(13))
    for fn, fn_t in ((F.softmax, torch.nn.functional.softmax), (F.log_softmax, torch.nn.functional.log_softmax)):
        with pytest.warns(UserWarning, match="implicit dimension"):
            compare(torch, fn, lambda x: fn_t(x, dtype=None), [x])
