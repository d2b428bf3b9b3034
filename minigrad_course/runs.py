"""The ungraded cost measurement (time and peak memory against the reference), run in the
grading sandbox. (The graded runs are ``cases.run_probe``.)"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile



# ---- cost of a task's code: time and peak memory against the reference (ungraded) ------------
COST_TASKS = ("conv.im2col", "conv.col2im", "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward")


def measure_cost(sandbox, tree: str, task_id: str, limits):
    """The cost of ``tree``'s code for ``task_id`` (``cost.measure``), run in ``sandbox``; None if it failed."""
    if task_id not in COST_TASKS:
        return None
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cost.py"), os.path.join(tree, "_course_cost.py"))
    with tempfile.TemporaryDirectory(prefix="cost-io-", dir=os.path.dirname(tree)) as io_dir:
        code = ("import json, sys; from _course_cost import measure; "
                "open('/io/cost.json', 'w').write(json.dumps(measure(sys.argv[1])))")
        sandbox.run(tree, io_dir, [sys.executable, "-c", code, task_id], {"PYTHONPATH": "/grading"}, limits)
        from .cases import _read_regular  # never follows a link the sandbox planted

        try:
            value = json.loads(_read_regular(os.path.join(io_dir, "cost.json"), 10000) or b"null")
            return {k: float(v) for k, v in value.items()} if isinstance(value, dict) else None
        except (OSError, ValueError, TypeError):
            return None
