"""Grading: each task of each submission on its own, in a fresh copy of the instructor's tree.

For task X the grader copies the reference tree, replaces X's blocks with the submission's
(every other block keeps the reference solution), and runs the tests marked X there, in a
subprocess with a per-test and a per-task time limit. Nothing of the submission but the code
between X's fences is used: not its tests, conftest, pyproject, or any other file.
"""
from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time

from . import fences
from .config import Course, load_course
from .reports import (feedback_markdown, gradescope_json, reference_secrets, scrub, table,  # noqa: F401
                      write_outputs)
from .runs import COST_TASKS, collect, measure_cost, run_pytest
from .intake import Submission, read_class
from .trees import TREE_PARTS, _syntax_error, make_tree  # noqa: F401
from .verdicts import GradingError, SubmissionResult, TaskResult


# ---- one task -------------------------------------------------------------------------------
def grade_task(reference: str, course: Course, sub: Submission, task_id: str, tests, run_stubs=False,
               threads=None, cost_baseline=None, secrets=None) -> TaskResult:
    result = _grade_task(reference, course, sub, task_id, tests, run_stubs, threads, cost_baseline)
    if secrets:
        own = sub.code(task_id).lines()
        hidden = set().union(*(v for t, v in secrets.items() if t != task_id)) - own
        result.report = scrub(result.report, hidden)
    return result


def _grade_task(reference: str, course: Course, sub: Submission, task_id: str, tests, run_stubs=False,
                threads=None, cost_baseline=None) -> TaskResult:
    task = course.tasks[task_id]
    result = TaskResult(task_id, task.points)
    visible = [n for n, hidden in tests if not hidden]
    hidden = {n for n, h in tests if h}
    result.total, result.hidden_total = len(visible), len(hidden)
    code = sub.code(task_id)
    if not code.found:
        result.status, result.report = ("rejected" if sub.rejected else "no block"), code.problem
        return result
    bodies = code.bodies
    if not run_stubs and code.is_stub():  # untouched: no need to run
        raise_line = next((ln.strip() for b in bodies for ln in b if "NotImplementedError" in ln), "")
        result.status = "not done (still the stub)"
        result.report = f"{task_id}: not attempted: the block still raises the stub's error\n    {raise_line}"
        return result
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"minigrad-grade-{task_id}-") as tmp:
        tree = make_tree(reference, os.path.join(tmp, "tree"))
        path = os.path.join(tree, task.file)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            spliced = fences.rewrite(text, task.file, {task_id: bodies})
        except fences.FenceError as err:
            result.status, result.report = "wrong number of blocks", str(err)
            return result
        with open(path, "w", encoding="utf-8") as f:
            f.write(spliced)
        error = _syntax_error(path, task.file, task_id)
        if error:
            result.status, result.report = "syntax error", error
            return result
        files = sorted({nodeid.split("::")[0] for nodeid, _ in tests})  # only the modules holding its tests
        records, log, timed_out = run_pytest(tree, f"{task.marker} and not gpu", course.per_task_timeout,
                                             course.per_test_timeout, threads, paths=files)
        if cost_baseline is not None:
            result.cost = measure_cost(tree, task_id, course, threads)
    result.seconds = time.perf_counter() - start
    outcome = {}
    collect_errors = [r for r in records if r["when"] == "collect"]
    for r in records:
        if r["when"] == "collect":
            continue
        if r["outcome"] == "failed" or r["nodeid"] not in outcome:
            outcome[r["nodeid"]] = r
    first_failure, limit_hit = None, timed_out
    for nodeid, _ in tests:
        r = outcome.get(nodeid)
        if r is None:
            why = (f"not run: the task's time limit of {course.per_task_timeout:g} s ran out" if timed_out
                   else "not run: the test run stopped before it")
            r = {"outcome": "failed", "report": why}
        state = r["outcome"]
        limit_hit = limit_hit or (state == "failed" and "TestTimeLimit" in r["report"])
        is_hidden = nodeid in hidden
        result.tests.append((nodeid, state, is_hidden))
        if state == "passed":
            if is_hidden:
                result.hidden_passed += 1
            else:
                result.passed += 1
        elif state == "failed" and not is_hidden and first_failure is None:
            first_failure = (nodeid, r["report"])
    # a skipped test is not a passed one (a grading environment without PyTorch would skip the
    # oracle tests): it counts against the task, and the status says so
    skipped = [n for n, s, _ in result.tests if s == "skipped"]
    counted = len(tests)
    passed_all = result.passed + result.hidden_passed
    if counted and not (task.all_or_nothing and passed_all < counted):
        result.points = round(task.points * passed_all / counted, 2)
    if collect_errors and not records[len(collect_errors):]:
        result.status, result.report = "error", collect_errors[0]["report"]
    elif not records:
        result.status = "error"
        result.report = ("the tests did not start; the test runner said:\n" + log[-4000:]) if not timed_out else \
            f"the task's time limit of {course.per_task_timeout:g} s ran out before any test finished"
    elif first_failure:
        result.failed_test, result.report = first_failure
        result.status = f"{len(tests) - passed_all - len(skipped)} failing"
        if limit_hit:
            result.status += " (time limit)"
    elif passed_all + len(skipped) < len(tests):
        result.status = f"{len(tests) - passed_all - len(skipped)} hidden failing"
    else:
        result.status = "passed"
    if skipped:
        result.status += f" ({len(skipped)} skipped, counted as not passed: is PyTorch installed?)"
    if result.cost is not None and cost_baseline:
        result.cost = {k: result.cost[k] / cost_baseline[k] for k in result.cost if cost_baseline.get(k)}
    return result


