"""Submissions: what `submit` writes, and how the grader reads any kind of hand-in.

A submission is a student copy (a folder), a ``.zip`` of one, or the ``submission.zip``
that ``submit`` writes. Whatever it is, only the code between each task's fences is read;
nothing in it is imported or run here.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import zipfile

from . import fences
from .config import load_course
from .tasks import TASKS

TOOL_VERSION = "2.0"
MAX_FILE_BYTES = 2 * 2**20  # a source file bigger than this is not a student's


def extract_task(text: str, path: str, task_id: str):
    """The bodies of ``task_id``'s blocks in ``text`` (a list of line lists), or a string
    saying what is wrong with its fences. Tolerant: another task's broken fence elsewhere in
    the file does not stop this task from being read."""
    lines = text.splitlines(keepends=True)
    bodies, i = [], 0
    while i < len(lines):
        m = fences.BEGIN.match(lines[i].rstrip("\r\n"))
        if m and m.group("task") == task_id:
            for j in range(i + 1, len(lines)):
                stripped = lines[j].rstrip("\r\n")
                if fences.END.match(stripped):
                    bodies.append(lines[i + 1 : j])
                    i = j
                    break
                if fences.BEGIN.match(stripped) or "# BEGIN TASK" in stripped or "# END TASK" in stripped:
                    return (f"{task_id}: the `# BEGIN TASK {task_id}` block at {path}:{i + 1} is not closed by "
                            f"`# END TASK` before line {j + 1}")
            else:
                return f"{task_id}: the `# BEGIN TASK {task_id}` block at {path}:{i + 1} is never closed by `# END TASK`"
        i += 1
    if not bodies:
        return f"{task_id}: no `# BEGIN TASK {task_id}` block found in {path}"
    return bodies


class Submission:
    """The files of a hand-in, by path relative to the project root (text only)."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.id = os.path.basename(self.path.rstrip(os.sep))
        if self.id.endswith(".zip"):
            self.id = self.id[:-4]
        self.files, self.manifest, self.problems = {}, None, []
        if os.path.isdir(path):
            self._read_folder(path)
            zips = [n for n in sorted(os.listdir(path)) if n.endswith(".zip")]
            if not any(f.endswith(".py") for f in self.files) and len(zips) == 1:
                self._read_zip(os.path.join(path, zips[0]))  # a folder holding one uploaded zip (Gradescope)
        elif zipfile.is_zipfile(path):
            self._read_zip(path)
        elif not os.path.exists(path):
            raise FileNotFoundError(f"grade: submission '{path}' does not exist")
        else:
            raise ValueError(f"grade: submission '{path}' is neither a folder nor a .zip file")
        self._find_root()

    def _add(self, rel, data: bytes):
        rel = rel.replace("\\", "/").lstrip("/")
        if rel.startswith("__MACOSX/") or "/.git/" in f"/{rel}" or len(data) > MAX_FILE_BYTES:
            return
        if rel.endswith("manifest.json") and rel.count("/") <= 1:
            try:
                self.manifest = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                self.problems.append(f"{rel} is not valid JSON; ignored")
            return
        if rel.endswith(".py"):
            self.files[rel] = data.decode("utf-8", errors="replace")

    def _read_folder(self, root):
        wanted = {t.file for t in TASKS.values()}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in {".git", ".venv", "venv", "__pycache__", "node_modules"}]
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if name == "manifest.json" or any(rel.endswith(w) for w in wanted):
                    with open(full, "rb") as f:
                        self._add(rel, f.read(MAX_FILE_BYTES + 1))

    def _read_zip(self, path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir() or info.file_size > MAX_FILE_BYTES:
                    continue
                self._add(info.filename, z.read(info))

    def _find_root(self):
        """A zip often wraps the copy in one folder: strip whatever prefix the task files share."""
        wanted = {t.file for t in TASKS.values()}
        prefixes = {}
        for rel in self.files:
            for w in wanted:
                if rel == w or rel.endswith("/" + w):
                    prefixes[rel[: len(rel) - len(w)]] = prefixes.get(rel[: len(rel) - len(w)], 0) + 1
        if prefixes:
            prefix = max(prefixes, key=lambda p: (prefixes[p], -len(p)))
            self.files = {rel[len(prefix):]: text for rel, text in self.files.items() if rel.startswith(prefix)}

    def blocks(self, task_id: str):
        """The task's block bodies, or a string saying why there are none."""
        task = TASKS[task_id]
        said = [p for p in (self.manifest or {}).get("problems", []) if p.startswith(f"{task_id}:")]
        text = self.files.get(task.file)
        if text is None:
            return said[0] if said else f"{task_id}: the submission has no file {task.file}"
        bodies = extract_task(text, task.file, task_id)
        return said[0] if isinstance(bodies, str) and said else bodies


def block_hash(bodies) -> str:
    return hashlib.sha256("".join("".join(b) for b in bodies).encode("utf-8")).hexdigest()


def submit(root: str, out: str | None = None) -> str:
    """Write ``submission.zip`` from the student copy at ``root``: per task file, only its
    fenced blocks, plus manifest.json. Returns (the path written, the manifest)."""
    from ._atomic import atomic_write

    root = os.path.abspath(root)
    course = load_course(root)
    out = out or os.path.join(root, "submission.zip")
    manifest = {"tool_version": TOOL_VERSION, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "tasks": {}}
    per_file, problems = {}, []
    for task_id, task in course.tasks.items():
        path = os.path.join(root, task.file)
        if not os.path.exists(path):
            problems.append(f"{task_id}: {task.file} is missing")
            continue
        with open(path, encoding="utf-8") as f:
            bodies = extract_task(f.read(), task.file, task_id)
        if isinstance(bodies, str):
            problems.append(bodies)
            continue
        manifest["tasks"][task_id] = {"file": task.file, "blocks": len(bodies), "sha256": block_hash(bodies),
                                      "stub": any(fences.is_stub(b, task_id) for b in bodies)}
        chunk = per_file.setdefault(task.file, [f"# {task.file}: the task blocks of this file (submission.zip)\n"])
        for body in bodies:
            lead = next((ln[: len(ln) - len(ln.lstrip())] for ln in body if ln.strip()), "")
            chunk += ["\n", f"{lead}# BEGIN TASK {task_id}\n", *body, f"{lead}# END TASK\n"]
    if problems:
        manifest["problems"] = problems
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        for rel, chunk in per_file.items():
            z.writestr(rel, "".join(chunk))
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    return out, manifest


def fill_in(tree: str, source: str, tasks=None) -> list:
    """Splice the blocks of the submission at ``source`` into the tree at ``tree`` (in place),
    for ``tasks`` (default: every task the submission holds). Returns the tasks filled in.
    Used to put textbook solutions into a student copy, and by the grader."""
    sub = Submission(source)
    done = []
    for task_id in tasks or TASKS:
        bodies = sub.blocks(task_id)
        if isinstance(bodies, str):
            if tasks:
                raise fences.FenceError(bodies)
            continue
        path = os.path.join(tree, TASKS[task_id].file)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(fences.rewrite(text, TASKS[task_id].file, {task_id: bodies}))
        done.append(task_id)
    return done
