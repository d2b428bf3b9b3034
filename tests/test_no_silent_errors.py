"""Issue 18, the engine side: nothing fails silently.

gradcheck that a nan cannot fool, autograd that refuses a gradient of the wrong shape, in-place
changes to saved values detected through any alias, clear refusals of bad arguments, PyTorch's
dtype promotion, nan in max-pool windows, and the GPU-path items tested on the stand-in."""
import math

import numpy as np
import pytest

import minigrad as mg
from conftest import assert_close, on_device


# ---- gradcheck cannot be fooled by non-finite values ---------------------------------------------
class NanBackward(mg.Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return (g * np.nan,)


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_gradcheck_fails_on_a_nan_backward(mode):
    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(3,\)\).*not finite|non-finite.*nan"):
        mg.gradcheck(lambda x: NanBackward.apply(x), [x], mode=mode)
    assert mg.gradcheck(lambda x: NanBackward.apply(x), [x], mode=mode, raise_exception=False) is False


def test_gradcheck_fails_on_sqrt_at_zero_and_names_the_element():
    x = mg.tensor(np.array([4.0, 0.0, 1.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"3 of 9 Jacobian entries are not finite; first at input index \(1,\)"):
        mg.gradcheck(lambda x: x.sqrt(), [x])
    # opted in: the singular column is left out, with a warning that counts it; the rest is checked
    with pytest.warns(UserWarning, match="3 of 9 entries for input 0 are not finite"):
        assert mg.gradcheck(lambda x: x.sqrt(), [x], allow_nonfinite=True)


def test_gradcheck_fails_on_nan_inputs_unless_allowed():
    x = mg.tensor(np.array([1.0, np.nan]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 0 .*non-finite value nan at index \(1,\)"):
        mg.gradcheck(lambda x: x * x, [x])
    # opted in: the finite entries are still compared, so a wrong backward still fails
    from test_nn_optim import WrongSquare
    with pytest.warns(UserWarning, match="not finite and were not compared"):
        assert mg.gradcheck(lambda x: x * x, [x], allow_nonfinite=True)
        assert mg.gradcheck(lambda x: WrongSquare.apply(x), [x], allow_nonfinite=True, raise_exception=False) is False


@pytest.mark.parametrize("name,value", [("eps", 0), ("eps", -1e-6), ("eps", math.nan), ("eps", math.inf),
                                        ("atol", -1.0), ("atol", math.nan), ("rtol", math.inf)])
def test_gradcheck_refuses_bad_eps_and_tolerances(name, value):
    x = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(ValueError, match=rf"gradcheck: {name} must be a finite number .*got {value!r}"):
        mg.gradcheck(lambda x: x * x, [x], **{name: value})


# ---- autograd refuses a gradient that does not fit its input -------------------------------------
class ShortGrad(mg.Function):
    """A broken backward: one number as the gradient of a (3,) input."""

    def forward(self, x):
        return x * 2

    def backward(self, g):
        return (g[:1] * 2,)


class Float32Grad(mg.Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return ((g * 2).astype(np.float32),)


class TooManyGrads(mg.Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return g * 2, g


def test_autograd_refuses_a_gradient_of_the_wrong_shape_naming_the_op():
    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward of ShortGrad returned an invalid gradient for input 0: "
                                           r"got shape \(1,\), expected shape \(3,\)"):
        ShortGrad.apply(x).sum().backward()
    assert x.grad is None


def test_autograd_refuses_a_gradient_of_the_wrong_dtype_or_count():
    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Float32Grad .*got dtype float32, expected shape \(3,\), dtype float64"):
        Float32Grad.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"backward of TooManyGrads returned 2 gradient\(s\), expected 1"):
        TooManyGrads.apply(x).sum().backward()


def test_autograd_refuses_a_gradient_on_another_device():
    import fakegpu

    class HostGrad(mg.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return (np.full(g.shape, 2.0),)

    x = on_device([1.0, 2.0], "fakegpu")
    with pytest.raises(RuntimeError, match=r"HostGrad .*got device 'cpu'.*on 'fakegpu'"):
        HostGrad.apply(x).sum().backward()
    assert fakegpu  # the stand-in is the device here


# ---- in-place changes to saved values are detected through any alias ---------------------------
def _h():
    a = mg.tensor(np.array([-1.0, 2.0, -3.0, 4.0]), requires_grad=True)
    return a, a * 1.5


def test_inplace_change_through_detach_is_detected_at_backward():
    a, h = _h()
    y = (h * h).sum()
    h.detach().relu_()  # silently gave a wrong gradient before
    with pytest.raises(RuntimeError, match=r"backward of Mul: the array it saved as 'a' \(shape \(4,\)\) was "
                                           r"modified by an in-place operation \(ReLU in place\).*version 1, "
                                           r"expected version 0"):
        y.backward()


@pytest.mark.parametrize("alias", [
    lambda h: h.detach().reshape(2, 2),
    lambda h: h.reshape(2, 2).detach(),
    lambda h: h.detach()[1:],
    lambda h: h.detach()[None],
    lambda h: h.detach().detach(),
])
def test_inplace_change_through_views_is_detected(alias):
    a, h = _h()
    y = (h * h).sum()
    alias(h).relu_()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_inplace_change_through_an_alias_is_detected_on_every_device(device):
    a = on_device(np.array([-1.0, 2.0, -3.0, 4.0]), device)
    h = a * 1.5
    y = (h * h).sum()
    h.detach().reshape(2, 2)[0].relu_()
    with pytest.raises(RuntimeError, match=r"backward of Mul: .*\(ReLU in place\).*version 1, expected version 0"):
        y.backward()
    b = on_device(np.array([1.0, 2.0]), device)
    z = (b * 2 + 1).sum()  # nothing saved that an alias could change
    z.backward()
    assert_close(b.grad, np.array([2.0, 2.0]))


def test_inplace_change_of_a_saved_output_is_detected(torch):
    # exp saves its output; relu_ of the output changes what exp's backward reads (PyTorch raises too)
    a = mg.tensor(np.array([0.5, -0.2]), requires_grad=True)
    e = a.exp()
    e.relu_()
    with pytest.raises(RuntimeError, match=r"backward of Exp.*'out'.*version 1, expected version 0"):
        e.sum().backward()
    ta = torch.tensor([0.5, -0.2], dtype=torch.float64, requires_grad=True)
    te = ta.exp()
    te.relu_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        te.sum().backward()


def test_inplace_change_of_values_nobody_saved_is_fine(torch):
    # as in PyTorch: Add saves no values, so changing its input afterwards is harmless
    a = mg.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    h = a * 2
    y = (h + 1).sum()
    h.detach().relu_()
    y.backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])


def test_optimizer_step_counts_as_an_inplace_change():
    w = mg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    mg.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match=r"in-place operation \(SGD.step\)"):
        loss.backward()


# ---- bad arguments are refused by name ------------------------------------------------------------
@pytest.mark.parametrize("data", [None, "1.0", [1.0, None], object()])
def test_tensor_refuses_data_that_is_not_numbers(data):
    with pytest.raises(TypeError, match=r"tensor: data must be a number, a \(nested\) list of numbers or an array, got"):
        mg.tensor(data)


def _params():
    return [mg.tensor(np.ones(3, np.float32), requires_grad=True)]


BAD_HYPER = [
    ("SGD", {"lr": math.nan}, r"lr must be a finite number >= 0, got nan"),
    ("SGD", {"lr": -0.1}, r"lr must be a finite number >= 0, got -0.1"),
    ("SGD", {"lr": math.inf}, r"lr must be a finite number >= 0, got inf"),
    ("SGD", {"lr": 0.1, "momentum": math.nan}, r"momentum must be a finite number >= 0, got nan"),
    ("SGD", {"lr": 0.1, "momentum": -0.9}, r"momentum must be a finite number >= 0"),
    ("SGD", {"lr": 0.1, "weight_decay": -1.0}, r"weight_decay must be a finite number >= 0"),
    ("SGD", {"lr": 0.1, "weight_decay": math.nan}, r"weight_decay must be a finite number >= 0"),
    ("SGD", {"lr": 1 + 2j}, r"lr must be a real number"),
    ("SGD", {"lr": 0.1, "nesterov": "yes"}, r"nesterov must be True or False"),
    ("Adam", {"lr": math.nan}, r"lr must be a finite number >= 0, got nan"),
    ("Adam", {"lr": -1e-3}, r"lr must be a finite number >= 0"),
    ("Adam", {"eps": math.nan}, r"eps must be a finite number >= 0, got nan"),
    ("Adam", {"eps": -1e-8}, r"eps must be a finite number >= 0"),
    ("Adam", {"betas": (math.nan, 0.999)}, r"betas\[0\] must be a finite number \[0, 1\), got nan"),
    ("Adam", {"betas": (0.9, 1.0)}, r"betas\[1\] must be a finite number \[0, 1\), got 1.0"),
    ("Adam", {"betas": (0.9, -0.1)}, r"betas\[1\] must be a finite number \[0, 1\)"),
    ("Adam", {"betas": 0.9}, r"betas must be a pair"),
    ("Adam", {"weight_decay": math.inf}, r"weight_decay must be a finite number >= 0, got inf"),
]


@pytest.mark.parametrize("opt,kwargs,message", BAD_HYPER)
def test_optimisers_refuse_bad_hyper_parameters(opt, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=rf"{opt}: {message}"):
        getattr(mg.optim, opt)(_params(), **kwargs)


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_optimisers_refuse_a_bad_value_set_later_or_loaded(opt):
    o = getattr(mg.optim, opt)(_params(), lr=0.1)
    with pytest.raises(ValueError, match=rf"{opt}: lr must be a finite number >= 0, got nan"):
        o.lr = math.nan  # e.g. a learning-rate schedule gone wrong
    assert o.lr == 0.1
    state = o.state_dict()
    for key, value, message in [("lr", math.nan, "lr must be a finite number"), ("lr", 1j, "lr must be a real number"),
                                ("step_count", -1, "'step_count' must be a non-negative integer"),
                                ("step_count", 1.5, "'step_count' must be a non-negative integer")]:
        with pytest.raises((TypeError, ValueError), match=rf"{opt}.load_state_dict: .*{message}"):
            o.load_state_dict({**state, key: value})
    with pytest.raises(TypeError, match=rf"{opt}.load_state_dict: state must be a mapping .*got list"):
        o.load_state_dict([("lr", 0.1)])
    assert o.lr == 0.1 and o.step_count == 0


def test_optimiser_state_arrays_must_be_finite_reals():
    p = _params()
    o = mg.optim.Adam(p)
    p[0].grad = np.ones(3, np.float32)
    o.step()
    state = o.state_dict()
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: 'exp_avg.0' holds non-finite values"):
        o.load_state_dict({**state, "exp_avg.0": np.array([1.0, np.nan, 0.0])})
    with pytest.raises(TypeError, match=r"Adam.load_state_dict: 'exp_avg_sq.0' holds complex128 values"):
        o.load_state_dict({**state, "exp_avg_sq.0": np.ones(3) * 1j})


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_optimisers_refuse_a_parameter_listed_twice(opt):
    p, q = _params()[0], _params()[0]
    with pytest.raises(ValueError, match=rf"{opt}: params\[2\] is the same tensor as params\[0\]"):
        getattr(mg.optim, opt)([p, q, p], lr=0.1)
    # parameter groups (dicts) are not supported: refused by name, never read as a parameter
    with pytest.raises(TypeError, match=r"params\[0\] is a dict \(a parameter group\)"):
        getattr(mg.optim, opt)([{"params": [p]}, {"params": [p]}], lr=0.1)


@pytest.mark.parametrize("grad,message", [
    (np.ones(1, np.float32), r"params\[0\].grad has shape \(1,\), expected its parameter's shape \(3,\)"),
    (np.ones(3, np.float64), r"params\[0\].grad has dtype float64"),
    ([1.0, 1.0, 1.0], r"params\[0\].grad is a list"),
])
@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_step_refuses_a_gradient_that_does_not_fit(opt, grad, message):
    p = _params()
    o = getattr(mg.optim, opt)(p, lr=0.1)
    p[0].grad = grad
    with pytest.raises((ValueError, TypeError), match=rf"{opt}.step: {message}"):
        o.step()
    np.testing.assert_array_equal(p[0].numpy(), np.ones(3))
    assert o.step_count == 0


def test_module_load_state_dict_refuses_non_mappings_complex_and_nan():
    m = mg.nn.Linear(2, 1)
    state = {k: v.copy() for k, v in m.state_dict().items()}
    with pytest.raises(TypeError, match=r"load_state_dict: state must be a mapping .*got list"):
        m.load_state_dict(list(state.items()))
    with pytest.raises(TypeError, match=r"load_state_dict: 'weight' holds complex64 values, expected real numbers"):
        m.load_state_dict({**state, "weight": state["weight"] * (1 + 1j)})
    with pytest.raises(ValueError, match=r"load_state_dict: 'bias' holds non-finite values"):
        m.load_state_dict({**state, "bias": np.array([np.nan], np.float32)})
    with pytest.raises(TypeError, match=r"load_state_dict: 'bias' is a NoneType, expected an array"):
        m.load_state_dict({**state, "bias": None})
    np.testing.assert_array_equal(m.weight.numpy(), state["weight"])


# ---- dtype promotion as PyTorch's -----------------------------------------------------------------
PROMOTION_DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}


def _promotion_operand(kind, shape, torch, lib):
    if kind in ("py_int", "py_float", "py_bool"):
        return {"py_int": 3, "py_float": 1.5, "py_bool": True}[kind]
    values = np.asarray(np.arange(1, 1 + int(np.prod(shape))).reshape(shape) % 2 + 1).astype(kind)
    return mg.tensor(values) if lib == "mg" else torch.from_numpy(values)


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("left,right", [
    ("int64", "float32"), ("float32", "int64"), ("int32", "float64"), ("uint8", "int8"), ("bool", "bool"),
    ("bool", "float32"), ("int64", "float16"), ("float32", "float64"), ("int32", "int64"),
    ("float32", "py_float"), ("float16", "py_float"), ("int64", "py_float"), ("int32", "py_int"),
    ("bool", "py_int"), ("float32", "py_int"), ("uint8", "py_bool"), ("py_float", "int64"), ("py_int", "float32"),
])
def test_binary_op_dtypes_follow_pytorch(op, left, right, torch):
    for shapes in [((3,), (3,)), ((3,), ()), ((), (3,))]:  # 0-d tensors count less, as numbers do
        _check_promotion(op, left, right, shapes, torch)


def _check_promotion(op, left, right, shapes, torch):
    args = {}
    for lib in ("mg", "torch"):
        args[lib] = [_promotion_operand(k, s, torch, lib) for k, s in zip((left, right), shapes)]
    try:
        expected = BINARY[op](*args["torch"])
    except (RuntimeError, NotImplementedError):
        if op == "sub":  # subtracting bools: refused by both
            with pytest.raises(TypeError, match="sub: subtraction with a bool tensor is not supported"):
                BINARY[op](*args["mg"])
        return  # (PyTorch has no bool ** bool; minigrad leaves it to NumPy)
    got = BINARY[op](*args["mg"])
    assert str(got.dtype) == str(expected.dtype).replace("torch.", ""), (op, left, right, shapes)
    np.testing.assert_allclose(got.numpy().astype(np.float64), expected.double().numpy(), rtol=1e-3)


def test_mixed_dtype_gradients_keep_each_inputs_dtype(torch):
    a = mg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    b = mg.tensor(np.array([3.0, 4.0], np.float64), requires_grad=True)
    i = mg.tensor(np.array([2, 3], np.int64))
    y = (a * b + a * i + 2.5 * a / i).sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    ta = torch.tensor([1.0, 2.0], dtype=torch.float32, requires_grad=True)
    tb = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    ti = torch.tensor([2, 3])
    (ta * tb + ta * ti + 2.5 * ta / ti).sum().backward()
    assert_close(a.grad, ta.grad, rtol=1e-6)
    assert_close(b.grad, tb.grad, rtol=1e-6)


@pytest.mark.parametrize("fn", ["maximum", "minimum"])
def test_maximum_minimum_promote_as_pytorch(fn, torch):
    i = np.array([1, 5], np.int64)
    f = np.array([2.5, 0.5], np.float32)
    got = getattr(mg, fn)(mg.tensor(i), mg.tensor(f))
    expected = getattr(torch, fn)(torch.from_numpy(i), torch.from_numpy(f))
    assert got.dtype == np.float32 and expected.dtype == torch.float32
    assert_close(got.data, expected)


# ---- nan in a max-pool window propagates as in PyTorch ---------------------------------------------
@pytest.mark.parametrize("cfg", [
    dict(kernel_size=2),  # windows tile the input (the separable path)
    dict(kernel_size=2, stride=1),  # overlapping windows
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=2, dilation=2),
    dict(kernel_size=3, stride=2, ceil_mode=True),
])
def test_max_pool_propagates_nan_as_pytorch(cfg, device, torch):
    import minigrad.functional as F

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 7, 8))
    x[rng.random(x.shape) < 0.15] = np.nan  # some windows with one nan, some with several
    x[0, 0, :2, :2] = np.nan
    g = rng.standard_normal(torch.nn.functional.max_pool2d(torch.from_numpy(x), **cfg).shape)
    xt = on_device(x, device)
    y, indices = F.max_pool2d(xt, **cfg, return_indices=True)
    y.backward(on_device(g, device, requires_grad=False).data)
    tx = torch.tensor(x, requires_grad=True)
    ty, tindices = torch.nn.functional.max_pool2d(tx, **cfg, return_indices=True)
    ty.backward(torch.from_numpy(g))
    assert np.isnan(ty.detach().numpy()).any()
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())  # nan where PyTorch has nan
    np.testing.assert_array_equal(indices.numpy(), tindices.numpy())
    assert_close(xt.grad, tx.grad, what="gradient to the nan's position")


