"""Grading: each task of each submission on its own, in a fresh copy of the instructor's tree.

For task X the grader copies the reference tree, replaces X's blocks with the submission's
(every other block keeps the reference solution), and runs the tests marked X there, in a
subprocess with a per-test and a per-task time limit. Nothing of the submission but the code
between X's fences is used: not its tests, conftest, pyproject, or any other file.
"""
from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from . import fences
from .config import Course, load_course, walk
from .submission import Submission, block_hash

#: what a grading tree holds of the reference tree
TREE_PARTS = ("minigrad", "unet", "tests", "pyproject.toml", "course.toml")


class GradingError(RuntimeError):
    """Grading itself failed (not the submission): the reference tree or the environment."""


@dataclass
class TaskResult:
    task: str
    max_points: float
    points: float = 0.0
    passed: int = 0
    total: int = 0
    hidden_passed: int = 0
    hidden_total: int = 0
    status: str = ""
    report: str = ""  # the first failing visible test's report, or the error
    failed_test: str = ""
    seconds: float = 0.0
    cost: dict | None = None
    tests: list = field(default_factory=list)  # (nodeid, outcome, hidden)


@dataclass
class SubmissionResult:
    id: str
    path: str
    tasks: dict  # task id -> TaskResult
    notes: list = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(r.points for r in self.tasks.values())

    @property
    def max_total(self) -> float:
        return sum(r.max_points for r in self.tasks.values())


# ---- trees and test runs ------------------------------------------------------------------
def make_tree(reference: str, dest: str) -> str:
    """Copy what the tests need of the reference tree (no instructor tooling tests, no caches)."""
    for rel in walk(reference):
        top = rel.replace(os.sep, "/").split("/")[0]
        if top not in TREE_PARTS or rel.replace(os.sep, "/").startswith("tests/instructor/"):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(reference, rel), target)
    return dest


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


def _syntax_error(path: str, rel: str, task_id: str):
    """None, or the compiler's complaint about the spliced file, placed in the student's block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        compile(text, rel, "exec")
    except SyntaxError as err:
        where = ""
        blocks = [b for b in fences.parse(text, rel) if b.task == task_id]
        for k, b in enumerate(blocks, start=1):
            if err.lineno and b.begin < err.lineno - 1 <= b.end:
                where = f" (line {err.lineno - 1 - b.begin} of your block{f' {k}' if len(blocks) > 1 else ''})"
        return (f"{task_id}: your code does not compile: {type(err).__name__} in {rel}, line {err.lineno}{where}: "
                f"{err.msg}\n    {text.splitlines()[err.lineno - 1].strip() if err.lineno else ''}")
    return None


# ---- what a student must not see: other tasks' reference code --------------------------------
def reference_secrets(reference: str, course: Course) -> dict:
    """{task: set of lines}: the lines of each task's reference blocks that appear nowhere else
    in its file. A failure report (a traceback through another task's block, or a student's
    block that reads the grader's files) must not show them."""
    secrets = {}
    for t, task in course.tasks.items():
        with open(os.path.join(reference, task.file), encoding="utf-8") as f:
            text = f.read()
        blocks = fences.parse(text, task.file)
        inside = {i for b in blocks for i in range(b.begin, b.end + 1)}
        outside = {ln.strip() for i, ln in enumerate(text.splitlines()) if i not in inside}
        secrets[t] = {ln.strip() for b in blocks if b.task == t for ln in b.body
                      if len(ln.strip()) >= 8 and ln.strip() not in outside and not ln.strip().startswith("#")}
    return secrets


def scrub(text: str, hidden: set) -> str:
    """``text`` with every line that holds a hidden line replaced by a note."""
    if not text or not hidden:
        return text
    out = []
    for line in text.splitlines():
        core = line.strip().lstrip(">").strip()
        if core and (core in hidden or any(h in line for h in hidden if len(h) >= 20)):
            out.append("    [a line of another task's reference solution: hidden]")
        else:
            out.append(line)
    return "\n".join(out)


# ---- one task -------------------------------------------------------------------------------
def grade_task(reference: str, course: Course, sub: Submission, task_id: str, tests, run_stubs=False,
               threads=None, cost_baseline=None, secrets=None) -> TaskResult:
    result = _grade_task(reference, course, sub, task_id, tests, run_stubs, threads, cost_baseline)
    if secrets:
        own = {ln.strip() for b in (sub.blocks(task_id) if not isinstance(sub.blocks(task_id), str) else [])
               for ln in b}
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
    bodies = sub.blocks(task_id)
    if isinstance(bodies, str):
        result.status, result.report = "no block", bodies
        return result
    if not run_stubs and all(fences.is_stub(b, task_id) for b in bodies):  # untouched: no need to run
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


# ---- cost of a task's code: time and peak memory against the reference (ungraded) ------------
COST_TASKS = ("conv.im2col", "conv.col2im", "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward")


def measure_cost(tree: str, task_id: str, course: Course, threads=None):
    if task_id not in COST_TASKS:
        return None
    code = "import json, sys; from minigrad_course.cost import measure; print(json.dumps(measure(sys.argv[1])))"
    env = _env(tree, os.devnull, 0, threads)
    try:
        out = subprocess.run([sys.executable, "-c", code, task_id], cwd=tree, env=env, capture_output=True,
                             text=True, timeout=min(course.per_task_timeout, 120), start_new_session=True)
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None


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
    subs = [Submission(p) for p in submissions]
    seen = {}
    for s in subs:  # two hand-ins with one name (alice/ and alice.zip) get distinct ids
        seen[s.id] = seen.get(s.id, 0) + 1
        if seen[s.id] > 1:
            s.id = f"{s.id}-{seen[s.id]}"
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
        res = SubmissionResult(s.id, s.path, {t: results[s.id][t] for t in tasks}, list(s.problems))
        if s.manifest and "tasks" in s.manifest:
            for t in tasks:
                bodies = s.blocks(t)
                entry = s.manifest["tasks"].get(t)
                if entry and not isinstance(bodies, str) and entry.get("sha256") != block_hash(bodies):
                    res.notes.append(f"{t}: the block differs from the hash in manifest.json (edited after submit?)")
        out.append(res)
    return out


# ---- reports --------------------------------------------------------------------------------
def table(result: SubmissionResult, hide_hidden=False) -> str:
    lines = [f"{result.id}: {result.total:.2f}/{result.max_total:g} points",
             f"  {'task':30s} {'points':>11s} {'tests':>7s}  result"]
    for t, r in result.tasks.items():
        shown = f"{r.passed}/{r.total}" if hide_hidden else f"{r.passed + r.hidden_passed}/{r.total + r.hidden_total}"
        cost = ""
        if r.cost:
            cost = "   [cost vs reference: " + ", ".join(f"{k} {v:.2f}x" for k, v in r.cost.items()) + "]"
        lines.append(f"  {t:30s} {r.points:6.2f}/{r.max_points:<5g} {shown:>7s}  {r.status}{cost}")
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)


