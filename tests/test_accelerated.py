"""The accelerated path (minigrad/accelerated/, switched by minigrad.backends.accelerated):
its own mechanics (column chunks, scratch buffers, the stride-1 full-convolution backward, the
separable max-pool), its agreement with the textbook task blocks and with PyTorch, and the
switch itself. Instructor material: a student copy has neither the path nor these tests."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.backends import accelerated
from unet.weights import weight_map as unet_weight_map
from minigrad.functional import conv as conv_module
from minigrad.functional.im2col import Geometry
from test_layers import check_against_torch, conv_config, conv_fns, inputs_for, pool_config

columns = pytest.importorskip("minigrad.accelerated.columns", reason="this tree has no accelerated path")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_both(fn, inputs, seed=1):
    """fn's output and input gradients on the accelerated path and on the textbook path."""
    results = []
    for enabled in (True, False):
        with accelerated.flags(enabled=enabled):
            ts = [mg.tensor(x.data, requires_grad=True) for x in inputs]
            y = fn(*ts)
            y.backward(np.random.default_rng(seed).standard_normal(y.shape))
            results.append([y.numpy()] + [t.grad for t in ts])
    return results


@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "conv_transpose2d"])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_conv_paths_agree_with_each_other_and_torch(transpose, data, torch):
    """The textbook blocks and the accelerated path: the same outputs and gradients (to rounding),
    for strides, paddings, dilations and channel counts that take each accelerated shortcut."""
    cfg = data.draw(conv_config(transpose))
    fn, fn_t = conv_fns(cfg, torch)
    inputs = inputs_for(cfg, "cpu")
    fast, textbook = run_both(fn, inputs)
    for a, b in zip(fast, textbook):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)
    with accelerated.flags(enabled=False):
        check_against_torch(torch, fn, fn_t, inputs_for(cfg, "cpu"), rtol=1e-10, atol=1e-11)


@settings(max_examples=15, deadline=None)
@given(cfg=pool_config(), dilation=st.integers(1, 2))
def test_max_pool_paths_agree_with_each_other_and_torch(cfg, dilation, torch):
    values = np.random.default_rng(0).permutation(np.prod(cfg["shape"])).reshape(cfg["shape"]) * 0.1
    kw = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"], dilation=dilation)
    k = np.broadcast_to(cfg["kernel"], 2)
    if any(dilation * (k - 1) + 1 > np.array(cfg["shape"][2:]) + 2 * np.broadcast_to(cfg["padding"], 2)):
        return  # no window fits
    fn = lambda x: F.max_pool2d(x, **kw)  # noqa: E731
    fast, textbook = run_both(fn, [mg.tensor(values)])
    for a, b in zip(fast, textbook):
        np.testing.assert_array_equal(a, b)
    with accelerated.flags(enabled=False):
        check_against_torch(torch, fn, lambda x: torch.nn.functional.max_pool2d(x, **kw), [mg.tensor(values, requires_grad=True)], 1e-12, 0)


@pytest.mark.parametrize("kernel, stride, dilation", [(2, 2, 1), (3, 3, 1), (2, 3, 1), (2, 2, 2)])
def test_max_pool_shortcuts_route_like_the_textbook(kernel, stride, dilation, torch):
    """The separable path (stride == kernel), assignment (stride > kernel) and dilation (windows
    share taps even with stride >= kernel: kernel 2, dilation 2, stride 2), with ties."""
    x = np.random.default_rng(3).integers(0, 3, (2, 3, 11, 10)).astype(np.float64)
    fn = lambda x: F.max_pool2d(x, kernel, stride, dilation=dilation)  # noqa: E731
    fast, textbook = run_both(fn, [mg.tensor(x)])
    for a, b in zip(fast, textbook):
        np.testing.assert_array_equal(a, b)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, kernel, stride, dilation=dilation)
    yt.backward(torch.tensor(np.random.default_rng(1).standard_normal(yt.shape)))
    np.testing.assert_allclose(textbook[1], xt.grad.numpy(), rtol=1e-12, atol=1e-15)  # overlaps add in another order


def test_the_switch_chooses_the_implementation(monkeypatch):
    """enabled=False runs the task blocks (a wrong im2col shows); enabled=True does not call them;
    flags() restores the setting, also after an error."""
    calls = []
    real = conv_module.im2col
    monkeypatch.setattr(conv_module, "im2col", lambda src, geom: (calls.append(geom), real(src, geom))[1])
    x, w = mg.randn(1, 2, 6, 6, requires_grad=True), mg.randn(3, 2, 3, 3, requires_grad=True)
    assert accelerated.enabled and accelerated.kernels() is not None
    F.conv2d(x, w).sum().backward()
    assert calls == []
    with accelerated.flags(enabled=False):
        assert accelerated.kernels() is None
        F.conv2d(x, w).sum().backward()
    assert len(calls) == 2  # forward, and backward's im2col of pad(x)
    with pytest.raises(KeyError):
        with accelerated.flags(enabled=False):
            raise KeyError
    assert accelerated.enabled


