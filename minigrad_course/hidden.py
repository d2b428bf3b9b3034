"""Hidden tests: which ones they are, for the two places that must know.

The student copy cuts them out (``student.py``); the reports scrub their source and names from
whatever a student sees (``reports.py``). A test is hidden when it is decorated with
``pytest.mark.<marker>`` (default ``hidden``), or when its module sets
``pytestmark = [pytest.mark.<marker>, ...]``; every file under ``tests/hidden/`` (the
instructor's hidden grading cases) is hidden as a whole.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass

HIDDEN_DIR = "tests/hidden"


@dataclass(frozen=True)
class HiddenNode:
    name: str  # the test function's or class's name
    start: int  # first line (its first decorator), 1-based
    end: int  # last line, 1-based


def hidden_nodes(text: str, path: str, marker: str = "hidden"):
    """The hidden top-level tests of a test module, or None when the whole module is hidden."""
    tree = ast.parse(text, path)
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            if re.search(rf"\bmark\.{marker}\b", ast.unparse(node.value)):
                return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if any(re.search(rf"\bmark\.{marker}\b", ast.unparse(d)) for d in node.decorator_list):
                out.append(HiddenNode(node.name, min(d.lineno for d in node.decorator_list), node.end_lineno))
    return out


def hidden_source(root: str, marker: str = "hidden"):
    """(the source lines of every hidden test of the tree at ``root``, their names)."""
    lines, names = [], set()
    tests = os.path.join(root, "tests")
    for dirpath, dirnames, filenames in os.walk(tests):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "instructor"))
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                text = f.read()
            if rel_dir == HIDDEN_DIR or rel_dir.startswith(HIDDEN_DIR + "/"):
                lines += text.splitlines()
                continue
            try:
                nodes = hidden_nodes(text, name, marker)
            except SyntaxError:
                continue
            source = text.splitlines()
            if nodes is None:
                lines += source
                continue
            for node in nodes:
                lines += source[node.start - 1 : node.end]
                names.add(node.name)
    return lines, names
