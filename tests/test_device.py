"""Device discipline. The strict CuPy stand-in "fakegpu" (tests/fakegpu.py) is itself tested
first: each refusal it makes is what keeps the device tests honest. Then the backend's
devices, and minigrad on the stand-in: inputs stay on their device, a host input to device
parameters is refused, a whole U-Net training step makes no transfer inside forward,
backward and the update, and overlap-tile prediction copies once per batch each way.
Where a real GPU is usable the same steps run on it too (marked gpu)."""
import math
import re
import types

import numpy as np
import pytest

import fakegpu
import minigrad as mg
import minigrad.functional as F
from conftest import DEVICES, assert_close, assert_on
from minigrad import backend

DEV = "fakegpu"
DEVICE_ONLY = [d for d in DEVICES if d != "cpu"]  # the stand-in, and a real GPU where usable


def dev(values):
    return backend.to_device(np.asarray(values), DEV)


# ---- the stand-in is strict --------------------------------------------------------------------
@pytest.mark.parametrize("convert", [
    np.asarray, np.array, np.exp, lambda a: np.concatenate([a, a]), lambda a: np.testing.assert_allclose(a, 0),
    lambda a: a + np.ones(3), lambda a: np.ones(3) + a, lambda a: np.ones(3) * a, lambda a: np.maximum(a, 0),
], ids=["asarray", "array", "np.exp", "np.concatenate", "assert_allclose", "a+host", "host+a", "host*a", "np.maximum"])
def test_standin_refuses_implicit_host_conversion(convert):
    a = dev(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="fakegpu|does not support ufuncs|unsupported operand"):
        convert(a)


def test_standin_behaves_like_cupy_where_minigrad_could_slip():
    a = dev(np.arange(6.0).reshape(2, 3)).astype(np.float32)
    with pytest.raises(TypeError, match=r"NumPy float64 scalar.*CuPy 14 \(NEP 50\) computes this in float64"):
        a * np.float64(0.5)
    with pytest.raises(TypeError, match="NumPy float64 scalar"):
        fakegpu.sqrt(a) / np.sqrt(np.float64(2.0))
    assert (a * 0.5).dtype == np.float32 and (a * np.float32(0.5)).dtype == np.float32  # these are fine
    assert not hasattr(a.flags, "writeable")  # as CuPy's flags
    total = a.sum()
    assert isinstance(total, fakegpu.ndarray) and total.ndim == 0  # never a NumPy scalar
    assert isinstance(a[0, 0], fakegpu.ndarray)
    with pytest.raises(ValueError, match="non-contiguous out="):
        fakegpu.matmul(a[:, :2].T, a[:, :2], out=fakegpu.empty((4, 4), np.float32)[:2, :2])
    labels = fakegpu.take_along_axis(a, dev([[3], [-1]]), axis=1)  # CuPy wraps; NumPy would raise
    assert backend.to_numpy(labels).ravel().tolist() == [0.0, 5.0]


def test_standin_unary_ops_on_0d_arrays_stay_device_arrays():
    """NumPy's unary minus of a 0-d array is a NumPy scalar; CuPy's is a 0-d array, and so
    must the stand-in's be (else the next op on it fails as no CuPy op would)."""
    a = fakegpu.asarray(np.array(2.0))
    for value in (-a, +a, abs(-a)):
        assert isinstance(value, fakegpu.ndarray) and value.shape == ()
        assert isinstance(value * a, fakegpu.ndarray)
    assert float(fakegpu.asnumpy((-a) * a)) == -4.0


