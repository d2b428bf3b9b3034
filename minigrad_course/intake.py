"""Intake: how the grader reads a hand-in without trusting it.

A submission is a folder (a student copy, a clone), a ``.zip`` of one (a wrapping folder is
fine), the ``submission.zip`` that ``submit`` writes, or a folder holding exactly one such zip
(Gradescope's upload folder). Whatever it is, intake only *reads* it, into memory, and keeps
the text of the task files and of ``manifest.json``; nothing is extracted to disk, imported or
run, and symbolic links are never followed.

A hand-in that cannot be read safely is **rejected**: graded 0 on every task, with a one-line
reason in its feedback, and the class run goes on (``read_class`` never raises for a
student's file). Rejected are: a damaged zip (bad CRC, truncated, encrypted, an unknown
compression), a zip bomb (over the entry-count, per-file or total-size limits of ``Limits``;
entries are streamed and counted as they are decompressed, never trusted by their headers),
a symbolic link or special file anywhere, an absolute or ``..`` path, a name that is not
UTF-8 (the submission's own name too), an entry stored twice, a ``manifest.json`` that is not
the shape ``submit`` writes, an empty folder or zip, one that holds none of the task files,
and a file that is not a zip.

Ids (the row in grades.csv, the folder of feedback.md): the file or folder name without
``.zip``, when it is *plain* (ASCII letters, digits and ``. _ - + @``, starting with a letter
or digit, at most 100 characters, not ``grades.csv``). Any other name gets a readable,
unambiguous id: its plain characters, ``~x`` and 8 hex digits of the SHA-256 of the name's
bytes (``Iván`` -> ``Iv_n~x1a2b3c4d``). A second hand-in with an id already taken (compared
without case: alice/ and ALICE.zip) gets ``~2``, the third ``~3``, in the order given. A plain
name never holds ``~``, so no suffix can collide with a real student's id (``ivan~2`` is the
second ``ivan``; ``ivan-2`` is the student called ivan-2).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

from . import fences
from .tasks import TASKS


@dataclass(frozen=True)
class Limits:
    """What a hand-in may hold. Bigger ones are rejected, not truncated."""
    max_entries: int = 10_000  # entries of a zip, or files walked in a folder
    max_file_bytes: int = 2 * 2**20  # one file the grader reads (a task file, the manifest)
    max_total_bytes: int = 64 * 2**20  # everything decompressed from one zip, or read from one folder
    max_archive_bytes: int = 256 * 2**20  # the .zip file itself


LIMITS = Limits()
#: folders never looked into (environments, caches, outputs): not read, not judged
SKIP_DIRS = frozenset({".git", ".venv", "venv", "__pycache__", "node_modules", "__MACOSX", ".hypothesis",
                       ".pytest_cache", ".ipynb_checkpoints", "runs"})
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]{0,99}\Z")
_RESERVED_IDS = {"grades.csv"}
_CHUNK = 1 << 16


class Rejected(Exception):
    """A hand-in that cannot be read safely; the message is the one-line reason."""


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    blocks: int
    sha256: str
    stub: bool


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` as ``submit`` writes it (checked field by field)."""
    tool_version: str
    created: str
    tasks: dict  # task id -> ManifestEntry
    problems: tuple = ()  # what submit could not read ("<task>: ..."), one line each


