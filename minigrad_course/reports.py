"""Reports: the table, feedback.md, Gradescope's results.json, grades.csv; and the scrub that
keeps other tasks' reference lines out of them."""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass

from . import fences
from .config import Course
from .hidden import hidden_source
from .verdicts import SubmissionResult


# ---- what a student must not see: reference code, hidden tests, the grader's paths ------------
_KEYWORD_ONLY = re.compile(r"(?:else|try|finally|pass|continue|break|return|raise|[^\w]*)\s*:?\Z")


def normalize(line: str) -> str:
    """A line as compared by the scrub: traceback markers (``>``, ``E``) and indentation gone,
    runs of whitespace as one space."""
    return " ".join(re.sub(r"^(?:(?:[>E|]\s+)|>)+", "", line.strip()).split())


def _secret_lines(lines) -> set:
    """The normalized lines worth hiding: anything but blank lines, lone keywords and punctuation."""
    out = set()
    for line in lines:
        n = normalize(line)
        if n and not _KEYWORD_ONLY.match(n):
            out.add(n)
    return out


@dataclass(frozen=True)
class Secrets:
    """What no report a student sees may hold: a line of any task's reference blocks, a line or
    the name of a hidden test, the grader's absolute paths. Built once per ``grade`` run from
    the reference tree."""
    reference: dict  # task id -> frozenset of its reference blocks' normalized lines
    hidden_lines: frozenset
    hidden_names: frozenset
    roots: tuple  # absolute paths whose prefix is cut (the reference tree; the grading trees' parent)

    def scrub(self, text: str, own=()) -> str:
        """``text`` with paths made relative to the student's copy and every line that holds a
        secret replaced by a note. ``own``: the student's own lines for this task (never hidden:
        they are theirs, even where they equal the reference)."""
        if not text:
            return text
        text = relative_paths(text, self.roots)
        mine = {normalize(ln) for ln in own}
        reference = _pattern(frozenset(set().union(*self.reference.values()) - mine))
        hidden = _pattern(frozenset(self.hidden_lines - mine))
        out = []
        for line in text.splitlines():
            n = normalize(line)
            if reference and reference.search(n):
                out.append("[hidden: this line showed a reference solution]")
            elif (hidden and hidden.search(n)) or any(name in line for name in self.hidden_names):
                out.append("[hidden: this line showed a hidden test]")
            else:
                out.append(line)
        return "\n".join(out)


@functools.lru_cache(maxsize=64)
def _pattern(secrets: frozenset):
    """One regex that finds any of ``secrets`` as a whole (word boundaries) in a normalized
    line, or None for no secrets. Cached: the sets differ only by a student's own lines."""
    if not secrets:
        return None
    alternatives = "|".join(re.escape(x) for x in sorted(secrets, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def reference_secrets(reference: str, course: Course) -> Secrets:
    """The secrets of the reference tree at ``reference``: every task's reference block lines
    (comments too, however short), the hidden tests' source and names."""
    per_task = {}
    for t, task in course.tasks.items():
        with open(os.path.join(reference, task.file), encoding="utf-8") as f:
            blocks = fences.parse(f.read(), task.file)
        per_task[t] = frozenset(_secret_lines(ln for b in blocks if b.task == t for ln in b.body))
    lines, names = hidden_source(reference, course.hidden_marker)
    return Secrets(per_task, frozenset(_secret_lines(lines)), frozenset(names),
                   (os.path.abspath(reference), "/grading", "/io"))


def relative_paths(text: str, roots=()) -> str:
    """``text`` with the grader's absolute paths cut: a path into the project tree (``.../minigrad/x.py``,
    the sandbox's ``/grading/...``, a temporary grading tree) becomes relative to the copy; the
    Python installation's becomes ``<python>/...``; any other absolute path under a root, the
    temporary folder or the home folder loses its prefix."""
    import sys

    for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix}, key=len, reverse=True):
        text = _cut(text, prefix, "<python>/")
    text = re.sub(r"(?<![\w.~<>-])(?:/[^\s/:'\"(),\[\]]+)*?/(?=(?:minigrad|unet|tests|minigrad_course)/)", "", text)
    text = re.sub(r"(?<![\w.~<>-])(?:/[^\s/:'\"(),\[\]]+)*/site-packages/", "<site-packages>/", text)
    for root in sorted((r for r in roots if r and r != "/"), key=len, reverse=True):
        text = _cut(text, root, "")
    text = _cut(text, tempfile.gettempdir(), "<tmp>/")
    return _cut(text, os.path.expanduser("~"), "~/")


def _cut(text: str, prefix: str, replacement: str) -> str:
    prefix = prefix.rstrip("/")
    if not prefix or prefix == "~":
        return text
    return re.sub(rf"(?<![\w.-]){re.escape(prefix)}(?:/|(?=[\s'\":,)\]]|\Z))", replacement, text)


# ---- reports --------------------------------------------------------------------------------
def table(result: SubmissionResult, hide_hidden=False) -> str:
    lines = [f"{result.id}: {result.total:.2f}/{result.max_total:g} points",
             f"  {'task':30s} {'points':>11s} {'tests':>7s}  result"]
    for t, r in result.tasks.items():
        shown = f"{r.passed}/{r.total}" if hide_hidden else f"{r.passed + r.hidden_passed}/{r.total + r.hidden_total}"
        cost = ""
        if r.cost:
            cost = "   [cost vs reference: " + ", ".join(f"{k} {v:.2f}x" for k, v in r.cost.items()) + "]"
        lines.append(f"  {t:30s} {r.points:6.2f}/{r.max_points:<5g} {shown:>7s}  {r.status}{cost}")
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)


