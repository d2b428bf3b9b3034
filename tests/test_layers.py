"""The vision layers: conv2d, conv_transpose2d, max_pool2d, center_crop, and the losses
and activations over them. float64 gradcheck over hypothesis-drawn configurations, and
PyTorch as an oracle at rounding level (float64) and float32 rounding (float32)."""
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from conftest import assert_close, assert_on, on_device, to_device


@st.composite
def conv_config(draw, transpose=False):
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if not transpose:
        assume(extent[0] <= h + 2 * padding[0] and extent[1] <= w + 2 * padding[1])
        return dict(x=(n, c_in, h, w), w=(c_out, c_in, kh, kw), stride=stride, padding=padding, dilation=dilation)
    op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    out = [(size - 1) * s - 2 * p + e - 1 + o + 1 for size, s, p, e, o in zip((h, w), stride, padding, extent, op)]
    assume(min(out) > 0)
    return dict(x=(n, c_in, h, w), w=(c_in, c_out, kh, kw), stride=stride, padding=padding, dilation=dilation,
                output_padding=op)


# conv2d runs im2col forward and its backward; conv_transpose2d's forward is col2im and its
# backward im2col (the task markers say which blocks each case exercises)
CONV_KINDS = [
    pytest.param(False, id="conv2d", marks=[pytest.mark.conv_im2col, pytest.mark.conv_conv2d_backward]),
    pytest.param(True, id="conv_transpose2d",
                 marks=[pytest.mark.conv_im2col, pytest.mark.conv_col2im, pytest.mark.conv_conv_transpose2d]),
]


def inputs_for(cfg, device, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    c_out = cfg["w"][0] if "output_padding" not in cfg else cfg["w"][1]
    make = lambda shape: on_device(rng.standard_normal(shape).astype(dtype), device)  # noqa: E731
    return make(cfg["x"]), make(cfg["w"]), make((c_out,))


def run_torch(torch, fn_t, arrays, g):
    ts = [torch.tensor(mg.tensor(a).numpy(), requires_grad=True) for a in arrays]
    out = fn_t(*ts)
    out.backward(torch.tensor(g))
    return out, [t.grad for t in ts]


def check_against_torch(torch, fn, fn_t, inputs, rtol, atol):
    out = fn(*inputs)
    g = np.random.default_rng(5).standard_normal(out.shape).astype(out.dtype)
    out.backward(to_device(g, out.device))
    out_t, grads_t = run_torch(torch, fn_t, [t.data for t in inputs], g)
    assert_on(inputs[0].device, out, *(t.grad for t in inputs))  # results stay on the inputs' device
    assert_close(out.data, out_t, rtol=rtol, atol=atol, what="forward")
    for i, (t, gt) in enumerate(zip(inputs, grads_t)):
        assert_close(t.grad, gt, rtol=rtol, atol=atol, what=f"gradient of input {i}")


def conv_fns(cfg, torch):
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    if "output_padding" in cfg:
        kw["output_padding"] = cfg["output_padding"]
        return (lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
                lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, **kw))
    return lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kw)


@pytest.mark.parametrize("transpose", CONV_KINDS)
@given(data=st.data())
def test_conv_gradcheck(transpose, data, device):
    cfg = data.draw(conv_config(transpose))
    fn, _ = conv_fns(cfg, None) if transpose else (lambda x, w, b: F.conv2d(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"]), None)
    inputs = inputs_for(cfg, device)
    assert mg.gradcheck(fn, inputs)
    assert_on(device, fn(*inputs), *(t.grad for t in inputs))


@pytest.mark.parametrize("transpose", CONV_KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_conv_matches_torch(transpose, dtype, data, device, torch):
    cfg = data.draw(conv_config(transpose))
    fn, fn_t = conv_fns(cfg, torch)
    tol = dict(rtol=1e-10, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    check_against_torch(torch, fn, fn_t, inputs_for(cfg, device, dtype), **tol)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 3, 5, 5), (4, 3, 1, 1), {}),  # a 1x1 convolution (columns are the input itself)
        ((2, 2, 4, 3), (3, 2, 4, 3), {}),  # kernel as large as the input: a 1x1 output
        ((3, 1, 6, 6), (2, 1, 3, 3), dict(stride=3)),  # non-overlapping windows, batch > 1
    ],
)
@pytest.mark.conv_im2col
@pytest.mark.conv_col2im
@pytest.mark.conv_conv2d_backward
def test_conv_special_cases(x_shape, w_shape, kwargs, path, torch):
    cfg = dict(x=x_shape, w=w_shape)
    x, w, b = inputs_for(cfg, "cpu")
    fn = lambda x, w, b: F.conv2d(x, w, b, **kwargs)  # noqa: E731
    assert mg.gradcheck(fn, [x, w, b])
    x.grad = w.grad = b.grad = None
    check_against_torch(torch, fn, lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kwargs), [x, w, b], 1e-10, 1e-11)