@dataclass
class Submission:
    """A hand-in as read by intake. ``rejected`` is empty or the one-line reason it is graded 0;
    ``notes`` are said in its feedback and change no grade."""
    path: str  # as given (a name that is not UTF-8 keeps its surrogate escapes)
    id: str
    files: dict = field(default_factory=dict)  # path relative to the copy's root -> text
    unreadable: dict = field(default_factory=dict)  # path relative to the root -> why it cannot be read
    manifest: Manifest | None = None
    notes: list = field(default_factory=list)
    rejected: str = ""

    @property
    def shown_path(self) -> str:
        """The path, printable whatever bytes its name holds."""
        return printable(self.path)

    def code(self, task_id: str) -> fences.TaskCode:
        """The task's blocks, or why there are none (for a rejected hand-in: the reason)."""
        task = TASKS[task_id]
        if self.rejected:
            return fences.TaskCode(task_id, problem=f"{task_id}: not graded: {self.rejected}")
        said = [p for p in (self.manifest.problems if self.manifest else ()) if p.startswith(f"{task_id}:")]
        if task.file in self.unreadable:
            return fences.TaskCode(task_id, problem=f"{task_id}: {self.unreadable[task.file]}")
        text = self.files.get(task.file)
        if text is None:
            return fences.TaskCode(task_id, problem=said[0] if said else
                                   f"{task_id}: the submission has no file {task.file}")
        found = fences.find_task(text, task.file, task_id)
        return fences.TaskCode(task_id, problem=said[0]) if not found.found and said else found

    def manifest_notes(self, tasks) -> list:
        """Where the code differs from the hash ``submit`` recorded (edited after submit)."""
        out = []
        for t in tasks:
            entry = self.manifest.tasks.get(t) if self.manifest else None
            code = self.code(t)
            if entry and code.found and entry.sha256 != block_hash(code.bodies):
                out.append(f"{t}: the block differs from the hash in manifest.json (edited after submit?)")
        return out


def block_hash(bodies) -> str:
    return hashlib.sha256("".join("".join(b) for b in bodies).encode("utf-8")).hexdigest()


def printable(name: str) -> str:
    """``name`` as one printable line: bytes that are not UTF-8 as ``\\xNN``, control characters escaped."""
    try:
        text = os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name holds (say, from JSON)
        text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


# ---- ids ---------------------------------------------------------------------------------------
def base_id(name: str) -> str:
    """The id of a hand-in called ``name`` (see the module's docstring), before duplicates."""
    if _PLAIN_ID.match(name) and name.lower() not in _RESERVED_IDS:
        return name
    raw = os.fsencode(name)
    plain = re.sub(r"[^A-Za-z0-9._+@-]+", "_", raw.decode("utf-8", "replace")).strip("._-+@")[:60]
    return f"{plain or 'submission'}~x{hashlib.sha256(raw).hexdigest()[:8]}"


def submission_name(path: str) -> str:
    name = os.path.basename(os.path.abspath(path))
    return name[:-4] if name.lower().endswith(".zip") and not os.path.isdir(path) else name


def assign_ids(names) -> list:
    """Distinct ids for hand-ins called ``names``, in order: the second ``alice`` is ``alice~2``."""
    taken, out = set(), []
    for name in names:
        base = base_id(name)
        ident, k = base, 1
        while ident.lower() in taken:
            k += 1
            ident = f"{base}~{k}"
        taken.add(ident.lower())
        out.append(ident)
    return out


# ---- reading -----------------------------------------------------------------------------------
def read_class(paths, limits: Limits = LIMITS) -> list:
    """Every hand-in of ``paths``, in order, with distinct ids. Never raises for a student's
    file (a malformed one comes back rejected); FileNotFoundError for a path that does not
    exist (the instructor's typo, caught before any grading)."""
    missing = [printable(p) for p in paths if not os.path.lexists(p)]
    if missing:
        raise FileNotFoundError(f"grade: no such submission(s): {', '.join(missing)}")
    ids = assign_ids(submission_name(p) for p in paths)
    subs = [read_submission(p, i, limits) for p, i in zip(paths, ids)]
    by_name = {}
    for s in subs:
        by_name.setdefault(base_id(submission_name(s.path)).lower(), []).append(s)
    for group in by_name.values():
        if len(group) > 1:
            for s in group:
                others = ", ".join(printable(os.path.basename(os.path.abspath(o.path))) for o in group if o is not s)
                s.notes.append(f"another hand-in has the same name ({others}); graded separately as {s.id}")
    return subs


