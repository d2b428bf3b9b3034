"""The course tooling (instructor material: not in the student copy).

Fast tests check the fences, the student copy, submit and the course file. The slow ones grade
a small class the way an instructor would (the reference, the textbook solutions, an all-stub
copy, one-task-only submissions, tampered, broken and endless ones) and prove that the grader
is neither vacuous nor foolable; they share one grading run per scenario to stay inside CI.
"""
import csv
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from minigrad_course import fences
from minigrad_course.cases import visible_cases
from minigrad_course.config import CourseError, load_course
from minigrad_course.grade import grade, write_outputs
from minigrad_course.student import make_student, strip_hidden_tests
from minigrad_course.intake import read_submission
from minigrad_course.submission import fill_in, submit
from minigrad_course.tasks import TASKS
from textbook_solutions import TEXTBOOK_DIR, from_reference, textbook

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "minigrad_course"]


def reference_blocks():
    """{task: [block text]} of the reference source."""
    out = {}
    for t, task in TASKS.items():
        out[t] = ["".join(b.body) for b in fences.task_blocks(t, str(ROOT))]
    return out


# ---- fences ----------------------------------------------------------------------------------
def test_every_task_has_blocks_a_marker_and_a_textbook_solution():
    pyproject = (ROOT / "pyproject.toml").read_text()
    solutions = read_submission(textbook())
    for t, task in TASKS.items():
        blocks = fences.task_blocks(t, str(ROOT))
        assert blocks, f"{t}: no block in {task.file}"
        assert f'"{task.marker}: task {t}"' in pyproject
        solution = solutions.code(t)
        assert solution.found, solution.problem
        assert len(solution.bodies) == len(blocks), f"{t}: textbook has {len(solution.bodies)} blocks, the source {len(blocks)}"
        assert (ROOT / task.notebook.replace(".ipynb", ".py")).exists() or (ROOT / task.notebook).exists(), task.notebook


def test_a_textbook_file_holds_only_blocks_that_differ_from_the_reference():
    """A textbook block identical to the reference's proves nothing the reference does not: such
    a task has no textbook file (its reference block is the textbook form, as the project's
    rule for task blocks asks), and the README of the folder says so."""
    own = read_submission(str(TEXTBOOK_DIR))
    for t in TASKS:
        if own.code(t).found:
            assert ["".join(b) for b in own.code(t).bodies] != reference_blocks()[t], (
                f"{t}: its textbook block is the reference's; delete it from tests/instructor/textbook")
    assert {"conv.col2im", "norm.batch_norm_backward", "interp.upsample_backward"} <= set(from_reference())


def test_fence_errors_name_the_file_and_line():
    with pytest.raises(fences.FenceError, match=r"a.py:1: `# BEGIN TASK crop.backward` is never closed"):
        fences.parse("# BEGIN TASK crop.backward\nx = 1\n", "a.py")
    with pytest.raises(fences.FenceError, match=r"b.py:2: unknown task id 'nope'"):
        fences.parse("x = 1\n# BEGIN TASK nope\n# END TASK\n", "b.py")
    with pytest.raises(fences.FenceError, match=r"c.py:1: `# END TASK` without"):
        fences.parse("# END TASK\n", "c.py")
    with pytest.raises(fences.FenceError, match=r"d.py:2: `# BEGIN TASK conv.im2col` inside the block of crop.backward"):
        fences.parse("# BEGIN TASK crop.backward\n# BEGIN TASK conv.im2col\n# END TASK\n", "d.py")
    with pytest.raises(fences.FenceError, match=r"e.py:1: malformed fence"):
        fences.parse("# BEGIN TASK crop.backward extra\n# END TASK\n", "e.py")


def test_fences_are_read_in_one_place_only():
    """No module of the course tooling but fences.py matches fence text (one tokenizer,
    fences.fence_of, behind both the strict parse and the tolerant find_task)."""
    import ast

    package = ROOT / "minigrad_course"
    for path in sorted(package.glob("*.py")):
        if path.name == "fences.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    getattr(node.func.value, "id", "") == "re":
                patterns = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                assert not any("TASK" in p for p in patterns), f"{path.name}:{node.lineno} parses fences itself"
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.In) for op in node.ops):
                left = node.left
                assert not (isinstance(left, ast.Constant) and isinstance(left.value, str)
                            and ("BEGIN TASK" in left.value or "END TASK" in left.value)), \
                    f"{path.name}:{node.lineno} looks for fence text itself"