def feedback_markdown(result: SubmissionResult) -> str:
    out = [f"# Feedback for {result.id}", "", f"Total: **{result.total:g} / {result.max_total:g}** points.", ""]
    out += [f"- note: {n}" for n in result.notes]
    for t, r in result.tasks.items():
        out += ["", f"## {t}: {r.points:g} / {r.max_points:g} points ({r.status})", "",
                f"Visible tests passed: {r.passed}/{r.total}."]
        if r.hidden_total:
            out.append(f"Hidden tests: {r.hidden_total} (their results are shown after the due date).")
        if r.cost:
            out.append("Cost of your code against the reference on one mid-size layer (not graded): "
                       + ", ".join(f"{k} {v:.2f}x" for k, v in r.cost.items()) + ".")
        if r.report:
            head = f"First failing check: `{r.failed_test}`" if r.failed_test else "What went wrong:"
            summary = [ln for ln in r.report.splitlines() if ln.startswith("E ")]
            if summary:
                out += ["", head, "", "```text", *summary[:12], "```", "", "The full report:"]
            else:
                out += ["", head]
            out += ["", "```text", r.report.rstrip(), "```"]
    return "\n".join(out) + "\n"


def gradescope_json(result: SubmissionResult, course: Course) -> dict:
    tests = []
    for n, (t, r) in enumerate(result.tasks.items(), start=1):
        task = course.tasks[t]
        counted = [x for x in r.tests if x[1] != "skipped"]
        n_hidden = sum(1 for x in counted if x[2])
        split = n_hidden and not task.all_or_nothing and len(counted)
        visible_max = task.points * (len(counted) - n_hidden) / len(counted) if split else task.points
        visible_score = (task.points * r.passed / len(counted)) if split else r.points
        out = f"{r.status}. Visible tests passed: {r.passed}/{r.total}."
        if r.report:
            out += f"\n\n{('First failing check: ' + r.failed_test) if r.failed_test else 'What went wrong:'}\n{r.report}"
        tests.append({"name": t, "number": str(n), "score": round(visible_score, 4), "max_score": round(visible_max, 4),
                      "status": "passed" if visible_score >= visible_max - 1e-9 else "failed",
                      "output": out, "visibility": "visible"})
        if split:
            hidden_max = task.points - visible_max
            hidden_score = task.points * r.hidden_passed / len(counted)
            tests.append({"name": f"{t} (hidden tests)", "number": f"{n}.h", "score": round(hidden_score, 4),
                          "max_score": round(hidden_max, 4),
                          "status": "passed" if hidden_score >= hidden_max - 1e-9 else "failed",
                          "output": f"Hidden tests passed: {r.hidden_passed}/{n_hidden}.",
                          "visibility": "after_due_date"})
    return {"score": round(result.total, 4), "output": "\n".join(result.notes) or f"{result.total:g}/{result.max_total:g} points",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def write_outputs(results, course: Course, out_dir: str):
    """grades.csv, and per submission results.json (Gradescope's format) and feedback.md."""
    from ._atomic import atomic_write

    os.makedirs(out_dir, exist_ok=True)
    tasks = list(results[0].tasks) if results else []
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["submission", *tasks, "total", "max_total"])
    for r in results:
        w.writerow([r.id, *(f"{r.tasks[t].points:g}" for t in tasks), f"{r.total:g}", f"{r.max_total:g}"])
    atomic_write(os.path.join(out_dir, "grades.csv"), lambda f: f.write(buf.getvalue().encode("utf-8")))
    for r in results:
        folder = os.path.join(out_dir, r.id)
        payload = json.dumps(gradescope_json(r, course), indent=2) + "\n"
        atomic_write(os.path.join(folder, "results.json"), lambda f, p=payload: f.write(p.encode("utf-8")))
        md = feedback_markdown(r)
        atomic_write(os.path.join(folder, "feedback.md"), lambda f, m=md: f.write(m.encode("utf-8")))
