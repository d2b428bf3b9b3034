"""Intake: every malformed hand-in is rejected with a one-line reason, never stops the class.

Fast: these read hand-ins and grade nothing, except the one end-to-end test (slow) that grades a
class of malformed files on one cheap task and checks grades.csv has a row for each.
"""
import csv
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib

import pytest

from minigrad_course import fences, intake
from minigrad_course.intake import Limits, assign_ids, parse_manifest, read_class, read_submission
from minigrad_course.tasks import TASKS

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTBOOK = ROOT / "tests" / "instructor" / "textbook"
CROP = TASKS["crop.backward"].file
CROP_BLOCK = "    def backward(self, g):\n        # BEGIN TASK crop.backward\n        return (g,)\n        # END TASK\n"


def _zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    """entries: {name: text or bytes} or a list of (ZipInfo or name, data)."""
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in items:
            z.writestr(name, data)
    return path


def _honest_zip(path, extra=()):
    return _zip(path, [(CROP, CROP_BLOCK), *extra])


def _rejected(sub, *words):
    assert sub.rejected, f"not rejected: {sub.files.keys()}"
    assert "\n" not in sub.rejected
    for w in words:
        assert w in sub.rejected, sub.rejected
    assert sub.notes[0].startswith("rejected, every task graded 0: ")
    for t in TASKS:  # every task: no code, the reason
        code = sub.code(t)
        assert not code.found and sub.rejected in code.problem
    return sub.rejected


# ---- what still reads -----------------------------------------------------------------------
def test_an_honest_zip_a_wrapped_copy_and_a_folder_holding_one_upload_read_the_same(tmp_path):
    plain = read_submission(str(_honest_zip(tmp_path / "a.zip")))
    wrapped = read_submission(str(_zip(tmp_path / "b.zip", {f"alice-copy/{CROP}": CROP_BLOCK,
                                                           "alice-copy/README.md": "hi"})))
    upload = tmp_path / "gradescope"
    upload.mkdir()
    shutil.copy(tmp_path / "a.zip", upload / "submission.zip")
    folder = read_submission(str(upload))
    for sub in (plain, wrapped, folder):
        assert not sub.rejected, sub.rejected
        assert sub.code("crop.backward") == fences.TaskCode("crop.backward", (("        return (g,)\n",),))
        assert sub.code("conv.im2col").problem == "conv.im2col: the submission has no file minigrad/functional/im2col.py"
    assert plain.id == "a" and folder.id == "gradescope"


def test_two_copies_of_the_project_in_one_hand_in_are_ambiguous(tmp_path):
    both = _zip(tmp_path / "both.zip", {f"mine/{CROP}": CROP_BLOCK, f"friend/{CROP}": "x = 1\n"})
    _rejected(read_submission(str(both)), "2 copies of the project", "'friend/'", "'mine/'")
    nested = _zip(tmp_path / "nested.zip", {CROP: CROP_BLOCK, TASKS["conv.im2col"].file: "",
                                            f"old/{CROP}": "x = 1\n"})  # a backup of one file: the copy wins
    assert read_submission(str(nested)).code("crop.backward").found


def test_the_textbook_folder_reads_every_task():
    sub = read_submission(str(TEXTBOOK))
    assert not sub.rejected and all(sub.code(t).found for t in TASKS)


def test_a_task_file_that_is_not_utf8_costs_only_its_own_tasks(tmp_path):
    sub = read_submission(str(_zip(tmp_path / "s.zip", [(CROP, CROP_BLOCK),
                                                         (TASKS["conv.im2col"].file, b"# caf\xe9\n")])))
    assert not sub.rejected
    assert sub.code("crop.backward").found
    assert "is not UTF-8 text (byte 0xe9 at offset 5)" in sub.code("conv.im2col").problem
    assert "is not UTF-8" in sub.code("conv.col2im").problem  # the same file


