"""Tensor construction, the autograd engine, and its clear errors."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.tensor import Function


def test_construction_dtypes(device):
    assert mg.tensor([1, 2, 3], device=device).dtype == np.float32  # lists -> float32
    assert mg.tensor(2.5, device=device).dtype == np.float32
    assert mg.tensor(np.zeros(3, np.float64), device=device).dtype == np.float64  # arrays keep dtype
    assert mg.tensor(np.zeros(3, np.int64), device=device).dtype == np.int64
    t = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, device=device)
    assert t.shape == (2, 3) and t.ndim == 2 and t.device == device and t.grad is None and t.requires_grad
    host = t.numpy()
    host[0, 0] = 100  # numpy() is a copy
    assert t.numpy()[0, 0] == 0


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.tensor(np.arange(3), requires_grad=True)


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device"):
        mg.tensor([1.0], device="tpu")


def test_data_is_assignable_and_detach_shares_memory():
    t = mg.tensor(np.ones(3), requires_grad=True)
    t.data = np.full(3, 2.0)
    d = t.detach()
    assert not d.requires_grad and d.data is t.data


def test_backward_needs_grad_for_non_scalar():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"single-element.*\(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 3\)"):
        y.backward(np.ones(4))
    y.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_gradient_accumulates_over_uses_and_calls():
    x = mg.tensor(np.array([3.0]), requires_grad=True)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1 = 7
    assert x.grad.tolist() == [7.0]
    (x * x + x).sum().backward()  # accumulates until zeroed
    assert x.grad.tolist() == [14.0]
    x.zero_grad()
    assert x.grad is None


def test_ten_thousand_deep_chain_has_no_recursion_error():
    x = mg.tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0


def test_graph_is_released_unless_retained():
    x = mg.tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [8.0]
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_no_grad_builds_no_graph():
    x = mg.tensor(np.ones(2), requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert mg.is_grad_enabled()


def test_mixed_devices_error_names_both():
    a = mg.tensor(np.ones(2))
    b = mg.tensor(np.ones(2), device="fakegpu")  # the strict CuPy stand-in (tests/fakegpu.py)
    with pytest.raises(RuntimeError, match=r"Add: inputs are on different devices \('cpu' and 'fakegpu'\)"):
        a + b
    with pytest.raises(RuntimeError, match=r"\('fakegpu' and 'cpu'\).*\.to\(device\)"):
        b * a


def test_zeros_and_ones_are_made_on_their_device(device):
    import fakegpu

    with fakegpu.counting() as seen:
        z, o = mg.zeros(2, 3, device=device), mg.ones(4, dtype=np.float64, device=device, requires_grad=True)
    assert (seen.to_device, seen.to_host) == (0, 0)  # made there, not copied over
    assert z.device == o.device == device and z.shape == (2, 3) and o.dtype == np.float64 and o.requires_grad
    assert z.numpy().tolist() == [[0.0] * 3] * 2 and o.numpy().tolist() == [1.0] * 4


def test_interior_gradient_skipped_for_constant_inputs():
    seen = []

    class Spy(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            seen.append(self.needs_input_grad)
            return g, g

    x = mg.tensor(np.ones(2), requires_grad=True)
    Spy.apply(x, mg.tensor(np.ones(2))).sum().backward()
    assert seen == [(True, False)]
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_to_dtype_and_device_roundtrip(device):
    t = mg.tensor(np.arange(4.0, dtype=np.float32), requires_grad=True)
    u = t.to(device).to(np.float64)
    assert u.dtype == np.float64 and u.device == device and u.requires_grad
    np.testing.assert_array_equal(u.numpy(), np.arange(4.0))


def test_graph_does_not_keep_intermediate_arrays_alive():
    """An intermediate result that no op saved is freed once the user drops it (the graph
    keeps a data-less stand-in), and backward still reaches every leaf through it."""
    import gc
    import weakref

    x = mg.tensor(np.array([-1.0, 2.0, 3.0]), requires_grad=True)
    h = x * 3.0 + 1.0  # Add saves no arrays; ReLU saves its own output, not h
    h_array = weakref.ref(h.data)
    y = (h.relu() + h).sum()  # h used twice: one node, two gradient contributions
    del h
    gc.collect()
    assert h_array() is None, "the graph kept an intermediate array that no backward needs"
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 6.0, 6.0])


@pytest.mark.autograd_elementwise
def test_relu_in_place_is_relu_without_a_new_array(torch):
    """relu(h, inplace=True) overwrites h's array, returns h itself as the result, and gives
    the out-of-place gradients (and PyTorch's relu_ ones) through the graph before it."""
    rng = np.random.default_rng(0)
    x0, w0, c = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal((4, 3))

    def run(inplace):
        x, w = mg.tensor(x0, requires_grad=True), mg.tensor(w0, requires_grad=True)
        h = x @ w
        array = h.data
        r = mg.functional.relu(h, inplace=inplace)
        ((r * c).sum() + (r * r).sum()).backward()
        return r, h, array, x.grad, w.grad

    r, h, array, gx, gw = run(True)
    assert r is h and r.data is array, "in place must reuse the input's tensor and array"
    r_ref, _, _, gx_ref, gw_ref = run(False)
    np.testing.assert_array_equal(r.data, r_ref.data)
    np.testing.assert_array_equal(gx, gx_ref)
    np.testing.assert_array_equal(gw, gw_ref)

    xt, wt = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    rt = torch.relu_(xt @ wt)
    ((rt * torch.tensor(c)).sum() + (rt * rt).sum()).backward()
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-12, atol=1e-12)

    x = mg.tensor(x0, requires_grad=True)
    assert mg.gradcheck(lambda x: mg.nn.ReLU(inplace=True)(x * 2.0 - 0.5), [x])


