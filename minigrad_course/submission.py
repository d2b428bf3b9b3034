"""What ``submit`` writes (a student's side), and ``fill_in``, which splices a hand-in's
blocks into a tree. How the grader reads a hand-in, whatever it is, is ``intake.py``."""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from dataclasses import dataclass

from . import fences
from .config import load_course
from .intake import block_hash, read_submission
from .tasks import TASKS

TOOL_VERSION = "2.0"


@dataclass(frozen=True)
class Submitted:
    """What ``submit`` wrote: the zip's path and manifest, and what the student should hear."""
    path: str
    manifest: dict
    problems: tuple = ()  # one line per task that is NOT in the zip, and why
    stubs: tuple = ()  # tasks handed out in this copy that are still the stub
    not_released: tuple = ()  # tasks this copy does not hand out yet (their stubs say so)

    def summary(self) -> str:
        line = f"wrote {self.path}: {len(self.manifest['tasks'])} task(s)"
        if self.stubs:
            line += f"; still stubs: {', '.join(self.stubs)}"
        if self.not_released:
            line += f"; not handed out yet (nothing to do): {', '.join(self.not_released)}"
        return line


def submit(root: str, out: str | None = None) -> Submitted:
    """Write ``submission.zip`` from the student copy at ``root``: per task file, only its
    fenced blocks, plus manifest.json."""
    from ._atomic import atomic_write

    root = os.path.abspath(root)
    course = load_course(root)
    out = out or os.path.join(root, "submission.zip")
    manifest = {"tool_version": TOOL_VERSION, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "tasks": {}}
    per_file, problems, unreleased = {}, [], []
    for task_id, task in course.tasks.items():
        path = os.path.join(root, task.file)
        if not os.path.exists(path):
            problems.append(f"{task_id}: {task.file} is missing")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                code = fences.find_task(f.read(), task.file, task_id)
        except UnicodeDecodeError as err:
            problems.append(f"{task_id}: {task.file} is not UTF-8 text (byte at offset {err.start}); save it as UTF-8")
            continue
        if not code.found:
            problems.append(code.problem)
            continue
        bodies = code.bodies
        if all(fences.is_unreleased(b, task_id) for b in bodies):
            unreleased.append(task_id)
        manifest["tasks"][task_id] = {"file": task.file, "blocks": len(bodies), "sha256": block_hash(bodies),
                                      "stub": any(fences.is_stub(b, task_id) for b in bodies)}
        chunk = per_file.setdefault(task.file, [f"# {task.file}: the task blocks of this file (submission.zip)\n"])
        for body in bodies:
            lead = next((ln[: len(ln) - len(ln.lstrip())] for ln in body if ln.strip()), "")
            chunk += ["\n", f"{lead}# BEGIN TASK {task_id}\n", *body, f"{lead}# END TASK\n"]
    if problems:
        manifest["problems"] = problems
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        for rel, chunk in per_file.items():
            z.writestr(rel, "".join(chunk))
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    stubs = tuple(t for t, e in manifest["tasks"].items() if e["stub"] and t not in unreleased)
    return Submitted(out, manifest, tuple(problems), stubs, tuple(unreleased))


def fill_in(tree: str, source: str, tasks=None) -> list:
    """Splice the blocks of the submission at ``source`` into the tree at ``tree`` (in place),
    for ``tasks`` (default: every task the submission holds). Returns the tasks filled in.
    Used to put textbook solutions into a student copy, and by the grader."""
    sub = read_submission(source)
    if sub.rejected:
        raise ValueError(f"fill_in: {sub.shown_path}: {sub.rejected}")
    done = []
    for task_id in tasks or TASKS:
        code = sub.code(task_id)
        if not code.found:
            if tasks:
                raise fences.FenceError(code.problem)
            continue
        path = os.path.join(tree, TASKS[task_id].file)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(fences.rewrite(text, TASKS[task_id].file, {task_id: code.bodies}))
        done.append(task_id)
    return done