# ---- damaged zips, bombs, not zips ----------------------------------------------------------
def test_a_zip_with_a_bad_crc_is_rejected(tmp_path):
    path = _zip(tmp_path / "crc.zip", {CROP: CROP_BLOCK}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.index(b"return (g,)")
    data[at] ^= 0x20  # one flipped bit in the stored bytes: the CRC no longer matches
    path.write_bytes(bytes(data))
    _rejected(read_submission(str(path)), "damaged", "CRC")


def test_a_truncated_zip_and_a_file_that_is_not_a_zip_are_rejected(tmp_path):
    path = _honest_zip(tmp_path / "cut.zip")
    path.write_bytes(path.read_bytes()[:40])
    _rejected(read_submission(str(path)), "not a zip archive")
    pdf = tmp_path / "essay.zip"
    pdf.write_bytes(b"%PDF-1.7\n" + b"x" * 100)
    _rejected(read_submission(str(pdf)), "not a zip archive", "%PDF")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    _rejected(read_submission(str(empty)), "an empty file")
    _rejected(read_submission(str(_zip(tmp_path / "nothing.zip", {}))), "the zip is empty")


def _bomb(path, n, size, name="copy{}/" + CROP):
    """A zip of ``n`` entries of ``size`` zero bytes each, written by hand from one compressed
    copy (as an attacker would): a few MB on disk, n * size bytes inflated."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = comp.compress(bytes(size)) + comp.flush()
    crc = zlib.crc32(bytes(size))
    local, central = bytearray(), bytearray()
    for i in range(n):
        fname = name.format(i).encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(fname), 0)
        local += fname + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                               len(fname), 0, 0, 0, 0, 0, offset) + fname
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def test_a_zip_bomb_of_many_2_mib_entries_is_rejected_without_holding_it_in_memory(tmp_path):
    """The issue's bomb: a ~5.6 MB zip of 2,600 entries of 2 MiB (5.2 GB inflated), each named
    like a task file. Intake stops at the total-size limit, holding at most that much."""
    path = _bomb(tmp_path / "bomb.zip", 2600, 2 * 2**20)
    assert path.stat().st_size < 8e6
    tracemalloc.start()
    try:
        sub = read_submission(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _rejected(sub, "more than 64 MiB uncompressed")
    assert peak < 1.3 * intake.LIMITS.max_total_bytes, f"intake held {peak / 2**20:.0f} MiB"


def test_per_file_and_entry_count_limits(tmp_path):
    big = _bomb(tmp_path / "big.zip", 1, 3 * 2**20, name=CROP)
    _rejected(read_submission(str(big)), f"{CROP} is over 2 MiB")
    many = _zip(tmp_path / "many.zip", [(CROP, CROP_BLOCK)] + [(f"notes/{i}.txt", "x") for i in range(6)])
    _rejected(read_submission(str(many), limits=Limits(max_entries=5)), "7 entries, over the limit of 5")
    assert intake._zip_entry_count(str(many)) == 7
    # every entry counts towards the total, whether the grader keeps it or only checks its CRC
    data = _bomb(tmp_path / "data.zip", 3, 2**20, name="data{}.bin")
    with zipfile.ZipFile(data, "a") as z:
        z.writestr(CROP, CROP_BLOCK)
    assert not read_submission(str(data), limits=Limits(max_total_bytes=4 * 2**20)).rejected
    _rejected(read_submission(str(data), limits=Limits(max_total_bytes=2 * 2**20)), "more than 2 MiB uncompressed")
    folder = tmp_path / "folder"
    (folder / "minigrad" / "functional").mkdir(parents=True)
    (folder / CROP).write_text(CROP_BLOCK)
    for i in range(6):
        (folder / f"{i}.txt").write_text("x")
    _rejected(read_submission(str(folder), limits=Limits(max_entries=5)), "more than 5 files")


def test_an_encrypted_or_oddly_compressed_entry_is_rejected(tmp_path):
    path = _zip(tmp_path / "enc.zip", {CROP: CROP_BLOCK}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    data[6] |= 1  # the local header's "encrypted" flag
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1
    path.write_bytes(bytes(data))
    _rejected(read_submission(str(path)), "damaged or unreadable")


# ---- paths, links, names ------------------------------------------------------------------------
@pytest.mark.parametrize("name, words", [
    ("/" + CROP, ("absolute path",)),
    ("C:/work/" + CROP, ("absolute path",)),
    ("../../" + CROP, ("outside the archive",)),
    ("copy/..\\..\\" + CROP, ("outside the archive",)),
])
def test_absolute_and_dotdot_entries_are_rejected(tmp_path, name, words):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(CROP, CROP_BLOCK)
        info = zipfile.ZipInfo("placeholder")
        info.filename = info.orig_filename = name  # zipfile would clean the name; an attacker's tool does not
        z.writestr(info, "x")
    _rejected(read_submission(str(path)), *words)


def test_a_duplicated_entry_is_rejected(tmp_path):
    path = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(path, [(CROP, CROP_BLOCK), (CROP, "x = 1\n")])
    _rejected(read_submission(str(path)), "twice")


def test_symlinks_anywhere_are_rejected(tmp_path):
    reference = ROOT / CROP
    linked_file = tmp_path / "linked-file"  # a submitted symlink to the reference file
    (linked_file / "minigrad" / "functional").mkdir(parents=True)
    os.symlink(reference, linked_file / CROP)
    _rejected(read_submission(str(linked_file)), "symbolic link", CROP)
    linked_dir = tmp_path / "linked-dir"  # a folder that is a link into the reference tree
    linked_dir.mkdir()
    os.symlink(ROOT / "minigrad", linked_dir / "minigrad")
    _rejected(read_submission(str(linked_dir)), "minigrad is a symbolic link")
    os.symlink(ROOT, tmp_path / "whole")  # the submission itself
    _rejected(read_submission(str(tmp_path / "whole")), "the submission is a symbolic link")
    path = tmp_path / "link.zip"  # a zip entry that unzip would make a link
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo(CROP)
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        z.writestr(info, str(reference))
    _rejected(read_submission(str(path)), "symbolic link")


def test_environments_and_caches_are_not_looked_into(tmp_path):
    """A clone with its .venv (full of links) or a zip made with one is read, not rejected."""
    clone = tmp_path / "clone"
    (clone / "minigrad" / "functional").mkdir(parents=True)
    (clone / CROP).write_text(CROP_BLOCK)
    (clone / ".venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, clone / ".venv" / "bin" / "python")
    os.symlink(tmp_path, clone / "runs")
    assert not read_submission(str(clone)).rejected
    path = tmp_path / "with-venv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(CROP, CROP_BLOCK)
        info = zipfile.ZipInfo(".venv/bin/python")
        info.create_system, info.external_attr = 3, 0o120777 << 16
        z.writestr(info, sys.executable)
    assert not read_submission(str(path)).rejected
    with zipfile.ZipFile(path, "a") as z:  # but an unsafe name is unsafe anywhere
        z.writestr(zipfile.ZipInfo(".venv/../../x"), "x")
    _rejected(read_submission(str(path)), "outside the archive")


def test_hard_links_fifos_and_empty_folders_are_rejected(tmp_path):
    hard = tmp_path / "hard"
    (hard / "minigrad" / "functional").mkdir(parents=True)
    copy = tmp_path / "crop-copy.py"
    copy.write_text(CROP_BLOCK)
    os.link(copy, hard / CROP)
    _rejected(read_submission(str(hard)), "hard link")
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    (fifo / "minigrad").mkdir()
    os.mkfifo(fifo / "minigrad" / "pipe")  # reading it would block the grader forever
    _rejected(read_submission(str(fifo)), "not a regular file")
    (tmp_path / "empty").mkdir()
    _rejected(read_submission(str(tmp_path / "empty")), "empty folder")
    other = tmp_path / "other"
    other.mkdir()
    (other / "essay.txt").write_text("my U-Net")
    _rejected(read_submission(str(other)), "none of the task files")


def test_names_that_are_not_utf8_are_rejected(tmp_path):
    base = os.fsencode(str(tmp_path))
    inner = base + b"/inner"
    os.makedirs(inner + b"/minigrad/functional")
    with open(inner + b"/" + CROP.encode(), "w") as f:
        f.write(CROP_BLOCK)
    with open(inner + b"/caf\xe9.py", "w") as f:
        f.write("x = 1\n")
    _rejected(read_submission(os.fsdecode(inner)), "not valid UTF-8", "caf\\xe9.py")
    named = base + b"/iv\xe1n"  # the submission's own name
    os.makedirs(named + b"/minigrad/functional")
    with open(named + b"/" + CROP.encode(), "w") as f:
        f.write(CROP_BLOCK)
    sub = read_submission(os.fsdecode(named))
    _rejected(sub, "the submission's name", "iv\\xe1n")
    assert sub.id.startswith("iv_n~x") and sub.id.isascii() and sub.shown_path.endswith("iv\\xe1n")
    for flagged in (False, True):  # a zip entry's name: raw bytes, or bytes that claim to be UTF-8
        path = tmp_path / f"names-{flagged}.zip"
        _zip(path, [(CROP, CROP_BLOCK), ("notes/\u00e9\u00e9.txt" if flagged else "notes/XXXX.txt", "x")])
        data = path.read_bytes()
        data = data.replace(b"\xc3\xa9\xc3\xa9", b"\xff\xfe\xff\xfe") if flagged else data.replace(b"XXXX", b"\xe9\xe9\xe9\xe9")
        path.write_bytes(data)
        _rejected(read_submission(str(path)), "is not valid UTF-8")


# ---- the manifest -----------------------------------------------------------------------------
GOOD = {"tool_version": "2.0", "created": "2026-11-28T15:00:00+00:00",
        "tasks": {"crop.backward": {"file": CROP, "blocks": 1, "sha256": "0" * 64, "stub": False}}}


@pytest.mark.parametrize("change, words", [
    (lambda m: [m], "a JSON list, expected an object"),
    (lambda m: {**m, "tool_version": 2}, "'tool_version' is int"),
    (lambda m: {k: v for k, v in m.items() if k != "tasks"}, "has no 'tasks'"),
    (lambda m: {**m, "tasks": ["crop.backward"]}, "'tasks' is list"),
    (lambda m: {**m, "tasks": {"crop.backward": 3}}, "tasks['crop.backward'] is int"),
    (lambda m: {**m, "tasks": {"crop.backward": {**m["tasks"]["crop.backward"], "blocks": "1"}}}, "'blocks' is str"),
    (lambda m: {**m, "tasks": {"crop.backward": {**m["tasks"]["crop.backward"], "blocks": True}}}, "'blocks' is bool"),
    (lambda m: {**m, "tasks": {"crop.backward": {**m["tasks"]["crop.backward"], "stub": "no"}}}, "'stub' is str"),
    (lambda m: {**m, "tasks": {"crop.backward": {**m["tasks"]["crop.backward"], "sha256": "xyz"}}}, "64 hex"),
    (lambda m: {**m, "problems": "none"}, "'problems' is not a list"),
    (lambda m: {**m, "created": None}, "'created' is NoneType"),
])
def test_a_manifest_of_the_wrong_shape_is_rejected_naming_the_field(tmp_path, change, words):
    assert parse_manifest(json.dumps(GOOD).encode()).tasks["crop.backward"].blocks == 1
    path = _honest_zip(tmp_path / "m.zip", [("manifest.json", json.dumps(change(json.loads(json.dumps(GOOD)))))])
    _rejected(read_submission(str(path)), "manifest.json", words)


def test_a_manifest_that_is_not_json_is_rejected_and_one_that_is_right_gives_notes(tmp_path):
    _rejected(read_submission(str(_honest_zip(tmp_path / "j.zip", [("manifest.json", b"{\xff")]))),
              "manifest.json is not valid JSON")
    _rejected(read_submission(str(_honest_zip(tmp_path / "deep.zip", [("manifest.json", "[" * 200_000)]))),
              "manifest.json is not valid JSON")  # nesting deep enough to exhaust the parser's recursion
    odd = {**GOOD, "problems": ["crop.backward: \ud800 \x1b[31m"], "tasks": {"\ud800": GOOD["tasks"]["crop.backward"]}}
    sub = read_submission(str(_honest_zip(tmp_path / "odd.zip", [("manifest.json", json.dumps(odd))])))
    assert not sub.rejected and sub.manifest.problems == ("crop.backward: \\ud800 \\x1b[31m",)
    sub = read_submission(str(_honest_zip(tmp_path / "ok.zip", [("manifest.json", json.dumps(GOOD))])))
    assert not sub.rejected and sub.manifest.tasks["crop.backward"].stub is False
    assert sub.manifest_notes(["crop.backward"]) == [
        "crop.backward: the block differs from the hash in manifest.json (edited after submit?)"]


# ---- ids ----------------------------------------------------------------------------------------
def test_ids_are_unambiguous():
    names = ["ivan-2", "ivan", "ivan", "IVAN", "ivan~2", "grades.csv", ".hidden", "Iv\u00e1n", "iv\udce1n", "a b"]
    ids = assign_ids(names)
    assert ids[:3] == ["ivan-2", "ivan", "ivan~2"]  # the late hand-in of ivan cannot be the student ivan-2
    assert ids[3] == "IVAN~3"  # case-insensitive file systems would merge ivan/ and IVAN/
    assert len({i.lower() for i in ids}) == len(ids)
    for name, ident in zip(names[4:], ids[4:]):  # not plain: readable part, ~x, 8 hex digits of the name's bytes
        assert "~x" in ident and ident.isascii() and "/" not in ident and not ident.startswith("."), ident
    assert ids[7] != ids[8]  # two spellings of one name stay apart
    assert assign_ids(["ivan"] * 3) == ["ivan", "ivan~2", "ivan~3"]


def test_an_error_intake_did_not_foresee_rejects_that_hand_in_only(tmp_path, monkeypatch):
    def broken(data):
        raise KeyError("surprise")

    monkeypatch.setattr(intake, "parse_manifest", broken)
    sub = read_submission(str(_honest_zip(tmp_path / "m.zip", [("manifest.json", json.dumps(GOOD))])))
    _rejected(sub, "the grader could not read it (KeyError", "tell the course's maintainers")


def test_read_class_gives_distinct_ids_notes_duplicates_and_refuses_a_typo(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "minigrad" / "functional").mkdir(parents=True)
    (tmp_path / "alice" / CROP).write_text(CROP_BLOCK)
    _honest_zip(tmp_path / "alice.zip")
    _honest_zip(tmp_path / "alice-2.zip")
    subs = read_class([str(tmp_path / "alice"), str(tmp_path / "alice.zip"), str(tmp_path / "alice-2.zip")])
    assert [s.id for s in subs] == ["alice", "alice~2", "alice-2"]
    assert "another hand-in has the same name" in subs[0].notes[-1] and "alice.zip" in subs[0].notes[-1]
    assert not subs[2].notes
    with pytest.raises(FileNotFoundError, match="no such submission"):
        read_class([str(tmp_path / "alice"), str(tmp_path / "bob.zip")])


# ---- a class of malformed files, graded end to end ----------------------------------------------
@pytest.mark.slow
def test_a_class_of_malformed_files_grades_to_completion_with_a_row_each(tmp_path):
    """One cheap task: every hand-in gets a row in grades.csv and a reason in its feedback;
    the honest one beside them keeps its marks."""
    subs = tmp_path / "subs"
    subs.mkdir()
    honest = subs / "honest"
    (honest / "minigrad" / "functional").mkdir(parents=True)
    shutil.copy(TEXTBOOK / CROP, honest / CROP)
    crc = _zip(subs / "crc.zip", {CROP: CROP_BLOCK}, zipfile.ZIP_STORED)
    data = bytearray(crc.read_bytes())
    data[data.index(b"return (g,)")] ^= 0x20
    crc.write_bytes(bytes(data))
    _bomb(subs / "bomb.zip", 600, 2 * 2**20)
    (subs / "notzip.zip").write_bytes(b"%PDF-1.7\n")
    (subs / "empty").mkdir()
    _honest_zip(subs / "manifest.zip", [("manifest.json", json.dumps({**GOOD, "tasks": {"crop.backward": 3}}))])
    os.symlink(ROOT, subs / "link")
    named = os.fsencode(str(subs)) + b"/iv\xe1n"
    os.makedirs(named)
    with open(named + b"/x.txt", "w") as f:
        f.write("x")
    stub = CROP_BLOCK.replace("return (g,)", 'raise NotImplementedError("crop.backward: to do")')
    _zip(subs / "ivan-2.zip", {CROP: stub})  # untouched stubs: graded (0) without a run
    _zip(subs / "ivan.zip", {CROP: stub})
    (subs / "ivan").mkdir()
    names = ["honest", "crc.zip", "bomb.zip", "notzip.zip", "empty", "manifest.zip", "link", "ivan-2.zip",
             "ivan.zip", "ivan"]
    args = [str(subs / n) for n in names] + [os.fsdecode(named)]
    run = subprocess.run([sys.executable, "-m", "minigrad_course", "grade", *args, "--tasks", "crop.backward",
                          "--out", str(tmp_path / "out"), "--jobs", "1", "--quiet"],
                         cwd=ROOT, capture_output=True, timeout=600)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    with open(tmp_path / "out" / "grades.csv", encoding="utf-8") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    ids = ["honest", "crc", "bomb", "notzip", "empty", "manifest", "link", "ivan-2", "ivan", "ivan~2"]
    assert list(rows)[:-1] == ids and list(rows)[-1].startswith("iv_n~x")
    assert float(rows["honest"]["total"]) == 5
    for ident in ids[1:7] + ["ivan~2", list(rows)[-1]]:
        assert float(rows[ident]["total"]) == 0, ident
        feedback = (tmp_path / "out" / ident / "feedback.md").read_text()
        assert "rejected, every task graded 0: " in feedback, feedback
    for ident in ("ivan-2", "ivan"):  # honest zips of the stub: graded, not rejected
        feedback = (tmp_path / "out" / ident / "feedback.md").read_text()
        assert "rejected" not in feedback and "still the stub" in feedback


def test_a_copy_graded_as_dot_keeps_its_folders_name(tmp_path, monkeypatch):
    (tmp_path / "carol" / "minigrad" / "functional").mkdir(parents=True)
    (tmp_path / "carol" / CROP).write_text(CROP_BLOCK)
    monkeypatch.chdir(tmp_path / "carol")
    assert [s.id for s in read_class([".", "./"])] == ["carol", "carol~2"]
