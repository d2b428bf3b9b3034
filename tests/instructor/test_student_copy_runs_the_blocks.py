"""A student copy (and so a grading tree built the same way) has no accelerated path: every op
runs the task blocks. Proved on a copy with every task solved the textbook way: the U-Net's
step runs the student's im2col, col2im, conv2d_backward, conv_transpose2d and max-pool
backward, and a block wrong only where the accelerated path would have covered it (an im2col
that forgets the dilation; a max-pool backward that assigns where overlapping windows must add)
gives wrong numbers there."""
import os
import subprocess
import sys
import textwrap

import pytest

from minigrad_course.student import make_student
from minigrad_course.submission import fill_in
from minigrad_course.tasks import TASKS
from textbook_solutions import textbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = textwrap.dedent("""
    import sys, numpy as np, torch
    import minigrad as mg, minigrad.functional as F
    from minigrad.backends import accelerated
    from minigrad.functional import conv, im2col as cols_module, pool
    assert mg.__file__.startswith(sys.argv[1]), mg.__file__
    assert accelerated.enabled and not accelerated.is_available() and accelerated.kernels() is None
    calls = {}
    def counting(owner, name):
        real = getattr(owner, name)
        def wrapped(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return real(*a, **k)
        setattr(owner, name, wrapped)
    for owner, name in ((conv, "im2col"), (conv, "col2im"), (conv.Conv2d, "backward"),
                        (conv.ConvTranspose2d, "forward"), (pool.MaxPool2d, "backward")):
        counting(owner, name)
    from unet.model import UNet
    net = UNet(depth=2, base_channels=4)
    x = mg.randn(1, 1, 44, 44)
    net(x).sum().backward()
    print(sorted(calls.items()))
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((1, 2, 9, 9)), rng.standard_normal((2, 2, 3, 3))
    dilated = np.allclose(F.conv2d(mg.tensor(a), mg.tensor(w), dilation=2).numpy(),
                          torch.nn.functional.conv2d(torch.tensor(a), torch.tensor(w), dilation=2).numpy())
    xm = mg.tensor(rng.standard_normal((1, 1, 8, 8)), requires_grad=True)
    F.max_pool2d(xm, 2, 2, dilation=2).sum().backward()
    xt = torch.tensor(xm.numpy(), requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 2, 2, dilation=2).sum().backward()
    print("dilated conv right:", dilated, "dilated pool right:", np.allclose(xm.grad, xt.grad.numpy()))
""")


def _run(copy):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "HYPOTHESIS", "MINIGRAD_"))}
    env.update(PYTHONPATH=copy)
    run = subprocess.run([sys.executable, "-c", PROBE, copy], cwd=copy, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


@pytest.mark.slow
def test_a_student_copy_runs_the_blocks_and_catches_what_the_accelerated_path_would_hide(tmp_path):
    copy = str(tmp_path / "student")
    make_student(ROOT, copy)
    assert sorted(fill_in(copy, textbook())) == sorted(TASKS)  # the textbook files, the reference's blocks elsewhere
    assert not os.path.exists(os.path.join(copy, "minigrad", "accelerated"))
    assert not os.path.exists(os.path.join(copy, "tests", "test_accelerated.py"))
    assert os.path.exists(os.path.join(copy, "minigrad", "backends", "accelerated.py"))  # the switch is there

    out = _run(copy)
    for name in ("im2col", "col2im", "backward", "forward"):
        assert f"('{name}', 0)" not in out and f"'{name}'" in out, out
    assert "dilated conv right: True dilated pool right: True" in out, out

    # blocks wrong only where the accelerated path would have covered them
    im2col_file = os.path.join(copy, "minigrad", "functional", "im2col.py")
    with open(im2col_file) as f:
        text = f.read()
    wrong = text.replace("rows, columns = geom.window_slices(i, j)\n            cols[",
                         "rows, columns = Geometry(geom.kernel, geom.stride, (1, 1), geom.out_hw).window_slices(i, j)\n"
                         "            cols[", 1)  # the dilation forgotten
    assert wrong != text
    with open(im2col_file, "w") as f:
        f.write(wrong)
    pool_file = os.path.join(copy, "minigrad", "functional", "pool.py")
    with open(pool_file) as f:
        text = f.read()
    wrong = text.replace("dx[:, :, rows, cols] += g * (self.winner == k)",
                         "dx[:, :, rows, cols] = xp.where(self.winner == k, g, dx[:, :, rows, cols])")
    assert wrong != text
    with open(pool_file, "w") as f:
        f.write(wrong)
    assert "dilated conv right: False dilated pool right: False" in _run(copy)


def test_a_grading_tree_has_no_accelerated_path(tmp_path):
    """The sandbox's tree (minigrad_course.trees.make_tree) leaves the accelerated path out, as a
    student copy does: the reference's own minigrad.backends.accelerated then finds nothing."""
    from minigrad_course.trees import make_tree

    tree = make_tree(ROOT, str(tmp_path / "tree"))
    assert os.path.isfile(os.path.join(tree, "minigrad", "functional", "conv.py"))
    assert not os.path.exists(os.path.join(tree, "minigrad", "accelerated"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIGRAD_")}
    env.update(PYTHONPATH=tree)
    code = "import minigrad.backends as b; print(b.accelerated.enabled, b.accelerated.is_available())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
