"""The pytest plugin the grader and ``check`` load into their test runs (``-p``).

It records every test's outcome, markers and full failure report as one JSON line, written
and flushed as soon as the test ends, so a run cut off by its time limit still leaves the
results so far; and it fails any single test that runs longer than the per-test limit.
Environment: MINIGRAD_COURSE_RESULTS (the JSON-lines file), MINIGRAD_COURSE_TEST_TIMEOUT
(seconds), MINIGRAD_COURSE_TREE (the tree whose minigrad must be the one imported).
"""
import json
import os
import signal

import pytest


class TestTimeLimit(BaseException):
    """A BaseException, so that a student's ``except Exception`` cannot swallow it."""


def _on_alarm(signum, frame):
    raise TestTimeLimit(f"this test ran longer than its time limit of "
                        f"{os.environ.get('MINIGRAD_COURSE_TEST_TIMEOUT')} s (an endless loop?)")


def pytest_configure(config):
    tree = os.environ.get("MINIGRAD_COURSE_TREE")
    if tree:
        import minigrad

        here = os.path.realpath(minigrad.__file__)
        if not here.startswith(os.path.realpath(tree) + os.sep):
            raise pytest.UsageError(f"grading: imported minigrad from {here}, not from the tree {tree}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    limit = float(os.environ.get("MINIGRAD_COURSE_TEST_TIMEOUT", "0") or 0)
    if limit > 0:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if limit > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def pytest_runtest_logreport(report):
    if report.when != "call" and report.outcome == "passed":
        return  # setup/teardown that passed: nothing to say
    if report.when == "teardown" and report.outcome == "skipped":
        return
    path = os.environ.get("MINIGRAD_COURSE_RESULTS")
    if not path:
        return
    record = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "markers": sorted(k for k, v in report.keywords.items() if k.isidentifier()),
        "duration": round(report.duration, 3),
        "report": report.longreprtext[-20000:] if report.failed else "",
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def pytest_collectreport(report):
    """A module that fails to import (say, a syntax error in a task block) is worth saying."""
    path = os.environ.get("MINIGRAD_COURSE_RESULTS")
    if path and report.failed:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"nodeid": report.nodeid, "when": "collect", "outcome": "failed", "markers": [],
                                "duration": 0.0, "report": report.longreprtext[-20000:]}) + "\n")


def pytest_collection_finish(session):
    """With MINIGRAD_COURSE_COLLECT set: write every selected test and its markers, one JSON line each."""
    path = os.environ.get("MINIGRAD_COURSE_COLLECT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            for item in session.items:
                f.write(json.dumps({"nodeid": item.nodeid, "markers": sorted({m.name for m in item.iter_markers()})}) + "\n")