def test_a_block_wrong_only_with_dilation_fails_on_the_textbook_path(monkeypatch, torch):
    """An im2col that forgets the dilation: conv2d with dilation is wrong on the textbook path
    (as in a student copy and in grading), while the accelerated path would have hidden it."""
    real = conv_module.im2col

    def no_dilation(src, geom):
        return real(src, Geometry(geom.kernel, geom.stride, (1, 1), geom.out_hw))

    monkeypatch.setattr(conv_module, "im2col", no_dilation)
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 9))
    w = np.random.default_rng(1).standard_normal((2, 2, 3, 3))
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), dilation=2).numpy()
    np.testing.assert_allclose(F.conv2d(mg.tensor(x), mg.tensor(w), dilation=2).numpy(), expected)  # accelerated
    with accelerated.flags(enabled=False):
        assert not np.allclose(F.conv2d(mg.tensor(x), mg.tensor(w), dilation=2).numpy(), expected)


def test_environment_variable_switches_it_off():
    code = "import minigrad.backends as b; print(b.accelerated.enabled, b.accelerated.is_available())"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, MINIGRAD_ACCELERATED="0"),
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.conv_im2col
@pytest.mark.conv_col2im
@pytest.mark.conv_conv2d_backward
@pytest.mark.conv_conv_transpose2d
@pytest.mark.parametrize("budget", [1, 200, 4000])
def test_conv_chunks_and_reused_scratch_buffers(budget, monkeypatch, torch):
    """Tiny column budgets force many chunks through the same scratch buffers; the results
    must not change, even when a second convolution reuses the buffers in between."""
    monkeypatch.setattr(columns, "COLUMN_BUDGET_BYTES", budget)
    monkeypatch.setattr(columns, "MIN_CHUNK_COLUMNS", 1)
    strided = dict(x=(3, 2, 9, 8), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    for cfg in (
        dict(strided, w=(3, 2, 3, 2)),  # conv2d: dW from im2col(x), dx by col2im
        dict(x=(3, 3, 9, 8), w=(2, 3, 3, 2), stride=(1, 1), padding=(1, 0), dilation=(1, 2)),  # both from im2col(g)
        dict(strided, w=(2, 3, 3, 2), output_padding=(1, 0)),  # conv_transpose2d
    ):
        fn, fn_t = conv_fns(cfg, torch)
        x, w, b = inputs_for(cfg, "cpu")
        other = inputs_for(dict(x=(1, 2, 5, 5), w=(4, 2, 2, 2), stride=1, padding=0, dilation=1), "cpu", seed=3)

        def interleaved(x, w, b):
            y = fn(x, w, b)
            F.conv2d(*other)  # touches the same scratch buffers before y's backward runs
            return y

        check_against_torch(torch, interleaved, fn_t, [x, w, b], rtol=1e-10, atol=1e-11)
        assert mg.gradcheck(interleaved, [x, w, b], mode="directional", n_directions=2)


@pytest.mark.conv_conv2d_backward
@pytest.mark.parametrize("c_in, c_out", [(3, 2), (2, 2), (2, 3)], ids=["full-conv", "full-conv-equal", "col2im"])
@pytest.mark.parametrize(
    "kernel, padding, dilation",
    [((3, 3), (0, 0), (1, 1)), ((3, 2), (2, 1), (1, 1)), ((3, 3), (1, 2), (2, 1)), ((2, 3), (2, 0), (1, 1))],
    ids=["valid", "same-ish", "dilated", "pad-beyond-kernel"],
)
def test_conv_stride_one_input_gradient_paths(c_in, c_out, kernel, padding, dilation, device, torch):
    """With stride 1 and C_in >= C_out the input gradient is a full convolution of g;
    otherwise (and when padding exceeds dilation*(kernel-1)) it is col2im. Both must agree
    with finite differences and with PyTorch."""
    cfg = dict(x=(2, c_in, 7, 6), w=(c_out, c_in) + kernel, stride=(1, 1), padding=padding, dilation=dilation)
    fn, fn_t = conv_fns(cfg, torch)
    assert mg.gradcheck(fn, inputs_for(cfg, device))
    check_against_torch(torch, fn, fn_t, inputs_for(cfg, device, seed=1), rtol=1e-10, atol=1e-11)



@given(n=st.integers(1, 4), c=st.integers(1, 600), oh=st.integers(1, 40), ow=st.integers(1, 600),
       budget=st.sampled_from([1, 10_000, 4 * 2**20]), min_cols=st.sampled_from([1, 64, 2048]),
       cap=st.sampled_from([1, 50_000, 24 * 2**20]))
@example(n=1, c=512, oh=64, ow=64, budget=4 * 2**20, min_cols=2048, cap=24 * 2**20)  # a deep U-Net layer
def test_chunks_tile_the_output_within_the_byte_bounds(n, c, oh, ow, budget, min_cols, cap, monkeypatch):
    """Every (sample, output row) lands in exactly one chunk, and a chunk's column matrix stays
    under MAX_COLUMN_BYTES unless a single output row is already larger."""
    monkeypatch.setattr(columns, "COLUMN_BUDGET_BYTES", budget)
    monkeypatch.setattr(columns, "MIN_CHUNK_COLUMNS", min_cols)
    monkeypatch.setattr(columns, "MAX_COLUMN_BYTES", cap)
    geom = Geometry((3, 3), (1, 1), (1, 1), (oh, ow))
    covered = np.zeros((n, oh), dtype=int)
    row_bytes = c * 9 * ow * 4
    rows_per_sample = {}
    for n0, n1, r0, r1 in columns.chunks(n, c, geom, 4):
        covered[n0:n1, r0:r1] += 1
        chunk_bytes = (n1 - n0) * (r1 - r0) * row_bytes
        assert chunk_bytes <= max(cap, budget, row_bytes), (n0, n1, r0, r1)
        if n1 - n0 == 1:
            rows_per_sample.setdefault(n0, []).append(r1 - r0)
    assert (covered == 1).all()
    for sizes in rows_per_sample.values():  # evened out: no thin chunk at the end
        assert max(sizes) - min(sizes) <= 1, sizes




@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "max_pool2d"])
def test_textbook_path_on_every_device(op, device, torch):
    """The task blocks take their array module from the input: on the strict stand-in GPU (and a
    real one) they run without a host copy and agree with PyTorch, as in a student copy there."""
    from conftest import assert_close, assert_on, on_device

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 2)) if op == "conv2d" else rng.standard_normal((3, 2, 3, 3))
    kw = {"conv2d": dict(stride=(2, 1), padding=1, dilation=(1, 2)),
          "conv_transpose2d": dict(stride=2, padding=1, output_padding=1),
          "max_pool2d": dict(kernel_size=3, stride=2, padding=1)}[op]
    xs = [on_device(x, device)] + ([] if op == "max_pool2d" else [on_device(w, device)])
    with accelerated.flags(enabled=False):
        out = getattr(F, op)(*xs, **kw)
        g = np.random.default_rng(8).standard_normal(out.shape)
        out.backward(on_device(g, device, requires_grad=False).data)
    ts = [torch.tensor(a, requires_grad=True) for a in ([x] if op == "max_pool2d" else [x, w])]
    out_t = getattr(torch.nn.functional, op)(*ts, **kw)
    out_t.backward(torch.tensor(g))
    assert_on(device, out, *(t.grad for t in xs))
    assert_close(out.data, out_t)
    for t, tt in zip(xs, ts):
        assert_close(t.grad, tt.grad)


