"""Reports: the table, feedback.md, Gradescope's results.json, grades.csv; and the scrub that
keeps other tasks' reference lines out of them."""
from __future__ import annotations

import csv
import io
import json
import os

from . import fences
from .config import Course
from .verdicts import SubmissionResult


# ---- what a student must not see: other tasks' reference code --------------------------------
def reference_secrets(reference: str, course: Course) -> dict:
    """{task: set of lines}: the lines of each task's reference blocks that appear nowhere else
    in its file. A failure report (a traceback through another task's block, or a student's
    block that reads the grader's files) must not show them."""
    secrets = {}
    for t, task in course.tasks.items():
        with open(os.path.join(reference, task.file), encoding="utf-8") as f:
            text = f.read()
        blocks = fences.parse(text, task.file)
        inside = {i for b in blocks for i in range(b.begin, b.end + 1)}
        outside = {ln.strip() for i, ln in enumerate(text.splitlines()) if i not in inside}
        secrets[t] = {ln.strip() for b in blocks if b.task == t for ln in b.body
                      if len(ln.strip()) >= 8 and ln.strip() not in outside and not ln.strip().startswith("#")}
    return secrets


def scrub(text: str, hidden: set) -> str:
    """``text`` with every line that holds a hidden line replaced by a note."""
    if not text or not hidden:
        return text
    out = []
    for line in text.splitlines():
        core = line.strip().lstrip(">").strip()
        if core and (core in hidden or any(h in line for h in hidden if len(h) >= 20)):
            out.append("    [a line of another task's reference solution: hidden]")
        else:
            out.append(line)
    return "\n".join(out)


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


def feedback_markdown(result: SubmissionResult) -> str:
    out = [f"# Feedback for {result.id}", "", f"Total: **{result.total:g} / {result.max_total:g}** points.", ""]
    out += [f"- note: {n}" for n in result.notes]
    for t, r in result.tasks.items():
        out += ["", f"## {t}: {r.points:g} / {r.max_points:g} points ({r.status})", "",
                f"Visible tests passed: {r.passed}/{r.total}."]
        if r.hidden_total:
            out.append(f"Hidden tests: {r.hidden_total} (their results are shown after the due date).")
        if r.cost:
            out.append("Cost of your code against the reference on one mid-size layer (not graded): "
                       + ", ".join(f"{k} {v:.2f}x" for k, v in r.cost.items()) + ".")
        if r.report:
            head = f"First failing check: `{r.failed_test}`" if r.failed_test else "What went wrong:"
            summary = [ln for ln in r.report.splitlines() if ln.startswith("E ")]
            if summary:
                out += ["", head, "", "```text", *summary[:12], "```", "", "The full report:"]
            else:
                out += ["", head]
            out += ["", "```text", r.report.rstrip(), "```"]
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
        out = f"{r.status}. Visible tests passed: {r.passed}/{r.total}."
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
                          "output": f"Hidden tests passed: {r.hidden_passed}/{n_hidden}.",
                          "visibility": "after_due_date"})
    return {"score": round(result.total, 4), "output": "\n".join(result.notes) or f"{result.total:g}/{result.max_total:g} points",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def write_outputs(results, course: Course, out_dir: str):
    """grades.csv, and per submission results.json (Gradescope's format) and feedback.md."""
    from ._atomic import atomic_write

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