# ---- the GPU path, on the stand-in ----------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_unchecked_out_of_range_labels_wrap_in_forward_and_backward_alike(weighted, reduction, torch):
    import minigrad.functional as F
    from minigrad import backend

    assert not backend.sync_checks_enabled("fakegpu")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3, 2))
    target = np.array([[0, 3], [-1, 2], [5, -100], [1, -2]])  # 3, 5 -> 0, 2; -1, -2 -> 2, 1; -100 ignored
    weight = np.array([0.5, 2.0, 1.5]) if weighted else None
    x = on_device(logits, "fakegpu")
    kwargs = dict(weight=None if weight is None else on_device(weight, "fakegpu", False), reduction=reduction)
    loss = F.cross_entropy(x, on_device(target, "fakegpu", False).data, **kwargs)
    g = rng.standard_normal(loss.shape)
    loss.backward(on_device(g, "fakegpu", False).data)
    # the same loss with the labels wrapped explicitly, in PyTorch
    wrapped = np.where(target == -100, -100, target % 3)
    tx = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.from_numpy(wrapped),
                                           weight=None if weight is None else torch.from_numpy(weight),
                                           reduction=reduction)
    tl.backward(torch.from_numpy(np.asarray(g)))
    assert_close(loss.data, tl, rtol=1e-9, what="loss")
    assert_close(x.grad, tx.grad, rtol=1e-9, what="gradient of the loss reported")
    # on the CPU the same labels are an error, not a wrap
    with pytest.raises(ValueError, match=r"target holds class 5, expected classes in \[0, 2\]"):
        F.cross_entropy(mg.tensor(logits), target, reduction=reduction)