@pytest.mark.conv_im2col
@pytest.mark.conv_conv2d_backward
def test_conv_without_bias_and_without_input_grad(path, torch):
    x = mg.tensor(np.random.default_rng(0).standard_normal((1, 2, 6, 6)))  # no grad for the input
    w = mg.tensor(np.random.default_rng(1).standard_normal((3, 2, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    wt = torch.tensor(w.numpy(), requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x.numpy()), wt, padding=1).sum().backward()
    assert x.grad is None
    assert_close(w.grad, wt.grad)


@st.composite
def pool_config(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h, w = draw(st.integers(k[0], 9)), draw(st.integers(k[1], 9))
    return dict(shape=(draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w), kernel=k, stride=s, padding=p)


@pytest.mark.pool_max_pool2d_backward
@given(cfg=pool_config())
def test_max_pool_gradcheck_and_torch(cfg, device, torch):
    rng = np.random.default_rng(0)
    # distinct values a safe distance apart, so finite differences never cross a tie
    values = rng.permutation(np.prod(cfg["shape"])).reshape(cfg["shape"]) * 0.1
    x = on_device(values, device)
    kw = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"])
    fn = lambda x: F.max_pool2d(x, **kw)  # noqa: E731
    assert mg.gradcheck(fn, [x])
    x.grad = None
    check_against_torch(torch, fn, lambda x: torch.nn.functional.max_pool2d(x, **kw), [x], 1e-12, 0)


@pytest.mark.pool_max_pool2d_backward
@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 1), (2, 1), ((2, 3), (2, 3))])
def test_max_pool_ties_go_to_the_first_maximum_like_torch(kernel, stride, path, torch):
    x = np.zeros((2, 2, 6, 6))
    x[0, 0, 1:4, 1:4] = 1.0  # plateaus: every window holds several equal maxima
    x[1, 1] = np.arange(36).reshape(6, 6) % 3
    t = mg.tensor(x, requires_grad=True)
    check_against_torch(torch, lambda t: F.max_pool2d(t, kernel, stride), lambda t: torch.nn.functional.max_pool2d(t, kernel, stride), [t], 1e-12, 0)



@pytest.mark.pool_max_pool2d_backward
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kernel", [((2, 3, 8, 6), 2), ((1, 2, 7, 9), 2), ((2, 2, 9, 8), (3, 2)), ((1, 1, 5, 5), 1)])
def test_max_pool_non_overlapping_windows_like_torch(shape, kernel, dtype, device, path, torch):
    """stride == kernel takes the two-pass path whose backward fills an uninitialised buffer
    when the windows tile the input, and zeros the leftover rows/columns when they don't."""
    rng = np.random.default_rng(3)
    x = on_device(rng.standard_normal(shape).astype(dtype), device)
    poison = [np.full(shape, np.nan, dtype=dtype) for _ in range(3)]
    del poison  # freed buffers full of nan, for the backward's uninitialised buffer to reuse
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    check_against_torch(torch, lambda t: F.max_pool2d(t, kernel), lambda t: torch.nn.functional.max_pool2d(t, kernel), [x], rtol, 0)

