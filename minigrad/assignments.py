"""Course assignments from the real source, graded by the gradient-check suite.

The reference solutions live in the source, fenced in place::

    # BEGIN SOLUTION conv.im2col
    ...the code a student writes...
    # END SOLUTION

``python -m minigrad.assignments make-student OUT`` writes a copy of the repository in which
every fenced block is replaced by ``raise NotImplementedError("<task-id>: <hint>")`` at the
same indentation. ``python -m minigrad.assignments grade [PATH]`` runs the test suite of the
tree at PATH (default: the current directory) and prints a per-task table; tests carry one
pytest marker per task (the task id with "." replaced by "_"), registered in pyproject.toml.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

#: task id -> the one-line hint a student sees in the stub
TASKS = {
    "autograd.toposort": "order the graph so every tensor comes before its inputs (iterative DFS, no recursion)",
    "autograd.elementwise": "return the gradient for each input; sum over broadcast axes with unbroadcast()",
    "autograd.matmul": "da = g @ b^T, db = a^T @ g, then unbroadcast the batch axes",
    "conv.im2col": "copy the kh*kw shifted, strided windows of the input into the column matrix",
    "conv.col2im": "add each column entry back to the input pixel it was copied from (the adjoint of im2col)",
    "conv.conv2d_backward": "dW = g @ cols^T, db = sum of g, dx = col2im(W^T @ g); use columns_matmul and matmul_col2im",
    "conv.conv_transpose2d": "conv_transpose2d is conv2d's input gradient; its backward is a conv2d forward",
    "pool.max_pool2d_backward": "send each output's gradient to the position of its window's maximum",
    "crop.backward": "place g in a zero array shaped like the input, at the cropped window",
    "unet.forward": "crop the skip to the upsampled map's size, then concatenate along channels",
}

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION (?P<task>\S+)\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".hypothesis", "runs", "build", "dist",
             ".ipynb_checkpoints"}


class MarkerError(ValueError):
    """An unclosed, unknown or misplaced solution marker."""


def marker_name(task: str) -> str:
    return task.replace(".", "_")


def strip_solutions(text: str, path: str = "<text>", only=None):
    """Replace every fenced solution block with a stub. Returns (new text, tasks found).

    ``only``: a set of task ids to stub; other blocks keep their solution (markers removed).
    """
    out, tasks, open_task = [], [], None
    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_task:
                raise MarkerError(f"{path}:{lineno}: BEGIN SOLUTION inside the open block '{open_task[0]}' (line {open_task[1]})")
            task = begin.group("task")
            if task not in TASKS:
                raise MarkerError(f"{path}:{lineno}: unknown task id '{task}' (known: {', '.join(sorted(TASKS))})")
            open_task = (task, lineno, begin.group("indent"))
            tasks.append(task)
            if only is None or task in only:
                out.append(f'{open_task[2]}raise NotImplementedError("{task}: {TASKS[task]}")\n')
        elif end:
            if not open_task:
                raise MarkerError(f"{path}:{lineno}: END SOLUTION without a BEGIN SOLUTION")
            open_task = None
        elif open_task is None or (only is not None and open_task[0] not in only):
            out.append(line)
    if open_task:
        raise MarkerError(f"{path}:{open_task[1]}: BEGIN SOLUTION {open_task[0]} is never closed")
    return "".join(out), tasks


def _files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def make_student(src: str, dst: str, only=None) -> list:
    """Copy the tree at ``src`` to ``dst`` with solutions replaced by stubs; returns the tasks stubbed."""
    src, dst = os.path.abspath(src), os.path.abspath(dst)
    if os.path.exists(dst) and os.listdir(dst):
        raise FileExistsError(f"make-student: output folder '{dst}' exists and is not empty")
    unknown = set(only or ()) - set(TASKS)
    if unknown:
        raise MarkerError(f"make-student: unknown task id(s) {sorted(unknown)}")
    found = []
    # check every file first, so an error leaves no half-written copy behind
    converted = {}
    for path in _files(src):
        if path.endswith(".py") and os.path.abspath(path) != os.path.abspath(__file__):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if "# BEGIN SOLUTION" in text or "# END SOLUTION" in text:
                converted[path], tasks = strip_solutions(text, os.path.relpath(path, src), only)
                found += tasks
    for path in _files(src):
        target = os.path.join(dst, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if path in converted:
            with open(target, "w", encoding="utf-8") as f:
                f.write(converted[path])
        else:
            shutil.copy2(path, target)
    return sorted(set(found) if only is None else set(found) & set(only))


# ---- grading ---------------------------------------------------------------------------------
_PLUGIN = textwrap.dedent(
    '''
    import json, os
    _results = []
    def pytest_runtest_logreport(report):
        if report.when == "call" or report.outcome != "passed":
            _results.append(dict(nodeid=report.nodeid, outcome=report.outcome, when=report.when,
                                 markers=[k for k in report.keywords],
                                 text=str(report.longrepr)[-3000:] if report.failed else ""))
    def pytest_sessionfinish(session):
        with open(os.environ["MINIGRAD_GRADE_OUT"], "w") as f:
            json.dump(_results, f)
    '''
)


def run_task_tests(path: str, tasks, extra_args=()):
    """Run the tests marked with ``tasks`` in the tree at ``path``; returns {task: [results]}."""
    path = os.path.abspath(path)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "minigrad_grade_plugin.py"), "w") as f:
            f.write(_PLUGIN)
        out = os.path.join(tmp, "results.json")
        env = dict(os.environ, MINIGRAD_GRADE_OUT=out, MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join([path, tmp, os.environ.get("PYTHONPATH", "")]))
        expr = " or ".join(marker_name(t) for t in tasks)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "minigrad_grade_plugin", "-p", "no:cacheprovider",
               "-m", f"({expr}) and not gpu", os.path.join(path, "tests"), *extra_args]
        subprocess.run(cmd, cwd=path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.path.exists(out):
            raise RuntimeError(f"grade: pytest did not run in '{path}' (is pytest installed?)")
        with open(out) as f:
            results = json.load(f)
    by_task = {t: [] for t in tasks}
    for r in results:
        for t in tasks:
            if marker_name(t) in r["markers"]:
                by_task[t].append(r)
    return by_task


def _first_lines(text, n=4):
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("E ")] or text.splitlines()
    return "\n".join("      " + ln.strip() for ln in lines[:n])


def grade(path: str = ".", tasks=None, stream=None) -> bool:
    """Print a per-task table for the tree at ``path``; True when every task passes."""
    stream = stream or sys.stdout
    tasks = list(tasks or TASKS)
    by_task = run_task_tests(path, tasks)
    ok_all = True
    print(f"{'task':28s} {'tests':>7s}  result", file=stream)
    for task in tasks:
        results = by_task[task]
        failed = [r for r in results if r["outcome"] == "failed"]
        passed = [r for r in results if r["outcome"] == "passed" and r["when"] == "call"]
        ok = bool(passed) and not failed
        ok_all &= ok
        status = "passed" if ok else ("no tests ran" if not results else f"FAILED ({len(failed)} failing)")
        print(f"{task:28s} {len(passed):3d}/{len(passed) + len(failed):<3d}  {status}", file=stream)
        if failed:
            print(f"    {failed[0]['nodeid']}\n{_first_lines(failed[0]['text'])}", file=stream)
    return ok_all


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minigrad.assignments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make-student", help="write a student copy with solutions replaced by stubs")
    m.add_argument("out")
    m.add_argument("--source", default=".", help="the reference tree (default: current directory)")
    m.add_argument("--only", nargs="+", metavar="TASK", help="stub only these tasks")
    g = sub.add_parser("grade", help="run the test suite of a tree and print a per-task table")
    g.add_argument("path", nargs="?", default=".")
    g.add_argument("--tasks", nargs="+", metavar="TASK")
    args = parser.parse_args(argv)
    try:
        if args.command == "make-student":
            tasks = make_student(args.source, args.out, set(args.only) if args.only else None)
            print(f"wrote a student copy to {args.out} with {len(tasks)} tasks stubbed: {', '.join(tasks)}")
            return 0
        return 0 if grade(args.path, args.tasks) else 1
    except (MarkerError, FileExistsError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
