"""The assignment tooling cannot be vacuous: the reference passes every task, and in a
student copy each task's tests fail with that task's NotImplementedError."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from minigrad.assignments import TASKS, MarkerError, make_student, marker_name, run_task_tests, strip_solutions

ROOT = pathlib.Path(__file__).resolve().parent.parent


def solution_blocks():
    """{task: [solution text]} from the reference source."""
    blocks = {}
    for path in list(ROOT.joinpath("minigrad").rglob("*.py")) + list(ROOT.joinpath("unet").rglob("*.py")):
        if path.name == "assignments.py":  # the tool itself, whose docstring shows a marker
            continue
        text = path.read_text()
        for m in re.finditer(r"# BEGIN SOLUTION (\S+)\n(.*?)# END SOLUTION", text, re.S):
            blocks.setdefault(m.group(1), []).append(m.group(2))
    return blocks


def test_every_task_has_a_solution_block_and_a_marker():
    blocks = solution_blocks()
    assert set(blocks) == set(TASKS)
    pyproject = (ROOT / "pyproject.toml").read_text()
    for task in TASKS:
        assert f'"{marker_name(task)}:' in pyproject


def test_stub_keeps_indentation_and_markers_are_checked():
    text = "def f():\n    x = 1\n    # BEGIN SOLUTION crop.backward\n    return x\n    # END SOLUTION\n"
    out, tasks = strip_solutions(text)
    assert tasks == ["crop.backward"]
    assert out == 'def f():\n    x = 1\n    raise NotImplementedError("crop.backward: ' + TASKS["crop.backward"] + '")\n'
    with pytest.raises(MarkerError, match=r"a.py:1: BEGIN SOLUTION crop.backward is never closed"):
        strip_solutions("# BEGIN SOLUTION crop.backward\nx = 1\n", "a.py")
    with pytest.raises(MarkerError, match=r"b.py:2: unknown task id 'nope'"):
        strip_solutions("x = 1\n# BEGIN SOLUTION nope\n# END SOLUTION\n", "b.py")
    with pytest.raises(MarkerError, match=r"c.py:1: END SOLUTION without"):
        strip_solutions("# END SOLUTION\n", "c.py")


def test_student_copy_imports_and_holds_no_solution_text(tmp_path):
    student = tmp_path / "student"
    assert set(make_student(ROOT, student)) == set(TASKS)
    sources = [p for pkg in ("minigrad", "unet") for p in (student / pkg).rglob("*.py") if p.name != "assignments.py"]
    text = "\n".join(p.read_text() for p in sources)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    reference = "\n".join((ROOT / p.relative_to(student)).read_text() for p in sources)
    outside = re.sub(r"# BEGIN SOLUTION \S+\n.*?# END SOLUTION", "", reference, flags=re.S)
    for task, blocks in solution_blocks().items():
        assert f'NotImplementedError("{task}:' in text
        for block in blocks:
            # lines that occur only inside solutions must be gone from the student copy
            distinctive = [ln.strip() for ln in block.splitlines() if ln.strip() and ln.strip() not in outside]
            assert distinctive, f"{task}: solution has no line of its own"
            for line in distinctive:
                assert line not in text, f"solution line of {task} left in the student copy: {line}"
    env = dict(os.environ, PYTHONPATH=str(student))
    code = "import minigrad, minigrad.functional, unet; print(minigrad.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=student, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert str(student) in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_tasks_tests_fail_with_its_own_stub(task, tmp_path):
    student = tmp_path / "student"
    make_student(ROOT, student, only={task})
    results = run_task_tests(student, [task], extra_args=["-x"])[task]
    failed = [r for r in results if r["outcome"] == "failed"]
    assert failed, f"no test of {task} failed in a copy where {task} is a stub"
    assert f"NotImplementedError: {task}:" in failed[0]["text"]


@pytest.mark.slow
def test_reference_passes_every_task(capsys):
    from minigrad.assignments import grade

    assert grade(ROOT)
    table = capsys.readouterr().out
    assert all(re.search(rf"{re.escape(t)}\s+\d+/\d+\s+passed", table) for t in TASKS), table