@pytest.mark.crop_backward
@given(n=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9), data=st.data())
def test_center_crop_gradcheck(n, h, w, data, device):
    size = (data.draw(st.integers(1, h)), data.draw(st.integers(1, w)))
    x = on_device(np.random.default_rng(0).standard_normal((n, 2, h, w)), device)
    assert mg.gradcheck(lambda x: F.center_crop(x, size), [x])
    y = F.center_crop(x, size)
    assert y.device == device
    top, left = (h - size[0]) // 2, (w - size[1]) // 2  # the odd pixel leaves at the bottom/right
    assert_close(y.data, x.numpy()[:, :, top : top + size[0], left : left + size[1]])


@pytest.mark.crop_backward
def test_crop_like_and_concat_make_the_unet_skip():
    skip = mg.tensor(np.random.default_rng(0).standard_normal((1, 2, 64, 64)), requires_grad=True)
    up = mg.tensor(np.random.default_rng(1).standard_normal((1, 3, 56, 56)), requires_grad=True)
    joined = mg.cat([F.crop_like(skip, up), up], dim=1)
    assert joined.shape == (1, 5, 56, 56)
    assert_close(joined.data[:, :2], skip.numpy()[:, :, 4:60, 4:60])
    g = np.random.default_rng(2).standard_normal(joined.shape)
    joined.backward(g)
    expected = np.zeros(skip.shape)
    expected[:, :, 4:60, 4:60] = g[:, :2]  # the crop's gradient: g padded back with zeros
    assert_close(skip.grad, expected)
    assert_close(up.grad, g[:, 2:])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, w: F.conv2d(x[0, 0], w), r"3-D \(C, H, W\) or 4-D.*\(5, 5\)"),
        (lambda x, w: F.conv2d(x, w[:, :1]), r"2 channels.*expects 1"),
        (lambda x, w: F.conv2d(x, w, stride=0), r"stride.*>= 1.*\(0, 0\)"),
        (lambda x, w: F.conv2d(x, mg.tensor(np.ones((3, 2, 7, 7)))), r"kernel of extent 7.*larger than the padded input"),
        (lambda x, w: F.conv2d(x, w, mg.tensor(np.ones(4))), r"bias must be a Tensor of shape \(3,\)"),
        (lambda x, w: F.conv_transpose2d(x, mg.tensor(np.ones((2, 3, 3, 3))), stride=2, output_padding=2),
         r"output_padding \(2, 2\) must be smaller than stride \(2, 2\)"),
        (lambda x, w: F.max_pool2d(x, 0), r"kernel_size.*>= 1"),
        (lambda x, w: F.max_pool2d(x, 6), r"kernel_size \(6, 6\) is larger"),
        (lambda x, w: F.center_crop(x, 6), r"size \(6, 6\) is larger than the input's \(5, 5\)"),
    ],
)
def test_bad_configurations_raise_clear_errors(call, message):
    x = mg.tensor(np.ones((1, 2, 5, 5)))
    w = mg.tensor(np.ones((3, 2, 3, 3)))
    with pytest.raises((ValueError, TypeError), match=message):
        call(x, w)


# ---- activations and losses ----------------------------------------------------------------
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple), data=st.data())
def test_softmax_family_gradcheck_and_torch(shape, data, device, torch):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = on_device(np.random.default_rng(0).standard_normal(shape) * 3, device)
    for fn, fn_t in [(lambda x: F.softmax(x, dim), lambda x: torch.softmax(x, dim)),
                     (lambda x: F.log_softmax(x, dim), lambda x: torch.log_softmax(x, dim))]:
        x.grad = None
        assert mg.gradcheck(fn, [x])
        x.grad = None
        check_against_torch(torch, fn, fn_t, [x], 1e-10, 1e-12)


def test_log_softmax_is_stable_for_huge_logits():
    y = F.log_softmax(mg.tensor(np.array([[1000.0, 0.0, -1000.0]])), 1)
    assert np.isfinite(y.numpy()).all() and abs(y.numpy()[0, 0]) < 1e-12