def test_standin_counts_every_transfer_and_can_forbid_them():
    with fakegpu.counting() as seen:
        a = dev(np.ones(3))  # host -> device
        b = a * 2 + fakegpu.zeros(3)  # made on the device: no transfer
        backend.to_numpy(b)  # device -> host
        b.sum().item()
        float(b[0])
        if b[0] > 0:  # bool() of a device value
            pass
        b[b > 1]  # a boolean mask: CuPy reads its count back
        b[...] = np.zeros(3)  # a host array assigned in: host -> device
        fakegpu.asarray(1.0)  # even a Python number goes over
    assert (seen.to_device, seen.to_host) == (3, 5), seen
    with fakegpu.no_transfers():
        (a * 3).sum()  # fine: stays on the device
        with pytest.raises(fakegpu.TransferError, match=r"device -> host transfer inside no_transfers\(\): item"):
            a.sum().item()
        with pytest.raises(fakegpu.TransferError, match="host -> device"):
            dev(np.ones(2))


# ---- the backend's devices ----------------------------------------------------------------------
def test_register_array_module_names_what_is_wrong():
    with pytest.raises(ValueError, match="identifier other than 'cpu', got 'cpu'"):
        backend.register_array_module("cpu", fakegpu)
    with pytest.raises(TypeError, match=r"lacks ndarray, asarray, asnumpy, random"):
        backend.register_array_module("broken", types.SimpleNamespace(__name__="broken"))
    with pytest.raises(ValueError, match="'fakegpu' is already the module 'fakegpu'"):
        backend.register_array_module("fakegpu", types.SimpleNamespace(
            __name__="other", ndarray=object, asarray=None, asnumpy=None, random=None))
    backend.register_array_module("fakegpu", fakegpu)  # the same module again: a no-op
    assert "broken" not in backend.devices() and DEV in backend.devices()


def test_arrays_know_their_device():
    a = dev([1.0, 2.0])
    assert backend.device_of(a) == DEV and backend.array_module(a) is fakegpu and backend.is_array(a)
    assert backend.device_of(np.ones(2)) == "cpu" and backend.array_module(np.ones(2)) is np
    assert backend.device_of(2.0) == "cpu" and not backend.is_array([1.0])
    assert backend.to_device(a, DEV) is a and backend.to_device(a, "cpu").__class__ is np.ndarray


def test_mg_tensor_keeps_the_arrays_device_and_moves_only_on_request():
    a = dev(np.arange(3.0))
    with fakegpu.counting() as seen:
        t = mg.tensor(a)
        assert t.device == DEV and t.data is a  # no device given: stays, no copy
        assert mg.tensor(a, device=DEV).data is a
        assert mg.tensor(a, dtype=np.float32).device == DEV
    assert (seen.to_device, seen.to_host) == (0, 0)
    with fakegpu.counting() as seen:
        assert mg.tensor(a, device="cpu").device == "cpu"  # a device that differs moves the data
        d = mg.tensor([1.0, 2.0], device=DEV)
        assert d.device == DEV and d.dtype == np.float32
    assert (seen.to_device, seen.to_host) == (1, 1)
    assert mg.tensor(np.ones(2)).device == "cpu" and mg.tensor([1.0]).device == "cpu"
    assert "device='fakegpu'" in repr(t)


def test_host_input_to_device_parameters_is_refused():
    conv = mg.nn.Conv2d(1, 2, 3).to(DEV)
    host = np.ones((1, 1, 5, 5), np.float32)
    with pytest.raises(RuntimeError, match=r"different devices \('cpu' and 'fakegpu'\)"):
        conv(mg.tensor(host))
    y = conv(mg.tensor(host, device=DEV))
    assert y.device == DEV and y.shape == (1, 2, 3, 3)


def test_unusable_devices_are_clear_errors(monkeypatch):
    monkeypatch.setattr(backend, "_gpu_ok", False)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(RuntimeError, match=r"no usable GPU was found"):
            mg.tensor([1.0], device=name)
    with pytest.raises(ValueError, match=r"device: expected one of \('cpu', 'cuda', 'fakegpu'\).*got 'tpu'"):
        backend.check_device("tpu")