def read_submission(path: str, ident: str | None = None, limits: Limits = LIMITS) -> Submission:
    """One hand-in; a malformed one comes back with ``rejected`` set (never raises for it)."""
    sub = Submission(path, ident or assign_ids([submission_name(path)])[0])
    if not os.path.lexists(path):
        raise FileNotFoundError(f"grade: no such submission: {printable(path)}")
    try:
        _check_name(os.path.basename(os.path.abspath(path)), "the submission's name")
        if os.path.islink(path):
            raise Rejected("the submission is a symbolic link; hand in the files themselves")
        files = {}
        if os.path.isdir(path):
            _read_folder(path, files, sub, limits)
        elif os.path.isfile(path):
            _read_zip(path, files, limits)
        else:
            raise Rejected("the submission is neither a folder nor a zip archive (a special file)")
        _take(files, sub)
    except Rejected as why:
        _reject(sub, str(why))
    except Exception as err:  # noqa: BLE001 - a hand-in intake did not foresee must not stop the class
        _reject(sub, f"the grader could not read it ({type(err).__name__}: {printable(str(err))[:200]}); "
                     "please tell the course's maintainers")
    return sub


def _reject(sub: Submission, why: str) -> None:
    sub.files, sub.unreadable, sub.manifest, sub.rejected = {}, {}, None, why
    sub.notes.insert(0, f"rejected, every task graded 0: {why}")


def _check_name(name: str, what: str) -> None:
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{what} '{printable(name)}' is not valid UTF-8; rename it and hand it in again") from None
    if any(not c.isprintable() for c in text):
        raise Rejected(f"{what} '{printable(name)}' holds control characters")


def _wanted(rel: str) -> bool:
    """A file intake keeps: a task file (under any wrapping folder) or a manifest.json."""
    return rel.rsplit("/", 1)[-1] == "manifest.json" or any(rel == w or rel.endswith("/" + w) for w in _task_files())


def _task_files():
    return {t.file for t in TASKS.values()}


def _read_folder(root: str, files: dict, sub: Submission, limits: Limits) -> None:
    count, total, zips = 0, 0, []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sorted(os.scandir(os.path.join(root, rel_dir)), key=lambda e: e.name)
        except OSError as err:
            raise Rejected(f"the folder {printable(rel_dir) or '.'} cannot be read ({err.strerror})") from None
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            _check_name(rel, "the file or folder name")
            count += 1
            if count > limits.max_entries:
                raise Rejected(f"the folder holds more than {limits.max_entries} files (an environment or data set "
                               "in it?); hand in submission.zip from `submit`")
            if entry.name in SKIP_DIRS and (entry.is_symlink() or entry.is_dir(follow_symlinks=False)):
                continue  # an environment or cache (a link to one too): never looked into
            if entry.is_symlink():
                raise Rejected(f"{printable(rel)} is a symbolic link; hand in the files themselves")
            if entry.is_dir(follow_symlinks=False):
                stack.append(rel)
                continue
            if not entry.is_file(follow_symlinks=False):
                raise Rejected(f"{printable(rel)} is not a regular file (a pipe, socket or device)")
            if rel_dir == "" and entry.name.lower().endswith(".zip"):
                zips.append(entry.path)
            if _wanted(rel):
                data = _read_regular(entry.path, rel, limits)
                total += len(data)
                if total > limits.max_total_bytes:
                    raise Rejected(f"the task files hold more than {_mib(limits.max_total_bytes)} in all")
                files[rel] = data
    if count == 0:
        raise Rejected("the submission is an empty folder")
    if not any(rel.rsplit("/", 1)[-1] != "manifest.json" for rel in files) and len(zips) == 1:
        files.clear()  # a folder holding one uploaded zip (Gradescope's /autograder/submission)
        sub.notes.append(f"read the zip {printable(os.path.basename(zips[0]))} in the submitted folder")
        _read_zip(zips[0], files, limits)


