"""Task-tagged tests of the course tasks that live outside the layers: the central
difference in gradcheck, the cross-entropy backward with a per-pixel weight map, the
paper's weight map (eq. 2), and the SGD and Adam steps. Each test carries the marker of the
one task it grades and needs only that task and its prerequisites (see course.toml)."""
import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.gradcheck import central_difference
from conftest import assert_close

# the U-Net paper's per-pixel weight map: `pixel_weight=` (PyTorch's `weight=` is per class)
_PIXEL = "pixel_weight" if "pixel_weight" in inspect.signature(F.cross_entropy).parameters else "weight"


# ---- autograd.toposort -----------------------------------------------------------------------
# Ops written here, with their own backward passes, so these tests need no other task's code.
class Scale(mg.Function):
    def forward(self, x, factor):
        self.factor = factor
        return x * factor

    def backward(self, g):
        return g * self.factor, None


class Times(mg.Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a


def _diamond(x):
    """x -> a = 2x, b = 3x -> c = a*b -> d = 5c: dd/dx = 5 * (2*3x + 2x*3) = 60x."""
    a, b = Scale.apply(x, factor=2.0), Scale.apply(x, factor=3.0)
    return Scale.apply(Times.apply(a, b), factor=5.0), (a, b)


@pytest.mark.autograd_toposort
def test_topological_order_puts_every_tensor_before_its_inputs():
    x = mg.tensor(np.array([1.5]), requires_grad=True)
    d, (a, b) = _diamond(x)
    order = d._topological_order()
    ids = [id(t) for t in order]
    assert len(ids) == len(set(ids)), "a tensor appears twice"
    assert order[0] is d and order[-1] is x
    position = {i: k for k, i in enumerate(ids)}
    for node in order:  # every node comes before the nodes it was made from
        for parent in (node._ctx.parents if node._ctx else ()):
            if isinstance(parent, mg.Tensor) and parent.requires_grad:
                assert position[id(parent)] > position[id(node)]
    assert len(order) == 5  # d, c, a, b, x (a and b through their stand-ins)


@pytest.mark.autograd_toposort
def test_backward_through_a_diamond_sums_both_paths():
    x = mg.tensor(np.array([1.5, -2.0]), requires_grad=True)
    d, _ = _diamond(x)
    d.backward(np.ones(2))
    np.testing.assert_allclose(x.grad, 60 * np.array([1.5, -2.0]), rtol=1e-15)


@pytest.mark.autograd_toposort
def test_ten_thousand_op_chain_needs_no_recursion():
    x = mg.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = Scale.apply(y, factor=1.0)
    y.backward(np.ones(1))
    assert x.grad.tolist() == [1.0]


@pytest.mark.autograd_toposort
def test_gradient_accumulates_over_uses_and_backward_calls():
    x = mg.tensor(np.array([3.0]), requires_grad=True)
    Times.apply(x, x).backward(np.ones(1))  # d(x*x)/dx = 2x = 6
    assert x.grad.tolist() == [6.0]
    Times.apply(x, Scale.apply(x, factor=2.0)).backward(np.ones(1), retain_graph=False)  # d(2x^2)/dx = 12
    assert x.grad.tolist() == [18.0]


@pytest.mark.autograd_toposort
def test_only_tensors_that_require_grad_are_visited():
    x = mg.tensor(np.array([2.0]), requires_grad=True)
    c = mg.tensor(np.array([4.0]))  # a constant
    y = Times.apply(x, c)
    order = y._topological_order()
    assert all(t.requires_grad for t in order) and len(order) == 2
    y.backward(np.ones(1))
    assert x.grad.tolist() == [4.0] and c.grad is None


# ---- conv.im2col and conv.col2im on their own ------------------------------------------------
@st.composite
def geometry(draw):
    from minigrad.functional.im2col import Geometry, conv_output_size

    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hp = draw(st.integers(dilation[0] * (kernel[0] - 1) + 1, 9))
    wp = draw(st.integers(dilation[1] * (kernel[1] - 1) + 1, 9))
    out = tuple(conv_output_size(size, k, s, 0, d) for size, k, s, d in zip((hp, wp), kernel, stride, dilation))
    return (n, c, hp, wp), Geometry(kernel, stride, dilation, out)


def _im2col_by_loops(src, geom):
    n, c = src.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = geom.kernel, geom.stride, geom.dilation, geom.out_hw
    cols = np.zeros((c, kh, kw, n, oh, ow))
    for ci, i, j, ni, r, q in np.ndindex(c, kh, kw, n, oh, ow):
        cols[ci, i, j, ni, r, q] = src[ni, ci, r * sh + i * dh, q * sw + j * dw]
    return cols.reshape(c * kh * kw, n * oh * ow)


@pytest.mark.conv_im2col
@given(case=geometry(), seed=st.integers(0, 2**16))
def test_im2col_matches_a_loop_over_every_window(case, seed):
    from minigrad.functional.im2col import im2col

    shape, geom = case
    src = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_array_equal(mg.backend.to_numpy(im2col(src, geom)), _im2col_by_loops(src, geom))


@pytest.mark.conv_im2col
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=(2, 1))])
def test_conv2d_forward_matches_torch(kw, torch):
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    with mg.no_grad():
        y = F.conv2d(mg.tensor(x), mg.tensor(w), mg.tensor(b), **kw)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw)
    assert_close(y.data, expected)


