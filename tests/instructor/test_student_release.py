"""A student copy says what works at its release: which tasks `unet train` needs (and which of
them come later), that the test command's failures for tasks not done are expected."""
import os
import pathlib
import subprocess
import sys

import pytest

from minigrad_course.config import load_course
from minigrad_course.student import make_student
from minigrad_course.tasks import TASKS, UNET_TRAIN_TASKS

ROOT = pathlib.Path(__file__).resolve().parents[2]

TRACE = r"""
import os, sys, json
import numpy as np
from minigrad_course import fences
from minigrad_course.tasks import TASKS
root = sys.argv[1]
ranges = {}
for t, task in TASKS.items():
    for b in fences.task_blocks(t, root):
        ranges.setdefault(os.path.join(root, task.file), []).append((b.begin + 2, b.end, t))
hit = set()
def tracer(frame, event, arg):
    spans = ranges.get(frame.f_code.co_filename)
    if not spans:
        return None
    def local(frame, event, arg):
        if event == "line":
            hit.update(t for a, b, t in spans if a <= frame.f_lineno <= b)
        return local
    return local
from unet import data
from unet.train import TrainConfig, build, train_step
out = {}
for optimizer in ("adam", "sgd"):
    hit.clear()
    cfg = TrainConfig(depth=2, base_channels=4, tile=60, batch_size=1, optimizer=optimizer)
    sys.settrace(tracer)
    model, opt = build(cfg)
    image, instances = data.synthetic_cells(96, 5)
    region = data.make_region(data.normalize(image), instances)
    batch = data.sample_batch([region], 1, cfg.tile, model.output_size(cfg.tile), np.random.default_rng(0))
    train_step(model, opt, *batch, "cpu", 1e-3)
    sys.settrace(None)
    out[optimizer] = sorted(hit)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def week2_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "week2"
    make_student(str(ROOT), str(out), release="week2")
    return out


@pytest.mark.slow
def test_unet_train_runs_exactly_the_tasks_the_copy_says_it_needs(tmp_path):
    """Traced in a student copy with every solution revealed (a copy runs the task blocks)."""
    import json

    copy = tmp_path / "solved"
    make_student(str(ROOT), str(copy), reveal=list(TASKS))
    run = subprocess.run([sys.executable, "-c", TRACE, str(copy)], cwd=copy, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(copy)), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    hit = json.loads(run.stdout.strip().splitlines()[-1])
    order = list(TASKS)
    assert hit["adam"] == sorted(UNET_TRAIN_TASKS)
    assert hit["sgd"] == sorted(set(UNET_TRAIN_TASKS) - {"optim.adam"} | {"optim.sgd"})
    assert list(UNET_TRAIN_TASKS) == sorted(UNET_TRAIN_TASKS, key=order.index)  # teaching order


def test_a_partial_copy_says_what_works_and_what_comes_later(week2_copy):
    course = load_course(str(ROOT))
    later = [t for t, task in course.tasks.items() if task.release not in ("week1", "week2")]
    handed = len(course.tasks) - len(later)
    for page in ("README.md", "STUDENT.md"):
        text = (week2_copy / page).read_text()
        section = text.split("What works in this copy", 1)[1].split("\n#", 1)[0]
        assert f"hands out {handed} of the course's {len(course.tasks)} tasks" in section
        pending = section.split("come with later releases", 1)[1].split(").", 1)[0]
        assert all(f"`{t}`" in pending for t in later), pending
        assert "Those failures are expected" in section and 'python -m pytest -q -m "not gpu"' in section
        assert "`unet train`" in section and "cannot run in this copy yet" in section
        assert f"{len([t for t in UNET_TRAIN_TASKS if t in later])} of them come with later releases" in section
    readme = (week2_copy / "README.md").read_text()
    assert readme.index("What works in this copy") < readme.index("unet train\n")  # before the Quick start


def test_a_full_copy_says_every_task_is_handed_out(tmp_path):
    make_student(str(ROOT), str(tmp_path / "all"))
    section = (tmp_path / "all" / "STUDENT.md").read_text().split("What works in this copy", 1)[1]
    assert f"hands out all {len(load_course(str(ROOT)).tasks)} of the course's tasks" in section
    assert "cannot run in this copy yet" not in section and "not handed out yet" not in section.split("## Set up")[0]


def test_a_notebook_cell_that_needs_a_later_task_says_it_is_not_handed_out_yet(week2_copy):
    code = ("from minigrad_course import require, TaskNotDone\n"
            "for t in ('conv.conv_transpose2d', 'conv.im2col'):\n"
            "    try:\n        require(t)\n    except TaskNotDone as e:\n        print(e)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=week2_copy, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(week2_copy)))
    later, now = run.stdout.strip().splitlines()
    assert later.startswith("Task conv.conv_transpose2d is not handed out yet in this copy"), run.stdout + run.stderr
    assert now.startswith("Task conv.im2col is not done yet: write im2col in minigrad/functional/im2col.py")


def test_project_root_is_the_tree_whose_minigrad_is_imported():
    """require() and the notebooks read the task blocks of the tree the engine comes from
    (a package beside minigrad, not inside it: one folder up from minigrad/)."""
    from minigrad_course.fences import project_root

    assert project_root() == str(ROOT)