@st.composite
def ce_case(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    spatial = draw(st.sampled_from([(), (2, 3), (3, 3), (2, 1, 2)]))
    return (n, c, spatial, draw(st.sampled_from(["mean", "sum", "none"])), draw(st.booleans()), draw(st.booleans()),
            draw(st.booleans()), draw(st.sampled_from([0.0, 0.0, 0.1, 0.7])))


@given(case=ce_case())
def test_cross_entropy_pixel_weight_class_weight_smoothing_and_ignore_index(case, device, torch):
    n, c, spatial, reduction, use_pixel, use_ignore, use_class, eps = case
    rng = np.random.default_rng(0)
    logits = on_device(rng.standard_normal((n, c) + spatial) * 2, device)
    target = rng.integers(0, c, (n,) + spatial)
    target.flat[0] = 0  # at least one pixel not ignored
    if use_ignore and target.size > 1:  # (all pixels ignored: 0/0, nan by definition)
        target.flat[-1] = -100
    pixel = rng.uniform(0.5, 3.0, target.shape) if use_pixel else None
    cw = rng.uniform(0.2, 2.0, c) if use_class else None
    t_dev = to_device(target, device)
    p_dev, cw_dev = (to_device(pixel, device) if use_pixel else None), (to_device(cw, device) if use_class else None)

    def fn(x):  # ignore_index is PyTorch's default -100
        return F.cross_entropy(x, t_dev, weight=cw_dev, reduction=reduction, label_smoothing=eps, pixel_weight=p_dev)

    assert mg.gradcheck(fn, [logits])

    def fn_t(x):  # the U-Net paper's weighted loss, spelled out in torch
        tt = torch.tensor(target)
        cw_t = torch.tensor(cw) if use_class else None
        if not use_pixel:
            return torch.nn.functional.cross_entropy(x, tt, weight=cw_t, reduction=reduction, label_smoothing=eps)
        per = torch.nn.functional.cross_entropy(x, tt, weight=cw_t, reduction="none", label_smoothing=eps)
        w = torch.tensor(pixel) * (tt != -100)
        if reduction == "none":
            return per * w
        if reduction == "sum":
            return (per * w).sum()
        class_w = cw_t[tt.clamp(min=0)] if use_class else torch.ones_like(w)
        return (per * w).sum() / (w * class_w).sum()

    logits.grad = None
    check_against_torch(torch, fn, fn_t, [logits], 1e-10, 1e-12)


@given(case=ce_case(), unbatched=st.booleans())
def test_cross_entropy_soft_targets_against_torch(case, unbatched, torch):
    n, c, spatial, reduction, use_pixel, _, use_class, eps = case
    rng = np.random.default_rng(1)
    shape = (c,) if unbatched else (n, c) + spatial
    logits = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    p = rng.dirichlet(np.ones(c), None if unbatched else (n,) + spatial)  # classes last
    probs = mg.tensor(np.moveaxis(p, -1, 0 if unbatched else 1).copy(), requires_grad=True)
    cw = rng.uniform(0.2, 2.0, c) if use_class else None
    fn = lambda x, q: F.cross_entropy(x, q, weight=cw, reduction=reduction, label_smoothing=eps)  # noqa: E731
    assert mg.gradcheck(fn, [logits, probs])
    logits.grad = probs.grad = None
    fn_t = lambda x, q: torch.nn.functional.cross_entropy(  # noqa: E731
        x, q, weight=None if cw is None else torch.tensor(cw), reduction=reduction, label_smoothing=eps)
    check_against_torch(torch, fn, fn_t, [logits, probs], 1e-10, 1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_unbatched_empty_and_all_ignored_as_torch(reduction, torch):
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal(5), requires_grad=True)
    for t in (3, -100):
        fn = lambda x: F.cross_entropy(x, np.array(t), reduction=reduction, label_smoothing=0.2)  # noqa: E731
        x.grad = None
        check_against_torch(torch, fn, lambda x: torch.nn.functional.cross_entropy(
            x, torch.tensor(t), reduction=reduction, label_smoothing=0.2), [x], 1e-10, 1e-12)
    for shape in ((0, 3), (2, 3, 0)):  # empty batches: nan means, empty "none"
        x = mg.tensor(np.zeros(shape), requires_grad=True)
        t = np.zeros((shape[0],) + shape[2:], dtype=np.int64)
        check_against_torch(torch, lambda x: F.cross_entropy(x, t, reduction=reduction),  # noqa: E731
                            lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(t), reduction=reduction),
                            [x], 1e-10, 1e-12)
    x = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)  # every target ignored
    check_against_torch(torch, lambda x: F.cross_entropy(x, np.full(3, -100), reduction=reduction),  # noqa: E731
                        lambda x: torch.nn.functional.cross_entropy(x, torch.full((3,), -100), reduction=reduction),
                        [x], 1e-10, 1e-12)


