"""Grading trees: a fresh copy of what the tests need of the reference tree, with one task's
blocks replaced by the submission's."""
from __future__ import annotations

import os
import shutil

from . import fences
from .config import is_accelerated_path, walk

#: what a grading tree holds of the reference tree
TREE_PARTS = ("minigrad", "unet", "tests", "pyproject.toml", "course.toml")
#: what a grading tree (the folder a sandbox sees) holds: the code, and no tests (the hidden
#: cases and the tests' sources never enter a sandbox)
SANDBOX_PARTS = ("minigrad", "unet", "pyproject.toml", "course.toml")


def make_tree(reference: str, dest: str) -> str:
    """Copy the code of the reference tree that a grading run needs (no tests, no caches, and no
    accelerated path: there every op runs the task blocks, the student's code)."""
    for rel in walk(reference):
        top = rel.replace(os.sep, "/").split("/")[0]
        if top not in SANDBOX_PARTS or is_accelerated_path(rel):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(reference, rel), target)
    return dest


def _syntax_error(path: str, rel: str, task_id: str):
    """None, or the compiler's complaint about the spliced file, placed in the student's block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        compile(text, rel, "exec")
    except SyntaxError as err:
        where, shown = "", ""
        blocks = [b for b in fences.parse(text, rel) if b.task == task_id]
        for k, b in enumerate(blocks, start=1):
            if err.lineno and b.begin < err.lineno - 1 < b.end:
                where = f" (line {err.lineno - 1 - b.begin} of your block{f' {k}' if len(blocks) > 1 else ''})"
                shown = text.splitlines()[err.lineno - 1].strip()
        if err.lineno and not where:  # found after the block: the line there is not the student's to see
            where = " (after your block: look at its last lines, their brackets and indentation)"
        return (f"{task_id}: your code does not compile: {type(err).__name__} in {rel}, line {err.lineno}{where}: "
                f"{err.msg}" + (f"\n    {shown}" if shown else ""))
    return None
