"""Runs of a tree's tests in a subprocess (pytest with the course plugin), and the ungraded
cost measurement."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from .config import Course
from .trees import make_tree
from .verdicts import GradingError


def _env(tree: str, results: str, test_timeout: float, threads: int | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST", "HYPOTHESIS", "MINIGRAD_COURSE"))}
    env.update(PYTHONPATH=tree, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               HYPOTHESIS_PROFILE="grading", MINIGRAD_COURSE_RESULTS=results, MINIGRAD_COURSE_TREE=tree,
               MINIGRAD_COURSE_TEST_TIMEOUT=str(test_timeout))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_pytest(tree: str, marker_expr: str, timeout: float, test_timeout: float, threads=None, collect_to=None,
               paths=("tests",)):
    """Run the tree's tests selected by ``marker_expr`` (in ``paths``, relative to the tree);
    returns (records, log text, timed out)."""
    with tempfile.TemporaryDirectory(prefix="minigrad-run-") as tmp:
        results = os.path.join(tmp, "results.jsonl")
        env = _env(tree, results, test_timeout, threads)
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(tmp, "hypothesis")  # nothing written into the tree
        cmd = [sys.executable, "-m", "pytest", "-q", "-rN", "--tb=long", "-p", "minigrad_course._plugin",
               "-p", "no:cacheprovider", "-o", "addopts=", "-c", os.path.join(tree, "pyproject.toml"),
               "--rootdir", tree, "-m", marker_expr, *paths]
        if collect_to:
            env["MINIGRAD_COURSE_COLLECT"] = collect_to
            cmd.insert(-1, "--collect-only")
        log_path = os.path.join(tmp, "log.txt")
        timed_out = False
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        records = []
        if os.path.exists(results):
            with open(results, encoding="utf-8") as f:
                for line in f:
                    try:
                        records.append(json.loads(line))
                    except ValueError:  # a line cut off by the kill
                        pass
        with open(log_path, encoding="utf-8", errors="replace") as f:
            log_text = f.read()
    return records, log_text, timed_out


def collect(reference: str, course: Course, tasks) -> dict:
    """{task: [(nodeid, hidden)]}: the tests of each task in the reference tree."""
    with tempfile.TemporaryDirectory(prefix="minigrad-collect-") as tmp:
        tree = make_tree(reference, os.path.join(tmp, "tree"))
        out = os.path.join(tmp, "items.jsonl")
        expr = "(" + " or ".join(course.tasks[t].marker for t in tasks) + ") and not gpu"
        _, log, _ = run_pytest(tree, expr, timeout=300, test_timeout=0, collect_to=out)
        if not os.path.exists(out):
            raise GradingError(f"grade: could not collect the reference tree's tests in {reference}:\n{log[-3000:]}")
        with open(out, encoding="utf-8") as f:
            items = [json.loads(line) for line in f]
    by_task = {t: [] for t in tasks}
    for item in items:
        for t in tasks:
            if course.tasks[t].marker in item["markers"]:
                by_task[t].append((item["nodeid"], course.hidden_marker in item["markers"]))
    empty = [t for t in tasks if not by_task[t]]
    if empty:
        raise GradingError(f"grade: the reference tree has no tests marked for {empty}")
    return by_task


# ---- cost of a task's code: time and peak memory against the reference (ungraded) ------------
COST_TASKS = ("conv.im2col", "conv.col2im", "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward")


def measure_cost(sandbox, tree: str, task_id: str, limits):
    """The cost of ``tree``'s code for ``task_id`` (``cost.measure``), run in ``sandbox``; None if it failed."""
    if task_id not in COST_TASKS:
        return None
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cost.py"), os.path.join(tree, "_course_cost.py"))
    with tempfile.TemporaryDirectory(prefix="cost-io-", dir=os.path.dirname(tree)) as io_dir:
        code = ("import json, sys; from _course_cost import measure; "
                "open('/io/cost.json', 'w').write(json.dumps(measure(sys.argv[1])))")
        sandbox.run(tree, io_dir, [sys.executable, "-c", code, task_id], {"PYTHONPATH": "/grading"}, limits)
        from .cases import _read_regular  # never follows a link the sandbox planted

        try:
            value = json.loads(_read_regular(os.path.join(io_dir, "cost.json"), 10000) or b"null")
            return {k: float(v) for k, v in value.items()} if isinstance(value, dict) else None
        except (OSError, ValueError, TypeError):
            return None
