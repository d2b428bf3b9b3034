"""The per-task drivers that run student code on given inputs: ``python probe.py IO_DIR``.

This file is copied into the grading tree and runs inside the sandbox, beside the code it
drives, so it may import only NumPy and the tree (never ``minigrad_course``). It reads
``IO_DIR/cases.json`` (a list of {"name", "task", "params"}) and ``IO_DIR/inputs.npz`` (arrays
named "<case>/<array>", no pickle), calls ``DRIVERS[task](params, arrays)`` for each case, and
writes what came out, case by case, as ``IO_DIR/out/<k>.npz`` (named arrays) or
``IO_DIR/out/<k>.err`` (a one-line error). Nothing here decides anything: the grader, outside,
compares these arrays with the reference's (``minigrad_course.cases``). A driver returns a dict
of NumPy arrays: outputs, gradients, parameters after steps, whatever the task's code decides.
"""
import json
import os
import sys
import traceback

import numpy as np


def _t(a, grad=True):
    import minigrad as mg

    return mg.Tensor(np.array(a), requires_grad=grad)


def _g(t):
    """A tensor's gradient as an array (NaN-filled when backward left it None: that is a lost gradient)."""
    return np.full(t.shape, np.nan) if t.grad is None else np.asarray(t.grad)


def _backward(out, upstream):
    """Backward from ``out`` with the upstream gradient ``upstream`` (through no op of another
    task: ``backward(grad)`` rather than ``(out * g).sum()``, whose Mul is a task)."""
    out.backward(np.asarray(upstream, dtype=out.dtype).reshape(out.shape))


# ---- week 1 ---------------------------------------------------------------------------------
def drive_toposort(params, a):
    """Graphs given as op lists: [op, i, j] makes node k = op(node i, node j) from the leaves
    (ops whose backward is no task: tanh, maximum, cat; so only the order can be wrong)."""
    import minigrad as mg

    nodes = [_t(a["x"][i]) for i in range(a["x"].shape[0])]
    n_leaves = len(nodes)
    ops = {"tanh": lambda x, y: mg.ops.tanh(x), "max": lambda x, y: mg.maximum(x, y),
           "cat": lambda x, y: mg.cat([x, y], dim=0)}
    for op, i, j in params["graph"]:
        nodes.append(ops[op](nodes[i], nodes[j]))
    root = nodes[-1]
    order = root._topological_order()
    ids = {id(n): k for k, n in enumerate(nodes)}
    labels = np.array(sorted(ids.get(id(n), -1) for n in order), dtype=np.int64)
    root.backward(a["g"].reshape(root.shape))
    return {"nodes_in_order": labels, "starts_with_root": np.array(ids.get(id(order[0]), -1) == len(nodes) - 1),
            **{f"grad{k}": _g(nodes[k]) for k in range(n_leaves)}}


def drive_chain(params, a):
    """A chain of ``params["length"]`` tanh ops: the order must not recurse."""
    import minigrad as mg

    x = _t(a["x"])
    y = x
    for _ in range(params["length"]):
        y = mg.ops.tanh(y)
    y.backward(np.ones(y.shape))
    return {"grad": _g(x)}


def drive_central_difference(params, a):
    from minigrad.gradcheck import central_difference

    fns = {"mul_exp": lambda x, y: (x * y).exp(), "exp_sum": lambda x, y: (x.exp() * y).sum(),
           "div": lambda x, y: x / y}
    xs = [_t(a["x"]), _t(a["y"])]
    before = [x.data.copy() for x in xs]
    jac = central_difference(fns[params["fn"]], xs, xs[params["wrt"]], params["eps"])
    return {"jacobian": np.asarray(jac), "restored": np.array(all(np.array_equal(b, x.data) for b, x in zip(before, xs)))}


def drive_elementwise(params, a):
    import minigrad as mg
    import minigrad.functional as F

    op = params["op"]
    x = _t(a["x"])
    if op in ("exp", "log", "relu"):
        out = {"exp": lambda: x.exp(), "log": lambda: x.log(), "relu": lambda: F.relu(x)}[op]()
        _backward(out, a["g"])
        return {"out": out.numpy(), "grad_x": _g(x)}
    y = _t(a["y"])
    out = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y, "div": lambda: x / y,
           "pow": lambda: mg.ops.pow(x, y)}[op]()
    _backward(out, a["g"])
    return {"out": out.numpy(), "grad_x": _g(x), "grad_y": _g(y)}


def drive_matmul(params, a):
    x, y = _t(a["x"]), _t(a["y"])
    out = x @ y
    _backward(out, a["g"])
    return {"out": out.numpy(), "grad_x": _g(x), "grad_y": _g(y)}


# ---- week 2-3: convolution, pooling, crop ----------------------------------------------------
def _geometry(params, a):
    from minigrad.functional.im2col import Geometry

    return Geometry(tuple(params["kernel"]), tuple(params["stride"]), tuple(params["dilation"]), tuple(params["out_hw"]))


