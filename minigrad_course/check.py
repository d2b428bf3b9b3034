"""``check``: a student's self-grade, on their own copy, with the grader's table.

Unlike the grader, it runs the copy's own (visible) tests on all of the student's code at
once, so a task whose prerequisite is still a stub is reported as "blocked by ..." instead of
failing with the prerequisite's NotImplementedError.
"""
from __future__ import annotations

import re

from . import fences
from .config import load_course
from .reports import table
from .runs import run_pytest
from .verdicts import SubmissionResult, TaskResult


def _not_handed_out(task_id, root):
    return any("not handed out yet" in "".join(b.body) for b in fences.task_blocks(task_id, root))


def check(root: str = ".", tasks=None, stream=None) -> bool:
    """Print the table for ``tasks`` (default: all) of the copy at ``root``; True when all pass."""
    import os
    import sys

    stream = stream or sys.stdout
    root = os.path.abspath(root)
    course = load_course(root)
    tasks = course.check_tasks(tasks) if tasks else list(course.tasks)
    # untouched tasks (every block still the stub); a task with some blocks written is run,
    # and a test that hits one of its stubs reports it as "blocked by" that task
    stubs = {t for t in course.tasks if all(fences.is_stub(b.body, t) for b in fences.task_blocks(t, root))}
    results, to_run = {}, []
    for t in tasks:
        task = course.tasks[t]
        r = results[t] = TaskResult(t, task.points)
        missing = [p for p in task.prerequisites if p in stubs]
        if t in stubs and _not_handed_out(t, root):
            r.max_points, r.status = 0.0, "not handed out yet"
        elif t in stubs:
            r.status = "not done yet (still the stub)"
        elif missing:
            r.status = "blocked by " + ", ".join(missing) + " (not done yet)"
        else:
            to_run.append(t)
    if to_run:
        expr = "(" + " or ".join(course.tasks[t].marker for t in to_run) + ") and not gpu"
        records, log, timed_out = run_pytest(root, expr, course.per_task_timeout * len(to_run),
                                             course.per_test_timeout)
        for t in to_run:
            r, task = results[t], course.tasks[t]
            mine = [x for x in records if task.marker in x["markers"] and x["when"] != "collect"]
            outcome = {}
            for x in mine:
                if x["outcome"] == "failed" or x["nodeid"] not in outcome:
                    outcome[x["nodeid"]] = x
            counted = [x for x in outcome.values() if x["outcome"] != "skipped"]
            r.total = len(counted)
            r.passed = sum(x["outcome"] == "passed" for x in counted)
            failed = [x for x in counted if x["outcome"] == "failed"]
            if r.total and not (task.all_or_nothing and failed):
                r.points = round(task.points * r.passed / r.total, 2)

            def waits_for(x):  # the other tasks whose stub this failed test ran into
                return {m for m in re.findall(r"NotImplementedError: ([\w.]+):", x["report"])
                        if m != t and m in course.tasks}

            waiting = [x for x in failed if waits_for(x)]
            real = [x for x in failed if not waits_for(x)]
            blockers = sorted(set().union(*(waits_for(x) for x in waiting))) if waiting else []
            wait = f"{len(waiting)} test(s) wait for " + ", ".join(blockers) + " (not done yet)" if waiting else ""
            if not records:
                r.status = "error: the tests did not run"
                r.report = log[-3000:]
            elif not r.total:
                r.status = "no tests ran"
            elif real:
                r.status = f"{len(real)} failing" + (f"; {wait}" if wait else "")
                r.failed_test, r.report = real[0]["nodeid"], real[0]["report"]
            elif waiting and not r.passed:
                r.status = "blocked by " + ", ".join(blockers) + " (not done yet)"
            elif waiting:
                r.status = f"passed so far; {wait}"
            else:
                r.status = "passed"
        collect_errors = [x for x in records if x["when"] == "collect"]
        if collect_errors:
            print("The tests could not be collected:\n" + collect_errors[0]["report"][-3000:], file=stream)
    result = SubmissionResult(os.path.basename(root), root, results)
    print(table(result, hide_hidden=True), file=stream)
    for r in results.values():
        if r.report and r.failed_test:
            lines = [ln for ln in r.report.splitlines() if ln.startswith("E ")][:8] or r.report.splitlines()[-8:]
            print(f"\n{r.task}: first failing test {r.failed_test}\n" + "\n".join(lines), file=stream)
    todo = [t for t, r in results.items() if r.status not in ("passed", "not handed out yet")]
    if todo:
        print(f"\nFull output of a task's tests: python -m pytest -m {course.tasks[todo[0]].marker}", file=stream)
    return not todo
