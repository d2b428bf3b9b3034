"""The textbook solutions as one hand-in folder, for the tests that fill them in or grade them.

``tests/instructor/textbook/`` holds a task's block only where the simplest correct code differs
from the reference's; a task whose reference block already is the textbook form has no file
there and takes the reference's own block. ``textbook()`` writes the two together, in the
format ``submit`` writes (per file, only its fenced blocks), once per test session.
"""
import atexit
import functools
import os
import shutil
import tempfile

from minigrad_course import fences
from minigrad_course.intake import read_submission
from minigrad_course.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTBOOK_DIR = os.path.join(ROOT, "tests", "instructor", "textbook")


def from_reference() -> list:
    """The tasks with no textbook file of their own (their reference block is the textbook form)."""
    own = read_submission(TEXTBOOK_DIR)
    return [t for t in TASKS if not own.code(t).found]


@functools.lru_cache(maxsize=None)
def textbook() -> str:
    """A folder with every task's textbook block (read-only use: it is shared by the session)."""
    dest = tempfile.mkdtemp(prefix="minigrad-textbook-")
    atexit.register(shutil.rmtree, dest, True)
    shutil.copytree(TEXTBOOK_DIR, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for t in from_reference():
        path = os.path.join(dest, TASKS[t].file)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            for b in fences.task_blocks(t, ROOT):
                f.write(f"\n{b.indent}# BEGIN TASK {t}\n{''.join(b.body)}{b.indent}# END TASK\n")
    return dest