@pytest.mark.autograd_elementwise
def test_relu_in_place_refuses_to_lose_values_backward_needs():
    x = mg.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf that requires grad"):
        x.relu_()
    h = x * 3.0
    y = h * h  # Mul saved h's array for its backward
    with pytest.raises(RuntimeError, match="already an input of a recorded op"):
        mg.functional.relu(h, inplace=True)
    const = mg.tensor(np.array([-1.0, 1.0]))
    z = const * x  # x needs a gradient, so Mul saved const's array
    with pytest.raises(RuntimeError, match="already an input"):
        const.relu_()
    y.sum().backward()
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [-18.0 - 1.0, 36.0 + 1.0])  # d(9x^2)/dx = 18x, plus const
    with mg.no_grad():  # no graph, nothing to protect
        assert x.relu_() is x
    np.testing.assert_array_equal(x.data, [0.0, 2.0])


@pytest.mark.autograd_elementwise
def test_relu_in_place_on_a_scalar_result_or_a_read_only_view():
    """A 0-d result may be a NumPy scalar and a broadcast view is read-only: the result is then
    a new array bound to x, with the same values and gradients."""
    a = mg.tensor(np.array(-2.0), requires_grad=True)
    h = a * 3.0
    assert mg.functional.relu(h, inplace=True) is h and h.item() == 0.0
    b = mg.tensor(np.array(2.0), requires_grad=True)
    h = b * 3.0
    (h.relu_() * 2.0).backward()
    assert h.item() == 6.0 and b.grad == 6.0
    view = mg.tensor(np.broadcast_to(np.array([-1.0, 1.0]), (2, 2)))
    assert not view.data.flags.writeable
    np.testing.assert_array_equal(view.relu_().data, [[0.0, 1.0], [0.0, 1.0]])


def test_minigrad_tensor_is_the_module_and_makes_tensors_when_called():
    """`import minigrad.tensor` gives the module (not a function hiding it); calling it makes a
    tensor, as torch.tensor."""
    import importlib
    import types

    module = importlib.import_module("minigrad.tensor")
    assert mg.tensor is module and isinstance(module, types.ModuleType)
    assert module.Tensor is mg.Tensor and module.Function is mg.Function
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(t, mg.Tensor) and t.requires_grad and t.dtype == np.float32


class _FreshGradient(Function):
    """y = 2x whose backward returns a new array (and remembers its id: a reference would share it)."""

    def forward(self, x):
        return x * 2

    def backward(self, g):
        out = g * 2
        _FreshGradient.last_id = id(out)
        return out


class _KeptGradient(Function):
    """y = 2x whose backward keeps the array it returns (a Function's own state)."""

    def forward(self, x):
        return x * 2

    def backward(self, g):
        self.kept = g * 2
        return self.kept


def test_leaf_takes_a_fresh_gradient_without_copying_it(device):
    """A gradient array nothing else holds becomes the leaf's .grad as it is (PyTorch's
    AccumulateGrad steals it too): a copy of an input-sized gradient costs a pass over memory."""
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, device=device)
    _FreshGradient.apply(x).backward(mg.ones(2, 3, dtype=x.dtype, device=device).data)
    assert id(x.grad) == _FreshGradient.last_id  # the same array (alive, so its id is its own)
    np.testing.assert_array_equal(mg.backend.to_numpy(x.grad), np.full((2, 3), 2.0))


def test_leaf_gradient_never_aliases_the_seed_a_sibling_or_a_kept_array(device):
    """Every case where the gradient array is reachable from elsewhere gets a copy: the grad
    passed to backward, one array handed to two leaves (add), an array a Function kept (with
    retain_graph), a view of another array. Writing into .grad then changes nothing else."""
    xp = mg.backend.module_of(device)
    seed = xp.asarray(np.ones(3))
    x = mg.tensor(np.zeros(3), requires_grad=True, device=device)
    x.backward(seed)  # a leaf's own backward: the seed itself reaches the leaf
    assert not mg.backend.may_share_memory(x.grad, seed)
    a, b = (mg.tensor(np.zeros(3), requires_grad=True, device=device) for _ in range(2))
    (a + b).backward(seed)  # add's backward gives its incoming gradient to both inputs
    assert not mg.backend.may_share_memory(a.grad, b.grad) and not mg.backend.may_share_memory(a.grad, seed)
    a.grad[...] = 7
    np.testing.assert_array_equal(mg.backend.to_numpy(b.grad), np.ones(3))
    k = mg.tensor(np.zeros(3), requires_grad=True, device=device)
    y = _KeptGradient.apply(k)
    y.backward(seed, retain_graph=True)
    assert not mg.backend.may_share_memory(k.grad, y._ctx.kept)
    v = mg.tensor(np.zeros((2, 3)), requires_grad=True, device=device)
    v.reshape(6).backward(xp.asarray(np.ones(6)))  # reshape's backward returns a view
    assert not mg.backend.may_share_memory(v.grad, seed)
    np.testing.assert_array_equal(mg.backend.to_numpy(seed), np.ones(3))