# ---- unet's accelerated path: the weight map (issue 18) -------------------------------------
@pytest.mark.parametrize("size, n_cells, sigma", [(120, 25, 5.0), (160, 40, 0.7)])
def test_fast_weight_map_equals_the_textbook_one_bit_for_bit(size, n_cells, sigma):
    """sigma 0.7: the reach (28 px) is far smaller than the image, so the cropping is exercised."""
    from unet.data import synthetic_cells
    from unet.accelerated import border_reach, weight_map_fast

    _, instances = synthetic_cells(size, n_cells, seed=2, radius=(3, 7))
    assert border_reach(sigma) < size // 2 or sigma == 5.0
    np.testing.assert_array_equal(weight_map_fast(instances, sigma=sigma, progress=False),
                                  unet_weight_map(instances, sigma=sigma))
    np.testing.assert_array_equal(weight_map_fast(instances, w0=3.0, sigma=sigma, class_weights=None, progress=False),
                                  unet_weight_map(instances, w0=3.0, sigma=sigma, class_weights=None))


def test_fast_weight_map_shows_progress(capsys):
    from unet.accelerated import weight_map_fast

    instances = np.zeros((40, 40), np.int64)
    instances[5:10, 5:10], instances[20:30, 20:30] = 1, 2
    weight_map_fast(instances, progress=True)
    assert "weight map" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sigma=nan"):
        weight_map_fast(instances, sigma=float("nan"))