def fake_cupy(count=2, current=0, kernel=None, fail=None, matmul=np.matmul):
    """Just enough of CuPy's surface for the backend's device checks (no GPU here)."""
    def device_count():
        if fail == "driver":
            raise RuntimeError("cudaErrorNoDevice")
        return count

    def elementwise_kernel(*args):
        if fail == "nvrtc":
            raise RuntimeError("nvrtc: error: failed to load libnvrtc.so")
        return kernel or (lambda x: 2 * x + 1)

    def product(a, b):
        if fail == "cublas":
            raise ImportError("libcublas.so.12: cannot open shared object file: No such file or directory\n(more)")
        return matmul(a, b)

    runtime = types.SimpleNamespace(getDeviceCount=device_count, getDevice=lambda: current)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime), ElementwiseKernel=elementwise_kernel,
                                 arange=np.arange, asnumpy=np.asarray, asarray=np.asarray, matmul=product)


@pytest.mark.parametrize("cupy,reason", [
    (lambda: fake_cupy(fail="nvrtc"), r"^CuPy could not compile and run a kernel \(NVRTC.*libnvrtc.so$"),
    (lambda: fake_cupy(kernel=lambda x: x), r"^a kernel compiled for this GPU computed a wrong result$"),
    (lambda: fake_cupy(fail="driver"), r"^CuPy found no CUDA driver or device \(RuntimeError: cudaErrorNoDevice\)$"),
    (lambda: fake_cupy(count=0), r"^CuPy found no CUDA device$"),
    (lambda: fake_cupy(fail="cublas"), r"^cuBLAS could not multiply two matrices: ImportError: libcublas.so.12: "
                                       r"cannot open shared object file: No such file or directory$"),
    (lambda: fake_cupy(matmul=lambda a, b: a @ b.T), r"^cuBLAS computed a wrong matrix product$"),
    (lambda: None, r"^CuPy is not installed|^CuPy failed to import"),
], ids=["nvrtc", "wrong-kernel", "driver", "no-device", "no-cublas", "wrong-cublas", "no-cupy"])
def test_gpu_available_runs_a_kernel_and_cublas_and_keeps_the_reason(cupy, reason, monkeypatch):
    monkeypatch.setattr(backend, "_gpu_reason", backend._gpu_reason)  # restored afterwards
    monkeypatch.setattr(backend, "_cupy", fake_cupy())
    monkeypatch.setattr(backend, "_gpu_ok", None)
    assert backend.gpu_available() and backend.gpu_unavailable_reason() is None
    monkeypatch.setattr(backend, "_cupy", cupy())
    monkeypatch.setattr(backend, "_gpu_ok", None)
    assert not backend.gpu_available()
    assert re.search(reason, backend.gpu_unavailable_reason()), backend.gpu_unavailable_reason()
    with pytest.raises(RuntimeError, match="no usable GPU was found: " + reason.lstrip("^").split("|")[0][:20]):
        backend.check_device("cuda")