def _read_regular(path: str, rel: str, limits: Limits) -> bytes:
    """A regular file's bytes, opened without following a link, at most the per-file limit."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise Rejected(f"{printable(rel)} cannot be read ({err.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Rejected(f"{printable(rel)} is not a regular file")
        if info.st_nlink > 1:
            raise Rejected(f"{printable(rel)} is a hard link to another file; hand in the file itself")
        data = f.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise Rejected(f"{printable(rel)} is over {_mib(limits.max_file_bytes)}, more than a source file holds")
    return data


def _zip_entry_count(path: str):
    """The entry count the zip's end record declares (None when there is none): read before
    ``zipfile`` builds an object per entry, so that a million tiny entries cost nothing."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - (65535 + 22)))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return None
        count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
        locator = tail[at - 20 : at] if at >= 20 else b""
        if count == 0xFFFF and locator[:4] == b"PK\x06\x07":  # zip64: the count is in its own record
            f.seek(struct.unpack("<Q", locator[8:16])[0])
            record = f.read(56)
            if record[:4] == b"PK\x06\x06" and len(record) >= 40:
                count = struct.unpack("<Q", record[32:40])[0]
        return count


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as UTF-8 (names stored without the UTF-8 flag are read as their bytes)."""
    raw = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"the zip entry {raw.decode('utf-8', 'backslashreplace')!r} has a name that is not "
                       "valid UTF-8") from None
    if any(not c.isprintable() for c in name):
        raise Rejected(f"the zip entry '{printable(name)}' has control characters in its name")
    return name


def _safe_parts(name: str) -> list:
    """The parts of an entry's path; Rejected for an absolute path or a ``..``."""
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise Rejected(f"the zip entry {name!r} has an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Rejected(f"the zip entry {name!r} points outside the archive (..)")
    return parts


def _read_zip(path: str, files: dict, limits: Limits) -> None:
    try:
        size = os.path.getsize(path)
        if size > limits.max_archive_bytes:
            raise Rejected(f"the zip is {_mib(size)}, over the limit of {_mib(limits.max_archive_bytes)}")
        with open(path, "rb") as f:
            head = f.read(4)
        count = _zip_entry_count(path) if zipfile.is_zipfile(path) else None
        if count is None:
            what = "an empty file" if not head else f"it starts with {head!r}"
            raise Rejected(f"the submission is not a zip archive ({what}); hand in submission.zip from `submit`")
        if count > limits.max_entries:
            raise Rejected(f"the zip has {count} entries, over the limit of {limits.max_entries}")
        try:
            archive = zipfile.ZipFile(path)
        except UnicodeDecodeError:  # an entry flagged as UTF-8 whose name is not
            raise Rejected("a zip entry's name is flagged as UTF-8 but is not valid UTF-8") from None
        with archive as z:
            _read_entries(z, files, limits)
    except Rejected:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            UnicodeDecodeError, OSError, ValueError, struct.error) as err:
        raise Rejected(f"the zip is damaged or unreadable ({type(err).__name__}: {printable(str(err))[:200]})") from None


def _read_entries(z: zipfile.ZipFile, files: dict, limits: Limits) -> None:
    infos = z.infolist()
    if len(infos) > limits.max_entries:
        raise Rejected(f"the zip has {len(infos)} entries, over the limit of {limits.max_entries}")
    seen, total = set(), 0
    for info in infos:
        name = _entry_name(info)
        parts = _safe_parts(name)
        if any(p in SKIP_DIRS for p in parts):
            continue  # inside an environment or cache: never decompressed (its name was checked)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise Rejected(f"the zip entry {name!r} is a symbolic link; hand in the files themselves")
        if info.create_system == 3 and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise Rejected(f"the zip entry {name!r} is not a regular file")
        rel = "/".join(parts)
        if not parts or info.is_dir():
            continue
        if rel in seen:
            raise Rejected(f"the zip holds {rel!r} twice")
        seen.add(rel)
        wanted = _wanted(rel)
        if wanted and info.file_size > limits.max_file_bytes:
            raise Rejected(f"{rel} is over {_mib(limits.max_file_bytes)}, more than a source file holds")
        if total + info.file_size > limits.max_total_bytes:
            raise Rejected(f"the zip holds more than {_mib(limits.max_total_bytes)} uncompressed (a zip bomb?)")
        kept, n = [], 0
        with z.open(info) as f:  # streamed: the CRC is checked at the end, real bytes are counted
            while chunk := f.read(_CHUNK):
                n += len(chunk)
                total += len(chunk)
                if total > limits.max_total_bytes:
                    raise Rejected(f"the zip holds more than {_mib(limits.max_total_bytes)} uncompressed (a zip bomb?)")
                if wanted:
                    if n > limits.max_file_bytes:
                        raise Rejected(f"{rel} is over {_mib(limits.max_file_bytes)}, more than a source file holds")
                    kept.append(chunk)
        if wanted:
            files[rel] = b"".join(kept)
    if not seen:
        raise Rejected("the zip is empty" if not infos else "the zip holds nothing but folders, environments or caches")