def test_the_command_line_uses_the_fast_weight_map_only_where_the_tree_has_it(monkeypatch):
    """unet.data.fast_weight_map: the accelerated one here; the task's weight_map where
    unet/accelerated.py is absent (a student copy: the student's own code)."""
    import builtins

    import unet.data
    from unet.accelerated import weight_map_fast

    assert unet.data.fast_weight_map() is weight_map_fast
    real_import = builtins.__import__

    def without_accelerated(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "accelerated" and level == 1 or name == "unet.accelerated":
            raise ImportError("not in a student copy")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", without_accelerated)
    assert unet.data.fast_weight_map() is unet_weight_map


@pytest.mark.parametrize("mode, align_corners", [("bilinear", True), ("bilinear", False), ("nearest", None),
                                                  ("nearest-exact", None)])
@pytest.mark.parametrize("size", [(7, 9), (3, 4), (12, 12)], ids=["up", "down", "x2"])
def test_interpolate_paths_agree_with_each_other_and_torch(mode, align_corners, size, device, torch):
    """interpolate's adjoint: the accelerated two-product form equals the textbook block's
    (on every device: no host copy) and PyTorch's gradient, float64."""
    from conftest import assert_on, on_device

    rng = np.random.default_rng(7)
    x, g = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3) + size)
    grads = []
    for enabled in (True, False):
        with accelerated.flags(enabled=enabled):
            t = on_device(x, device)
            y = F.interpolate(t, size=size, mode=mode, align_corners=align_corners)
            assert type(y._ctx).__module__.startswith("minigrad.accelerated") == enabled
            (y * on_device(g, device, requires_grad=False)).sum().backward()
            assert_on(device, t.grad)
            grads.append(mg.backend.to_numpy(t.grad))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, size=size, mode=mode, align_corners=align_corners)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mode, align_corners", [("bilinear", True), ("bilinear", False), ("nearest", None),
                                                  ("nearest-exact", None)])
@pytest.mark.parametrize("in_hw, out_hw", [((48, 64), (96, 128)), ((64, 48), (128, 72)), ((96, 80), (48, 40)),
                                           ((100, 64), (150, 192)), ((32, 128), (64, 256))])
def test_interpolate_banded_products_agree_with_textbook_and_torch(mode, align_corners, in_hw, out_hw, device,
                                                                     torch):
    """Sizes whose sampling matrices cut into blocks (the accelerated path's banded products on
    the CPU, windows read in place, the first and last blocks clipped): forward and adjoint equal
    the textbook path's and PyTorch's, float64, and float32 to a few ulp."""
    from conftest import assert_on, on_device

    from minigrad.accelerated import interp as fast_interp

    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3) + in_hw)
    g = rng.standard_normal((2, 3) + out_hw)
    kinds = {fast_interp.band_of(fast_interp.sampling_matrix(np, *F.interp._sample_axis(
        np, np.float64, n, o, mode, align_corners, None), n, np.float64)) is not None
        for n, o in zip(in_hw, out_hw)}
    assert mode.startswith("nearest") or True in kinds, "no axis of this case takes the banded product"
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 3e-6)):
        results = []
        for enabled in (True, False):
            with accelerated.flags(enabled=enabled):
                t = on_device(x.astype(dtype), device)
                y = F.interpolate(t, size=out_hw, mode=mode, align_corners=align_corners)
                (y * on_device(g.astype(dtype), device, requires_grad=False)).sum().backward()
                assert_on(device, t.grad)
                assert y.dtype == t.grad.dtype == dtype
                results.append((mg.backend.to_numpy(y.data), mg.backend.to_numpy(t.grad)))
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=tol, atol=tol)
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=tol, atol=tol * 10)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, size=out_hw, mode=mode, align_corners=align_corners)
    (ty * torch.tensor(g)).sum().backward()
    with accelerated.flags(enabled=True):
        t = mg.Tensor(x, requires_grad=True)
        y = F.interpolate(t, size=out_hw, mode=mode, align_corners=align_corners)
        (y * mg.Tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-11)


