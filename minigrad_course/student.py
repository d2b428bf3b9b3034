"""The student copy: every task block a stub (unless revealed), no instructor material,
hidden tests stripped, and a generated STUDENT.md."""
from __future__ import annotations

import os
import re
import shutil
import tempfile

from . import fences
from .config import Course, CourseError, is_accelerated_path, is_instructor_path, load_course, walk
from .hidden import hidden_nodes
from .tasks import UNET_TRAIN_TASKS

README_INSTRUCTOR = re.compile(r"<!-- instructor-only -->.*?<!-- /instructor-only -->\n?", re.S)
CHECK = "python -m minigrad_course check"
SUBMIT = "python -m minigrad_course submit"


def strip_hidden_tests(text: str, path: str, marker: str = "hidden"):
    """``text`` without the top-level tests decorated with ``pytest.mark.<marker>``; None when
    the whole module is hidden (``pytestmark`` names the marker)."""
    nodes = hidden_nodes(text, path, marker)
    if nodes is None:
        return None
    lines = text.splitlines(keepends=True)
    for node in sorted(nodes, key=lambda n: n.start, reverse=True):
        del lines[node.start - 1 : node.end]
    return "".join(lines)


def student_text(rel: str, text: str, course: Course, handed_out, reveal) -> str | None:
    """What the student copy holds for one file of the reference tree (None: leave it out)."""
    if rel in {t.file for t in course.tasks.values()}:
        def stub(block):
            if block.task in reveal:
                return block.body
            if block.task in handed_out:
                return fences.stub_lines(block.task, block.indent)
            return fences.unreleased_stub_lines(block.task, block.indent, course.tasks[block.task].release)
        text = fences.rewrite(text, rel, {t: stub for t in course.tasks})
    if rel.replace(os.sep, "/").startswith("tests/") and rel.endswith(".py"):
        return strip_hidden_tests(text, rel, course.hidden_marker)
    if rel == "README.md":
        text = README_INSTRUCTOR.sub("", text)
        note = ("\n**Course copy: start with [STUDENT.md](STUDENT.md)** (your tasks, in order, and how to check "
                "and submit them).\n\n" + what_works(course, handed_out, reveal, level="##"))
        text = re.sub(r"^(# .*\n)", lambda m: m.group(1) + note, text, count=1, flags=re.M)
    return text


def what_works(course: Course, handed_out, reveal=(), level: str = "##") -> str:
    """What runs in a copy that hands out ``handed_out``: the README's commands meet the
    stubs of tasks not done or not handed out yet, and say so here rather than surprise."""
    handed, reveal = set(handed_out), set(reveal)
    later = [t for t in course.tasks if t not in handed and t not in reveal]
    by_release = {}
    for t in later:
        by_release.setdefault(course.tasks[t].release, []).append(t)
    pending = "; ".join(f"{r}: {', '.join(f'`{t}`' for t in ts)}" for r, ts in by_release.items())
    needs = [t for t in UNET_TRAIN_TASKS if t not in reveal]
    later_needs = [t for t in needs if t in later]
    lines = [f"{level} What works in this copy", ""]
    if later:
        lines.append(f"This copy hands out {len(handed)} of the course's {len(course.tasks)} tasks; the others are "
                     f"stubs that say \"not handed out yet\" and come with later releases ({pending}).")
    else:
        lines.append(f"This copy hands out all {len(course.tasks)} of the course's tasks.")
    lines += ["",
              "* The test command (`python -m pytest -q -m \"not gpu\"`) runs the whole suite: every test that "
              "runs a task you have not written yet" + (" or that is not handed out yet" if later else "")
              + " fails with that task's `NotImplementedError`. Those failures are expected; the suite passes "
              "completely once every task is done. One task's tests: `python -m pytest -m conv_im2col`.",
              f"* `{CHECK}` scores the tasks handed out with the grader's visible cases"
              + ("; the others show as \"not handed out yet\", with no points at stake" if later else "") + ".",
              "* `unet train` (and notebook 06) trains the U-Net on your own code, so it needs "
              + (", ".join(f"`{t}`" for t in needs) or "nothing of yours")
              + " (with `--optimizer sgd`, `optim.sgd` instead of `optim.adam`); until they are done it stops "
              "at the first one's `NotImplementedError`"
              + (f". {len(later_needs)} of them come with later releases, so it cannot run in this copy yet."
                 if later_needs else "."),
              ""]
    return "\n".join(lines)


