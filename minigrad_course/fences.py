"""Task fences: find, stub, extract and splice the code between

    # BEGIN TASK <task-id>
    ...what the student writes...
    # END TASK

A task may have several blocks (in one file, in order). Everything here is plain text
handling: grading reads only what lies between a task's fences and never imports a
submission's files.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .tasks import TASKS

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN TASK (?P<task>\S+)[ \t]*$")
END = re.compile(r"^[ \t]*# END TASK[ \t]*$")
STUB_NOTE = "# Your code goes here. Only the lines between this task's BEGIN/END TASK fences are graded."


class FenceError(ValueError):
    """A fence that is unclosed, unknown, nested or missing; the message names file and line."""


@dataclass
class Block:
    task: str
    begin: int  # 0-based line index of the BEGIN fence
    end: int  # 0-based line index of the END fence
    indent: str
    body: list  # the lines between the fences, newlines included


def fence_of(line: str):
    """What one line is: ``("begin", task, indent)``, ``("end", None, indent)``,
    ``("malformed", None, "")`` (it mentions a fence but is not one), or None (code).
    The one place that reads fences: ``parse`` (strict) and ``find_task`` (tolerant) both use it."""
    line = line.rstrip("\r\n")
    begin = BEGIN.match(line)
    if begin:
        return "begin", begin.group("task"), begin.group("indent")
    end = END.match(line)
    if end:
        return "end", None, line[: len(line) - len(line.lstrip())]
    if "# BEGIN TASK" in line or "# END TASK" in line:
        return "malformed", None, ""
    return None


def parse(text: str, path: str = "<text>", known=None) -> list:
    """Every fenced block of ``text``, in order; FenceError on a malformed fence."""
    known = TASKS if known is None else known
    lines = text.splitlines(keepends=True)
    blocks, open_block = [], None
    for i, line in enumerate(lines):
        fence = fence_of(line)
        if fence is None:
            continue
        kind, task, indent = fence
        if kind == "begin":
            if open_block:
                raise FenceError(f"{path}:{i + 1}: `# BEGIN TASK {task}` inside the block of "
                                 f"{open_block.task} opened at line {open_block.begin + 1}")
            if task not in known:
                raise FenceError(f"{path}:{i + 1}: unknown task id '{task}' (known: {', '.join(known)})")
            open_block = Block(task, i, -1, indent, [])
        elif kind == "end":
            if not open_block:
                raise FenceError(f"{path}:{i + 1}: `# END TASK` without a `# BEGIN TASK` before it")
            open_block.end = i
            open_block.body = lines[open_block.begin + 1 : i]
            blocks.append(open_block)
            open_block = None
        else:
            raise FenceError(f"{path}:{i + 1}: malformed fence {line.strip()!r} (expected `# BEGIN TASK <id>` "
                             "or `# END TASK` alone on its line)")
    if open_block:
        raise FenceError(f"{path}:{open_block.begin + 1}: `# BEGIN TASK {open_block.task}` is never closed")
    return blocks


@dataclass(frozen=True)
class TaskCode:
    """What a text (a submission's file) holds for one task: the bodies of its blocks, in
    order (one tuple of lines each, newlines kept), or, when there are none, why (``problem``,
    one line that starts with the task id)."""
    task: str
    bodies: tuple = ()
    problem: str = ""

    @property
    def found(self) -> bool:
        return not self.problem

    def is_stub(self) -> bool:
        """Every block still the stub (an untouched task)."""
        return self.found and all(is_stub(b, self.task) for b in self.bodies)

    def lines(self) -> set:
        """The stripped, non-blank lines of the bodies (what the student wrote)."""
        return {ln.strip() for b in self.bodies for ln in b if ln.strip()}


def find_task(text: str, path: str, task_id: str) -> TaskCode:
    """The blocks of ``task_id`` in ``text``, tolerantly: another task's broken fence elsewhere
    in the file does not stop this task from being read (a submission is judged task by task)."""
    lines = text.splitlines(keepends=True)
    bodies, i = [], 0
    while i < len(lines):
        fence = fence_of(lines[i])
        if fence and fence[0] == "begin" and fence[1] == task_id:
            for j in range(i + 1, len(lines)):
                inner = fence_of(lines[j])
                if inner and inner[0] == "end":
                    bodies.append(tuple(lines[i + 1 : j]))
                    i = j
                    break
                if inner:
                    return TaskCode(task_id, problem=f"{task_id}: the `# BEGIN TASK {task_id}` block at {path}:{i + 1} "
                                                     f"is not closed by `# END TASK` before line {j + 1}")
            else:
                return TaskCode(task_id, problem=f"{task_id}: the `# BEGIN TASK {task_id}` block at {path}:{i + 1} "
                                                 "is never closed by `# END TASK`")
        i += 1
    if not bodies:
        return TaskCode(task_id, problem=f"{task_id}: no `# BEGIN TASK {task_id}` block found in {path}")
    return TaskCode(task_id, tuple(bodies))


def stub_lines(task_id: str, indent: str, message: str | None = None) -> list:
    """The stub a student copy holds in place of a block."""
    message = message or TASKS[task_id].hint
    message = message.replace("\\", "\\\\").replace('"', '\\"')
    return [f"{indent}{STUB_NOTE}\n", f'{indent}raise NotImplementedError("{task_id}: {message}")\n']


NOT_HANDED_OUT = "not handed out yet"


def unreleased_stub_lines(task_id: str, indent: str, release: str) -> list:
    """The stub of a task that a later release hands out (``is_unreleased`` recognises it)."""
    return stub_lines(task_id, indent, f"{NOT_HANDED_OUT} (comes with {release})")


def is_unreleased(body_lines, task_id: str) -> bool:
    """True when a block is the stub of a task not handed out yet in this copy."""
    return is_stub(body_lines, task_id) and any(f'("{task_id}: {NOT_HANDED_OUT}' in ln for ln in body_lines)


def is_stub(body_lines, task_id: str) -> bool:
    """True when a block holds nothing but the stub's raise (comments and blank lines aside)."""
    code = [ln.strip() for ln in body_lines if ln.strip() and not ln.strip().startswith("#")]
    return len(code) == 1 and code[0].startswith(f'raise NotImplementedError("{task_id}:')


def rewrite(text: str, path: str, replace: dict) -> str:
    """``text`` with the bodies of the blocks of each task in ``replace`` swapped for
    ``replace[task]``: a list of bodies, one per block, or a callable(block) -> body lines.
    Fences stay. FenceError when the number of blocks differs."""
    blocks = parse(text, path)
    lines = text.splitlines(keepends=True)
    for task, new in replace.items():
        mine = [b for b in blocks if b.task == task]
        if not callable(new) and len(new) != len(mine):
            raise FenceError(f"{task}: {path} has {len(mine)} `# BEGIN TASK {task}` block(s) in the reference "
                             f"but the submission has {len(new)}")
    out, last = [], 0
    counters = {}
    for b in blocks:
        if b.task not in replace:
            continue
        k = counters.get(b.task, 0)
        counters[b.task] = k + 1
        new = replace[b.task]
        body = new(b) if callable(new) else new[k]
        out += lines[last : b.begin + 1]
        out += [ln if ln.endswith("\n") else ln + "\n" for ln in body]
        last = b.end
    out += lines[last:]
    return "".join(out)


def project_root() -> str:
    """The tree the engine is imported from (the folder holding minigrad/ and unet/), found
    without importing it (its blocks may not even compile in a student's copy)."""
    import importlib.util

    spec = importlib.util.find_spec("minigrad")
    if spec is not None and spec.origin:
        return os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the tree holding this package


def task_blocks(task_id: str, root: str | None = None) -> list:
    """The blocks of one task in the tree at ``root`` (default: this minigrad's own tree)."""
    task = TASKS[task_id]
    path = os.path.join(root or project_root(), task.file)
    with open(path, encoding="utf-8") as f:
        return [b for b in parse(f.read(), task.file) if b.task == task_id]


def block_is_stub(task_id: str, root: str | None = None) -> bool:
    """True while some block of the task is still the stub (or the task has no block): the
    task is not done. (The grader, by contrast, runs a task's tests once any block is written.)"""
    blocks = task_blocks(task_id, root)
    return not blocks or any(is_stub(b.body, task_id) for b in blocks)