def test_overlapping_windows_are_read_only():
    """The banded product's windows share memory: a write through one would land in others."""
    a = np.arange(10.0)
    view = mg.backend.overlapping_windows(a, 1, (3, 4), (16, 8))
    assert view[1, 0] == view[0, 2] == 3.0
    with pytest.raises(ValueError):
        view[0, 0] = 1.0
    # a view reaching past the array would read memory that is not its own: refused, naming why
    with pytest.raises(ValueError, match="must lie inside the C-contiguous array of 10 elements"):
        mg.backend.overlapping_windows(a, 3, (3, 4), (16, 8))  # its last element would be a[10]
    with pytest.raises(ValueError, match="whole elements"):
        mg.backend.overlapping_windows(a, 0, (2, 2), (12, 8))
    with pytest.raises(ValueError, match="non-negative"):
        mg.backend.overlapping_windows(a, 0, (2, 2), (-8, 8))


@settings(max_examples=12, deadline=None)
@given(blocks=st.integers(3, 5), mode_corners=st.sampled_from([("bilinear", True), ("bilinear", False),
                                                               ("nearest", None), ("nearest-exact", None)]),
       factors=st.tuples(st.sampled_from([2, 3, 0.5]), st.sampled_from([2, 1.5])), seed=st.integers(0, 99))
def test_interpolate_banded_products_gradcheck_hypothesis(blocks, mode_corners, factors, seed, torch):
    """Hypothesis-drawn banded sizes (16 * blocks px, up x2 / x3 / x1.5 and down x0.5): the
    accelerated forward equals PyTorch's, and its adjoint passes a float64 central-difference
    gradcheck (sizes whose sampling cuts into blocks, so the banded products run)."""
    mode, corners = mode_corners
    rng = np.random.default_rng(seed)
    in_hw = (16 * blocks, 32)
    out_hw = tuple(int(n * f) for n, f in zip(in_hw, factors))
    x = rng.standard_normal((1, 2) + in_hw)
    with accelerated.flags(enabled=True):
        t = mg.tensor(x, requires_grad=True)
        y = F.interpolate(t, size=out_hw, mode=mode, align_corners=corners)
        assert type(y._ctx).__module__ == "minigrad.accelerated.interp" and y._ctx.banded
        ty = torch.nn.functional.interpolate(torch.tensor(x), size=out_hw, mode=mode, align_corners=corners)
        np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-12, atol=1e-12)
        assert mg.gradcheck(lambda a: F.interpolate(a, size=out_hw, mode=mode, align_corners=corners), [t])


@settings(max_examples=10, deadline=None)
@given(planes=st.tuples(st.integers(1, 2), st.integers(1, 3)), chunk_planes=st.integers(1, 3),
       threads=st.integers(1, 3), corners=st.booleans(), seed=st.integers(0, 99))
def test_interpolate_plane_chunks_gradcheck_hypothesis(planes, chunk_planes, threads, corners, seed, torch):
    """Hypothesis draws the number of planes, how many a chunk holds and the threads: the banded
    path in plane chunks equals PyTorch's forward and passes a float64 directional gradcheck."""
    from minigrad.accelerated import interp as fast_interp

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(planes + (48, 48))
    saved = fast_interp.PLANE_CHUNK_ELEMENTS, os.environ.get("MINIGRAD_NUM_THREADS")
    fast_interp.PLANE_CHUNK_ELEMENTS = chunk_planes * 96 * 96
    os.environ["MINIGRAD_NUM_THREADS"] = str(threads)
    try:
        with accelerated.flags(enabled=True):
            t = mg.tensor(x, requires_grad=True)
            y = F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=corners)
            assert y._ctx.banded and len(fast_interp._plane_spans(x.shape[0] * x.shape[1], 96 * 96)) == \
                -(-x.shape[0] * x.shape[1] // chunk_planes)
            ty = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=2, mode="bilinear",
                                                 align_corners=corners)
            np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-12, atol=1e-12)
            assert mg.gradcheck(lambda a: F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=corners),
                                [t], mode="directional", n_directions=4, seed=seed)
    finally:
        fast_interp.PLANE_CHUNK_ELEMENTS = saved[0]
        if saved[1] is None:
            os.environ.pop("MINIGRAD_NUM_THREADS", None)
        else:
            os.environ["MINIGRAD_NUM_THREADS"] = saved[1]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 4, 7), (3, 2)], ids=["4d", "3d", "2d"])
