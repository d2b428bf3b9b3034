"""The tutorials as the course's lab book, run the way a student meets them.

* In a fresh student copy (every task a stub), each notebook stops at its first "your turn"
  cell (the first ``require(...)``) with a one-line TaskNotDone message naming its own task,
  its file and the ``check`` command: no engine traceback, no cell before it touching a stub.
* Working through the course in order (textbook solutions filled in notebook by notebook),
  each notebook stops only at its *own* tasks: the tasks of the notebooks before it suffice.
* With every textbook solution filled in, every notebook runs to the end (its asserts and
  "your turn" verdicts all pass).

Each notebook runs in its own kernel with the copy first on PYTHONPATH, so the copy's
minigrad/unet are the ones imported. Slow: about the time of all notebooks once.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from minigrad_course.tasks import TASKS
from textbook_solutions import textbook

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOKS = sorted(f[:-6] for f in os.listdir(os.path.join(ROOT, "tutorials")) if f.endswith(".ipynb"))
CHECK = "python -m minigrad_course check"

# Runs one notebook in a fresh kernel; prints a JSON line: how far it got and how it stopped.
RUNNER = r"""
import json, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
client = NotebookClient(nb, timeout=900, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}})
t0, failed = time.time(), None
try:
    client.execute()
except CellExecutionError:
    pass
for i, cell in enumerate(nb.cells):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error" and failed is None:
            failed = {"cell": i, "ename": out["ename"], "evalue": out["evalue"], "traceback": out["traceback"]}
first_require = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "require(" in c.source), None)
text = "".join(out.get("text", "") for c in nb.cells for out in c.get("outputs", []) if out.get("output_type") == "stream")
print(json.dumps({"seconds": time.time() - t0, "error": failed, "first_require": first_require, "text": text}))
"""


def own_tasks(notebook):
    return [t for t, task in TASKS.items() if task.notebook == f"tutorials/{notebook}.ipynb"]


def run_notebook(tree, notebook):
    env = dict(os.environ, PYTHONPATH=tree, MPLBACKEND="Agg")
    tutorials = os.path.join(tree, "tutorials")
    proc = subprocess.run([sys.executable, "-c", RUNNER, os.path.join(tutorials, f"{notebook}.ipynb"), tutorials],
                          cwd=tutorials, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{notebook}: the runner failed\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_copy(path):
    proc = subprocess.run([sys.executable, "-m", "minigrad_course", "make-student", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return str(path)


def fill(tree, tasks):
    from minigrad_course.submission import fill_in

    if tasks:
        assert sorted(fill_in(tree, textbook(), tasks)) == sorted(tasks)


def exercise_solutions():
    """{notebook: [solution lines]} from the instructor's solutions page."""
    with open(os.path.join(ROOT, "docs", "instructor", "tutorial_solutions.md"), encoding="utf-8") as f:
        text = f.read()
    solutions, notebook, block = {}, None, False
    for line in text.splitlines():
        if line.startswith("## "):
            notebook = line[3:].strip()
        elif line.startswith("```"):
            block = line.strip() == "```python"
        elif block and line.strip():
            solutions.setdefault(notebook, []).append(line.strip())
    return solutions


def splice_solutions(tree, notebook, lines):
    """Put the exercise answers into the copy's notebook: ``NAME = ...`` replaces the line
    ``NAME = None  # exercise ...``, ``return ...`` replaces ``return None  # exercise ...``."""
    import nbformat

    path = os.path.join(tree, "tutorials", f"{notebook}.ipynb")
    nb = nbformat.read(path, as_version=4)
    used = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        new = []
        for code in cell.source.splitlines():
            stripped = code.strip()
            if "# exercise" in stripped and (" = None" in stripped or stripped.startswith("return None")):
                key = "return" if stripped.startswith("return None") else stripped.split(" = None")[0] + " ="
                match = [ln for ln in lines if ln.startswith(key + " ") or ln == key]
                assert len(match) == 1, f"{notebook}: no single solution line for {stripped!r} in the solutions page"
                used.add(match[0])
                code = code[: len(code) - len(code.lstrip())] + match[0]
            new.append(code)
        cell.source = "\n".join(new)
    assert used == set(lines), f"{notebook}: solution lines that match no exercise: {set(lines) - used}"
    nbformat.write(nb, path)
    exercises = sorted({int(k) for c in nb.cells for k in re.findall(r"Exercise (\d+): not tried yet", c.source)})
    assert exercises, f"{notebook}: no exercise check cells"
    return exercises