@pytest.mark.conv_col2im
@given(case=geometry(), seed=st.integers(0, 2**16))
def test_col2im_is_the_adjoint_of_im2col(case, seed):
    """<im2col(x), c> = <x, col2im(c)> for every x and c: col2im is im2col's transpose."""
    from minigrad.functional.im2col import col2im

    shape, geom = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = rng.standard_normal(_im2col_by_loops(x, geom).shape)
    back = mg.backend.to_numpy(col2im(cols, np.zeros(shape), geom))
    np.testing.assert_allclose(np.sum(_im2col_by_loops(x, geom) * cols), np.sum(x * back), rtol=1e-12)
    # and each column entry went back to the pixel it came from: col2im of a one-hot column
    k = rng.integers(cols.size)
    one = np.zeros(cols.size)
    one[k] = 1.0
    hit = mg.backend.to_numpy(col2im(one.reshape(cols.shape), np.zeros(shape), geom))
    np.testing.assert_array_equal(hit.reshape(-1) @ x.reshape(-1), _im2col_by_loops(x, geom).reshape(-1)[k])


# ---- gradcheck.central_difference ------------------------------------------------------------
@pytest.mark.gradcheck_central_difference
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_central_difference_is_the_known_jacobian(shape, seed):
    """f(x) = sin(x) * x_0 has the Jacobian diag(cos(x) * x_0) plus sin(x) in column 0;
    float64 central differences must match it to ~1e-9 and leave x exactly as it was."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape)
    x = mg.tensor(x0.copy(), requires_grad=True)
    flat = x0.reshape(-1)
    expected = np.diag(np.cos(flat) * flat[0])
    expected[:, 0] += np.sin(flat)
    # fn reads x's values at call time (through .data), so perturbing x.data perturbs fn's input
    fn = lambda x: mg.tensor(np.sin(x.data) * x.data.reshape(-1)[0])  # noqa: E731
    numeric = mg.backend.to_numpy(central_difference(fn, [x], x, 1e-6))
    assert numeric.shape == (x.size, x.size)
    np.testing.assert_allclose(numeric, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(x.numpy(), x0)


@pytest.mark.gradcheck_central_difference
def test_central_difference_of_a_reduction_has_one_row():
    x0 = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
    x = mg.tensor(x0.copy(), requires_grad=True)
    numeric = mg.backend.to_numpy(central_difference(lambda x: mg.tensor((x.data**2).sum()), [x], x, 1e-6))
    assert numeric.size == 6 and numeric.reshape(-1).shape == (6,)
    np.testing.assert_allclose(numeric.reshape(-1), 2 * x0.reshape(-1), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(x.numpy(), x0)


@pytest.mark.gradcheck_central_difference
@pytest.mark.parametrize("mode", ["full"])
def test_gradcheck_full_mode_catches_a_planted_bug_and_passes_a_correct_op(mode):
    class HalfSquare(mg.Function):  # d(x^2)/dx written as x instead of 2x
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return (g * self.x,)

    x = mg.tensor(np.array([[1.0, 2.0], [3.0, -1.5]]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"numeric=6(\.0+\d*)?, analytic=3,"):
        mg.gradcheck(lambda x: HalfSquare.apply(x), [x], mode=mode)

    class Square(HalfSquare):
        def backward(self, g):
            return (2 * g * self.x,)

    assert mg.gradcheck(lambda x: Square.apply(x), [x], mode=mode)


# ---- loss.cross_entropy_backward -------------------------------------------------------------
def _ce_case(seed, n=2, c=3, h=4, w=5, ignore=True):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c, h, w)) * 2
    target = rng.integers(0, c, (n, h, w))
    if ignore:
        target[0, 0, :2] = 7  # ignore_index
    weight = rng.uniform(0.1, 3.0, (n, h, w))
    return logits, target, weight


@pytest.mark.loss_cross_entropy_backward
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(seed=st.integers(0, 2**16))
def test_cross_entropy_backward_with_a_pixel_weight_map_matches_finite_differences(reduction, seed):
    logits, target, weight = _ce_case(seed)
    x = mg.tensor(logits, requires_grad=True)
    fn = lambda x: F.cross_entropy(x, target, ignore_index=7, reduction=reduction, **{_PIXEL: weight})  # noqa: E731
    assert mg.gradcheck(fn, [x])


@pytest.mark.loss_cross_entropy_backward
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_backward_matches_torch(reduction, torch):
    logits, target, weight = _ce_case(3)
    x = mg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target, ignore_index=7, reduction=reduction, **{_PIXEL: weight})
    g = np.random.default_rng(1).standard_normal(loss.shape) if reduction == "none" else None
    loss.backward(g)
    xt = torch.tensor(logits, requires_grad=True)
    per = torch.nn.functional.cross_entropy(xt, torch.tensor(target), ignore_index=7, reduction="none")
    wt = torch.tensor(weight) * torch.tensor(target != 7)
    lt = {"none": per * wt, "sum": (per * wt).sum(), "mean": (per * wt).sum() / wt.sum()}[reduction]
    lt.backward(torch.tensor(g) if g is not None else None)
    assert_close(loss.data, lt, what="loss")
    assert_close(x.grad, xt.grad, what="dlogits")


# ---- unet.weight_map -------------------------------------------------------------------------
def _brute_force_weight_map(instances, w0, sigma, wc):
    """eq. 2 by brute force: distances from every pixel to every pixel of every object."""
    from unet.weights import separate_touching

    sep = separate_touching(instances)
    target = (sep > 0).astype(int)
    ys, xs = np.indices(sep.shape)
    dists = []
    for label in np.unique(sep):
        if label == 0:
            continue
        oy, ox = np.nonzero(sep == label)
        d = np.sqrt((ys[..., None] - oy) ** 2 + (xs[..., None] - ox) ** 2).min(axis=-1)
        dists.append(d)
    dists += [np.full(sep.shape, np.inf)] * 2  # fewer than two objects: infinitely far
    stack = np.sort(np.stack(dists), axis=0)
    d1, d2 = stack[0], stack[1]
    with np.errstate(invalid="ignore"):
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    border = np.nan_to_num(border, nan=0.0)
    return np.asarray(wc)[target] + np.where(target == 0, border, 0.0)


@pytest.mark.unet_weight_map
@given(seed=st.integers(0, 2**16), n_objects=st.integers(0, 4), w0=st.sampled_from([0.0, 1.0, 10.0]),
       sigma=st.sampled_from([1.5, 5.0]))
def test_weight_map_is_eq2_by_brute_force(seed, n_objects, w0, sigma):
    from unet.weights import weight_map

    rng = np.random.default_rng(seed)
    instances = np.zeros((14, 17), dtype=np.int32)
    for label in range(1, n_objects + 1):
        y, x = rng.integers(0, 11), rng.integers(0, 14)
        instances[y : y + rng.integers(2, 5), x : x + rng.integers(2, 5)] = label
    wc = (0.5, 2.0)
    got = weight_map(instances, w0=w0, sigma=sigma, class_weights=wc)
    np.testing.assert_allclose(got, _brute_force_weight_map(instances, w0, sigma, wc), rtol=1e-5, atol=1e-6)


@pytest.mark.unet_weight_map
def test_weight_map_peaks_on_the_line_between_two_close_objects():
    from unet.weights import weight_map

    instances = np.zeros((12, 20), dtype=np.int64)
    instances[3:9, 2:8], instances[3:9, 10:16] = 1, 2  # a 2-pixel gap at columns 8-9
    w = weight_map(instances, w0=10.0, sigma=5.0, class_weights=None)
    # in the gap d1 = 1 and d2 = 2 (or the reverse): 1 + 10 exp(-9/50)
    np.testing.assert_allclose(w[5, 8], 1 + 10 * np.exp(-9 / 50), rtol=1e-5)
    assert w[5, 8] > w[0, 0] > 1.0 and w[5, 5] == 1.0


# ---- optim.sgd and optim.adam ----------------------------------------------------------------
def _params_with_grads(seed, steps):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(p.shape) for p in p0] for _ in range(steps)]
    return p0, grads


def _run(make_mg, make_torch, torch, seed, steps=4):
    p0, grads = _params_with_grads(seed, steps)
    params = [mg.tensor(p.copy(), requires_grad=True) for p in p0]
    params_t = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    opt, opt_t = make_mg(params), make_torch(params_t)
    for gs in grads:
        for p, pt, g in zip(params, params_t, gs):
            p.grad, pt.grad = g.copy(), torch.tensor(g.copy())
        opt.step()
        opt_t.step()
    for p, pt in zip(params, params_t):
        assert_close(p.data, pt.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.optim_sgd
@given(lr=st.sampled_from([0.01, 0.5]), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       weight_decay=st.sampled_from([0.0, 0.1]), seed=st.integers(0, 100))
def test_sgd_steps_match_torch(lr, momentum, nesterov, weight_decay, seed, torch):
    nesterov = nesterov and momentum > 0
    kw = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    _run(lambda p: mg.optim.SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw), torch, seed)


@pytest.mark.optim_sgd
def test_sgd_with_momentum_by_hand():
    p = mg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = mg.optim.SGD([p], lr=0.1, momentum=0.5)
    for g in ([1.0, 1.0], [2.0, 0.0]):
        p.grad = np.array(g)
        opt.step()
    # b1 = g1 = (1, 1); b2 = 0.5*b1 + g2 = (2.5, 0.5); p = p0 - 0.1*(b1 + b2)
    np.testing.assert_allclose(p.numpy(), [1.0 - 0.35, -2.0 - 0.15], rtol=1e-15)


@pytest.mark.optim_adam
@given(lr=st.sampled_from([1e-3, 0.1]), betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]),
       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 0.1]), seed=st.integers(0, 100))
def test_adam_steps_match_torch(lr, betas, eps, weight_decay, seed, torch):
    kw = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    _run(lambda p: mg.optim.Adam(p, **kw), lambda p: torch.optim.Adam(p, **kw), torch, seed)


@pytest.mark.optim_adam
def test_adam_first_step_moves_each_weight_by_lr():
    """At t = 1, m_hat = g and v_hat = g^2, so every weight moves by lr * g / (|g| + eps) ~ lr."""
    p = mg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    p.grad = np.array([10.0, -0.5, 2.0])
    mg.optim.Adam([p], lr=0.1, eps=0.0).step()
    np.testing.assert_allclose(p.numpy(), [0.9, -1.9, 2.9], rtol=1e-14)


# ---- a hidden test: runs in grading (and here), stripped from the student copy ---------------
@pytest.mark.hidden
@pytest.mark.conv_im2col
def test_im2col_on_a_wide_dilated_strided_window():
    """Hidden from students: a kernel offset past the first window's rows, checked by a loop."""
    from minigrad.functional.im2col import Geometry, im2col

    rng = np.random.default_rng(11)
    src = rng.standard_normal((2, 3, 13, 11))
    geom = Geometry((2, 3), (3, 2), (4, 3), (3, 2))  # kernel, stride, dilation, output rows/cols
    cols = mg.backend.to_numpy(im2col(src, geom))
    expected = np.empty((3, 2, 3, 2, 3, 2))
    for c in range(3):
        for i in range(2):
            for j in range(3):
                for n in range(2):
                    for r in range(3):
                        for q in range(2):
                            expected[c, i, j, n, r, q] = src[n, c, r * 3 + i * 4, q * 2 + j * 3]
    np.testing.assert_array_equal(cols, expected.reshape(18, 12))