def test_batch_norm_paths_agree_with_each_other_and_torch(training, affine, shape, device, torch):
    """batch_norm's backward from the per-channel sums (accelerated) equals the textbook block's
    and PyTorch's: input, weight and bias gradients, training and eval, float64, every device;
    each path's op is the one asked for."""
    from conftest import assert_on, on_device

    rng = np.random.default_rng(5)
    c = shape[1]
    x = rng.standard_normal(shape) * 3 + 1
    g = rng.standard_normal(shape)
    w, b = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    grads = []
    for enabled in (True, False):
        with accelerated.flags(enabled=enabled):
            t = on_device(x, device)
            tw, tb = (on_device(w, device), on_device(b, device)) if affine else (None, None)
            y = F.batch_norm(t, on_device(rm, device, False).data, on_device(rv, device, False).data, tw, tb,
                             training=training)
            assert type(y._ctx).__module__.startswith("minigrad.accelerated") == enabled
            (y * on_device(g, device, requires_grad=False)).sum().backward()
            got = [t.grad] + ([tw.grad, tb.grad] if affine else [])
            for a in got:
                assert_on(device, a)
            grads.append([mg.backend.to_numpy(a) for a in got])
    tx = torch.tensor(x, requires_grad=True)
    tw_, tb_ = (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) if affine else (None, None)
    ty = torch.nn.functional.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tw_, tb_, training=training)
    (ty * torch.tensor(g)).sum().backward()
    expected = [tx.grad.numpy()] + ([tw_.grad.numpy(), tb_.grad.numpy()] if affine else [])
    for fast, textbook, want in zip(grads[0], grads[1], expected):
        np.testing.assert_allclose(fast, textbook, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fast, want, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# batch_norm on the host: tiles of whole channels, or channels split over tiles, on threads
# --------------------------------------------------------------------------------------
TILINGS = {  # (TILE_ELEMENTS, WHOLE_CHANNEL_ELEMENTS) for a (3, 5, 6, 7) input: 126 values a channel
    "channels split over 4 tiles": (40, 40),
    "2 whole channels a tile": (300, 300),
    "1 whole channel a tile": (1, 1000),
}


@pytest.fixture
def tile_sizes(monkeypatch):
    from minigrad.accelerated import tiles

    def use(tile, whole):
        monkeypatch.setattr(tiles, "TILE_ELEMENTS", tile)
        monkeypatch.setattr(tiles, "WHOLE_CHANNEL_ELEMENTS", whole)

    return use


@pytest.mark.parametrize("needs", ["all", "input only", "parameters only"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("tiling", list(TILINGS))
def test_tiled_batch_norm_against_the_textbook_and_torch(tiling, training, needs, tile_sizes, monkeypatch, torch):
    """The host's tiled batch_norm, with channels split over tiles (statistics combined by Chan's
    formula, two passes each way) or whole channels in a tile (one pass each way), on 3 threads:
    output, running statistics and every gradient asked for equal the textbook block's and
    PyTorch's (float64), and only the gradients asked for are made."""
    tile_sizes(*TILINGS[tiling])
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "3")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 5, 6, 7)) * 4 + 50  # an offset that cancellation would show
    g = rng.standard_normal(x.shape)
    w, b = rng.uniform(0.5, 2, 5), rng.standard_normal(5)
    rm0, rv0 = rng.standard_normal(5), rng.uniform(0.5, 2, 5)
    grad_x, grad_params = needs != "parameters only", needs != "input only"
    results = []
    for enabled in (True, False):
        with accelerated.flags(enabled=enabled):
            t = mg.tensor(x, requires_grad=grad_x)
            tw, tb = mg.tensor(w, requires_grad=grad_params), mg.tensor(b, requires_grad=grad_params)
            rm, rv = rm0.copy(), rv0.copy()
            y = F.batch_norm(t, rm, rv, tw, tb, training=training)
            assert (type(y._ctx).__module__ == "minigrad.accelerated.norm") == enabled
            if enabled:
                whole = tiling != "channels split over 4 tiles"
                assert len(y._ctx.tiles) == {True: 3 if "2 whole" in tiling else 5, False: 20}[whole]
            (y * mg.tensor(g)).sum().backward()
            results.append([y.data, rm, rv, t.grad, tw.grad, tb.grad])
    tx = torch.tensor(x, requires_grad=grad_x)
    tw_, tb_ = torch.tensor(w, requires_grad=grad_params), torch.tensor(b, requires_grad=grad_params)
    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw_, tb_, training=training)
    (ty * torch.tensor(g)).sum().backward()
    want = [ty.detach().numpy(), trm.numpy(), trv.numpy()] + [
        None if a.grad is None else a.grad.numpy() for a in (tx, tw_, tb_)]
    for fast, textbook, expected in zip(*results, want):
        if expected is None:
            assert fast is None and textbook is None
            continue
        np.testing.assert_allclose(fast, textbook, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(fast, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("tiling", list(TILINGS))
def test_tiled_batch_norm_is_bit_identical_on_any_number_of_threads(tiling, tile_sizes, monkeypatch):
    """float32: the output, the running statistics and the gradients are the same bits on 1, 2
    and 5 threads (each tile is computed alike; partial sums are combined in tile order)."""
    tile_sizes(*TILINGS[tiling])
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5, 6, 7)) * 3 + 2).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    runs = []
    for threads in ("1", "2", "5"):
        monkeypatch.setenv("MINIGRAD_NUM_THREADS", threads)
        t = mg.tensor(x, requires_grad=True)
        w, b = mg.ones(5, requires_grad=True), mg.zeros(5, requires_grad=True)
        rm, rv = np.zeros(5, np.float32), np.ones(5, np.float32)
        y = F.batch_norm(t, rm, rv, w, b, training=True)
        y.backward(g)
        runs.append([y.data, rm, rv, t.grad, w.grad, b.grad])
    for other in runs[1:]:
        for a, b_ in zip(runs[0], other):
            np.testing.assert_array_equal(a, b_)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
       tile=st.integers(1, 60), whole=st.integers(1, 120), training=st.booleans(), affine=st.booleans(),
       threads=st.integers(1, 3))
