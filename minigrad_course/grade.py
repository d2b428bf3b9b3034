"""Grading: each task of each submission on its own, in a fresh tree and a fresh sandbox.

For task X the grader copies the reference tree, replaces X's blocks with the submission's
(every other block keeps the reference solution; X's reference code is nowhere in the copy),
and runs ``probe.py`` on X's cases there, inside a sandbox (``sandbox.py``): the probe hands
out arrays, and this process, outside, compares them with the reference's outputs on the same
inputs (``cases.py``, ``verdicts.judge``). Nothing of the submission but the code between X's
fences is used, and nothing the submitted code does inside its sandbox can decide a verdict.
"""
from __future__ import annotations

import concurrent.futures
import os
import queue
import shutil
import tempfile
import time

from . import cases as case_mod
from . import fences
from .config import Course, load_course
from .intake import Submission, read_class
from .reports import (feedback_markdown, gradescope_json, reference_secrets, table,  # noqa: F401
                      write_outputs)
from .runs import COST_TASKS
from .sandbox import Limits, Sandbox, SandboxError, find
from .trees import TREE_PARTS, _syntax_error, make_tree  # noqa: F401
from .verdicts import GradingError, SubmissionResult, TaskResult, judge


# ---- one task -------------------------------------------------------------------------------
class Grader:
    """What the runs of one ``grade`` call share: the course, the sandbox, a pristine reference
    tree (for expected values), the limits, and slots (one per concurrent run: its uid)."""

    def __init__(self, reference: str, course: Course, sandbox: Sandbox, workdir: str, jobs: int,
                 memory_bytes: int = 4 << 30):
        self.reference, self.course, self.sandbox, self.workdir = reference, course, sandbox, workdir
        self.reference_tree = make_tree(reference, os.path.join(workdir, "reference"))
        self.limits = Limits(wall_seconds=course.per_task_timeout, cpu_seconds=int(course.per_task_timeout) + 10,
                             memory_bytes=memory_bytes)
        self.slots = queue.Queue()
        for k in range(jobs):
            self.slots.put(k)
        self.expected_lock = __import__("threading").Lock()

    def cases(self, task_id: str) -> list:
        return case_mod.visible_cases(task_id) + case_mod.hidden_cases(self.reference, task_id)

    def expected(self, task_id: str, cases) -> list:
        with self.expected_lock:  # once per task and reference tree
            try:
                return case_mod.expected_outputs(self.sandbox, self.reference_tree, task_id, cases, self.limits)
            except RuntimeError as err:
                raise GradingError(f"grade: {err}") from err


def grade_task(grader: Grader, sub: Submission, task_id: str, run_stubs=False, secrets=None) -> TaskResult:
    result = _grade_task(grader, sub, task_id, run_stubs)
    if secrets:  # no reference line, hidden test or grader's path in what the student sees
        result.report = secrets.scrub(result.report, own=sub.code(task_id).lines())
    return result


def _grade_task(grader: Grader, sub: Submission, task_id: str, run_stubs=False) -> TaskResult:
    course = grader.course
    task = course.tasks[task_id]
    result = TaskResult(task_id, task.points)
    cases = grader.cases(task_id)
    result.total = sum(not c.hidden for c in cases)
    result.hidden_total = sum(c.hidden for c in cases)
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
    if not cases:
        raise GradingError(f"grade: task {task_id} has no grading cases (minigrad_course/cases.py)")
    expected = grader.expected(task_id, cases)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="run-", dir=grader.workdir) as tmp:
        os.chmod(tmp, 0o711)
        tree = make_tree(grader.reference, os.path.join(tmp, "tree"))
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
        if error:  # every case fails; the compiler's complaint is the report
            result.total, result.hidden_total = 0, 0
            judge(task, result, cases, [case_mod.CaseOutput(None, "does not compile")] * len(cases), expected,
                  case_mod.compare)
            result.status, result.report, result.failed_test = "syntax error", error, ""
            return result
        slot = grader.slots.get()
        try:
            got, outcome = case_mod.run_probe(grader.sandbox, tree, os.path.join(tmp, "io"), cases, grader.limits, slot)
        finally:
            grader.slots.put(slot)
    result.seconds = time.perf_counter() - start
    result.total, result.hidden_total = 0, 0
    return judge(task, result, cases, got, expected, case_mod.compare, outcome.timed_out, grader.limits.wall_seconds)


