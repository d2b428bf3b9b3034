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
