"""``check``: a student's self-grade, on their own copy, with the grader's cases and scoring.

It runs the same probe on the same visible cases as ``grade`` (``cases.py``) and compares with
the reference's values shipped in ``minigrad_course/expected/`` by the same rule
(``verdicts.judge``), so the points it shows are the grader's for the visible cases. Unlike the
grader it runs the student's code for every task at once, so a task whose prerequisite is still
a stub is reported as "blocked by ..." instead of failing with the prerequisite's error.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

from . import cases as case_mod
from . import fences
from .config import load_course
from .reports import table
from .sandbox import Limits, Sandbox
from .verdicts import SubmissionResult, TaskResult, judge


def _not_handed_out(task_id, root):
    return any("not handed out yet" in "".join(b.body) for b in fences.task_blocks(task_id, root))


def check(root: str = ".", tasks=None, stream=None) -> bool:
    """Print the table for ``tasks`` (default: all) of the copy at ``root``; True when all pass."""
    stream = stream or sys.stdout
    root = os.path.abspath(root)
    course = load_course(root)
    tasks = course.check_tasks(tasks) if tasks else list(course.tasks)
    # untouched tasks (every block still the stub); a task with some blocks written is run,
    # and a case that hits one of its stubs reports it as "blocked by" that task
    stubs = {t for t in course.tasks if all(fences.is_stub(b.body, t) for b in fences.task_blocks(t, root))}
    results, to_run = {}, []
    for t in tasks:
        r = results[t] = TaskResult(t, course.tasks[t].points)
        if t in stubs and _not_handed_out(t, root):
            r.max_points, r.status = 0.0, "not handed out yet"
        elif t in stubs:
            r.status = "not done yet (still the stub)"
        elif case_mod.load_expected(t, case_mod.visible_cases(t)) is None:
            r.status = "no expected values shipped for this task (minigrad_course/expected/): ask your instructor"
        else:
            to_run.append(t)
    if to_run:
        cases = [c for t in to_run for c in case_mod.visible_cases(t)]
        limits = Limits(wall_seconds=course.per_task_timeout * len(to_run), cpu_seconds=0, memory_bytes=0)
        with tempfile.TemporaryDirectory(prefix="minigrad-check-") as tmp:
            got, outcome = case_mod.run_probe(Sandbox("none"), root, os.path.join(tmp, "io"), cases, limits,
                                              copy_probe=False)
        by_task = {}
        for c, g in zip(cases, got):
            by_task.setdefault(c.task, []).append((c, g))
        for t in to_run:
            r, task = results[t], course.tasks[t]
            mine = by_task[t]
            judge(task, r, [c for c, _ in mine], [g for _, g in mine],
                  case_mod.load_expected(t, [c for c, _ in mine]), case_mod.compare, outcome.timed_out,
                  limits.wall_seconds)

            def waits_for(g):  # the other tasks whose stub this case ran into
                return {m for m in re.findall(r"NotImplementedError: ([\w.]+):", g.error or "")
                        if m != t and m in course.tasks}

            blockers = sorted(set().union(*(waits_for(g) for _, g in mine)))
            if blockers and not r.passed:
                r.status = "blocked by " + ", ".join(blockers) + " (not done yet)"
            elif blockers:
                r.status += "; some cases wait for " + ", ".join(blockers) + " (not done yet)"
    result = SubmissionResult(os.path.basename(root), root, results)
    print(table(result, hide_hidden=True), file=stream)
    for r in results.values():
        if r.report:
            print(f"\n{r.task}: failing cases\n" + "\n".join("  " + ln for ln in r.report.splitlines()), file=stream)
    todo = [t for t, r in results.items() if r.status not in ("passed", "not handed out yet")]
    if todo:
        print(f"\nThe task's teaching tests, with pytest's full output: python -m pytest -m {course.tasks[todo[0]].marker}",
              file=stream)
    return not todo
