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


def parse(text: str, path: str = "<text>", known=None) -> list:
    """Every fenced block of ``text``, in order; FenceError on a malformed fence."""
    known = TASKS if known is None else known
    lines = text.splitlines(keepends=True)
    blocks, open_block = [], None
    for i, line in enumerate(lines):
        begin, end = BEGIN.match(line.rstrip("\r\n")), END.match(line.rstrip("\r\n"))
        if begin:
            if open_block:
                raise FenceError(f"{path}:{i + 1}: `# BEGIN TASK {begin.group('task')}` inside the block of "
                                 f"{open_block.task} opened at line {open_block.begin + 1}")
            task = begin.group("task")
            if task not in known:
                raise FenceError(f"{path}:{i + 1}: unknown task id '{task}' (known: {', '.join(known)})")
            open_block = Block(task, i, -1, begin.group("indent"), [])
        elif end:
            if not open_block:
                raise FenceError(f"{path}:{i + 1}: `# END TASK` without a `# BEGIN TASK` before it")
            open_block.end = i
            open_block.body = lines[open_block.begin + 1 : i]
            blocks.append(open_block)
            open_block = None
        elif "# BEGIN TASK" in line or "# END TASK" in line:
            raise FenceError(f"{path}:{i + 1}: malformed fence {line.strip()!r} (expected `# BEGIN TASK <id>` "
                             "or `# END TASK` alone on its line)")
    if open_block:
        raise FenceError(f"{path}:{open_block.begin + 1}: `# BEGIN TASK {open_block.task}` is never closed")
    return blocks


def stub_lines(task_id: str, indent: str, message: str | None = None) -> list:
    """The stub a student copy holds in place of a block."""
    message = message or TASKS[task_id].hint
    message = message.replace("\\", "\\\\").replace('"', '\\"')
    return [f"{indent}{STUB_NOTE}\n", f'{indent}raise NotImplementedError("{task_id}: {message}")\n']


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
    """The tree this course tooling was imported from (the folder holding minigrad_course/,
    minigrad/ and unet/)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
