"""Attacks on the grader (issue 17), each a submission graded beside honest ones.

Every attack earns what its honest equivalent earns (the cheats: what a wrong answer earns,
zero), the honest students graded beside a saboteur keep their marks, and nothing the attacks
start or write survives outside their sandboxes. One grading run of one small task
(crop.backward) shared by the whole class keeps it inside CI's budget.
"""
import os
import pathlib
import shutil
import site
import subprocess
import sys
import tempfile
import uuid

import numpy as np
import pytest

from minigrad_course import cases, fences
from minigrad_course.check import check
from minigrad_course.config import load_course
from minigrad_course.grade import grade
from minigrad_course.sandbox import Limits, Sandbox, SandboxError, find
from minigrad_course.student import make_student
from minigrad_course.verdicts import GradingError

ROOT = pathlib.Path(__file__).resolve().parents[2]
TASK = "crop.backward"
FILE = "minigrad/functional/crop.py"
TOKEN = f"h17-attack-{uuid.uuid4().hex[:10]}"  # in the command line of every process an attack starts

HONEST = """\
xp = backend.array_module(g)
dx = xp.zeros(self.x_shape, dtype=g.dtype)
dx[self.window] = g
return (dx,)
"""
WRONG = """\
xp = backend.array_module(g)
return (xp.zeros(self.x_shape, dtype=g.dtype),)
"""


def _daemon(token):
    """A double-forked setsid daemon that keeps running (and would sabotage whatever it reaches)."""
    return f"""\
import os as _os, sys as _sys
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _os.execv(_sys.executable, [_sys.executable, "-c", "import time\\nwhile True: time.sleep(0.5)", "{token}"])
    _os._exit(0)
"""


def attack_bodies(reference: str, home_marker: str) -> dict:
    site_dir = site.getsitepackages()[0]
    return {
        "honest": HONEST,
        "honest2": HONEST,
        "wrong": WRONG,
        # writes everywhere it can think of, leaves a daemon, then answers correctly
        "saboteur": _daemon(TOKEN) + f"""\
import glob as _glob
for _target in [{reference!r} + "/minigrad/functional/crop.py", {reference!r} + "/pwned.txt", {home_marker!r},
                {site_dir!r} + "/zz_pwned.pth", "/tmp/pwned-{TOKEN}"]:
    try:
        with open(_target, "a") as _f:
            _f.write("import os; os.system('echo pwned')\\n")
    except OSError:
        pass
for _other in _glob.glob("/tmp/minigrad-*/**/out/*.npz", recursive=True) + _glob.glob("/tmp/minigrad-*/**/results*",
                                                                                        recursive=True):
    with open(_other, "wb") as _f:
        _f.write(b"sabotage")
""" + HONEST,
        # self-awarded marks: patched assertions and pytest, forged result files, then a hard exit
        "forger": """\
import numpy as _np, os as _os
_np.testing.assert_allclose = lambda *a, **k: None
_np.isclose = lambda a, b, **k: _np.ones(_np.broadcast(a, b).shape, bool)
try:
    import _pytest.reports as _r
    _r.TestReport.outcome = "passed"
except Exception:
    pass
try:
    import torch.testing as _tt
    _tt.assert_close = lambda *a, **k: None
except Exception:
    pass
for _k in range(50):
    _os.makedirs("/io/out", exist_ok=True)
    _np.savez(f"/io/out/{_k}.npz", out=_np.zeros(1), grad_x=_np.zeros(1))
    with open(f"/io/results.jsonl", "a") as _f:
        _f.write('{"outcome": "passed"}\\n')
_os._exit(0)
""",
        # the reference block, found through the installation (sys.executable, direct_url.json,
        # the editable finder), or PyTorch computing the answer
        "finder": f"""\
import glob as _glob, json as _json, os as _os, sys as _sys
_roots = [{str(ROOT)!r}, {reference!r}, _os.path.dirname(_sys.executable) + "/../.."]
import site as _site
for _p in [q for sp in _site.getsitepackages() for q in _glob.glob(sp + "/*.dist-info/direct_url.json")]:
    try:
        _roots.append(_json.load(open(_p))["url"].replace("file://", ""))
    except Exception:
        pass
_src = None
for _root in _roots:
    for _cand in _glob.glob(_os.path.join(_root, "**", "functional", "crop.py"), recursive=True):
        _text = open(_cand).read()
        if "dx[self.window] = g" in _text:
            _src = _text
if _src is None:
    import torch  # let PyTorch compute it
    return (torch.nn.functional.pad(torch.from_numpy(g), (0, 0)).numpy(),)
_ns = {{}}
_body = _src.split("# BEGIN" + " TASK crop.backward")[1].split("# END" + " TASK")[0]
exec("def _f(self, g):\\n" + "\\n".join("    " + l.strip() for l in _body.splitlines() if l.strip()), globals(), _ns)
return _ns["_f"](self, g)
""",
        # an output that inflates to 512 MiB in the grader (a zip bomb handed out), then a hard exit
        "output_bomb": """\
import numpy as _np, os as _os
_os.makedirs("/io/out", exist_ok=True)
for _k in range(4):
    _np.savez_compressed(f"/io/out/{_k}.npz", out=_np.zeros(1 << 26), grad_x=_np.zeros(1 << 26))
_os._exit(0)
""",
        "memory_hog": "import numpy as _np\n_hog = _np.ones(20 * 10**9 // 8)\n" + HONEST,
        "flood": "import sys as _s\nfor _ in range(200):\n    _s.stdout.write('x' * (1 << 20))\n" + HONEST,
    }