def assert_stops_at(result, notebook, allowed_tasks):
    """Stopped at the first require cell, with TaskNotDone naming only ``allowed_tasks``, first line one
    of the notebook's own tasks when it has any."""
    err = result["error"]
    assert err is not None, f"{notebook} ran to the end in a copy where its tasks are stubs"
    assert err["ename"] == "TaskNotDone", (
        f"{notebook} stopped with {err['ename']} at cell {err['cell']} instead of a TaskNotDone message:\n"
        + "\n".join(err["traceback"])[-3000:])
    assert err["cell"] == result["first_require"], (
        f"{notebook} stopped at cell {err['cell']}, not at its first require cell {result['first_require']}")
    lines = err["evalue"].splitlines()
    named = [line.split()[1] for line in lines]
    assert all(line.startswith("Task ") and " is not done yet" in line and f"{CHECK} " in line for line in lines), lines
    assert set(named) <= set(allowed_tasks), f"{notebook}: the message names {named}, expected only {allowed_tasks}"
    if own_tasks(notebook):
        assert named[0] in own_tasks(notebook), f"{notebook}: first line names {named[0]}, not one of its own tasks"
        task = TASKS[named[0]]
        assert task.file in lines[0]


@pytest.fixture(scope="module")
def stub_copy(tmp_path_factory):
    return make_copy(tmp_path_factory.mktemp("course") / "student")


@pytest.fixture(scope="module")
def progress_copy(tmp_path_factory):
    return make_copy(tmp_path_factory.mktemp("course") / "student")


def test_every_notebook_has_a_task_or_says_it_needs_none():
    assert NOTEBOOKS[:10] == ["01_autograd", "02_gradcheck", "03_im2col", "04_pool_and_transpose", "05_crop_concat",
                              "06_train_unet", "07_overlap_tile", "08_gpu", "09_normalisation_and_upsampling",
                              "10_unet_family"], NOTEBOOKS
    for t, task in TASKS.items():
        assert os.path.exists(os.path.join(ROOT, task.notebook)), f"{t}: its notebook {task.notebook} is missing"
    with_tasks = [nb for nb in NOTEBOOKS if own_tasks(nb)]
    assert [nb for nb in with_tasks if nb in NOTEBOOKS[:10]] == NOTEBOOKS[:6] + NOTEBOOKS[8:10], with_tasks


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_fresh_student_copy_stops_at_the_notebooks_own_task(stub_copy, notebook):
    result = run_notebook(stub_copy, notebook)
    assert_stops_at(result, notebook, list(TASKS))


def test_working_through_the_course_in_order(progress_copy):
    """Notebook k, with the textbook solutions of notebooks 1..k-1 filled in, stops at its own
    tasks only; after its own are filled in (and the exercise answers of the instructor's
    solutions page spliced in) it runs to the end, every exercise check saying "correct"."""
    times, solutions = {}, exercise_solutions()
    assert set(solutions) == set(NOTEBOOKS), set(NOTEBOOKS) ^ set(solutions)
    for notebook in NOTEBOOKS:
        mine = own_tasks(notebook)
        if mine:
            assert_stops_at(run_notebook(progress_copy, notebook), notebook, mine)
            fill(progress_copy, mine)
        exercises = splice_solutions(progress_copy, notebook, solutions.get(notebook, []))
        result = run_notebook(progress_copy, notebook)
        assert result["error"] is None, (
            f"{notebook} failed with all tasks up to its own filled in, at cell {result['error']['cell']}:\n"
            + "\n".join(result["error"]["traceback"])[-3000:])
        assert "not tried yet" not in result["text"], f"{notebook}: an exercise has no answer in the solutions page"
        for k in exercises:
            assert f"Exercise {k}: correct" in result["text"], (notebook, k, result["text"][-2000:])
        times[notebook] = round(result["seconds"], 1)
    print("notebook run times (s), textbook solutions:", times)
