"""Shared fixtures: the device parametrisation and the PyTorch oracle."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fakegpu
import minigrad
from minigrad import backend

# Hypothesis: a handful of examples per property keeps CI well inside its time budget;
# HYPOTHESIS_PROFILE=thorough runs many more locally.
# The fixtures these tests use are stateless (a device name, the torch module), so
# sharing them between generated examples is safe.
_quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
# "ci" (the default) is derandomised: each test draws its examples from a seed of its own
# (Hypothesis derives it from the test), so what a test checks never depends on which other
# modules were collected, and a student's pytest run sees the examples CI sees. (Grading does
# not run pytest: it compares the task's cases, minigrad_course/cases.py.)
settings.register_profile("ci", max_examples=12, deadline=None, suppress_health_check=_quiet, derandomize=True,
                          database=None)
settings.register_profile("thorough", max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Devices: the CPU; "fakegpu", a strict CuPy stand-in (tests/fakegpu.py) that minigrad sees as
# a second device exactly as it sees CuPy, so every device test runs in CI without a GPU and
# proves its device discipline (no implicit host <-> device transfers); and a real GPU, when
# one is usable (marked gpu, skipped otherwise).
backend.register_array_module("fakegpu", fakegpu)
_no_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="CuPy or a usable GPU is not available")
DEVICES = ["cpu", "fakegpu", pytest.param("cuda", marks=[pytest.mark.gpu, _no_gpu])]


@pytest.fixture(params=DEVICES, scope="session")
def device(request):
    return request.param


_no_accelerated = pytest.mark.skipif(not minigrad.backends.accelerated.is_available(),
                                     reason="this tree has no accelerated path (a student copy or a grading tree)")
#: both implementations of the ops that have two: the accelerated path and the textbook task blocks
PATHS = [pytest.param("accelerated", marks=_no_accelerated), "textbook"]


@pytest.fixture(params=PATHS)
def path(request):
    """Run the test on one implementation: "accelerated" (minigrad/accelerated/, where this tree
    has it) or "textbook" (the task blocks, as a student copy and the grader run them)."""
    with minigrad.backends.accelerated.flags(enabled=request.param == "accelerated"):
        yield request.param


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch", reason="PyTorch (the oracle) is not installed: pip install torch==2.13.0")


@pytest.fixture(autouse=True)
def _seed():
    minigrad.manual_seed(0)
    yield


def to_device(array, device):
    return backend.to_device(np.asarray(array), device)


def on_device(values, device, requires_grad=True):
    """A tensor made from host values on ``device`` (mg.tensor keeps a device array where it is),
    checked to be there: a test that asks for a device must run on it."""
    t = minigrad.tensor(to_device(values, device), requires_grad=requires_grad)
    assert t.device == device, f"mg.tensor moved a '{device}' array to '{t.device}'"
    return t


def assert_on(device, *values):
    """Each value (a Tensor or an array; None is skipped) lives on ``device``."""
    for i, v in enumerate(values):
        if v is None:
            continue
        where = v.device if isinstance(v, minigrad.Tensor) else backend.device_of(v)
        assert where == device, f"value {i} ({type(v).__name__}) is on '{where}', expected '{device}'"


def assert_close(actual, expected, rtol=1e-10, atol=1e-12, what=""):
    """Compare a minigrad array (any device) with a NumPy/torch value at rounding level."""
    a = backend.to_numpy(actual) if backend.is_array(actual) else np.asarray(actual)
    e = expected.detach().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)