def test_stub_keeps_the_indentation_and_is_recognised():
    text = "def f():\n    x = 1\n    # BEGIN TASK crop.backward\n    return x\n    # END TASK\n    return 2\n"
    out = fences.rewrite(text, "f.py", {"crop.backward": lambda b: fences.stub_lines(b.task, b.indent)})
    body = fences.parse(out, "f.py")[0].body
    assert body[1] == f'    raise NotImplementedError("crop.backward: {TASKS["crop.backward"].hint}")\n'
    assert fences.is_stub(body, "crop.backward") and not fences.is_stub(["    return x\n"], "crop.backward")
    assert out.endswith("    # END TASK\n    return 2\n")
    with pytest.raises(fences.FenceError, match="1 `# BEGIN TASK crop.backward` block"):
        fences.rewrite(text, "f.py", {"crop.backward": [["a\n"], ["b\n"]]})


def test_a_mangled_fence_gives_a_per_task_message():
    assert fences.find_task("x = 1\n", "minigrad/functional/im2col.py", "conv.im2col").problem == (
        "conv.im2col: no `# BEGIN TASK conv.im2col` block found in minigrad/functional/im2col.py")
    msg = fences.find_task("    # BEGIN TASK conv.im2col\n    pass\n    # BEGIN TASK conv.col2im\n", "m.py", "conv.im2col")
    assert not msg.found and "not closed by `# END TASK` before line 3" in msg.problem
    # a broken fence of another task in the same file does not stop this one from being read
    text = "    # BEGIN TASK conv.col2im\n    pass\n    # BEGIN TASK conv.im2col\n    return 1\n    # END TASK\n"
    assert fences.find_task(text, "m.py", "conv.im2col") == fences.TaskCode("conv.im2col", (("    return 1\n",),))


# ---- the student copy ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def week1_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("copies") / "week1"
    handed = make_student(str(ROOT), str(out), release="week1", reveal=["autograd.toposort"])
    return out, handed


def test_student_copy_leaks_no_reference_code_and_reveals_what_it_is_told(week1_copy):
    out, handed = week1_copy
    course = load_course(str(ROOT))
    assert handed == [t for t, task in course.tasks.items() if task.release == "week1"]
    refs = reference_blocks()
    for t, task in TASKS.items():
        blocks = fences.task_blocks(t, str(out))
        assert len(blocks) == len(refs[t])
        if t == "autograd.toposort":  # revealed
            assert ["".join(b.body) for b in blocks] == refs[t]
            continue
        assert all(fences.is_stub(b.body, t) for b in blocks), t
        stub = "".join(blocks[0].body)
        assert ("not handed out yet" in stub) == (t not in handed), stub
        copy_text = (out / task.file).read_text()
        source = (ROOT / task.file).read_text()
        inside = {i for b in fences.parse(source, task.file) for i in range(b.begin, b.end + 1)}
        outside = "\n".join(ln for i, ln in enumerate(source.splitlines()) if i not in inside)
        for block in refs[t]:
            own = [ln.strip() for ln in block.splitlines()
                   if ln.strip() and not ln.strip().startswith("#") and ln.strip() not in outside]
            assert own, f"{t}: its reference has no line of its own"
            for line in own:
                assert line not in copy_text, f"reference line of {t} in the student copy: {line}"


def test_student_copy_has_no_instructor_material_and_a_student_page(week1_copy):
    out, _ = week1_copy
    for path in (".ci", "docs/instructors.md", "docs/instructor", "tests/instructor"):
        assert not (out / path).exists(), path
    assert "@pytest.mark.hidden" not in (out / "tests" / "test_tasks.py").read_text()
    assert "@pytest.mark.hidden" in (ROOT / "tests" / "test_tasks.py").read_text()
    readme = (out / "README.md").read_text()
    assert "STUDENT.md" in readme and "instructors.md" not in readme
    page = (out / "STUDENT.md").read_text()
    positions = [page.index(f"`{t}`") for t in TASKS]
    assert positions == sorted(positions), "the tasks are not listed in teaching order"
    for t, task in TASKS.items():
        row = next(ln for ln in page.splitlines() if ln.startswith("|") and f"`{t}`" in ln)
        assert task.file in row and os.path.basename(task.notebook) in row
        for p in task.prerequisites:
            assert f"`{p}`" in row
    for command in ("python -m minigrad_course check", "python -m minigrad_course submit",
                    "Only the code between a task's fences is graded"):
        assert command in page
    # the copy imports, and it is its own minigrad that is imported
    code = "import minigrad, minigrad.functional, unet; print(minigrad.__file__)"
    run = subprocess.run([sys.executable, "-c", code], cwd=out, env=dict(os.environ, PYTHONPATH=str(out)),
                         capture_output=True, text=True)
    assert run.returncode == 0 and str(out) in run.stdout, run.stderr


