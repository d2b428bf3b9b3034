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
