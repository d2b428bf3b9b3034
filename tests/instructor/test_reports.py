"""What a student sees: no reference line however short, nothing of a hidden test but its
count and name, no grader's absolute path. Fast: reports are built from results, no grading."""
import json
import pathlib
import tempfile

import pytest

from minigrad_course import fences
from minigrad_course.config import load_course
from minigrad_course.hidden import hidden_source
from minigrad_course.reports import (_KEYWORD_ONLY, Secrets, feedback_markdown, gradescope_json, normalize, reference_secrets,
                                     relative_paths, write_outputs)
from minigrad_course.verdicts import SubmissionResult, TaskResult

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def secrets():
    return reference_secrets(str(ROOT), load_course(str(ROOT)))


def _reference_lines(task):
    return [ln for b in fences.task_blocks(task, str(ROOT)) for ln in b.body if ln.strip()]


def test_no_line_of_any_reference_block_survives_however_short(secrets):
    """Every reference line of every task, raised alone, inside a message, as the probe's one
    line (newlines made spaces) or as a repr, is hidden; the student's own lines are not."""
    for task in load_course(str(ROOT)).tasks:
        lines = _reference_lines(task)
        for line in lines:
            if _KEYWORD_ONLY.match(normalize(line)):  # `else:`, `continue`, `)`: nothing to reveal
                continue
            for shown in (line, f"E       RuntimeError: {line.strip()} (at minigrad/x.py, line 3)",
                          f"case 1: RuntimeError: {' '.join(ln.strip() for ln in lines[:3])}",
                          f"case 2: ValueError: {''.join(lines[:2])!r}"):
                assert secrets.scrub(shown).startswith("[hidden: "), (task, shown)
    short = "case a: RuntimeError: dx[self.window] = g (at minigrad/functional/crop.py, line 3)"
    assert len("dx[self.window] = g") < 20  # the former scrub let lines under 20 characters through
    assert secrets.scrub(short) == "[hidden: this line showed a reference solution]"
    assert secrets.scrub(short, own=["        dx[self.window] = g\n"]) == short  # the student's own line
    for honest in ("grad_x[0, 2, 1, 3]: got 0.5, expected 1.25 (3 of 24 values differ)",
                   "out: shape (2, 3), expected (3, 2)", "no result: the run ended before this case finished"):
        assert secrets.scrub(honest) == honest


def test_a_block_that_raises_the_hidden_tests_source_shows_none_of_it(secrets):
    lines, names = hidden_source(str(ROOT))
    assert names and lines, "the reference tree has a hidden test to protect"
    body = [ln for ln in lines if len(normalize(ln)) > 12]
    report = "\n".join(f"case {k}: RuntimeError: {ln.strip()}" for k, ln in enumerate(body))
    report += "\ncase x: AssertionError in " + sorted(names)[0]
    scrubbed = secrets.scrub(report)
    assert scrubbed.splitlines() == ["[hidden: this line showed a hidden test]"] * (len(body) + 1)


def test_paths_are_relative_to_the_students_copy(secrets):
    tmp = tempfile.gettempdir()
    report = (f"case a: FileNotFoundError: {tmp}/minigrad-grade-x1/run-abc/tree/minigrad/functional/crop.py:12\n"
              f"case b: at /grading/minigrad/tensor.py, line 40, from {ROOT}/unet/model.py\n"
              f"case c: {ROOT}/.venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py in {tmp}/other/file\n"
              "case d: /io/out/3.npz")
    scrubbed = secrets.scrub(report)
    assert str(ROOT) not in scrubbed and tmp + "/" not in scrubbed and "/grading" not in scrubbed, scrubbed
    assert "minigrad/functional/crop.py:12" in scrubbed and "minigrad/tensor.py, line 40" in scrubbed
    assert "unet/model.py" in scrubbed and "site-packages/numpy/core/fromnumeric.py" in scrubbed
    assert relative_paths("shape (2, 3) / 4 and x/y") == "shape (2, 3) / 4 and x/y"


def _result(hidden=(("wide, dilated, strided window", "failed"), ("ties", "passed"))):
    r = TaskResult("conv.im2col", 10.0, points=5.0, passed=1, total=2, hidden_total=len(hidden),
                   hidden_passed=sum(s == "passed" for _, s in hidden), status="2 of 4 cases failing",
                   report="stride 2, rows 3-5: cols[0, 4]: got 0.5, expected 1.25 (3 of 24 values differ)",
                   failed_test="stride 2, rows 3-5")
    r.tests = [("stride 1", "passed", False), ("stride 2, rows 3-5", "failed", False),
               *((name, state, True) for name, state in hidden)]
    return SubmissionResult("alice", "/home/instructor/subs/alice.zip", {"conv.im2col": r}, ["a note"])


