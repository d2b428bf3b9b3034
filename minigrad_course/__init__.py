"""Course tooling: the tasks, their fences in the source, the student copy, self-checks,
submissions and grading (``python -m minigrad_course --help``).

Sits beside the engine, like gradcheck: it reads the source as text and runs the test suite
in subprocesses; nothing in minigrad imports it except the tutorials' "your turn" cells.
"""
from .notebook import TaskCheckFailed, TaskNotDone, rel_error, require, verdict
from .tasks import TASKS, Task

__all__ = ["TASKS", "Task", "require", "verdict", "rel_error", "TaskNotDone", "TaskCheckFailed"]
