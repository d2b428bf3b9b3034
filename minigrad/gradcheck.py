"""gradcheck: compare hand-written backward passes with central finite differences.

For f: inputs -> output and a small eps, the central difference

    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)  =  df/dx_i + O(eps^2)

needs no backward pass at all, so it is an independent check of one. In float64 with
eps = 1e-6 the truncation error is ~eps^2 |f'''| / 6 (about 1e-12) and the rounding error
~1e-16 |f| / eps (about 1e-10), so rounding dominates; in float32 the rounding error alone
is ~1e-7 / eps, far too noisy.

Non-finite values fail the check: a nan or infinite analytic or numeric derivative (a
backward that returns nan, sqrt at 0, an input holding nan) is never "close" to anything,
and a comparison with nan is always false, so they are looked for explicitly.
``allow_nonfinite=True`` (the caller knows of a singularity) leaves the entries where either
side is not finite out of the comparison, with a warning that counts them.

``mode="full"``: the whole Jacobian, one backward pass per output element and two forward
passes per input element (small inputs only).
``mode="directional"``: for a random output weighting v and random input direction u,
compare v^T J u from backward (one pass) with (L(x + eps u) - L(x - eps u)) / (2 eps),
L = <v, f> (two forward passes per direction): cheap enough for a whole U-Net.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import backend
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


def _as_tuple(inputs):
    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def _output(fn, inputs):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _analytic(fn, inputs, targets, v):
    """Gradients of <v, fn(inputs)> with respect to each target input (None = zero)."""
    saved = [t.grad for t in targets]
    for t in targets:
        t.grad = None
    try:
        out = _output(fn, inputs)
        if not out.requires_grad:
            return [backend.array_module(t.data).zeros_like(t.data) for t in targets]
        out.backward(v.reshape(out.shape))
        return [t.grad if t.grad is not None else backend.array_module(t.data).zeros_like(t.data) for t in targets]
    finally:
        for t, g in zip(targets, saved):
            t.grad = g


def _value(fn, inputs):
    from .tensor import no_grad

    with no_grad():
        return _output(fn, inputs).data.copy()  # a copy: the output may be a view of an input


def _first_nonfinite(a):
    """The index of the first non-finite element of the host array ``a``, or None."""
    bad = ~np.isfinite(a)
    return np.unravel_index(int(np.argmax(bad)), a.shape) if bad.any() else None


def _nonfinite(analytic, numeric):
    """Mask of the entries where either side is not finite."""
    return ~np.isfinite(analytic) | ~np.isfinite(numeric)


def _warn_skipped(count, total, what):
    warnings.warn(f"gradcheck: {count} of {total} entries for {what} are not finite and were not compared "
                  "(allow_nonfinite=True)", stacklevel=4)


def _check_number(name, value, *, positive):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"gradcheck: {name} must be a real number, got {value!r}")
    if not np.isfinite(value) or (value <= 0 if positive else value < 0):
        raise ValueError(f"gradcheck: {name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck(
    fn,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    n_directions: int = 2,
    seed: int = 0,
    raise_exception: bool = True,
    allow_nonfinite: bool = False,
) -> bool:
    """Check ``fn``'s analytic gradients for every input that requires grad.

    ``inputs`` is a Tensor or a sequence of Tensors, all passed to ``fn`` positionally. A
    model's parameters can be listed too (``lambda x, *params: model(x)``): every input is
    perturbed in place and restored, so ``fn`` may reach them any way it likes. Passes when |analytic - numeric| <= atol + rtol*|numeric|
    everywhere. Returns True, or raises ``GradcheckError`` naming the input, the worst
    element, both values and the tolerances (returns False if ``raise_exception=False``).

    Any non-finite input value, analytic or numeric derivative fails the check, naming the
    input, the element and the values, unless ``allow_nonfinite=True``: then the entries where
    either derivative is not finite are left out (a warning counts them) and the rest are
    compared as usual. ``eps`` must be > 0, ``atol`` and ``rtol`` >= 0, all finite.
    """
    if mode not in ("full", "directional"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'directional', got {mode!r}")
    _check_number("eps", eps, positive=True)
    _check_number("atol", atol, positive=False)
    _check_number("rtol", rtol, positive=False)
    if isinstance(n_directions, bool) or not isinstance(n_directions, (int, np.integer)) or n_directions < 1:
        raise ValueError(f"gradcheck: n_directions must be a positive integer, got {n_directions!r}")
    if not isinstance(allow_nonfinite, bool):
        raise TypeError(f"gradcheck: allow_nonfinite must be True or False, got {allow_nonfinite!r}")
    inputs = _as_tuple(inputs)
    targets = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not targets:
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    if not allow_nonfinite:
        for i, t in enumerate(inputs):
            if isinstance(t, Tensor) and t.dtype.kind in "fc":
                host = t.numpy()
                where = _first_nonfinite(host)
                if where is not None:
                    return _fail(
                        f"gradcheck: input {i} (shape {t.shape}) holds the non-finite value {host[where]} at index "
                        f"{tuple(int(k) for k in where)}; finite differences there mean nothing "
                        "(pass allow_nonfinite=True to check anyway)",
                        raise_exception,
                    )
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {t.dtype}, not float64; finite differences will be noisy",
                stacklevel=2,
            )
    index_of = {id(t): i for i, t in enumerate(inputs)}
    rng = np.random.default_rng(seed)
    out0 = _value(fn, inputs)
    xp = backend.array_module(out0)
    if mode == "full":
        return _full(fn, inputs, targets, index_of, out0, xp, eps, atol, rtol, raise_exception, allow_nonfinite)
    return _directional(fn, inputs, targets, index_of, out0, xp, rng, eps, atol, rtol, n_directions,
                        raise_exception, allow_nonfinite)


def central_difference(fn, inputs, t, eps):
    """The numeric Jacobian of ``fn(*inputs)`` with respect to the tensor ``t`` (one of the
    inputs), one column per element of t:

        J[:, j] = (f(x + eps e_j) - f(x - eps e_j)) / (2 eps)        (n_out, t.size)

    where f(...) is ``_value(fn, inputs)`` (the output's array, computed without a graph, as
    a copy) flattened, and x + eps e_j means element j of ``t.data`` raised by eps. ``t.data``
    is contiguous, so ``t.data.reshape(-1)`` is a view: writing into it perturbs the input.
    Every element must hold its original value again when this returns.
    """
    # BEGIN TASK gradcheck.central_difference
    flat = t.data.reshape(-1)
    columns = []
    for j in range(t.size):
        original = flat[j].copy()
        flat[j] = original + eps
        plus = _value(fn, inputs)
        flat[j] = original - eps
        minus = _value(fn, inputs)
        flat[j] = original
        columns.append(((plus - minus) / (2 * eps)).reshape(-1))
    xp = backend.array_module(t.data)
    return xp.stack(columns, axis=1) if columns else xp.zeros((_value(fn, inputs).size, 0))
    # END TASK


def _full(fn, inputs, targets, index_of, out0, xp, eps, atol, rtol, raise_exception, allow_nonfinite):
    n_out = out0.size
    analytic = [np.zeros((n_out, t.size)) for t in targets]
    for k in range(n_out):  # row k of each Jacobian = gradient of output element k
        v = xp.zeros(n_out, dtype=out0.dtype)
        v[k] = 1
        for a, g in zip(analytic, _analytic(fn, inputs, targets, v)):
            a[k] = backend.to_numpy(g).ravel()
    for t, a in zip(targets, analytic):
        # so reshape(-1) is a view (ascontiguousarray alone would turn a 0-d array into shape (1,))
        t.data = backend.array_module(t.data).ascontiguousarray(t.data).reshape(t.shape)
        numeric = backend.to_numpy(central_difference(fn, inputs, t, eps)).reshape(a.shape)
        nonfinite = _nonfinite(a, numeric)
        if nonfinite.any() and allow_nonfinite:
            _warn_skipped(int(nonfinite.sum()), nonfinite.size, f"input {index_of[id(t)]}")
            a, numeric = np.where(nonfinite, 0.0, a), np.where(nonfinite, 0.0, numeric)
        elif nonfinite.any():
            k, j = np.unravel_index(int(np.argmax(nonfinite)), nonfinite.shape)
            where = np.unravel_index(j, t.shape) if t.ndim else ()
            out_where = np.unravel_index(k, out0.shape) if out0.ndim else ()
            return _fail(
                f"gradcheck failed for input {index_of[id(t)]} (shape {t.shape}): {int(nonfinite.sum())} of "
                f"{nonfinite.size} Jacobian entries are not finite; first at input index "
                f"{tuple(int(i) for i in where)}, output index {tuple(int(i) for i in out_where)}: "
                f"numeric={numeric[k, j]:.10g}, analytic={a[k, j]:.10g} "
                "(pass allow_nonfinite=True to leave non-finite entries out)",
                raise_exception,
            )
        bad = np.abs(a - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            err = np.where(bad, np.abs(a - numeric), -1)
            k, j = np.unravel_index(np.argmax(err), err.shape)
            where = np.unravel_index(j, t.shape) if t.ndim else ()
            out_where = np.unravel_index(k, out0.shape) if out0.ndim else ()
            return _fail(
                f"gradcheck failed for input {index_of[id(t)]} (shape {t.shape}): "
                f"{int(bad.sum())} of {bad.size} Jacobian entries differ; worst at input index "
                f"{tuple(int(i) for i in where)}, output index {tuple(int(i) for i in out_where)}: "
                f"numeric={numeric[k, j]:.10g}, analytic={a[k, j]:.10g}, "
                f"|difference|={abs(a[k, j] - numeric[k, j]):.3g} > atol + rtol*|numeric| "
                f"(atol={atol}, rtol={rtol})",
                raise_exception,
            )
    return True


def _directional(fn, inputs, targets, index_of, out0, xp, rng, eps, atol, rtol, n_directions, raise_exception,
                 allow_nonfinite):
    for d in range(n_directions):
        v = backend.to_device(rng.standard_normal(out0.shape).astype(out0.dtype), backend.device_of(out0))
        grads = _analytic(fn, inputs, targets, v)
        for t, g in zip(targets, grads):
            g_host = backend.to_numpy(g)
            where = None if allow_nonfinite else _first_nonfinite(g_host)
            if where is not None:
                return _fail(
                    f"gradcheck (directional) failed for input {index_of[id(t)]} (shape {t.shape}), "
                    f"direction {d}: the analytic gradient holds the non-finite value {g_host[where]} at index "
                    f"{tuple(int(i) for i in where)} (pass allow_nonfinite=True to leave non-finite entries out)",
                    raise_exception,
                )
            u_host = rng.standard_normal(t.shape)
            u_host /= max(np.linalg.norm(u_host), 1e-300)
            u = backend.to_device(u_host.astype(t.dtype), t.device)
            analytic = float(backend.to_numpy((g * u).sum()))
            original = t.data.copy()
            t.data[...] = original + eps * u
            plus = float(backend.to_numpy((_value(fn, inputs) * v).sum()))
            t.data[...] = original - eps * u
            minus = float(backend.to_numpy((_value(fn, inputs) * v).sum()))
            t.data[...] = original
            numeric = (plus - minus) / (2 * eps)
            if _nonfinite(np.float64(analytic), np.float64(numeric)):
                if allow_nonfinite:
                    _warn_skipped(1, 1, f"input {index_of[id(t)]}, direction {d}")
                    continue
                return _fail(
                    f"gradcheck (directional) failed for input {index_of[id(t)]} (shape {t.shape}), "
                    f"direction {d}: a non-finite value: numeric={numeric:.10g}, analytic={analytic:.10g} "
                    "(pass allow_nonfinite=True to leave non-finite entries out)",
                    raise_exception,
                )
            if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
                return _fail(
                    f"gradcheck (directional) failed for input {index_of[id(t)]} (shape {t.shape}), "
                    f"direction {d}: numeric={numeric:.10g}, analytic={analytic:.10g}, "
                    f"|difference|={abs(analytic - numeric):.3g} > atol + rtol*|numeric| "
                    f"(atol={atol}, rtol={rtol})",
                    raise_exception,
                )
    return True