def drive_im2col(params, a):
    from minigrad.functional.im2col import im2col

    cols = im2col(np.ascontiguousarray(a["src"]), _geometry(params, a))
    return {"cols": np.array(cols)}


def drive_col2im(params, a):
    from minigrad.functional.im2col import col2im

    dst = a["dst"].copy()
    col2im(np.ascontiguousarray(a["cols"]), dst, _geometry(params, a))
    return {"dst": dst}


def _conv(fn, a, **options):
    x, w = _t(a["x"]), _t(a["w"])
    b = _t(a["b"]) if "b" in a else None
    out = fn(x, w, b, **options)
    _backward(out, a["g"])
    res = {"out": out.numpy(), "grad_x": _g(x), "grad_w": _g(w)}
    if b is not None:
        res["grad_b"] = _g(b)
    return res


def drive_conv2d(params, a):
    import minigrad.functional as F

    return _conv(F.conv2d, a, stride=params["stride"], padding=params["padding"], dilation=params["dilation"])


def drive_conv_transpose2d(params, a):
    import minigrad.functional as F

    return _conv(F.conv_transpose2d, a, stride=params["stride"], padding=params["padding"],
                 output_padding=params["output_padding"], dilation=params["dilation"])


def drive_max_pool2d(params, a):
    import minigrad.functional as F

    x = _t(a["x"])
    out = F.max_pool2d(x, params["kernel"], stride=params["stride"], padding=params["padding"],
                       dilation=params.get("dilation", 1), ceil_mode=params.get("ceil_mode", False))
    _backward(out, a["g"])
    return {"out": out.numpy(), "grad_x": _g(x)}


def drive_center_crop(params, a):
    import minigrad.functional as F

    x = _t(a["x"])
    out = F.center_crop(x, params["size"])
    _backward(out, a["g"])
    return {"out": out.numpy(), "grad_x": _g(x)}


def _load_parameters(module, a):
    for k, p in enumerate(module.parameters()):
        p.data = np.array(a[f"p{k}"], dtype=p.dtype).reshape(p.shape)


def drive_up_block(params, a):
    from unet.model import UpBlock

    block = UpBlock(params["in_channels"], params["padding"])
    _load_parameters(block, a)
    x, skip = _t(a["x"]), _t(a["skip"])
    out = block(x, skip)
    _backward(out, np.resize(a["g"], out.shape))
    return {"out": out.numpy(), "grad_x": _g(x), "grad_skip": _g(skip)}


# ---- week 4: loss, weight map, optimisers ----------------------------------------------------
def drive_cross_entropy(params, a):
    import minigrad.functional as F

    logits = _t(a["logits"])
    weight = _t(a["weight"], grad=False) if "weight" in a else None
    loss = F.cross_entropy(logits, a["target"], weight=weight, ignore_index=params.get("ignore_index", -100),
                           reduction=params["reduction"], label_smoothing=params.get("label_smoothing", 0.0))
    _backward(loss, a["g"])
    return {"loss": loss.numpy(), "grad_logits": _g(logits)}


def drive_weight_map(params, a):
    from unet.weights import weight_map

    cw = params.get("class_weights", "balanced")
    return {"weights": np.asarray(weight_map(a["instances"], w0=params["w0"], sigma=params["sigma"],
                                             class_weights=cw))}


def drive_optimizer(params, a):
    import minigrad as mg

    ps = [mg.Tensor(a[f"p{k}"].copy(), requires_grad=True) for k in range(params["n_params"])]
    opt = getattr(mg.optim, params["optimizer"])(ps, **params["hyper"])
    out = {}
    for step in range(params["steps"]):
        for k, p in enumerate(ps):
            p.grad = a[f"g{k}"][step].copy()
        opt.step()
        for k, p in enumerate(ps):
            out[f"p{k}_step{step}"] = p.numpy().copy()
    return out


# ---- week 5: batch norm, interpolation, Dice, UNet++ ----------------------------------------
def drive_batch_norm(params, a):
    """F.batch_norm in training or eval, with or without weight and bias; the running statistics
    after the call (updated in training) are outputs too."""
    import minigrad.functional as F

    x = _t(a["x"])
    w = _t(a["w"]) if "w" in a else None
    b = _t(a["b"]) if "b" in a else None
    rm = a["running_mean"].copy() if "running_mean" in a else None
    rv = a["running_var"].copy() if "running_var" in a else None
    out = F.batch_norm(x, rm, rv, w, b, training=params["training"], momentum=params.get("momentum", 0.1),
                       eps=params.get("eps", 1e-5))
    _backward(out, a["g"])
    res = {"out": out.numpy(), "grad_x": _g(x)}
    for name, t in (("grad_w", w), ("grad_b", b)):
        if t is not None:
            res[name] = _g(t)
    for name, v in (("running_mean", rm), ("running_var", rv)):
        if v is not None:
            res[name] = np.asarray(v)
    return res


