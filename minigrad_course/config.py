"""The course file, ``course.toml`` at the root of the tree: the one place that states what
the instructor decides: the releases in order, and for every task its points and release
(``all_or_nothing`` and ``prerequisites`` where they differ from ``tasks.py``), and the time
limits. ``tasks.py`` states what the source fixes (files, functions, hints, notebooks) and no
points or releases. A course file without a task's points or release is an error naming them.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
from dataclasses import dataclass, field

from .tasks import DEFAULT_TASKS

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: paths (relative to the root) that are instructor material: never in a student copy,
#: never in a grading tree's test run
INSTRUCTOR_PATHS = (".ci", "docs/instructors.md", "docs/instructor", "tests/instructor", "tests/hidden")
#: the engine's accelerated path and its tests: never in a student copy nor in a grading tree, so
#: that there every op runs the task blocks (minigrad.backends.accelerated falls back without it)
ACCELERATED_PATHS = ("minigrad/accelerated", "unet/accelerated.py", "tests/test_accelerated.py")
#: folders that are never copied anywhere (caches, environments, outputs)
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".hypothesis", "runs", "build", "dist",
             ".ipynb_checkpoints", "submissions", "grades"}

_TASK_KEYS = {"points", "prerequisites", "release", "all_or_nothing"}


class CourseError(ValueError):
    """A course file that does not say what the tooling needs; the message names the key."""


@dataclass
class Course:
    name: str = "minigrad course"
    tasks: dict = field(default_factory=dict)  # id -> Task, in teaching order
    releases: tuple = ()  # stated in course.toml
    per_test_timeout: float = 60.0
    per_task_timeout: float = 300.0
    hidden_marker: str = "hidden"

    def released_tasks(self, release: str | None) -> list:
        """The tasks handed out up to and including ``release`` (all of them for None)."""
        if release is None:
            return list(self.tasks)
        self.check_release(release)
        upto = set(self.releases[: self.releases.index(release) + 1])
        return [t for t, task in self.tasks.items() if task.release in upto]

    def tasks_of(self, release: str) -> list:
        """The tasks of exactly one release group."""
        self.check_release(release)
        return [t for t, task in self.tasks.items() if task.release == release]

    def check_release(self, release):
        if release not in self.releases:
            raise CourseError(f"unknown release {release!r}; the course file lists {list(self.releases)}")

    def check_tasks(self, task_ids, what="task"):
        """The task ids named, in the order given; a pattern such as ``conv.*`` names every match."""
        out, unknown = [], []
        for pattern in task_ids:
            matches = [t for t in self.tasks if fnmatch.fnmatchcase(t, pattern)]
            if not matches:
                unknown.append(pattern)
            out += [t for t in matches if t not in out]
        if unknown:
            raise CourseError(f"unknown {what} id(s) {unknown}; known: {', '.join(self.tasks)}")
        return out


def load_course(root: str) -> Course:
    """The course of the tree at ``root``, from its course.toml (CourseError naming what is wrong)."""
    path = os.path.join(root, "course.toml")
    if not os.path.exists(path):
        raise CourseError(f"{path} is missing: the course file states every task's points and release")
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise CourseError(f"{path}: {err}") from None
    head = data.get("course", {})
    course = Course()
    for key in ("name", "per_test_timeout", "per_task_timeout", "hidden_marker"):
        if key in head:
            setattr(course, key, type(getattr(course, key))(head[key]))
    releases = head.get("releases")
    if not isinstance(releases, list) or not releases or not all(isinstance(r, str) for r in releases):
        raise CourseError(f"{path}: [course] releases must list the release names in order "
                          f"(e.g. [\"week1\", \"week2\"]), got {releases!r}")
    course.releases = tuple(releases)
    stated = data.get("tasks", {})
    known = {t.id for t in DEFAULT_TASKS}
    for task_id, values in stated.items():
        if task_id not in known:
            raise CourseError(f"{path}: [tasks.\"{task_id}\"] is not a task of this source; known: {sorted(known)}")
        bad = set(values) - _TASK_KEYS
        if bad:
            raise CourseError(f"{path}: [tasks.\"{task_id}\"] has unknown key(s) {sorted(bad)}; allowed: {sorted(_TASK_KEYS)}")
    missing = [t.id for t in DEFAULT_TASKS if not {"points", "release"} <= set(stated.get(t.id, {}))]
    if missing:
        raise CourseError(f"{path}: every task needs a [tasks.\"<id>\"] table with points and release; "
                          f"missing for {', '.join(missing)}")
    for task in DEFAULT_TASKS:
        values = dict(stated[task.id])
        where = f"{path}: [tasks.\"{task.id}\"]"
        points = values["points"]
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise CourseError(f"{where} points must be a number >= 0, got {points!r}")
        values["points"] = float(points)
        if not isinstance(values["release"], str):
            raise CourseError(f"{where} release must be a release name, got {values['release']!r}")
        if not isinstance(values.get("all_or_nothing", False), bool):
            raise CourseError(f"{where} all_or_nothing must be true or false, got {values['all_or_nothing']!r}")
        if "prerequisites" in values:
            values["prerequisites"] = tuple(values["prerequisites"])
            for p in values["prerequisites"]:
                if p not in known:
                    raise CourseError(f"{where} prerequisite {p!r} is not a task")
        course.tasks[task.id] = dataclasses.replace(task, **values)
    for task in course.tasks.values():
        if task.release not in course.releases:
            raise CourseError(f"{path}: release {task.release!r} of {task.id} is not in releases {list(course.releases)}")
    return course


def is_instructor_path(rel: str) -> bool:
    rel = rel.replace(os.sep, "/")
    return any(rel == p or rel.startswith(p + "/") for p in INSTRUCTOR_PATHS)


def is_accelerated_path(rel: str) -> bool:
    rel = rel.replace(os.sep, "/")
    return any(rel == p or rel.startswith(p + "/") for p in ACCELERATED_PATHS)


def walk(root: str):
    """Relative paths of the files of a tree, sorted, skipping caches and environments."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            yield os.path.relpath(os.path.join(dirpath, name), root)
