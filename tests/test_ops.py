"""Every basic op: float64 finite-difference gradcheck over hypothesis-drawn shapes (with
broadcasting), and PyTorch as an independent oracle for values and gradients."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from conftest import assert_close, assert_on, on_device, to_device

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: the second drops leading axes and/or sets some to 1."""
    a = draw(shapes)
    drop = draw(st.integers(0, len(a) - 1))
    b = tuple(1 if draw(st.booleans()) else n for n in a[drop:])
    return (a, b) if draw(st.booleans()) else (b, a)


def make(shape, device, rng, positive=False, requires_grad=True):
    values = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return on_device(values, device, requires_grad=requires_grad)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, False),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, False),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, False),
    "div": (lambda a, b: a / b, lambda a, b: a / b, True),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, True),
}


def compare_with_torch(torch, fn_mg, fn_t, inputs):
    """Same values and same gradients (for a random output weighting) as PyTorch, float64."""
    out = fn_mg(*inputs)
    rng = np.random.default_rng(1)
    g = rng.standard_normal(out.shape)
    out.backward(to_device(g, inputs[0].device))
    t_inputs = [torch.tensor(t.numpy(), requires_grad=True) for t in inputs]
    t_out = fn_t(*t_inputs)
    t_out.backward(torch.tensor(g))
    assert_on(inputs[0].device, out, *(t.grad for t in inputs))  # results stay on the inputs' device
    assert_close(out.data, t_out, what="forward")
    for i, (a, b) in enumerate(zip(inputs, t_inputs)):
        assert_close(a.grad, b.grad, what=f"gradient of input {i}")


@pytest.mark.autograd_elementwise
@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=broadcast_pair())
def test_binary_ops_gradcheck_and_torch(name, pair, device, torch):
    fn, fn_t, positive = BINARY[name]
    rng = np.random.default_rng(0)
    a, b = make(pair[0], device, rng, positive), make(pair[1], device, rng, positive)
    assert mg.gradcheck(fn, [a, b])
    a.grad = b.grad = None
    compare_with_torch(torch, fn, fn_t, [a, b])


@pytest.mark.autograd_elementwise
def test_scalar_operands_keep_dtype_and_gradients(device):
    x = on_device(np.array([1.0, 2.0], np.float32), device)
    y = 2 * x + 1 - x / 4 + 3 / x - x**2 + 2**x
    assert y.dtype == np.float32 and y.device == device
    x64 = on_device(np.array([1.0, 2.0]), device)
    assert mg.gradcheck(lambda x: 2 * x + 1 - x / 4 + 3 / x - x**2 + 2**x, [x64])


@pytest.mark.autograd_elementwise
def test_pow_block_sees_the_original_shapes_so_unbroadcast_matters(monkeypatch, torch):
    """Pow.backward (the block) gets the inputs' own shapes, as every other binary op's block:
    one that forgets unbroadcast fails on broadcast inputs (with and without a zero base, where
    pow's PyTorch-compatible fix-up broadcasts the inputs itself)."""
    seen = []
    block = mg.ops.Pow.backward

    def spying(self, g):
        seen.append((np.shape(self.a), np.shape(self.b)))
        return block(self, g)

    monkeypatch.setattr(mg.ops.Pow, "backward", spying)
    a = mg.tensor(np.random.default_rng(0).uniform(0.5, 2, (3, 1)), requires_grad=True)
    b = mg.tensor(np.random.default_rng(1).uniform(0.5, 2, (4,)), requires_grad=True)
    mg.ops.pow(a, b).sum().backward()
    assert seen == [((3, 1), (4,))]

    def no_unbroadcast(self, g):
        xp = mg.backend.array_module(g)
        return g * self.b * self.a ** (self.b - 1), g * self.out * xp.log(self.a)

    monkeypatch.setattr(mg.ops.Pow, "backward", no_unbroadcast)
    a.grad = b.grad = None
    try:
        mg.ops.pow(a, b).sum().backward()
    except (ValueError, RuntimeError):
        return  # the engine refuses a gradient of the wrong shape
    assert np.shape(a.grad) != (3, 1) or np.shape(b.grad) != (4,)  # or it comes out wrongly shaped


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, False),
    "exp": (lambda x: x.exp(), lambda x: x.exp(), False),
    "log": (lambda x: x.log(), lambda x: x.log(), True),
    "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt(), True),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh(), False),
    "relu": (F.relu, lambda x: x.relu(), False),
    "sigmoid": (F.sigmoid, lambda x: x.sigmoid(), False),
}


#: the unary ops whose backward is part of task autograd.elementwise (the others are given)
UNARY_TASK = {"exp", "log", "relu"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.autograd_elementwise] if n in UNARY_TASK else []) for n in sorted(UNARY)]
)
@given(shape=shapes)
def test_unary_ops_gradcheck_and_torch(name, shape, device, torch):
    fn, fn_t, positive = UNARY[name]
    x = make(shape, device, np.random.default_rng(0), positive)
    assert mg.gradcheck(fn, [x])
    x.grad = None
    compare_with_torch(torch, fn, fn_t, [x])


