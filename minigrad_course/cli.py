"""Course tooling: ``python -m minigrad_course <command>``.

Instructor, in the reference tree:
    make-student OUT [--release NAME | --only TASK...] [--reveal TASK...]
    grade SUBMISSION... [--out DIR] [--tasks TASK...] [--release NAME] [--jobs N] [--sandbox KIND]
    make-autograder OUT.zip [--release NAME]
    expected [TASK...]     rewrites minigrad_course/expected/ (what check compares with)
    tasks
Student, in a student copy:
    check [TASK...]        the grader's table, run locally on your own copy
    submit [--out FILE]    writes submission.zip: your task blocks and a manifest

The code lives in ``minigrad_course/`` beside the engine; ``python -m minigrad.assignments`` is an alias.
docs/instructors.md walks a whole term.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import config, fences
from .verdicts import GradingError


def _cmd_tasks(args):
    course = config.load_course(args.root)
    for n, (t, task) in enumerate(course.tasks.items(), start=1):
        print(f"{n:2d}. {t:30s} {task.points:4g} pts  {task.release:7s} {task.file}: {task.function}")
    return 0


def _cmd_make_student(args):
    from .student import make_student

    if args.release and args.only:
        raise config.CourseError("make-student: give --release or --only, not both")
    handed = make_student(args.source, args.out, release=args.release, only=args.only, reveal=args.reveal or ())
    print(f"wrote a student copy to {args.out}: {len(handed)} task(s) handed out ({', '.join(handed)})"
          + (f"; solutions revealed: {', '.join(args.reveal)}" if args.reveal else ""))
    return 0


def _cmd_grade(args):
    from .grade import grade, table, write_outputs

    def progress(sub, task, result):
        if not args.quiet:
            print(f"  graded {sub.id} {task}: {result.points:g}/{result.max_points:g}", file=sys.stderr)

    if args.gradescope and len(args.submissions) != 1:
        raise config.CourseError("grade: --gradescope writes one results.json, so give exactly one submission")
    results = grade(args.root, args.submissions, tasks=args.tasks, release=args.release, jobs=args.jobs,
                    run_stubs=args.run_stubs, cost=args.cost and not args.no_cost, progress=progress,
                    sandbox=args.sandbox, sandbox_image=args.sandbox_image, unsafe_no_sandbox=args.unsafe_no_sandbox)
    for r in results:
        print(table(r))
    if args.out:
        write_outputs(results, config.load_course(args.root), args.out)
        print(f"wrote {os.path.join(args.out, 'grades.csv')} and results.json + feedback.md per submission")
    if args.gradescope:
        import json

        from .reports import gradescope_json
        from ._atomic import atomic_write

        payload = json.dumps(gradescope_json(results[0], config.load_course(args.root)), indent=2) + "\n"
        atomic_write(args.gradescope, lambda f: f.write(payload.encode("utf-8")))
    return 0


def _cmd_expected(args):
    from . import cases, sandbox

    box = sandbox.find(args.sandbox, unsafe=args.sandbox == "none")
    for path in cases.write_expected(os.path.abspath(args.root), box, tasks=args.tasks or None):
        print(f"wrote {path}")
    return 0


def _cmd_make_autograder(args):
    from .autograder import make_autograder

    path = make_autograder(args.root, args.out, release=args.release, tasks=args.tasks)
    print(f"wrote the Gradescope autograder {path}")
    return 0


def _cmd_check(args):
    from .check import check

    return 0 if check(args.root, args.tasks or None) else 1


def _cmd_submit(args):
    from .submission import submit

    done = submit(args.root, args.out)
    for problem in done.problems:
        print(f"error: {problem}: that task is NOT in the zip; mend it and submit again", file=sys.stderr)
    print(done.summary())
    return 1 if done.problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigrad_course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".", help="the project tree (default: the current folder)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the tasks in order").set_defaults(run=_cmd_tasks)
    m = sub.add_parser("make-student", help="write a student copy (instructor)")
    m.add_argument("out")
    m.add_argument("--source", default=None, help="the reference tree (default: --root)")
    m.add_argument("--release", help="hand out the tasks of the releases up to this one (course.toml)")
    m.add_argument("--only", nargs="+", metavar="TASK", help="hand out exactly these tasks")
    m.add_argument("--reveal", nargs="+", metavar="TASK", help="keep these tasks' reference solutions in the copy")
    m.set_defaults(run=_cmd_make_student)
    g = sub.add_parser("grade", help="grade submissions: folders, .zip copies or submission.zip files (instructor)")
    g.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    g.add_argument("--out", help="write grades.csv and per submission results.json and feedback.md here")
    g.add_argument("--tasks", nargs="+", metavar="TASK")
    g.add_argument("--release", help="grade the tasks of this release group only")
    g.add_argument("--jobs", type=int, default=None, help="tasks graded at once (default: CPU cores, at most 4)")
    g.add_argument("--run-stubs", action="store_true", help="run the tests even of blocks that are still the stub")
    g.add_argument("--cost", action="store_true", help="add the ungraded time/memory comparison with the reference")
    g.add_argument("--no-cost", action="store_true", help=argparse.SUPPRESS)  # the former opt-out: now the default
    g.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "docker", "podman", "user", "none"),
                   help="where student code runs: bubblewrap (auto), a container engine (with --sandbox-image), "
                        "'user' (root only: an unprivileged uid, no namespaces) or none (with --unsafe-no-sandbox)")
    g.add_argument("--sandbox-image", default="", help="the docker/podman image (Python, NumPy, SciPy)")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run student code without a sandbox (every report says so)")
    g.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    g.add_argument("--gradescope", metavar="RESULTS_JSON", help="write this one submission's results.json here")
    g.set_defaults(run=_cmd_grade)
    a = sub.add_parser("make-autograder", help="write a Gradescope autograder .zip (instructor)")
    a.add_argument("out")
    a.add_argument("--release", help="grade only this release group's tasks")
    a.add_argument("--tasks", nargs="+", metavar="TASK")
    a.set_defaults(run=_cmd_make_autograder)
    e = sub.add_parser("expected", help="rewrite minigrad_course/expected/ (the visible cases' reference values "
                                        "that check compares with) from the reference tree (instructor)")
    e.add_argument("tasks", nargs="*", metavar="TASK")
    e.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    e.set_defaults(run=_cmd_expected)
    c = sub.add_parser("check", help="self-grade your copy: the grader's table (student)")
    c.add_argument("tasks", nargs="*", metavar="TASK")
    c.set_defaults(run=_cmd_check)
    s = sub.add_parser("submit", help="write submission.zip with your task blocks (student)")
    s.add_argument("--out", help="where to write it (default: submission.zip in the copy)")
    s.set_defaults(run=_cmd_submit)
    args = parser.parse_args(argv)
    if getattr(args, "source", None) is None and args.command == "make-student":
        args.source = args.root
    try:
        return args.run(args)
    except (config.CourseError, fences.FenceError, FileExistsError, FileNotFoundError, GradingError, ValueError,
            RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
