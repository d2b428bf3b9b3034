"""With every task solved the textbook way, a student copy's own test suite passes completely.

This is the README's test command run inside the copy, on its tests/ (its notebooks are run,
with the same solutions filled in, by test_student_notebooks.py). It proves the student copy is
whole: no test depends on instructor material, a hidden test or the reference's own code.
"""
import os
import subprocess
import sys

import pytest

from minigrad_course.student import make_student
from minigrad_course.submission import fill_in
from minigrad_course.tasks import TASKS
from textbook_solutions import textbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_a_copy_with_every_task_solved_passes_its_own_tests(tmp_path):
    copy = str(tmp_path / "student")
    make_student(ROOT, copy)
    assert sorted(fill_in(copy, textbook())) == sorted(TASKS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "HYPOTHESIS"))}
    env.update(PYTHONPATH=copy, MPLBACKEND="Agg", HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / "hyp"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not gpu", "-p", "no:cacheprovider", "tests"],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.splitlines()[-1]
    assert not os.path.exists(os.path.join(copy, "tests", "instructor"))