def test_tiled_batch_norm_gradcheck_and_torch_on_drawn_shapes_and_tiles(n, c, h, w, tile, whole, training, affine,
                                                                       threads, torch):
    """Hypothesis draws shapes, tile sizes (whole channels or split ones) and thread counts:
    central differences (float64) and PyTorch agree with the tiled forward and backward."""
    from minigrad.accelerated import tiles

    if training and n * h * w == 1:
        return  # one value per channel has no variance (refused, tested elsewhere)
    rng = np.random.default_rng(n * 1000 + c * 100 + h * 10 + w)
    x = rng.standard_normal((n, c, h, w)) * 2 + 1
    wt, bs = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    saved = tiles.TILE_ELEMENTS, tiles.WHOLE_CHANNEL_ELEMENTS, os.environ.get("MINIGRAD_NUM_THREADS")
    tiles.TILE_ELEMENTS, tiles.WHOLE_CHANNEL_ELEMENTS = tile, whole
    os.environ["MINIGRAD_NUM_THREADS"] = str(threads)
    try:
        with accelerated.flags(enabled=True):
            inputs = [mg.tensor(x, requires_grad=True)] + (
                [mg.tensor(wt, requires_grad=True), mg.tensor(bs, requires_grad=True)] if affine else [])

            def bn(a, *params):
                return F.batch_norm(a, rm.copy(), rv.copy(), *params, training=training)

            y = bn(*inputs)
            assert type(y._ctx).__module__ == "minigrad.accelerated.norm"
            ty = torch.nn.functional.batch_norm(torch.tensor(x), torch.tensor(rm), torch.tensor(rv),
                                                *(torch.tensor(a) for a in ((wt, bs) if affine else ())),
                                                training=training)
            np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-10, atol=1e-10)
            assert mg.gradcheck(bn, inputs)
    finally:
        tiles.TILE_ELEMENTS, tiles.WHOLE_CHANNEL_ELEMENTS = saved[:2]
        if saved[2] is None:
            os.environ.pop("MINIGRAD_NUM_THREADS", None)
        else:
            os.environ["MINIGRAD_NUM_THREADS"] = saved[2]


def test_tile_runner_raises_a_workers_error_after_every_thread_is_done():
    """An exception in one tile (on a helper thread) is raised by ``run`` once all threads have
    finished: nothing is left running that could still write into the arrays. (Tiles run in
    contiguous spans, one a thread: the failing span stops at its error, the others finish.)"""
    import threading
    import time

    from minigrad.accelerated import tiles

    done, lock = [], threading.Lock()

    def work(i, tile):
        if i == 4:
            raise ZeroDivisionError("tile 4")
        time.sleep(0.01)
        with lock:
            done.append(i)

    with pytest.raises(ZeroDivisionError, match="tile 4"):
        tiles.run(list(range(6)), work, threads=3)
    assert sorted(done) == [0, 1, 2, 3]