@st.composite
def matmul_shapes(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    batch_b = tuple(1 if draw(st.booleans()) else d for d in batch)[draw(st.integers(0, len(batch))) :]
    a, b = batch + (n, k), batch_b + (k, m)
    if draw(st.booleans()):
        a = (k,) if draw(st.booleans()) else a  # 1-D operands follow NumPy's rules
    return a, b


@pytest.mark.autograd_matmul
@given(pair=matmul_shapes())
def test_matmul_gradcheck_and_torch(pair, device, torch):
    rng = np.random.default_rng(0)
    a, b = make(pair[0], device, rng), make(pair[1], device, rng)
    assert mg.gradcheck(lambda a, b: a @ b, [a, b])
    a.grad = b.grad = None
    compare_with_torch(torch, lambda a, b: a @ b, lambda a, b: a @ b, [a, b])


@st.composite
def reduction_case(draw):
    shape = draw(shapes)
    dims = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.sets(st.integers(0, len(shape) - 1), min_size=1).map(tuple)))
    return shape, dims, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@given(case=reduction_case())
def test_reductions_gradcheck_and_torch(name, case, device, torch):
    shape, dims, keepdim = case
    x = make(shape, device, np.random.default_rng(0))

    def fn(x):
        return getattr(x, name)(dim=() if dims is None and name in ("amax", "amin") else dims, keepdim=keepdim)

    def fn_t(x):
        if name in ("amax", "amin"):
            return getattr(x, name)(dim=() if dims is None else dims, keepdim=keepdim)
        return getattr(x, name)() if dims is None else getattr(x, name)(dim=dims, keepdim=keepdim)

    assert mg.gradcheck(fn, [x])
    x.grad = None
    if dims is None and keepdim:
        return  # torch has no keepdim for a full reduction without dims
    compare_with_torch(torch, fn, fn_t, [x])


def test_max_shares_gradient_between_ties(torch):
    x = mg.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]), requires_grad=True)
    x.amax(dim=1).sum().backward()
    t = torch.tensor(x.numpy(), requires_grad=True)
    t.amax(dim=1).sum().backward()
    assert_close(x.grad, t.grad)
    x.grad = t.grad = None  # max(dim) sends the gradient to the first maximum only, as torch.max(dim)
    x.max(dim=1).values.sum().backward()
    t.max(dim=1).values.sum().backward()
    assert_close(x.grad, t.grad)


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple), data=st.data())
def test_shape_ops_gradcheck_and_torch(shape, data, device, torch):
    x = make(shape, device, np.random.default_rng(0))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    d0, d1 = data.draw(st.integers(0, len(shape) - 1)), data.draw(st.integers(0, len(shape) - 1))
    lo = data.draw(st.integers(0, shape[-1] - 1))
    cases = [
        (lambda x: x.reshape(-1, shape[0]), lambda x: x.reshape(-1, shape[0])),
        (lambda x: x.permute(*perm), lambda x: x.permute(*perm)),
        (lambda x: x.transpose(d0, d1), lambda x: x.transpose(d0, d1)),
        (lambda x: x[..., lo:], lambda x: x[..., lo:]),
        (lambda x: x[0, ..., ::2], lambda x: x[0, ..., ::2]),
        (lambda x: mg.pad(x, (1, 2, 0, 1)), lambda x: torch.nn.functional.pad(x, (1, 2, 0, 1))),
    ]
    for fn, fn_t in cases:
        x.grad = None
        assert mg.gradcheck(fn, [x])
        x.grad = None
        compare_with_torch(torch, fn, fn_t, [x])


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), data=st.data())
def test_cat_and_stack_gradcheck_and_torch(shape, data, device, torch):
    rng = np.random.default_rng(0)
    dim = data.draw(st.integers(0, len(shape) - 1))
    other = list(shape)
    other[dim] = data.draw(st.integers(1, 3))
    a, b = make(shape, device, rng), make(tuple(other), device, rng)
    assert mg.gradcheck(lambda a, b: mg.cat([a, b, a], dim), [a, b])
    a.grad = b.grad = None
    compare_with_torch(torch, lambda a, b: mg.cat([a, b, a], dim), lambda a, b: torch.cat([a, b, a], dim), [a, b])
    c = make(shape, device, rng)
    assert mg.gradcheck(lambda a, c: mg.stack([a, c], dim), [a, c])
    a.grad = c.grad = None
    compare_with_torch(torch, lambda a, c: mg.stack([a, c], dim), lambda a, c: torch.stack([a, c], dim), [a, c])


def test_advanced_index_with_repeats_accumulates(torch):
    x = mg.tensor(np.arange(5.0), requires_grad=True)
    idx = np.array([0, 2, 2, 4])
    compare_with_torch(torch, lambda x: x[idx] * 2, lambda x: x[torch.tensor(idx)] * 2, [x])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mg.tensor(np.ones((2, 3))) + mg.tensor(np.ones((4, 3))), r"\(2, 3\) and \(4, 3\)"),
        (lambda: mg.tensor(np.ones((2, 3))) @ mg.tensor(np.ones((2, 3))), r"inner dimensions"),
        (lambda: mg.tensor(np.ones((2, 3))).reshape(4, 2), r"\(2, 3\) into \(4, 2\)"),
        (lambda: mg.tensor(np.ones((2, 3))).sum(dim=2), r"dim 2 is out of range"),
        (lambda: mg.cat([mg.tensor(np.ones((2, 3))), mg.tensor(np.ones((2, 4)))], 0), r"tensors\[1\] has shape \(2, 4\)"),
        (lambda: mg.stack([mg.tensor(np.ones(2)), mg.tensor(np.ones(3))]), r"tensors\[1\] has shape \(3,\)"),
        (lambda: mg.tensor(np.ones((2, 3))).permute(0, 0), r"not a permutation"),
        (lambda: mg.pad(mg.tensor(np.ones(2)), (1,)), r"even number"),
    ],
)
def test_bad_shapes_give_clear_errors(call, message):
    with pytest.raises((ValueError, IndexError), match=message):
        call()