def make_student(source: str, out: str, release: str | None = None, only=None, reveal=()) -> list:
    """Write a student copy of the reference tree ``source`` to ``out`` (which must not
    exist or be empty). Returns the task ids handed out."""
    source, out = os.path.abspath(source), os.path.abspath(out)
    course = load_course(source)
    if only:
        handed_out = course.check_tasks(only)
    else:
        handed_out = course.released_tasks(release)
    reveal = set(course.check_tasks(reveal, "--reveal task"))
    if os.path.exists(out) and os.listdir(out):
        raise FileExistsError(f"make-student: output folder '{out}' exists and is not empty")
    if out == source or out.startswith(source + os.sep):
        raise CourseError(f"make-student: the output folder '{out}' must lie outside the reference tree")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".student-", dir=parent)  # renamed into place at the end
    try:
        for rel in walk(source):
            if is_instructor_path(rel) or is_accelerated_path(rel):
                continue
            src = os.path.join(source, rel)
            dst = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if rel.endswith((".py", ".md")):
                with open(src, encoding="utf-8") as f:
                    text = student_text(rel, f.read(), course, set(handed_out), reveal)
                if text is None:
                    continue
                with open(dst, "w", encoding="utf-8") as f:
                    f.write(text)
            else:
                shutil.copy2(src, dst)
        with open(os.path.join(staging, "STUDENT.md"), "w", encoding="utf-8") as f:
            f.write(student_page(course, handed_out, reveal))
        if os.path.exists(out):
            os.rmdir(out)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return handed_out


def student_page(course: Course, handed_out, reveal=()) -> str:
    """STUDENT.md: the tasks in order, where each lives, and the commands."""
    rows = []
    for n, (task_id, task) in enumerate(course.tasks.items(), start=1):
        if task_id in reveal:
            state = "solution handed out"
        elif task_id in handed_out:
            state = "**to do**"
        else:
            state = f"later ({task.release})"
        prereq = ", ".join(f"`{p}`" for p in task.prerequisites) or "none"
        rows.append(f"| {n} | `{task_id}` | {state} | `{task.file}`: {task.function} | {prereq} | "
                    f"[{os.path.basename(task.notebook)}]({task.notebook}) | {task.points:g} |")
    total = sum(course.tasks[t].points for t in handed_out)
    return f"""# {course.name}: your tasks

You build the pieces of a deep-learning framework, and then a U-Net, yourself. Each task is a
block of code in the real source, fenced like this:

```python
        # BEGIN TASK conv.im2col
        # Your code goes here. Only the lines between this task's BEGIN/END TASK fences are graded.
        raise NotImplementedError("conv.im2col: ...")
        # END TASK
```

Replace the `raise` with your code. **Only the code between a task's fences is graded**: the
grader copies those lines into its own copy of the project and runs them on its grading cases
(inputs it feeds your code, outputs it compares with the reference's), so anything you change
outside the fences (other code, the tests, `conftest.py`, `pyproject.toml`) is ignored. Keep the fences exactly as they are, and put any helper you need inside the block.
Some tasks have several blocks (all of them belong to the task).

Write array code that runs on any device: take the array module from an input
(`xp = backend.array_module(g)`, then `xp.zeros(...)`, `xp.exp(...)`) instead of calling `np.`
on arrays, so the same code runs on NumPy and, on a GPU, on CuPy. The tests run every
device-parametrised case on a strict stand-in GPU that refuses NumPy conversions.

## The tasks, in order

Do them in this order: each task's tests in `tests/` also run the tasks it lists as
prerequisites. The tutorial notebook of each task explains it and has "your turn" cells that
check your code.

| # | task | status | where (file: what you write) | prerequisites | notebook | points |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Points handed out so far: {total:g}. A task's points are shared out by the fraction of its
grading cases that pass{'' if not any(course.tasks[t].all_or_nothing for t in handed_out) else ' (tasks marked all-or-nothing in the course file score only when every case passes)'}.
`check` runs the visible cases exactly as the grader does; the grader also runs hidden cases
that are not in your copy (your feedback names them and, after the due date, says how many passed).

{what_works(course, handed_out, reveal)}
## Set up

```bash
python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"
```

## Check your work

```bash
{CHECK}                      # every task: the grader's table for the visible cases
{CHECK} conv.im2col          # one task (or several)
python -m pytest -m conv_im2col     # that task's tests in tests/, with pytest's full output
jupyter lab tutorials/              # the notebooks (pip install jupyterlab)
```

`check` says "not done yet" for a task that is still the stub, and "blocked by <task> (not
done yet)" when a prerequisite is still a stub, rather than failing with someone else's error.

## Submit

```bash
{SUBMIT}                     # writes submission.zip
```

`submission.zip` holds exactly your task blocks and a manifest (task ids, a hash of each
task's code, the tool's version). Hand in that file as your course says (e.g. upload it to
Gradescope). Nothing else of your copy is sent or graded.
"""