def test_host_threads_refuses_a_bad_setting(monkeypatch):
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="MINIGRAD_NUM_THREADS must be a whole number >= 1, got 'two'"):
        mg.backend.host_threads(np.zeros(1))
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="got '0'"):
        F.batch_norm(mg.tensor(np.ones((2, 3))), None, None, training=True)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_tiled_batch_norm_works_in_a_forked_child():
    """The helper threads do not survive a fork: a child (a DataLoader worker, a grader) that
    runs batch_norm after its parent did gets threads of its own instead of waiting forever."""
    script = (
        "import os, numpy as np, minigrad as mg, minigrad.functional as F\n"
        "os.environ['MINIGRAD_NUM_THREADS'] = '2'\n"
        "x = mg.tensor(np.random.default_rng(0).standard_normal((4, 64, 64, 64)).astype(np.float32))\n"
        "want = F.batch_norm(x, None, None, training=True).data\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = np.array_equal(F.batch_norm(x, None, None, training=True).data, want)\n"
        "    os._exit(0 if ok else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("chunk", [1, 3 * 64 * 64], ids=["a plane a chunk", "three planes a chunk"])
def test_banded_interpolate_in_plane_chunks_on_threads_matches_torch(chunk, monkeypatch, torch):
    """The banded bilinear path resamples a few planes at a time on the host's threads (the
    intermediate image kept in the cache): with chunks of one plane or of three (the last one
    shorter) on 3 threads, forward and adjoint equal PyTorch's (float64)."""
    from minigrad.accelerated import interp as fast_interp

    monkeypatch.setattr(fast_interp, "PLANE_CHUNK_ELEMENTS", chunk)
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "3")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 5, 48, 64))
    g = rng.standard_normal((2, 5, 96, 128))
    for corners in (True, False):
        with accelerated.flags(enabled=True):
            t = mg.tensor(x, requires_grad=True)
            y = F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=corners)
            assert type(y._ctx).__module__ == "minigrad.accelerated.interp" and y._ctx.banded
            y.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.interpolate(tx, scale_factor=2, mode="bilinear", align_corners=corners)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_tiled_batch_norm_float16_takes_the_textbook_sums():
    """float16 rows summed by BLAS in float16 overflow (a row of 4000 values near 20 sums past
    65504): the host path leaves float16 to the textbook forward, whose means accumulate wider."""
    x = (np.random.default_rng(0).standard_normal((2, 1, 4000)) + 20).astype(np.float16)
    with accelerated.flags(enabled=True):
        fast = F.batch_norm(mg.tensor(x, requires_grad=True), None, None, training=True)
        fast.backward(np.ones(x.shape, np.float16))
    with accelerated.flags(enabled=False):
        textbook = F.batch_norm(mg.tensor(x), None, None, training=True)
    assert np.isfinite(fast.data).all()
    np.testing.assert_array_equal(fast.data, textbook.data)


def test_tile_threads_are_made_once_and_shared_by_callers_on_two_python_threads(monkeypatch):
    """Layers with different numbers of tiles reuse one pool (it is sized by the thread setting,
    not by the call), and two Python threads normalising at once never find it shut down."""
    import threading

    from minigrad.accelerated import tiles

    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "4")
    monkeypatch.setattr(tiles, "_pools", {})
    monkeypatch.setattr(tiles, "TILE_ELEMENTS", 4 * 16 * 16)
    few, many = (np.random.default_rng(1).random(shape).astype(np.float32) for shape in ((4, 2, 16, 16), (4, 12, 16, 16)))
    errors = []

    def loop(x):
        try:
            for _ in range(40):
                F.batch_norm(mg.tensor(x), None, None, training=True)
        except Exception as err:  # noqa: BLE001  (any error is the failure)
            errors.append(repr(err))

    workers = [threading.Thread(target=loop, args=(x,)) for x in (few, many)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == [] and list(tiles._pools) == [3]


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous x", "transposed x"])
def test_tiled_batch_norm_refuses_in_place_changes_to_what_backward_uses(contiguous):
    """The host path keeps copies (alpha from weight, a contiguous copy of a transposed x), but an
    optimiser step on weight, or an in-place op on x, between forward and backward is still
    refused by the version counters, as PyTorch (and the textbook path, for weight) refuse it."""
    rng = np.random.default_rng(2)
    with accelerated.flags(enabled=True):
        w = mg.tensor(np.ones(3), requires_grad=True)
        x = mg.tensor(rng.random((2, 3, 4, 4)), requires_grad=True)
        y = F.batch_norm(x, None, None, w, None, training=True)
        w.grad = np.ones(3)
        mg.optim.SGD([w], lr=0.5).step()
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            y.backward(np.ones(y.shape))
        base = mg.tensor(rng.random((2, 4, 3, 4)), requires_grad=True) * 1.0
        x2 = base.permute(0, 2, 1, 3) if not contiguous else base.reshape(2, 3, 4, 4)
        y2 = F.batch_norm(x2, None, None, training=True)
        base.detach().relu_()
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            y2.backward(np.ones(y2.shape))