def drive_interpolate(params, a):
    import minigrad.functional as F

    x = _t(a["x"])
    out = F.interpolate(x, size=params.get("size"), scale_factor=params.get("scale_factor"), mode=params["mode"],
                        align_corners=params.get("align_corners"))
    _backward(out, a["g"])
    return {"out": out.numpy(), "grad_x": _g(x)}


def drive_soft_dice(params, a):
    from unet.losses import soft_dice_loss

    p = _t(a["p"])
    loss = soft_dice_loss(p, a["t"], smooth=params["smooth"], per_image=params["per_image"])
    _backward(loss, a["g"])
    return {"loss": loss.numpy(), "grad_p": _g(p)}


def _load_flat(module, theta):
    """Every parameter in ``parameters()`` order from consecutive values of ``theta`` (cycled
    when it is too short), scaled by 1/sqrt(fan-in) so that deep stacks stay in range."""
    flat, at = np.asarray(theta), 0
    for p in module.parameters():
        vals = np.resize(np.roll(flat, -at), p.size) if p.size else np.zeros(0)
        fan_in = int(np.prod(p.shape[1:])) if len(p.shape) > 1 else 1
        p.data = (vals / np.sqrt(fan_in)).astype(p.dtype).reshape(p.shape)
        at = (at + p.size) % flat.size


def drive_unetpp(params, a):
    """A small UNet++ (training mode: batch statistics) on given weights: every node X^{i,j}, the
    head(s) (``prune``: the pruned network L^d's one head), the input's gradient and each
    parameter's gradient summed (NaN where it is lost), backward from all heads at once
    (through cat, no task's op)."""
    import minigrad as mg
    from unet.family import UNetPlusPlus

    net = UNetPlusPlus(in_channels=a["x"].shape[1], num_classes=params["num_classes"],
                       deep_supervision=params["deep_supervision"], base_channels=params["base_channels"],
                       depth=params["depth"], upsample=params.get("upsample", "bilinear"),
                       batch_norm=params.get("batch_norm", True)).to(dtype=a["x"].dtype)
    _load_flat(net, a["theta"])
    x = _t(a["x"])
    prune = params.get("prune")
    res = {f"node{i}_{j}": v.numpy() for (i, j), v in net.nodes(x, prune).items()}
    heads = net(x, prune=prune)
    heads = heads if isinstance(heads, list) else [heads]
    for k, h in enumerate(heads):
        res[f"head{k}"] = h.numpy()
    out = mg.cat(heads, dim=1)
    _backward(out, np.resize(a["g"], out.shape))
    res["grad_x"] = _g(x)
    for name, p in net.named_parameters():  # each parameter's gradient summed: small to ship, NaN if lost
        res[f"grad_sum_{name}"] = _g(p).sum()
    return res


DRIVERS = {name[len("drive_"):]: fn for name, fn in list(globals().items()) if name.startswith("drive_")}


def _one_line(err: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.endswith("probe.py")]
    where = f" (at {os.path.relpath(frames[-1].filename, '/grading') if frames[-1].filename.startswith('/') else frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {str(err)[:300]}{where}".replace("\n", " ")


class CaseTimeLimit(BaseException):
    """A BaseException, so that the student's ``except Exception`` does not swallow it."""


def _on_alarm(signum, frame):
    raise CaseTimeLimit(f"this case ran longer than its time limit of {os.environ.get('CASE_SECONDS')} s "
                        "(an endless loop?)")


def main(io_dir: str):
    import signal

    with open(os.path.join(io_dir, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    with np.load(os.path.join(io_dir, "inputs.npz"), allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    out_dir = os.path.join(io_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    limit = float(os.environ.get("CASE_SECONDS", "0") or 0)
    for k, case in enumerate(cases):
        arrays = {name.split("/", 1)[1]: v for name, v in inputs.items() if name.split("/", 1)[0] == str(k)}
        if limit:  # one endless case must not cost the others (the task's wall limit still holds)
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            result = DRIVERS[case["driver"]](case["params"], arrays)
            signal.setitimer(signal.ITIMER_REAL, 0)
            np.savez(os.path.join(out_dir, f"{k}.npz"), **{n: np.asarray(v) for n, v in result.items()})
        except BaseException as err:  # noqa: BLE001 - any failure of the student's code is this case's result
            signal.setitimer(signal.ITIMER_REAL, 0)
            with open(os.path.join(out_dir, f"{k}.err"), "w", encoding="utf-8") as f:
                f.write(_one_line(err))
            if isinstance(err, KeyboardInterrupt):
                raise


if __name__ == "__main__":
    main(sys.argv[1])
