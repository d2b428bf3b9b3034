"""What a tutorial notebook calls to tie itself to the course's tasks.

``require("conv.im2col")`` at a "your turn" cell stops the notebook with one short line
(no engine traceback) while a task is still the stub it was handed out as; ``verdict(...)``
compares a student's result with an independent one and prints a one-line verdict, or stops
the notebook with the task's name, file and the ``check`` command.
"""
from __future__ import annotations

import numpy as np

from .fences import block_is_stub, is_unreleased, project_root, task_blocks
from .tasks import TASKS


class TaskNotDone(Exception):
    """Stops a notebook at a task that is still a stub; IPython shows only the message."""

    def _render_traceback_(self):  # IPython's hook for a custom, traceback-free display
        return [str(self)]


class TaskCheckFailed(AssertionError):
    """A "your turn" check found a wrong result; IPython shows only the message."""

    def _render_traceback_(self):
        return [str(self)]


def _where(task_id: str) -> str:
    task = TASKS[task_id]
    return (f"write {task.function} in {task.file} (between `# BEGIN TASK {task_id}` and `# END TASK`), "
            f"then run `python -m minigrad_course check {task_id}`")


def _check_imported_tree():
    """A notebook in <copy>/tutorials must run <copy>'s minigrad, not one installed from
    another tree (which would check someone else's code)."""
    import os

    here = os.path.abspath(os.getcwd())
    if os.path.basename(here) != "tutorials" or not os.path.isdir(os.path.join(here, "..", "minigrad")):
        return
    tree, imported = os.path.realpath(os.path.dirname(here)), os.path.realpath(project_root())
    if tree != imported:
        raise TaskNotDone(f"This notebook lives in {tree} but imports minigrad from {imported}: it would check "
                          f"that tree's code, not yours. Run `pip install -e .` in {tree} (or start Jupyter "
                          "with PYTHONPATH set to it) and restart the kernel.")


def require(*task_ids: str) -> None:
    """Stop here, with one line per missing task, if any of ``task_ids`` is still a stub."""
    _check_imported_tree()
    unknown = [t for t in task_ids if t not in TASKS]
    if unknown:
        raise ValueError(f"require: unknown task id(s) {unknown}; known: {', '.join(TASKS)}")
    missing = [t for t in task_ids if block_is_stub(t)]
    if missing:
        raise TaskNotDone("\n".join(_not_done(t) for t in missing))


def _not_done(task_id: str) -> str:
    blocks = task_blocks(task_id)
    if blocks and all(is_unreleased(b.body, task_id) for b in blocks):
        return (f"Task {task_id} is not handed out yet in this copy: this cell needs it, so it runs once a later "
                "release brings the task (STUDENT.md lists what comes when).")
    return f"Task {task_id} is not done yet: {_where(task_id)}."


def _host(x) -> np.ndarray:
    """A tensor's or array's values as a NumPy array (on the host)."""
    from minigrad import backend

    x = getattr(x, "data", x)
    return backend.to_numpy(x) if backend.is_array(x) else np.asarray(x)


def _elementwise_error(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    a, e = a.astype(np.float64), e.astype(np.float64)
    return np.abs(a - e) / np.maximum(np.abs(a) + np.abs(e), 1e-300)


def rel_error(actual, expected) -> float:
    """max |a - e| / max(|a| + |e|, 1e-300), elementwise, as in CS231n's notebooks."""
    a, e = _host(actual), _host(expected)
    if a.shape != e.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(_elementwise_error(a, e)))


def first_mismatch(actual, expected, tol: float) -> str:
    """Where ``actual`` first differs from ``expected`` by more than ``tol`` (relative), as
    "at [1, 0, 2]: got 0.5, expected 1.5" (row-major order; nan counts as a difference)."""
    a, e = _host(actual), _host(expected)
    bad = ~(_elementwise_error(a, e) <= tol)
    if a.shape != e.shape or not bad.any():
        return ""
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    where = f" at [{', '.join(map(str, index))}]" if index else ""
    count = f" ({int(bad.sum())} of {bad.size} entries wrong)" if bad.size > 1 else ""
    return f"{where}: got {a[index]:.6g}, expected {e[index]:.6g}{count}"


def verdict(task_id: str, what: str, actual, expected, tol: float = 1e-8) -> float:
    """Print "<task>: <what> OK (relative error 3e-16)", or stop with what went wrong."""
    if task_id not in TASKS:
        raise ValueError(f"verdict: unknown task id {task_id!r}")
    a_shape = tuple(np.shape(getattr(actual, "data", actual)))
    e_shape = tuple(np.shape(getattr(expected, "data", expected)))
    if a_shape != e_shape:
        raise TaskCheckFailed(f"{task_id}: {what} has shape {a_shape}, expected {e_shape}. {_where(task_id)}.")
    err = rel_error(actual, expected)
    if not err <= tol:
        raise TaskCheckFailed(f"{task_id}: {what} is wrong{first_mismatch(actual, expected, tol)} (relative error "
                              f"{err:.2g} > {tol:g}). {_where(task_id)}.")
    print(f"{task_id}: {what} OK (relative error {err:.1e})")
    return err