# ---- many submissions -----------------------------------------------------------------------
def grade(reference: str, submissions, tasks=None, release=None, jobs=None, run_stubs=False, cost=True,
          progress=None) -> list:
    """Grade every submission on every selected task; returns [SubmissionResult]."""
    reference = os.path.abspath(reference)
    if not os.path.isdir(os.path.join(reference, "minigrad")):
        raise GradingError(f"grade: {reference} is not the instructor's tree (no minigrad/ folder); run grade there")
    course = load_course(reference)
    stubs = [t for t in course.tasks if fences.block_is_stub(t, reference)]
    if stubs:
        raise GradingError(f"grade: {reference} holds stubs ({', '.join(stubs[:3])}{', ...' if len(stubs) > 3 else ''}): "
                           "it is a student copy, not the instructor's reference tree; run grade in the reference tree")
    probe = subprocess.run([sys.executable, "-c", "import torch, hypothesis, pytest"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise GradingError("grade: the grading environment lacks PyTorch, hypothesis or pytest (the tests' oracle and "
                           f"tools): pip install -e \".[dev]\" in the reference tree\n{probe.stderr.strip()[-500:]}")
    if tasks:
        tasks = course.check_tasks(tasks)
    elif release:
        tasks = course.tasks_of(release)
    else:
        tasks = list(course.tasks)
    subs = read_class(submissions)  # distinct ids; a malformed hand-in comes back rejected, never raises
    tests = collect(reference, course, tasks)
    jobs = jobs or max(1, min(os.cpu_count() or 1, 4))
    threads = 1 if jobs > 1 else None
    baseline = {}
    if cost:
        with tempfile.TemporaryDirectory(prefix="minigrad-cost-") as tmp:
            tree = make_tree(reference, os.path.join(tmp, "tree"))
            for t in tasks:
                if t in COST_TASKS:
                    baseline[t] = measure_cost(tree, t, course, threads)
    secrets = reference_secrets(reference, course)
    results = {s.id: {} for s in subs}
    pairs = [(s, t) for s in subs for t in tasks]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_task, reference, course, s, t, tests[t], run_stubs, threads,
                               baseline.get(t) if cost else None, secrets): (s, t) for s, t in pairs}
        for fut in concurrent.futures.as_completed(futures):
            s, t = futures[fut]
            results[s.id][t] = fut.result()
            if progress:
                progress(s, t, results[s.id][t])
    out = []
    for s in subs:
        out.append(SubmissionResult(s.id, s.shown_path, {t: results[s.id][t] for t in tasks},
                                    list(s.notes) + s.manifest_notes(tasks)))
    return out