def test_hidden_tests_are_cut_out_of_a_module():
    text = ("import pytest\n\n\n@pytest.mark.hidden\n@pytest.mark.conv_im2col\ndef test_a():\n    assert 1\n\n\n"
            "def test_b():\n    assert 2\n")
    assert strip_hidden_tests(text, "t.py") == "import pytest\n\n\n\n\ndef test_b():\n    assert 2\n"
    assert strip_hidden_tests("import pytest\npytestmark = [pytest.mark.hidden]\n", "t.py") is None


def test_make_student_refuses_a_non_empty_folder_and_unknown_tasks(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        make_student(str(ROOT), str(tmp_path / "x"))
    with pytest.raises(CourseError, match=r"unknown --reveal task id\(s\) \['nope'\]"):
        make_student(str(ROOT), str(tmp_path / "y"), reveal=["nope"])
    with pytest.raises(CourseError, match="unknown release 'week9'"):
        make_student(str(ROOT), str(tmp_path / "z"), release="week9")
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()
    # a pattern names every task it matches, as `--only autograd.*` would
    assert make_student(str(ROOT), str(tmp_path / "w"), only=["autograd.*"]) == [
        "autograd.toposort", "autograd.elementwise", "autograd.matmul"]


def test_course_file_errors_name_the_key(tmp_path):
    full = (ROOT / "course.toml").read_text()

    def load(text):
        (tmp_path / "course.toml").write_text(text)
        return load_course(str(tmp_path))

    with pytest.raises(CourseError, match=r"unknown key\(s\) \['weight'\]"):
        load(full.replace('[tasks."conv.im2col"]\n', '[tasks."conv.im2col"]\nweight = 2\n'))
    with pytest.raises(CourseError, match="not a task of this source"):
        load(full + '\n[tasks."conv.im2colx"]\npoints = 3\n')
    with pytest.raises(CourseError, match="release 'week7' of conv.im2col is not in releases"):
        load(full.replace('[tasks."conv.im2col"]\npoints = 10\nrelease = "week2"', '[tasks."conv.im2col"]\npoints = 10\nrelease = "week7"'))
    with pytest.raises(CourseError, match=r"points must be a number >= 0, got '10'"):
        load(full.replace('[tasks."conv.im2col"]\npoints = 10', '[tasks."conv.im2col"]\npoints = "10"'))
    course = load(full.replace("per_test_timeout = 60", "per_test_timeout = 5")
                  .replace('[tasks."crop.backward"]\npoints = 5', '[tasks."crop.backward"]\npoints = 2.5'))
    assert course.per_test_timeout == 5 and course.tasks["crop.backward"].points == 2.5


def test_points_and_releases_are_stated_once_in_the_course_file(tmp_path):
    """tasks.py states no points or release; a course file that leaves one out is an error
    naming the task (no silent default), and one without releases names the key."""
    from minigrad_course.tasks import DEFAULT_TASKS

    assert all(t.points is None and t.release is None for t in DEFAULT_TASKS)
    full = (ROOT / "course.toml").read_text()
    (tmp_path / "course.toml").write_text(full.replace('[tasks."crop.backward"]\npoints = 5\n', '[tasks."crop.backward"]\n'))
    with pytest.raises(CourseError, match="points and release; missing for crop.backward"):
        load_course(str(tmp_path))
    (tmp_path / "course.toml").write_text(re.sub(r"(?m)^releases = \[.*\]\n", "", full))
    with pytest.raises(CourseError, match=r"\[course\] releases must list"):
        load_course(str(tmp_path))
    (tmp_path / "course.toml").unlink()
    with pytest.raises(CourseError, match="course.toml is missing"):
        load_course(str(tmp_path))


# ---- submit ----------------------------------------------------------------------------------
def test_submit_writes_exactly_the_blocks_and_a_manifest(week1_copy, tmp_path):
    out, _ = week1_copy
    copy = tmp_path / "alice"
    shutil.copytree(out, copy)
    fill_in(str(copy), textbook(), ["crop.backward"])
    done = submit(str(copy))
    path, manifest = done.path, done.manifest
    week1 = [t for t, task in load_course(str(ROOT)).tasks.items() if task.release == "week1"]
    assert done.stubs == tuple(t for t in week1 if t != "autograd.toposort")  # toposort revealed
    assert done.not_released == tuple(t for t in TASKS if t not in week1 and t != "crop.backward")
    assert "not handed out yet (nothing to do): conv.im2col" in done.summary() and "still stubs: gradcheck" in done.summary()
    assert "conv.im2col" not in done.summary().split("still stubs:")[1].split(";")[0]
    assert path == str(copy / "submission.zip")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        texts = {n: z.read(n).decode() for n in names}
    assert names == {"manifest.json"} | {task.file for task in TASKS.values()}
    assert json.loads(texts["manifest.json"])["tool_version"]
    for name, text in texts.items():
        if name == "manifest.json":
            continue
        code = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        inside = [ln for b in fences.parse(text, name) for ln in b.body if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(code) == len(inside), f"{name} holds code outside the task blocks"
    back = read_submission(path)
    assert not back.rejected and back.manifest.tool_version, back.rejected
    for t in TASKS:
        assert back.code(t) == read_submission(str(copy)).code(t)
        assert manifest["tasks"][t]["stub"] == (t != "crop.backward" and t != "autograd.toposort")


# ---- grading a class ----------------------------------------------------------------------------
def _copy_with(base, dest, solved=(), replace=None):
    """A student copy at dest from base, with the textbook solution of ``solved`` filled in
    and ``replace`` = {task: [block lines]} spliced in."""
    shutil.copytree(base, dest)
    if solved:
        fill_in(str(dest), textbook(), list(solved))
    for t, body in (replace or {}).items():
        path = dest / TASKS[t].file
        text = path.read_text()
        n = len(fences.task_blocks(t, str(dest)))
        path.write_text(fences.rewrite(text, TASKS[t].file, {t: [body] * n}))
    return dest


@pytest.fixture(scope="module")
def stub_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("copies") / "all-stubs"
    make_student(str(ROOT), str(out))
    return out


@pytest.mark.slow
def test_reference_and_textbook_earn_full_marks_and_stubs_earn_nothing_with_their_own_error(stub_copy, tmp_path):
    """The whole class run of the CI proof: reference, textbook, all stubs (run, not skipped),
    and one-task-only submissions; one grade() call shares the collection."""
    only = list(TASKS)
    reference = tmp_path / "reference"  # the reference's code as a hand-in (the tree itself also holds
    for part in ("minigrad", "unet"):    # the textbook: two copies, which intake rightly refuses)
        shutil.copytree(ROOT / part, reference / part, ignore=shutil.ignore_patterns("__pycache__"))
    subs = {"reference": str(reference), "textbook": textbook(), "stubs": str(stub_copy)}
    for t in only:
        subs[f"only-{t}"] = str(_copy_with(stub_copy, tmp_path / f"only-{t}", solved=[t]))
    by = dict(zip(subs, grade(str(ROOT), list(subs.values()), jobs=2, cost=False)))  # in the order given
    total = sum(task.points for task in load_course(str(ROOT)).tasks.values())
    for name in ("reference", "textbook"):
        r = by[name]
        assert r.total == total, "\n".join(f"{t}: {x.status} {x.report[:800]}" for t, x in r.tasks.items())
    for t, r in by["stubs"].tasks.items():
        assert r.points == 0 and "not done" in r.status and f'NotImplementedError("{t}:' in r.report
    for t in only:
        r = by[f"only-{t}"]
        assert r.tasks[t].points == r.tasks[t].max_points, r.tasks[t].report[:2000]
        assert all(x.points == 0 for u, x in r.tasks.items() if u != t)


@pytest.mark.slow
def test_every_tasks_tests_fail_on_its_own_stub(stub_copy):
    """Non-vacuity: with the stub's code really run, every test marked X fails with X's own
    NotImplementedError (the other tasks are the reference, so nothing else can fail)."""
    (result,) = grade(str(ROOT), [str(stub_copy)], jobs=2, run_stubs=True, cost=False)
    for t, r in result.tasks.items():
        assert r.total > 0 and r.passed == 0 and r.hidden_passed == 0, f"{t}: {r.status}"
        assert f"NotImplementedError: {t}:" in r.report, f"{t}: {r.report[-1500:]}"
        assert all(outcome == "failed" for _, outcome, _ in r.tests), t


@pytest.fixture(scope="module")
def small_course(tmp_path_factory):
    """A copy of the reference tree with short time limits, for the broken submissions."""
    ref = tmp_path_factory.mktemp("ref") / "course"
    for part in ("minigrad", "unet", "tests", "pyproject.toml", "course.toml", "README.md"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, ref / part,
                                                             **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    toml = (ref / "course.toml").read_text()
    (ref / "course.toml").write_text(toml.replace("per_test_timeout = 60", "per_test_timeout = 4")
                                     .replace("per_task_timeout = 300", "per_task_timeout = 40"))
    return ref


@pytest.mark.slow
def test_tampering_broken_and_endless_submissions(stub_copy, small_course, tmp_path):
    tasks = ["autograd.toposort", "crop.backward"]
    wrong = ["        return order if False else []\n"]  # a wrong toposort, not a stub
    tampered = _copy_with(stub_copy, tmp_path / "tampered", solved=["crop.backward"], replace={"autograd.toposort": wrong})
    (tampered / "tests" / "conftest.py").write_text(
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")
    (tampered / "tests" / "test_tensor.py").write_text(
        "import pytest\n@pytest.mark.autograd_toposort\ndef test_free_points():\n    pass\n")
    pyproject = (tampered / "pyproject.toml").read_text()
    (tampered / "pyproject.toml").write_text(pyproject.replace('addopts = "', 'addopts = "-p no:python --co '))
    (tampered / "sitecustomize.py").write_text("import os\nos._exit(0)\n")
    honest = _copy_with(stub_copy, tmp_path / "honest", solved=["crop.backward"], replace={"autograd.toposort": wrong})
    syntax = _copy_with(stub_copy, tmp_path / "syntax", solved=["autograd.toposort"],
                        replace={"crop.backward": ["        dx = (\n"]})
    endless = _copy_with(stub_copy, tmp_path / "endless", solved=["crop.backward"],
                         replace={"autograd.toposort": ["        while True:\n", "            pass\n"]})
    exfil = _copy_with(stub_copy, tmp_path / "exfil", solved=["autograd.toposort"], replace={"crop.backward": [
        "        import minigrad.functional.im2col as m\n",
        "        raise RuntimeError(open(m.__file__).read().split('BEGIN' + ' TASK conv.im2col')[1][:290])\n"]})
    zipped = tmp_path / "zipped.zip"  # a .zip of a whole copy, wrapped in one folder
    shutil.make_archive(str(zipped)[:-4], "zip", tmp_path, "honest")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    results = {r.id: r for r in grade(str(small_course), [str(tampered), str(honest), str(syntax), str(endless),
                                                          str(zipped), str(exfil)], tasks=tasks, jobs=2, cost=False)}
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert before == after, "grading wrote into a submission"
    assert not list(tmp_path.rglob(".hypothesis"))
    for name in ("tampered", "honest", "zipped"):  # tampering earns nothing the honest copy does not
        r = results[name].tasks
        assert r["crop.backward"].points == r["crop.backward"].max_points
        assert r["autograd.toposort"].points == 0
        assert r["autograd.toposort"].total == len(visible_cases("autograd.toposort"))
    r = results["syntax"].tasks
    assert r["crop.backward"].points == 0 and r["crop.backward"].status == "syntax error"
    assert re.search(r"SyntaxError in minigrad/functional/crop.py, line \d+", r["crop.backward"].report)
    assert r["autograd.toposort"].points == r["autograd.toposort"].max_points
    leak = results["exfil"].tasks["crop.backward"].report
    assert "reference solution" in leak  # the error's lines that quote it are replaced
    for block in reference_blocks()["conv.im2col"] + reference_blocks()["conv.col2im"]:
        for line in block.splitlines():
            if len(line.strip()) > 30 and not line.strip().startswith("#"):
                assert line.strip() not in leak, f"reference code shown to a student: {line.strip()}"
    r = results["endless"].tasks
    assert r["autograd.toposort"].points == 0
    assert "time limit" in r["autograd.toposort"].report and "(time limit)" in r["autograd.toposort"].status
    assert r["crop.backward"].points == r["crop.backward"].max_points

    write_outputs(list(results.values()), load_course(str(small_course)), str(tmp_path / "out"))
    with open(tmp_path / "out" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["submission"] for row in rows] == ["tampered", "honest", "syntax", "endless", "zipped", "exfil"]
    assert set(rows[0]) == {"submission", *tasks, "total", "max_total"}
    assert float(rows[2]["total"]) == float(rows[2]["autograd.toposort"]) == 10
    payload = json.loads((tmp_path / "out" / "syntax" / "results.json").read_text())
    assert payload["score"] == 10 and {t["name"] for t in payload["tests"]} == {*tasks, "crop.backward (hidden tests)"}
    for test in payload["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
    feedback = (tmp_path / "out" / "syntax" / "feedback.md").read_text()
    assert "## crop.backward: 0 / 5 points (syntax error)" in feedback


@pytest.mark.slow
def test_grades_are_reproducible_and_hidden_tests_stay_hidden(stub_copy, small_course, tmp_path):
    """A partly wrong im2col (ignores the row stride) under derandomised hypothesis: two runs agree,
    and the hidden test's outcome is in results.json only after the due date."""
    sub = _copy_with(stub_copy, tmp_path / "partial", solved=["conv.im2col"])
    path = sub / TASKS["conv.im2col"].file
    text = path.read_text().replace("rows, columns = geom.window_slices(i, j)",
                                    "rows, columns = geom.window_slices(i, j)\n"
                                    "            rows = slice(rows.start, rows.start + oh)")
    path.write_text(text)
    runs = [grade(str(small_course), [str(sub)], tasks=["conv.im2col"], jobs=1, cost=False)[0] for _ in range(2)]
    a, b = (r.tasks["conv.im2col"] for r in runs)
    assert 0 < a.points < a.max_points, a.status
    assert (a.points, a.tests) == (b.points, b.tests)
    assert a.hidden_total == 1
    from minigrad_course.grade import gradescope_json

    payload = gradescope_json(runs[0], load_course(str(small_course)))
    hidden = [t for t in payload["tests"] if t["visibility"] == "after_due_date"]
    assert len(hidden) == 1 and "hidden" in hidden[0]["name"]
    assert sum(t["max_score"] for t in payload["tests"]) == pytest.approx(10)


@pytest.mark.slow
def test_check_reports_blocked_tasks_and_submit_round_trips_through_the_autograder(stub_copy, tmp_path):
    copy = _copy_with(stub_copy, tmp_path / "bob", solved=["autograd.toposort", "crop.backward", "unet.forward"])
    env = dict(os.environ, PYTHONPATH=str(copy))
    run = subprocess.run(CLI + ["check", "autograd.toposort", "autograd.elementwise", "crop.backward", "conv.im2col",
                                "unet.forward"],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    table = run.stdout
    assert run.returncode == 1, table + run.stderr
    assert re.search(r"autograd\.toposort\s+10\.00/10\s+\d+/\d+\s+passed", table), table
    assert re.search(r"autograd\.elementwise .*not done yet \(still the stub\)", table), table
    assert re.search(r"crop\.backward\s+5\.00/5\s+3/3\s+passed", table), table
    # its cases run into conv.conv_transpose2d's stub: named, not failed as its own
    assert re.search(r"unet\.forward .*blocked by conv\.conv_transpose2d", table), table
    assert re.search(r"conv\.im2col .*not done yet \(still the stub\)", table), table
    assert not (copy / ".hypothesis").exists()
    run = subprocess.run(CLI + ["submit"], cwd=copy, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and (copy / "submission.zip").exists(), run.stderr

    bundle = tmp_path / "autograder.zip"
    run = subprocess.run(CLI + ["make-autograder", str(bundle), "--tasks", "autograd.toposort", "crop.backward"],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    gs = tmp_path / "gradescope"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(gs / "source")  # where Gradescope unpacks it
        assert {"setup.sh", "run_autograder", "course.toml", "minigrad/tensor.py", "tests/test_tasks.py"} <= set(z.namelist())
        assert not any(n.startswith(("tests/instructor", ".ci", "docs", "tutorials")) for n in z.namelist())
    assert subprocess.run(["bash", "-n", str(gs / "source" / "setup.sh")]).returncode == 0
    (gs / "submission").mkdir()
    shutil.copy(copy / "submission.zip", gs / "submission" / "submission.zip")
    env = dict(os.environ, AUTOGRADER_ROOT=str(gs))
    run = subprocess.run(["bash", str(gs / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    payload = json.loads((gs / "results" / "results.json").read_text())
    assert payload["score"] == 15, json.dumps(payload, indent=1)[:4000]
    assert [t["name"] for t in payload["tests"]] == ["autograd.toposort", "crop.backward", "crop.backward (hidden tests)"]
