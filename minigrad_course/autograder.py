"""``make-autograder``: a Gradescope autograder bundle that grades with this tooling.

Gradescope unpacks the zip into ``/autograder/source``. It holds ``setup.sh`` (run once when
Gradescope builds the image), ``run_autograder`` (run per submission: grades
``/autograder/submission`` into ``/autograder/results/results.json``) and, beside them, the
reference tree with its hidden cases (``tests/hidden/cases.py``) and this tooling.
``AUTOGRADER_ROOT`` replaces ``/autograder`` (that is how it is tested locally).

Each submission is graded in the same bubblewrap sandbox as ``grade`` where the container lets
bwrap create namespaces. Where it cannot (Docker's default seccomp profile refuses them), the
run falls back to ``--sandbox user``: each run as its own unprivileged uid with the same
limits, in a process group killed at the end, and results.json says so in its output.
"""
from __future__ import annotations

import io
import os
import shlex
import zipfile

from .config import load_course, walk
from .trees import TREE_PARTS

#: the bundle: the reference tree's code and tests (hidden cases included), and this tooling
BUNDLE_PARTS = (*TREE_PARTS, "minigrad_course")

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once while building the autograder image.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
# grading needs NumPy, SciPy and bubblewrap (the course extra), not PyTorch or pytest
python3 -m pip install -q -e ".[unet,course]"
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission (the uploaded
# submission.zip, or the files of a student copy) into /autograder/results/results.json.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
rm -f "$ROOT/results/results.json"
grade() {
  python3 -m minigrad_course grade "$ROOT/submission" --gradescope "$ROOT/results/results.json" --quiet \\
    %(options)s "$@" 2> "$ROOT/results/grader.log"
}
grade --sandbox bwrap
status=$?
if [ ! -s "$ROOT/results/results.json" ] && grep -q "no sandbox" "$ROOT/results/grader.log"; then
  # bubblewrap cannot create namespaces in this container: each run as its own unprivileged
  # uid instead (root only), which every report then states
  grade --sandbox user
  status=$?
fi
if [ ! -s "$ROOT/results/results.json" ]; then
  # grading itself failed: say so (with the grader's last words) rather than leave no result
  python3 - "$status" "$ROOT/results/grader.log" "$ROOT/results/results.json" <<'PY'
import json, sys
status, log, out = sys.argv[1:]
tail = open(log, errors="replace").read()[-2000:]
json.dump({"score": 0, "output": f"The autograder failed (status {status}); please tell your instructor.\\n{tail}",
           "tests": []}, open(out, "w"))
PY
fi
exit 0
"""


def make_autograder(root: str, out: str, release=None, tasks=None) -> str:
    """Write the bundle for the reference tree ``root`` to ``out`` (a .zip); returns ``out``."""
    from ._atomic import atomic_write

    root = os.path.abspath(root)
    course = load_course(root)
    options = []
    if tasks:
        options += ["--tasks", *course.check_tasks(tasks)]
    elif release:
        course.tasks_of(release)  # checks the name
        options += ["--release", release]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN % {"options": shlex.join(options)})):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable
            z.writestr(info, text)
        for rel in walk(root):
            parts = rel.replace(os.sep, "/")
            top = parts.split("/")[0]
            if (top in BUNDLE_PARTS or parts == "README.md") and not parts.startswith("tests/instructor/"):
                z.write(os.path.join(root, rel), parts)
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    return out