# ---- many submissions -----------------------------------------------------------------------
def grade(reference: str, submissions, tasks=None, release=None, jobs=None, run_stubs=False, cost=False,
          progress=None, sandbox: str = "auto", sandbox_image: str = "", unsafe_no_sandbox: bool = False) -> list:
    """Grade every submission on every selected task; returns [SubmissionResult].

    ``sandbox``: "auto" (bubblewrap), "bwrap", "docker", "podman" (with ``sandbox_image``),
    "user" (root only: an unprivileged uid and limits, no namespaces) or "none"; without a
    working sandbox grading refuses unless ``unsafe_no_sandbox``, and then every report says so.
    """
    reference = os.path.abspath(reference)
    if not os.path.isdir(os.path.join(reference, "minigrad")):
        raise GradingError(f"grade: {reference} is not the instructor's tree (no minigrad/ folder); run grade there")
    course = load_course(reference)
    stubs = [t for t in course.tasks if fences.block_is_stub(t, reference)]
    if stubs:
        raise GradingError(f"grade: {reference} holds stubs ({', '.join(stubs[:3])}{', ...' if len(stubs) > 3 else ''}): "
                           "it is a student copy, not the instructor's reference tree; run grade in the reference tree")
    try:
        box = find(sandbox, image=sandbox_image, unsafe=unsafe_no_sandbox,
                   hide=[reference, os.path.expanduser("~")])
    except SandboxError as err:
        raise GradingError(str(err)) from err
    if tasks:
        tasks = course.check_tasks(tasks)
    elif release:
        tasks = course.tasks_of(release)
    else:
        tasks = list(course.tasks)
    uncovered = [t for t in tasks if not case_mod.visible_cases(t) and not case_mod.hidden_cases(reference, t)]
    if uncovered:
        raise GradingError(f"grade: no grading cases for {', '.join(uncovered)}: add them to minigrad_course/cases.py "
                           "(its docstring says how)")
    subs = read_class(submissions)  # distinct ids; a malformed hand-in comes back rejected, never raises
    jobs = jobs or max(1, min(os.cpu_count() or 1, 4))
    secrets = reference_secrets(reference, course)
    results = {s.id: {} for s in subs}
    pairs = [(s, t) for s in subs for t in tasks]
    workdir = tempfile.mkdtemp(prefix="minigrad-grade-")
    reference_mode = os.stat(reference).st_mode & 0o7777
    try:
        os.chmod(workdir, 0o711)  # runs with their own uid pass through, and list nothing
        if box.kind == "user":  # no mount namespace: other users must not read the reference tree
            os.chmod(reference, reference_mode & ~0o077)
        box.prepare(workdir)
        grader = Grader(reference, course, box, workdir, jobs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_task, grader, s, t, run_stubs, secrets): (s, t) for s, t in pairs}
            for fut in concurrent.futures.as_completed(futures):
                s, t = futures[fut]
                results[s.id][t] = fut.result()
                if progress:
                    progress(s, t, results[s.id][t])
    finally:
        os.chmod(reference, reference_mode)
        shutil.rmtree(workdir, ignore_errors=True)
    if cost:
        _add_cost(reference, course, box, subs, tasks, results)
    warning = [] if box.safe else [box.describe()]
    out = []
    for s in subs:
        out.append(SubmissionResult(s.id, s.shown_path, {t: results[s.id][t] for t in tasks},
                                    warning + list(s.notes) + s.manifest_notes(tasks)))
    return out


def _add_cost(reference, course, box, subs, tasks, results):
    """The ungraded time/memory comparison (opt-in: noise on a loaded machine), sandboxed too."""
    from .runs import measure_cost

    wanted = [t for t in tasks if t in COST_TASKS]
    if not wanted:
        return
    workdir = tempfile.mkdtemp(prefix="minigrad-cost-")
    try:
        os.chmod(workdir, 0o711)
        box.prepare(workdir)
        limits = Limits(wall_seconds=min(course.per_task_timeout, 120), cpu_seconds=120)
        base_tree = make_tree(reference, os.path.join(workdir, "reference"))
        baseline = {t: measure_cost(box, base_tree, t, limits) for t in wanted}
        for s in subs:
            for t in wanted:
                code = s.code(t)
                if not code.found or code.is_stub() or not baseline.get(t):
                    continue
                tree = make_tree(reference, os.path.join(workdir, f"{s.id}-{t}"))
                path = os.path.join(tree, course.tasks[t].file)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                try:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(fences.rewrite(text, course.tasks[t].file, {t: code.bodies}))
                except fences.FenceError:
                    continue
                mine = measure_cost(box, tree, t, limits)
                if mine:
                    results[s.id][t].cost = {k: mine[k] / baseline[t][k] for k in mine if baseline[t].get(k)}
                shutil.rmtree(tree, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
