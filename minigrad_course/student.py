"""The student copy: every task block a stub (unless revealed), no instructor material,
hidden tests stripped, and a generated STUDENT.md."""
from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile

from . import fences
from .config import Course, CourseError, is_accelerated_path, is_instructor_path, load_course, walk

README_INSTRUCTOR = re.compile(r"<!-- instructor-only -->.*?<!-- /instructor-only -->\n?", re.S)
CHECK = "python -m minigrad_course check"
SUBMIT = "python -m minigrad_course submit"


def strip_hidden_tests(text: str, path: str, marker: str = "hidden"):
    """``text`` without the top-level tests decorated with ``pytest.mark.<marker>``; None when
    the whole module is hidden (``pytestmark`` names the marker)."""
    tree = ast.parse(text, path)
    drop = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            if f"mark.{marker}" in ast.unparse(node.value):
                return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if any(re.search(rf"\bmark\.{marker}\b", ast.unparse(d)) for d in node.decorator_list):
                start = min(d.lineno for d in node.decorator_list)
                drop.append((start, node.end_lineno))
    if not drop:
        return text
    lines = text.splitlines(keepends=True)
    for start, end in sorted(drop, reverse=True):
        del lines[start - 1 : end]
    return "".join(lines)


def student_text(rel: str, text: str, course: Course, handed_out, reveal) -> str | None:
    """What the student copy holds for one file of the reference tree (None: leave it out)."""
    if rel in {t.file for t in course.tasks.values()}:
        def stub(block):
            if block.task in reveal:
                return block.body
            if block.task in handed_out:
                return fences.stub_lines(block.task, block.indent)
            release = course.tasks[block.task].release
            return fences.stub_lines(block.task, block.indent, f"not handed out yet (comes with {release})")
        text = fences.rewrite(text, rel, {t: stub for t in course.tasks})
    if rel.replace(os.sep, "/").startswith("tests/") and rel.endswith(".py"):
        return strip_hidden_tests(text, rel, course.hidden_marker)
    if rel == "README.md":
        text = README_INSTRUCTOR.sub("", text)
        text = re.sub(r"^(# .*\n)", r"\1\n**Course copy: start with [STUDENT.md](STUDENT.md)** (your tasks, "
                      r"in order, and how to check and submit them).\n", text, count=1, flags=re.M)
    return text


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
grader copies those lines into its own copy of the project and runs its own tests on them, so
anything you change outside the fences (other code, the tests, `conftest.py`, `pyproject.toml`)
is ignored. Keep the fences exactly as they are, and put any helper you need inside the block.
Some tasks have several blocks (all of them belong to the task).

Write array code that runs on any device: take the array module from an input
(`xp = backend.array_module(g)`, then `xp.zeros(...)`, `xp.exp(...)`) instead of calling `np.`
on arrays, so the same code runs on NumPy and, on a GPU, on CuPy. The tests run every
device-parametrised case on a strict stand-in GPU that refuses NumPy conversions.

## The tasks, in order

Do them in this order: each task's tests also run the tasks it lists as prerequisites. The
tutorial notebook of each task explains it and has "your turn" cells that check your code.

| # | task | status | where (file: what you write) | prerequisites | notebook | points |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Points handed out so far: {total:g}. A task's points are shared out by the fraction of its
tests that pass{'' if not any(course.tasks[t].all_or_nothing for t in handed_out) else ' (tasks marked all-or-nothing in the course file score only when every test passes)'}.
The grader also runs hidden tests that are not in your copy.

## Set up

```bash
python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"
```

## Check your work

```bash
{CHECK}                      # every task: the same table the grader prints
{CHECK} conv.im2col          # one task (or several)
python -m pytest -m conv_im2col     # that task's tests, with pytest's full output
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