def test_cross_entropy_errors_name_what_is_wrong():
    logits = mg.tensor(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"target has shape \(2, 4\), expected \(2, 4, 4\)"):
        F.cross_entropy(logits, np.zeros((2, 4), int))
    with pytest.raises(ValueError, match=r"class 3.*\[0, 2\]"):
        F.cross_entropy(logits, np.full((2, 4, 4), 3))
    with pytest.raises(ValueError, match=r"pixel_weight has shape \(2, 4\)"):
        F.cross_entropy(logits, np.zeros((2, 4, 4), int), pixel_weight=np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"weight has shape \(2, 4, 4\), expected one weight per class, \(3,\)"):
        F.cross_entropy(logits, np.zeros((2, 4, 4), int), weight=np.ones((2, 4, 4)))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0.0, 1.0\], got 1.5"):
        F.cross_entropy(logits, np.zeros((2, 4, 4), int), label_smoothing=1.5)
    with pytest.raises(NotImplementedError, match="size_average=False"):
        F.cross_entropy(logits, np.zeros((2, 4, 4), int), size_average=False)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_and_mse_against_torch(reduction, torch):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((3, 4)) * 5, requires_grad=True)
    t = rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 2, (3, 4))
    fn = lambda x: F.binary_cross_entropy_with_logits(x, t, weight=w, reduction=reduction)  # noqa: E731
    assert mg.gradcheck(fn, [x])
    x.grad = None
    fn_t = lambda x: torch.nn.functional.binary_cross_entropy_with_logits(x, torch.tensor(t), weight=torch.tensor(w), reduction=reduction)  # noqa: E731
    check_against_torch(torch, fn, fn_t, [x], 1e-10, 1e-12)
    x.grad = None
    fn = lambda x: F.mse_loss(x, t, reduction=reduction)  # noqa: E731
    assert mg.gradcheck(fn, [x])
    x.grad = None
    check_against_torch(torch, fn, lambda x: torch.nn.functional.mse_loss(x, torch.tensor(t), reduction=reduction), [x], 1e-10, 1e-12)


def test_dropout_scales_and_routes_gradient():
    x = mg.tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.3)
    kept = y.numpy() != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7)
    assert F.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


@pytest.mark.conv_conv2d_backward
@pytest.mark.parametrize("wanted", ["x", "w", "b", "xb"])
@pytest.mark.parametrize("c_in, c_out", [(3, 2), (2, 3)], ids=["from-im2col(g)", "im2col(x)+col2im"])
def test_conv_backward_with_only_some_gradients_wanted(wanted, c_in, c_out, path, torch):
    """Both backward paths must give the wanted gradients alone, the same as when all are wanted."""
    cfg = dict(x=(2, c_in, 7, 6), w=(c_out, c_in, 3, 2), stride=(1, 1), padding=(1, 0), dilation=(1, 1))
    fn, fn_t = conv_fns(cfg, torch)
    inputs = inputs_for(cfg, "cpu")
    for name, t in zip("xwb", inputs):
        t.requires_grad = name in wanted
    out = fn(*inputs)
    g = np.random.default_rng(5).standard_normal(out.shape)
    out.backward(g)
    _, grads_t = run_torch(torch, fn_t, [t.data for t in inputs], g)
    for name, t, gt in zip("xwb", inputs, grads_t):
        if name in wanted:
            assert_close(t.grad, gt, rtol=1e-10, atol=1e-11, what=f"gradient of {name}")
        else:
            assert t.grad is None, name