def _submission(dest: pathlib.Path, body: str) -> pathlib.Path:
    path = dest / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (ROOT / FILE).read_text()
    block = fences.task_blocks(TASK, str(ROOT))[0]
    lines = [block.indent + ln + "\n" for ln in body.splitlines()]
    path.write_text(fences.rewrite(text, FILE, {TASK: [lines]}))
    return dest


def _snapshot(root: pathlib.Path):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())


def _attack_processes():
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if TOKEN.encode() in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    ref = tmp_path_factory.mktemp("ref") / "course"
    for part in ("minigrad", "unet", "tests/hidden", "pyproject.toml", "course.toml"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, ref / part, **(
            {"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    toml = (ref / "course.toml").read_text()
    (ref / "course.toml").write_text(toml.replace("per_task_timeout = 300", "per_task_timeout = 60"))
    return ref


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux's")
def test_attacks_earn_nothing_harm_no_one_and_leave_nothing_behind(reference, tmp_path):
    home_marker = os.path.expanduser(f"~/.{TOKEN}")
    bodies = attack_bodies(str(reference), home_marker)
    subs = {name: _submission(tmp_path / "class" / name, body) for name, body in bodies.items()}
    link = tmp_path / "class" / "symlinked" / FILE  # a hand-in whose task file links to the reference
    link.parent.mkdir(parents=True)
    link.symlink_to(reference / FILE)
    subs["symlinked"] = link.parents[2]
    ref_before, sub_before = _snapshot(reference), _snapshot(tmp_path / "class")
    site_before = sorted(os.listdir(site.getsitepackages()[0]))

    results = {r.id: r.tasks[TASK] for r in grade(str(reference), [str(p) for p in subs.values()], tasks=[TASK],
                                                  jobs=2)}

    full = results["honest"].max_points
    assert results["honest"].points == results["honest2"].points == full, results["honest"].report
    assert results["wrong"].points == 0
    assert "grad_x" in results["wrong"].report and "got 0, expected" in results["wrong"].report
    assert results["saboteur"].points == full, results["saboteur"].report  # correct code, its sabotage harmless
    for cheat in ("forger", "finder", "memory_hog", "symlinked", "output_bomb"):
        assert results[cheat].points == results["wrong"].points == 0, (cheat, results[cheat].status)
    assert "MemoryError" in results["memory_hog"].report
    assert "could not be read" in results["output_bomb"].report
    assert "ImportError" in results["finder"].report or "ModuleNotFoundError" in results["finder"].report
    assert results["flood"].points in (0, full)  # its output is cut off at the limit; it harms no one
    # nothing left running, nothing written outside the sandboxes
    assert _attack_processes() == [], "a process started by a submission outlived grading"
    assert _snapshot(reference) == ref_before and not (reference / "pwned.txt").exists()
    assert _snapshot(tmp_path / "class") == sub_before
    assert not os.path.exists(home_marker) and not os.path.exists(f"/tmp/pwned-{TOKEN}")
    assert sorted(os.listdir(site.getsitepackages()[0])) == site_before
    # a hidden case: its name and outcome only, never its reason
    hidden = [(name, state) for name, state, is_hidden in results["wrong"].tests if is_hidden]
    assert hidden == [("hidden: unbatched odd crop", "failed")]
    assert "unbatched" not in results["wrong"].report


def test_the_sandbox_isolates_a_run():
    """What a run sees: no instructor tree, no home, no network, its own PIDs; what it leaves: nothing."""
    box = find("auto", hide=[str(ROOT)])
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="minigrad-isolation-"))  # as grade's own folders:
    os.chmod(tmp_path, 0o711)  # a run with its own uid passes through (pytest's tmp_path is private)
    box.prepare(str(tmp_path))
    tree, io_dir = tmp_path / "tree", tmp_path / "io"
    tree.mkdir()
    io_dir.mkdir()
    probe = f"""
import os, socket, sys
seen = {{}}
seen["tree"] = os.path.exists({str(ROOT / 'minigrad_course')!r})
seen["home"] = os.path.exists(os.path.expanduser("~root/.bashrc")) or os.path.exists("/root/.bashrc")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); seen["net"] = True
except OSError:
    seen["net"] = False
seen["shadow"] = os.path.exists("/etc/shadow")
seen["pid1"] = len([p for p in os.listdir("/proc") if p.isdigit()]) < 10
seen["uid"] = os.getuid()
children = []
try:  # a fork bomb meets the process limit
    for _ in range(400):
        pid = os.fork()
        if pid == 0:
            import time; time.sleep(600); os._exit(0)
        children.append(pid)
except OSError:
    pass
seen["fork_bomb_stopped"] = len(children) < 400
for pid in children:  # room again for the daemon below
    os.kill(pid, 9); os.waitpid(pid, 0)
try:
    import torch; seen["torch"] = True
except ImportError:
    seen["torch"] = False
try:
    open(sys.executable, "a"); seen["venv_writable"] = True
except OSError:
    seen["venv_writable"] = False
open("/io/seen.txt", "w").write(repr(seen))
{_daemon(TOKEN)}
"""
    out = box.run(str(tree), str(io_dir), [sys.executable, "-c", probe], {}, Limits(wall_seconds=60), slot=3)
    assert out.returncode == 0, out.log
    seen = eval((io_dir / "seen.txt").read_text())  # our own file, written by our own probe
    # as root the run is dropped to its own uid outside too (run_uid(slot)); otherwise it is the
    # user namespace's 65534
    from minigrad_course.sandbox import run_uid

    uid = run_uid(3) if os.geteuid() == 0 else 65534
    assert seen == {"tree": False, "home": False, "net": False, "shadow": False, "pid1": True, "uid": uid, "torch": False,
                    "venv_writable": False, "fork_bomb_stopped": True}, seen
    assert _attack_processes() == []
    shutil.rmtree(tmp_path)


def test_grading_refuses_without_a_sandbox_unless_told_and_then_says_so():
    with pytest.raises(GradingError, match="--unsafe-no-sandbox"):
        grade(str(ROOT), [str(ROOT)], tasks=[TASK], sandbox="none")
    with pytest.raises(SandboxError, match="--unsafe-no-sandbox"):
        find("none")
    if shutil.which("docker"):
        with pytest.raises(SandboxError, match="--sandbox-image"):
            find("docker")
    assert "UNSAFE" in Sandbox("none").describe() and "NO NAMESPACE" in Sandbox("user").describe()


@pytest.mark.slow
def test_an_endless_case_costs_only_itself(tmp_path):
    """A block that loops on one input: that case fails by its own time limit, the others pass."""
    from minigrad_course.trees import make_tree
    from minigrad_course.verdicts import TaskResult, judge

    sub = _submission(tmp_path / "sub", "if g.shape == (1, 1, 5, 6):\n    while True:\n        pass\n" + HONEST)
    tree = make_tree(str(ROOT), str(tmp_path / "tree"))
    shutil.copy(sub / FILE, pathlib.Path(tree) / FILE)
    visible = cases.visible_cases(TASK)
    limits = Limits(wall_seconds=20, memory_bytes=0)  # 13 s per case
    got, outcome = cases.run_probe(Sandbox("none"), tree, str(tmp_path / "io"), visible, limits)
    expected = cases.load_expected(TASK, visible)
    r = judge(load_course(str(ROOT)).tasks[TASK], TaskResult(TASK, 5), visible, got, expected, cases.compare,
              outcome.timed_out, limits.wall_seconds)
    assert not outcome.timed_out and (r.passed, r.total) == (2, 3), r.report
    assert "(1, 1, 5, 6) to [5, 6]: CaseTimeLimit: this case ran longer than its time limit" in r.report
    assert r.status.endswith("(time limit)")


def test_unsafe_grading_says_so_in_every_report(tmp_path):
    from minigrad_course.reports import feedback_markdown, gradescope_json, table

    sub = _submission(tmp_path / "alice", HONEST)
    (result,) = grade(str(ROOT), [str(sub)], tasks=[TASK], sandbox="none", unsafe_no_sandbox=True)
    assert result.tasks[TASK].points == result.tasks[TASK].max_points
    for text in (table(result), feedback_markdown(result), gradescope_json(result, load_course(str(ROOT)))["output"]):
        assert "UNSAFE: NO SANDBOX" in text


def test_a_container_run_has_no_network_and_limits():
    box = Sandbox("docker", "docker", image="course-image")
    argv = box._container_argv("/t", "/i", ["python3", "/grading/_course_probe.py", "/io"], {"A": "1"},
                               Limits(memory_bytes=1 << 30, processes=64), "name")
    text = " ".join(argv)
    for flag in ("--network none", "--read-only", f"--memory {1 << 30}", "--pids-limit 64", "--user 65534:65534",
                 "--cap-drop ALL", "-v /t:/grading", "-v /i:/io", "--rm"):
        assert flag in text, flag
    assert argv[-4:] == ["course-image", "python3", "/grading/_course_probe.py", "/io"]


def test_shipped_expected_values_are_the_references():
    """minigrad_course/expected/ (what check compares with) matches the reference tree."""
    all_cases = list(cases.CASES)
    with tempfile.TemporaryDirectory() as tmp:
        got, outcome = cases.run_probe(Sandbox("none"), str(ROOT), os.path.join(tmp, "io"), all_cases,
                                       Limits(wall_seconds=300, memory_bytes=0), copy_probe=False)
    for task in sorted(cases.tasks_with_cases()):
        mine = [(c, g) for c, g in zip(all_cases, got) if c.task == task]
        shipped = cases.load_expected(task, [c for c, _ in mine])
        assert shipped is not None, f"{task}: no expected values: run python -m minigrad_course expected"
        for (c, g), e in zip(mine, shipped):
            assert cases.compare(c, g, e) == "", f"{c.key}: stale expected values ({cases.compare(c, g, e)})"


def test_compare_says_where_and_refuses_nan_shape_and_dtype_tricks():
    c = cases.case("t", "n", "d")
    want = cases.CaseOutput({"grad_x": np.arange(6.0).reshape(2, 3)})
    assert cases.compare(c, cases.CaseOutput({"grad_x": np.arange(6.0).reshape(2, 3)}), want) == ""
    bad = np.arange(6.0).reshape(2, 3)
    bad[1, 2] = 7
    assert cases.compare(c, cases.CaseOutput({"grad_x": bad}), want) == \
        "grad_x[1, 2]: got 7, expected 5 (1 of 6 values differ)"
    nan = np.full((2, 3), np.nan)
    assert "got nan" in cases.compare(c, cases.CaseOutput({"grad_x": nan}), want)
    assert "shape (3, 2)" in cases.compare(c, cases.CaseOutput({"grad_x": bad.T.copy()}), want)
    assert "dtype float32" in cases.compare(c, cases.CaseOutput({"grad_x": bad.astype(np.float32)}), want)
    assert "missing" in cases.compare(c, cases.CaseOutput({}), want)


@pytest.mark.slow
def test_check_and_grade_give_the_same_points_for_the_same_code(reference, tmp_path):
    """A forgotten Nesterov term: check (visible cases, shipped values) and grade (the same
    visible cases, plus a hidden one) score the visible cases alike."""
    copy = tmp_path / "copy"
    make_student(str(ROOT), str(copy), only=["optim.sgd"])
    path = copy / "minigrad" / "optim.py"
    ref_text = (ROOT / "minigrad" / "optim.py").read_text()
    body = fences.task_blocks("optim.sgd", str(ROOT))[0].body
    buggy = [ln.replace("g + self.momentum * buf if self.nesterov else buf", "buf") for ln in body]
    path.write_text(fences.rewrite(path.read_text(), "minigrad/optim.py", {"optim.sgd": [buggy]}))
    assert ref_text != path.read_text()
    import io

    stream = io.StringIO()
    assert not check(str(copy), ["optim.sgd"], stream=stream)
    shown = stream.getvalue()
    assert "Nesterov with weight decay: p0_step0[0, 0]: got" in shown, shown
    (graded,) = grade(str(reference), [str(copy)], tasks=["optim.sgd"], jobs=1)
    r = graded.tasks["optim.sgd"]
    assert (r.passed, r.total) == (3, 4) and r.hidden_total == 1 and r.hidden_passed == 0
    assert "3/4" in shown and f"{5 * 3 / 4:.2f}/5" in shown  # check: 3 of 4 visible cases
    assert r.points == round(5 * 3 / 5, 2)  # grade: 3 of the 4 visible + 1 hidden
    assert subprocess.run([sys.executable, "-c", "import minigrad_course"], cwd=copy).returncode == 0


WEEK5 = ["norm.batch_norm_backward", "interp.upsample_backward", "loss.dice_backward", "unetpp.forward"]


@pytest.mark.slow
def test_check_and_grade_agree_on_a_week5_copy(reference, tmp_path):
    """A week-5 copy with every task written the textbook way but the Dice gradient's division
    by the number of images forgotten (right per batch, wrong per image): check (the student's
    code for every task) and grade (the student's block of the graded task only) score each
    week-5 task's visible cases alike, the three correct ones in full; the hidden cases count in
    grade only. (A bug in a prerequisite, batch norm's, would also fail UNet++'s cases in check
    but not in grade: check runs the student's whole copy.)"""
    from minigrad_course.submission import fill_in
    from textbook_solutions import textbook

    copy = tmp_path / "week5"
    make_student(str(ROOT), str(copy), release="week5")
    assert sorted(fill_in(str(copy), textbook())) == sorted(load_course(str(ROOT)).tasks)
    dice = "loss.dice_backward"
    path = copy / "unet" / "losses.py"
    text = "".join(fences.task_blocks(dice, str(copy))[0].body)
    forgetful = text.replace("-g / self.groups * ", "-g * ")
    assert forgetful != text, text
    path.write_text(fences.rewrite(path.read_text(), "unet/losses.py", {dice: [forgetful.splitlines(True)]}))
    import io
    import re

    stream = io.StringIO()
    assert not check(str(copy), WEEK5, stream=stream)
    shown = stream.getvalue()
    graded = grade(str(reference), [str(copy)], tasks=WEEK5, jobs=1)[0].tasks
    course = load_course(str(ROOT))
    for t in WEEK5:
        m = re.search(re.escape(t) + r"\s+([\d.]+)/[\d.]+\s+(\d+)/(\d+)", shown)
        assert m, shown
        r = graded[t]
        assert (int(m.group(2)), int(m.group(3))) == (r.passed, r.total), (t, shown, r.status)
        assert r.total == len(cases.visible_cases(t)) and r.hidden_total >= 1
        if t != dice:
            assert r.passed == r.total and r.hidden_passed == r.hidden_total, (t, r.report)
            assert float(m.group(1)) == r.points == course.tasks[t].points
    r = graded[dice]
    per_batch = [c for c in cases.visible_cases(dice) if not c.params["per_image"]]
    assert r.passed == len(per_batch) < r.total and r.hidden_passed == r.hidden_total, r.report
    points = course.tasks[dice].points
    assert float(re.search(re.escape(dice) + r"\s+([\d.]+)/", shown).group(1)) == round(points * r.passed / r.total, 2)
    assert r.points == round(points * (r.passed + r.hidden_passed) / (r.total + r.hidden_total), 2)