def test_feedback_shows_hidden_cases_only_by_count_and_name():
    result = _result()
    md = feedback_markdown(result)
    assert "Hidden cases: 2 (wide, dilated, strided window; ties); how many passed is shown after the due date." in md
    assert "failed" not in md.split("Hidden cases")[1].split("\n")[0]
    assert "/home/instructor" not in md and "cols[0, 4]: got 0.5, expected 1.25" in md
    payload = gradescope_json(result, load_course(str(ROOT)))
    visible = [t for t in payload["tests"] if t["visibility"] == "visible"]
    hidden = [t for t in payload["tests"] if t["visibility"] == "after_due_date"]
    assert "wide" not in json.dumps(visible)
    assert hidden[0]["output"] == "Hidden cases passed: 1/2 (wide, dilated, strided window; ties)."


def test_what_a_student_sees_before_the_due_date_says_nothing_of_how_hidden_cases_went():
    result = _result(hidden=(("wide window", "failed"),))
    r = result.tasks["conv.im2col"]
    r.passed, r.report, r.failed_test, r.points = 2, "", "", 6.67
    r.tests[1] = ("stride 2, rows 3-5", "passed", False)
    r.status = "1 of 3 cases failing"  # the verdict's status counts the hidden case
    md = feedback_markdown(result)
    assert "(visible cases passed)" in md and "1 of 3" not in md
    visible = [t for t in gradescope_json(result, load_course(str(ROOT)))["tests"] if t["visibility"] == "visible"]
    assert visible[0]["output"].startswith("visible cases passed.") and visible[0]["status"] == "passed"
    assert "1 of 3" not in json.dumps(visible)


def test_write_outputs_refuses_an_id_that_is_not_a_safe_folder(tmp_path):
    result = _result()
    result.id = "../../etc"
    with pytest.raises(ValueError, match="not a safe folder name"):
        write_outputs([result], load_course(str(ROOT)), str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_secrets_scrub_is_cheap(secrets):
    """A class of 36 with 15 tasks scrubs 540 reports: the patterns are compiled once."""
    import time

    report = "\n".join(f"case {k}: got {k}, expected {k + 1}" for k in range(20))
    start = time.perf_counter()
    for _ in range(50):
        secrets.scrub(report)
    assert isinstance(secrets, Secrets) and (time.perf_counter() - start) / 50 < 0.05


LEAKY_CROP = '''    def backward(self, g):
        # BEGIN TASK crop.backward
        import os
        here = os.path.abspath(__file__)
        calls = type(self).calls = getattr(type(self), "calls", 0) + 1
        if calls == 1:
            raise RuntimeError("my file is " + here)
        src = open(os.path.join(os.path.dirname(here), "im2col.py")).read().splitlines()
        start = next(i for i, ln in enumerate(src) if ln.strip() == "# BEGIN " + "TASK conv.im2col")
        raise RuntimeError(" ".join(ln.strip() for ln in src[start + 1 : start + 40])[:250])
        # END TASK
'''


@pytest.mark.slow
def test_a_graded_block_that_shows_another_tasks_reference_and_its_path_leaks_neither(tmp_path):
    """Through grade, sandbox and all: the feedback keeps the student's path relative and
    hides the line that carried another task's reference code."""
    from minigrad_course.grade import grade

    sub = tmp_path / "leaky"
    (sub / "minigrad" / "functional").mkdir(parents=True)
    (sub / "minigrad" / "functional" / "crop.py").write_text(LEAKY_CROP)
    (result,) = grade(str(ROOT), [str(sub)], tasks=["crop.backward"], jobs=1)
    r = result.tasks["crop.backward"]
    assert r.points == 0 and r.report, r.status
    feedback = feedback_markdown(result)
    assert "my file is minigrad/functional/crop.py" in feedback, r.report
    assert "[hidden: this line showed a reference solution]" in feedback, r.report
    assert "/grading" not in feedback and str(ROOT) not in feedback and tempfile.gettempdir() + "/" not in feedback
    for line in _reference_lines("conv.im2col"):
        if len(normalize(line)) > 10:
            assert normalize(line) not in " ".join(feedback.split()), line


def test_a_syntax_error_found_after_the_block_shows_no_line_of_the_file(tmp_path):
    """The compiler may name a line after the student's block (an `if` left without a body):
    that line is the tree's, not the student's, and is not printed."""
    from minigrad_course.trees import _syntax_error

    rel = "minigrad/functional/crop.py"
    text = fences.rewrite((ROOT / rel).read_text(), rel, {"crop.backward": [["        if g is None:\n"]]})
    path = tmp_path / "crop.py"
    path.write_text(text)
    report = _syntax_error(str(path), rel, "crop.backward")
    assert "after your block" in report and "\n" not in report, report
    inside = fences.rewrite((ROOT / rel).read_text(), rel, {"crop.backward": [["        dx = (g\n", "        return dx\n"]]})
    path.write_text(inside)
    report = _syntax_error(str(path), rel, "crop.backward")
    assert "of your block" in report and report.splitlines()[1].strip() in ("dx = (g", "return dx"), report