def test_cuda_n_is_the_current_device_or_refused(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", fake_cupy(count=2, current=0))
    monkeypatch.setattr(backend, "_gpu_ok", True)
    assert backend.check_device("cuda:0") == "cuda" and backend.check_device("cuda") == "cuda"
    with pytest.raises(RuntimeError, match=r"'cuda:1'.*current CUDA device \(cuda:0\).*CUDA_VISIBLE_DEVICES=1"):
        backend.check_device("cuda:1")
    with pytest.raises(ValueError, match=r"'cuda:2': this machine has 2 CUDA device\(s\), numbered 0 to 1"):
        backend.check_device("cuda:2")
    with pytest.raises(ValueError, match=r"'cuda' or 'cuda:N'.*got 'cuda:one'"):
        backend.check_device("cuda:one")
    monkeypatch.setattr(backend, "_cupy", fake_cupy(count=2, current=1))  # after cupy.cuda.Device(1).use()
    assert backend.check_device("cuda:1") == "cuda"


# ---- minigrad on the stand-in ----------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICE_ONLY)
def test_integer_array_indexing_accumulates_repeated_indices_on_a_device(device, torch):
    """GetItem's backward adds with ``xp.add.at`` (advanced-index accumulation): an index that
    repeats must add its gradients, not keep the last write."""
    values = np.arange(12.0).reshape(3, 4)
    rows = np.array([0, 2, 0, 0, 1])
    cols = np.array([1, 3, 1, 0, 1])
    g = np.linspace(-1, 1, 5)
    for index in ((rows, cols), rows):
        x = mg.tensor(backend.to_device(values, device), requires_grad=True)
        device_index = tuple(backend.to_device(i, device) for i in index) if isinstance(index, tuple) \
            else backend.to_device(index, device)
        y = x[device_index]
        gy = g if y.ndim == 1 else np.outer(g, np.ones(4))
        y.backward(backend.to_device(gy, device))
        tx = torch.tensor(values, requires_grad=True)
        tindex = tuple(torch.from_numpy(i) for i in index) if isinstance(index, tuple) else torch.from_numpy(index)
        tx[tindex].backward(torch.from_numpy(gy))
        assert_on(device, y, x.grad)
        assert_close(x.grad, tx.grad, what="repeated indices add up")


@pytest.mark.parametrize("device", DEVICE_ONLY)
def test_dropout_on_a_device(device):
    """Dropout draws its mask on the device: about 1 - p kept, kept values scaled by 1/(1-p),
    the backward uses the same mask, the same seed gives the same mask, and seeding every step
    (as the training loop does, to resume exactly) reseeds the device generator in place
    instead of building a new one (on CuPy: a cuRAND generator, its memory and its
    initialisation kernel, at every step)."""
    p = 0.3
    x = mg.tensor(backend.to_device(np.ones((64, 64), np.float32), device), requires_grad=True)
    created = fakegpu._RandomState.created
    masks = []
    for step in range(4):
        mg.manual_seed(1000 + step % 2)  # steps 0 and 2 (and 1 and 3) share a seed
        y = F.dropout(x, p)
        x.grad = None
        g = backend.to_device(np.full((64, 64), 2.0, np.float32), device)
        y.backward(g)
        assert_on(device, y, x.grad)
        out = backend.to_numpy(y.data)
        kept = out != 0
        assert abs(kept.mean() - (1 - p)) < 0.05
        np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
        np.testing.assert_allclose(backend.to_numpy(x.grad), 2.0 * out, rtol=1e-6)  # same mask backward
        masks.append(kept)
    assert (masks[0] == masks[2]).all() and (masks[1] == masks[3]).all()
    assert (masks[0] != masks[1]).any()
    if device == DEV:
        assert fakegpu._RandomState.created - created <= 1, "the device generator was rebuilt at a reseed"
def test_relu_in_place_on_a_broadcast_device_view_leaves_its_base_alone():
    """CuPy arrays have no writeable flag: a broadcast view (zero strides) is judged from its
    strides and gets a new array, instead of several elements writing one address of the base."""
    base = dev([-1.0, 1.0])
    view = mg.tensor(fakegpu.broadcast_to(base, (3, 2)))
    assert backend.is_writeable(base) and not backend.is_writeable(view.data)
    assert view.relu_() is view
    assert backend.to_numpy(view.data).tolist() == [[0.0, 1.0]] * 3
    assert backend.to_numpy(base).tolist() == [-1.0, 1.0]
    h = mg.tensor(dev([-2.0, 3.0]))
    array = h.data
    assert h.relu_().data is array  # an ordinary device array is overwritten in place


@pytest.mark.parametrize("make", [lambda p: mg.optim.SGD(p, lr=np.float64(0.1), momentum=np.float64(0.9)),
                                  lambda p: mg.optim.Adam(p, lr=np.float64(0.1), betas=np.array([0.9, 0.999]))],
                         ids=["sgd", "adam"])
def test_optimisers_keep_float32_updates_with_numpy_scalar_settings(make):
    """NumPy float64 hyper-parameters (a schedule's np.cos, a checkpoint) become Python floats,
    so a float32 update is float32 under NEP 50 and before it; the stand-in refuses otherwise."""
    from unet.train import TrainConfig, learning_rate

    params = {d: mg.tensor(np.linspace(-1, 1, 4, dtype=np.float32), device=d, requires_grad=True) for d in ("cpu", DEV)}
    opts = {d: make([p]) for d, p in params.items()}
    lr = learning_rate(TrainConfig(), 3, 10)
    assert type(lr) is float
    for d, p in params.items():
        opts[d].lr = np.float64(lr)
        assert type(opts[d].lr) is float and all(type(v) is float for v in getattr(opts[d], "betas", ()))
        grads = [backend.to_device(np.full(4, 0.5 * k, np.float32), d) for k in range(1, 4)]
        with fakegpu.no_transfers():
            for g in grads:
                p.grad = g
                opts[d].step()
        assert p.dtype == np.float32 and p.device == d
    assert_close(params[DEV].data, params["cpu"].numpy(), rtol=1e-6, atol=1e-7)


def test_label_range_check_on_a_device_is_opt_in():
    logits = mg.tensor(np.zeros((1, 3, 2, 2), np.float32), device=DEV)
    bad = dev(np.full((1, 2, 2), 3))
    with fakegpu.no_transfers():  # off by default: no check, so no host sync (CuPy wraps label 3 to 0)
        loss = F.cross_entropy(logits, bad)
    assert loss.device == DEV
    backend.set_sync_checks(True)
    try:
        with pytest.raises(ValueError, match=r"class 3, expected classes in \[0, 2\]"):
            F.cross_entropy(logits, bad)
        F.cross_entropy(logits, dev(np.full((1, 2, 2), -100)))  # ignore_index is not out of range
    finally:
        backend.set_sync_checks(False)
    with pytest.raises(ValueError, match="class 3"):  # the CPU always checks: it costs no sync there
        F.cross_entropy(logits.cpu(), np.full((1, 2, 2), 3))
    with pytest.raises(TypeError, match="enabled must be True or False, got 1"):
        backend.set_sync_checks(1)


def test_device_convolution_chunks_are_whole_samples(monkeypatch):
    """On the CPU the columns come in cache-sized chunks of rows; on a device in whole samples
    (bounded by a share of free memory), so a convolution is a few kernel launches, not hundreds."""
    if not mg.backends.accelerated.is_available():  # (an import would find another tree's, see is_available)
        pytest.skip("this tree has no accelerated path (a student copy or a grading tree)")
    from minigrad.accelerated import columns

    pieces = []
    chunks = columns.chunks

    def recording(n, channels, geom, itemsize, budget=None):
        result = chunks(n, channels, geom, itemsize, budget)
        pieces.extend((geom.out_hw[0], r0, r1) for _, _, r0, r1 in result)
        return result

    monkeypatch.setattr(columns, "chunks", recording)
    x = np.random.default_rng(0).standard_normal((2, 64, 60, 60)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((8, 64, 3, 3)).astype(np.float32)
    results = {}
    for d in ("cpu", DEV):
        pieces.clear()
        xt, wt = mg.tensor(x, device=d, requires_grad=True), mg.tensor(w, device=d, requires_grad=True)
        y = F.conv2d(xt, wt)
        y.sum().backward()
        results[d] = (y.data, xt.grad, wt.grad)
        whole = [(r0, r1) == (0, oh) for oh, r0, r1 in pieces]
        assert pieces and (all(whole) if d == DEV else not all(whole)), pieces  # 64*9*58*4 B a row: 7.7 MB a sample
    for got, want in zip(results[DEV], results["cpu"]):
        assert_on(DEV, got)
        assert_close(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("free", [1, 3000, 20_000], ids=["one-row", "few-rows", "rows"])
def test_device_convolution_split_into_rows_when_memory_is_short(free, monkeypatch, torch):
    """With little free memory a device splits a sample into rows; its rows of y are then not
    contiguous, and the product goes through an explicit contiguous temporary (the stand-in
    refuses a strided matmul out=, as CuPy would silently allocate one)."""
    from test_layers import check_against_torch, conv_fns, inputs_for

    monkeypatch.setitem(backend._free_memory, DEV, lambda: free)
    for cfg in (dict(x=(2, 3, 9, 8), w=(2, 3, 3, 2), stride=(1, 1), padding=(1, 0), dilation=(1, 2)),
                dict(x=(2, 2, 9, 8), w=(3, 2, 3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 1)),
                dict(x=(2, 2, 9, 8), w=(2, 3, 3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                     output_padding=(1, 0))):
        fn, fn_t = conv_fns(cfg, torch)
        inputs = inputs_for(cfg, DEV)
        check_against_torch(torch, fn, fn_t, inputs, rtol=1e-10, atol=1e-11)
        assert_on(DEV, *(t.grad for t in inputs))


# ---- the U-Net on a device ------------------------------------------------------------------------
def small_unet():
    from unet import UNet

    mg.manual_seed(3)
    return UNet(depth=2, base_channels=2, num_classes=2).to(np.float32)


@pytest.mark.parametrize("device", DEVICE_ONLY)
def test_unet_training_step_on_a_device_makes_one_transfer_the_loss_item(device, tmp_path):
    """A whole training step: forward, weighted loss, backward and an Adam update make no
    host <-> device transfer at all (the stand-in raises where one happens); the training
    loop's step adds the batch's three host -> device copies and one device -> host copy,
    ``loss.item()``: the budget of a step. The numbers are the CPU's, and a checkpoint saved
    on the device loads on the CPU."""
    from unet.train import train_step

    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((2, 1, 44, 44)).astype(np.float32), rng.integers(0, 2, (2, 4, 4)),
                rng.uniform(1, 2, (2, 4, 4)).astype(np.float32)) for _ in range(2)]
    models = {"cpu": small_unet(), device: small_unet().to(device)}
    opts = {d: mg.optim.Adam(m.parameters(), lr=1e-3) for d, m in models.items()}
    losses, grads = {}, {}
    for d, model in models.items():
        images, targets, weights = batches[0]
        x = mg.tensor(images, device=d)
        t, w = backend.to_device(targets, d), backend.to_device(weights, d)
        checked = fakegpu.no_transfers() if d == DEV else _nothing()
        with checked:  # forward, backward, update: no transfer at all
            loss = F.cross_entropy(models[d](x), t, pixel_weight=w)
            opts[d].zero_grad()
            loss.backward()
            opts[d].step()
        assert_on(d, loss, *(p.data for p in model.parameters()), *(p.grad for p in model.parameters()))
        losses[d] = [loss.item()]
        grads[d] = [[backend.to_numpy(p.grad) for p in model.parameters()]]
        with fakegpu.counting() as seen:  # the loop's step: the batch in, loss.item() out
            losses[d].append(train_step(model, opts[d], *batches[1], device=d, lr=5e-4))
        grads[d].append([backend.to_numpy(p.grad) for p in model.parameters()])
        if d == DEV:
            assert (seen.to_device, seen.to_host) == (3, 1), seen.log
    np.testing.assert_allclose(losses[device], losses["cpu"], rtol=1e-5)
    for step in range(2):
        for (name, _), a, b in zip(models["cpu"].named_parameters(), grads[device][step], grads["cpu"][step]):
            assert_close(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max(), what=f"{name}.grad, step {step}")
    # Adam moves a parameter by about lr * sign(g) whatever g's size, so where a gradient is
    # near zero (within the devices' rounding of it) its sign, and the update, may differ:
    # there the parameters may differ by up to both steps' lr, each way; elsewhere they agree
    for (name, a), (_, b), *g in zip(models[device].named_parameters(), models["cpu"].named_parameters(),
                                     *grads["cpu"]):
        near_zero = np.zeros(b.shape, bool)
        for gs in g:
            near_zero |= np.abs(gs) <= 1e-3 * np.abs(gs).max()
        allowed = 1e-6 + 1e-4 * np.abs(b.numpy()) + np.where(near_zero, 2 * (1e-3 + 5e-4), 0.0)
        difference = np.abs(backend.to_numpy(a.data) - b.numpy())
        assert (difference <= allowed).all(), f"{name}: {difference.max()} (near-zero gradients: {near_zero.sum()})"
    mg.save(models[device].state_dict(), tmp_path / "device.npz")
    reloaded = small_unet()
    reloaded.load_state_dict(mg.load(tmp_path / "device.npz"))
    assert reloaded.device == "cpu" and models[device].device == device
    for (name, a), (_, b) in zip(models[device].named_parameters(), reloaded.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


@pytest.mark.parametrize("device", DEVICE_ONLY)
def test_overlap_tile_prediction_on_a_device_copies_once_per_batch(device):
    from unet.inference import predict_probabilities, tile_plan

    model = small_unet()
    image = np.random.default_rng(1).uniform(0, 1, (50, 61)).astype(np.float32)
    on_cpu = predict_probabilities(model, image, tile=60, batch_size=3)
    model.to(device)
    with fakegpu.counting() as seen:
        on_device = predict_probabilities(model, image, tile=60, batch_size=3, device=device)
    _, _, (ny, nx), _ = tile_plan(model, *image.shape, 60)
    batches = math.ceil(ny * nx / 3)
    assert batches > 1
    if device == DEV:  # the tiles of a batch go over once, their probabilities come back once
        assert (seen.to_device, seen.to_host) == (batches, batches), seen.log
    np.testing.assert_allclose(on_device, on_cpu, rtol=1e-4, atol=1e-6)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_whole_training_run_with_evaluation_and_checkpoints_on_a_device(tmp_path, monkeypatch):
    """unet.train.train with device="fakegpu": steps, per-epoch evaluation (overlap-tile
    prediction) and checkpoints that hold host arrays, with the CPU run's losses and metrics;
    each of its steps makes the step's four transfers and no more."""
    import unet.train as train_module
    from unet.train import TrainConfig, train

    per_step, real_step = [], train_module.train_step

    def counted_step(*args, **kwargs):
        with fakegpu.counting() as seen:
            value = real_step(*args, **kwargs)
        per_step.append((seen.to_device, seen.to_host))
        return value

    monkeypatch.setattr(train_module, "train_step", counted_step)

    def run(device):
        cfg = TrainConfig(data="synthetic", epochs=2, steps_per_epoch=2, batch_size=2, tile=60, depth=2,
                          base_channels=4, lr=3e-3, device=device, out=str(tmp_path / device))
        return train(cfg, progress=False, figures=False, verbose=False)

    on_cpu = run("cpu")
    per_step.clear()
    on_device = run(DEV)
    assert per_step == [(3, 1)] * 4  # the batch's three copies in, loss.item() out
    np.testing.assert_allclose([h["loss"] for h in on_device["history"]], [h["loss"] for h in on_cpu["history"]],
                               rtol=1e-4)
    for key in ("iou", "dice", "pixel_error"):
        assert abs(on_device[key] - on_cpu[key]) < 1e-3, key
    ckpt = mg.load(tmp_path / DEV / "checkpoint.npz")
    assert ckpt["step"] == 4 and all(isinstance(a, np.ndarray) for a in ckpt["model"].values())


def test_the_command_line_says_when_no_gpu_is_usable(tmp_path, monkeypatch, capsys):
    from unet.cli import main

    monkeypatch.setattr(backend, "_gpu_ok", False)  # as on a machine without CuPy or without NVRTC
    assert main(["train", "--device", "cuda", "--data", "synthetic", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unet train: error: device='cuda' was asked for, but no usable GPU was found" in err
    assert not (tmp_path / "checkpoint.npz").exists()
