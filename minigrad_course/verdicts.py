"""Verdicts: what a task's run earned (TaskResult, SubmissionResult) and the scoring rule."""
from __future__ import annotations

from dataclasses import dataclass, field


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


# ---- the one scoring rule, shared by ``grade`` and ``check`` ----------------------------------
def score(points: float, passed: int, total: int, all_or_nothing: bool = False) -> float:
    """A task's points: its share of passed cases (all or nothing where the course says so)."""
    if not total or (all_or_nothing and passed < total):
        return 0.0
    return round(points * passed / total, 2)


def _informative(reason: str) -> int:
    """Sort key: a mismatch at an index first, then an error, then "did not finish"."""
    if reason.startswith("no result") or reason.startswith("not run"):
        return 2
    return 0 if ": got " in reason or "shape" in reason or "dtype" in reason else 1


def judge(task, result: TaskResult, cases, got, expected, compare, timed_out: bool = False,
          time_limit: float = 0.0) -> TaskResult:
    """Fill ``result`` from per-case outputs: each case passes when ``compare`` finds no
    difference from the reference. Visible failures are listed one line each, most
    informative first; hidden cases give only their name and outcome."""
    failing = []
    for c, g, e in zip(cases, got, expected):
        try:
            reason = compare(c, g, e)
        except (ValueError, TypeError, MemoryError) as err:  # whatever arrays it handed out: never the grader's end
            reason = f"its result could not be compared ({type(err).__name__})"
        if reason and g.arrays is None and not g.error and timed_out:
            reason = f"not run: the task's time limit of {time_limit:g} s ran out"
        ok = not reason
        result.tests.append((c.name, "passed" if ok else "failed", c.hidden))
        if c.hidden:
            result.hidden_total += 1
            result.hidden_passed += ok
        else:
            result.total += 1
            result.passed += ok
            if not ok:
                failing.append((c.name, reason))
    passed = result.passed + result.hidden_passed
    count = result.total + result.hidden_total
    result.points = score(task.points, passed, count, task.all_or_nothing)
    failing.sort(key=lambda x: _informative(x[1]))
    if failing:
        result.failed_test = failing[0][0]
        result.report = "\n".join(f"{name}: {reason}" for name, reason in failing)
    hidden_failed = [c.name for c, (_, state, h) in zip(cases, result.tests) if h and state == "failed"]
    if passed == count:
        result.status = "passed"
    else:
        result.status = f"{count - passed} of {count} cases failing"
        if hidden_failed and not failing:
            result.status = f"{len(hidden_failed)} hidden case(s) failing"
        if timed_out or any("time limit" in reason for _, reason in failing):
            result.status += " (time limit)"
    return result