# ---- from bytes to task files -------------------------------------------------------------------
def _take(raw: dict, sub: Submission) -> None:
    """Find the copy's root inside ``raw`` (a zip often wraps it in a folder: the prefix the
    most task files share), decode its task files and check its manifest."""
    wanted = _task_files()
    prefixes = {}
    for rel in raw:
        for w in wanted:
            if rel == w or rel.endswith("/" + w):
                prefix = rel[: len(rel) - len(w)]
                prefixes[prefix] = prefixes.get(prefix, 0) + 1
    if not prefixes:
        raise Rejected("it holds none of the task files (" + ", ".join(sorted(wanted)[:3]) + ", ...); "
                       "hand in submission.zip from `submit`")
    most = max(prefixes.values())
    tied = sorted(p for p, n in prefixes.items() if n == most)
    if len(tied) > 1:
        shown = ", ".join(f"'{printable(p) or './'}'" for p in tied[:3])
        raise Rejected(f"it holds {len(tied)} copies of the project ({shown}): which one to grade is "
                       "ambiguous; hand in one")
    prefix = tied[0]
    for rel, data in raw.items():
        if not rel.startswith(prefix) or rel[len(prefix):] not in wanted:
            continue
        rel = rel[len(prefix):]
        try:
            sub.files[rel] = data.decode("utf-8")
        except UnicodeDecodeError as err:
            sub.unreadable[rel] = (f"{rel} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                                   "save it as UTF-8")
    manifest = raw.get(prefix + "manifest.json")
    if manifest is not None:
        sub.manifest = parse_manifest(manifest)


def parse_manifest(data: bytes) -> Manifest:
    """``manifest.json`` checked against what ``submit`` writes; Rejected with the field that is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise Rejected(f"manifest.json is not valid JSON ({printable(str(err))[:120]})") from None

    def need(obj, key, kind, where):
        if key not in obj:
            raise Rejected(f"manifest.json: {where} has no {key!r}")
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Rejected(f"manifest.json: {where}{key!r} is {type(value).__name__} {printable(repr(value))[:60]}, "
                           f"expected {kind.__name__}")
        return value

    if not isinstance(doc, dict):
        raise Rejected(f"manifest.json is a JSON {type(doc).__name__}, expected an object")
    tool = need(doc, "tool_version", str, "")
    created = doc.get("created", "")
    if not isinstance(created, str):
        raise Rejected(f"manifest.json: 'created' is {type(created).__name__}, expected str")
    tasks = {}
    for task_id, entry in need(doc, "tasks", dict, "").items():
        where = f"tasks['{printable(task_id)}']."
        if not isinstance(entry, dict):
            raise Rejected(f"manifest.json: {where[:-1]} is {type(entry).__name__}, expected an object")
        file, blocks = need(entry, "file", str, where), need(entry, "blocks", int, where)
        sha, stub = need(entry, "sha256", str, where), need(entry, "stub", bool, where)
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise Rejected(f"manifest.json: {where}'sha256' is not 64 hex digits")
        if blocks < 0:
            raise Rejected(f"manifest.json: {where}'blocks' is negative")
        tasks[task_id] = ManifestEntry(file, blocks, sha, stub)
    problems = doc.get("problems", [])
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        raise Rejected("manifest.json: 'problems' is not a list of strings")
    return Manifest(tool, created, tasks, tuple(printable(p)[:500] for p in problems))


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"