def student_status(r) -> str:
    """The status as a student may see it: of the cases, only the visible ones' outcome (the
    verdict's status counts hidden cases too: "4 of 4 cases failing" beside 3 visible ones would
    say a hidden one failed)."""
    status = r.status
    if not r.hidden_total or not (status == "passed" or "cases failing" in status or "hidden case" in status):
        return status
    failing = r.total - r.passed
    shown = f"{failing} of {r.total} visible cases failing" if failing else "visible cases passed"
    return shown + (" (time limit)" if "(time limit)" in status else "")


def hidden_names(r) -> list:
    """The names the instructor gave a task's hidden cases (all a student may learn of them)."""
    return [name for name, _, hidden in r.tests if hidden]


def feedback_markdown(result: SubmissionResult) -> str:
    """feedback.md: per task the points, the status and the failing visible cases, one line
    each (already scrubbed); of the hidden cases only their count and names."""
    out = [f"# Feedback for {result.id}", "", f"Total: **{result.total:g} / {result.max_total:g}** points.", ""]
    out += [f"- note: {n}" for n in result.notes]
    for t, r in result.tasks.items():
        out += ["", f"## {t}: {r.points:g} / {r.max_points:g} points ({student_status(r)})", "",
                f"Visible cases passed: {r.passed}/{r.total}."]
        if r.hidden_total:
            names = hidden_names(r)
            out.append(f"Hidden cases: {r.hidden_total}" + (f" ({'; '.join(names)})" if names else "")
                       + "; how many passed is shown after the due date.")
        if r.cost:
            out.append("Cost of your code against the reference on one mid-size layer (not graded): "
                       + ", ".join(f"{k} {v:.2f}x" for k, v in r.cost.items()) + ".")
        if r.report:
            head = "Failing cases, most informative first:" if r.failed_test else "What went wrong:"
            out += ["", head, "", "```text", r.report.rstrip(), "```"]
    return "\n".join(out) + "\n"


def gradescope_json(result: SubmissionResult, course: Course) -> dict:
    tests = []
    for n, (t, r) in enumerate(result.tasks.items(), start=1):
        task = course.tasks[t]
        counted = [x for x in r.tests if x[1] != "skipped"]
        n_hidden = sum(1 for x in counted if x[2])
        split = n_hidden and not task.all_or_nothing and len(counted)
        visible_max = task.points * (len(counted) - n_hidden) / len(counted) if split else task.points
        visible_score = (task.points * r.passed / len(counted)) if split else r.points
        out = f"{student_status(r)}. Visible cases passed: {r.passed}/{r.total}."
        if r.report:
            out += f"\n\n{('First failing check: ' + r.failed_test) if r.failed_test else 'What went wrong:'}\n{r.report}"
        tests.append({"name": t, "number": str(n), "score": round(visible_score, 4), "max_score": round(visible_max, 4),
                      "status": "passed" if visible_score >= visible_max - 1e-9 else "failed",
                      "output": out, "visibility": "visible"})
        if split:
            hidden_max = task.points - visible_max
            hidden_score = task.points * r.hidden_passed / len(counted)
            tests.append({"name": f"{t} (hidden tests)", "number": f"{n}.h", "score": round(hidden_score, 4),
                          "max_score": round(hidden_max, 4),
                          "status": "passed" if hidden_score >= hidden_max - 1e-9 else "failed",
                          "output": f"Hidden cases passed: {r.hidden_passed}/{n_hidden} ({'; '.join(hidden_names(r))}).",
                          "visibility": "after_due_date"})
    return {"score": round(result.total, 4), "output": "\n".join(result.notes) or f"{result.total:g}/{result.max_total:g} points",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def write_outputs(results, course: Course, out_dir: str):
    """grades.csv, and per submission results.json (Gradescope's format) and feedback.md."""
    from ._atomic import atomic_write

    for r in results:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+@~-]*", r.id) or ".." in r.id:
            raise ValueError(f"write_outputs: submission id {r.id!r} is not a safe folder name (intake.py makes ids)")
    os.makedirs(out_dir, exist_ok=True)
    tasks = list(results[0].tasks) if results else []
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["submission", *tasks, "total", "max_total"])
    for r in results:
        w.writerow([r.id, *(f"{r.tasks[t].points:g}" for t in tasks), f"{r.total:g}", f"{r.max_total:g}"])
    atomic_write(os.path.join(out_dir, "grades.csv"), lambda f: f.write(buf.getvalue().encode("utf-8")))
    for r in results:
        folder = os.path.join(out_dir, r.id)
        payload = json.dumps(gradescope_json(r, course), indent=2) + "\n"
        atomic_write(os.path.join(folder, "results.json"), lambda f, p=payload: f.write(p.encode("utf-8")))
        md = feedback_markdown(r)
        atomic_write(os.path.join(folder, "feedback.md"), lambda f, m=md: f.write(m.encode("utf-8")))
