"""pytest plugin for run_upstream.py: writes one outcome per upstream test to a JSON file.

Loaded with ``-p upstream_report``; the output path comes from ``PURELMDB_UPSTREAM_REPORT``.
The file maps each test id to ``{"outcome": ..., "message": ..., "duration": ...}``, where the
outcome is ``passed``, ``failed``, ``error`` (setup or teardown failed) or ``skipped``. A file
that cannot be imported (``import lmdb.aio`` before purelmdb has it) is one entry, under the
file's name, with outcome ``error``; run pytest with ``--continue-on-collection-errors``.

Some upstream tests call ``os.fork()`` and let the child return from the test
(``txn_test.py::InitTest::test_cached_txn_across_fork``). The child would then run the rest of
the session a second time while the parent waits for it, so a forked child leaves as soon as
its test function returns, and only the original process writes the report.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Generator

import pytest

REPORT_ENV = "PURELMDB_UPSTREAM_REPORT"
_MAIN_PID = os.getpid()
_results: Dict[str, Dict[str, Any]] = {}


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # skips: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = str(longrepr).strip().splitlines()
    return lines[-1].lstrip("E").strip() if lines else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    yield
    if os.getpid() != _MAIN_PID:
        os._exit(0)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(
        report.nodeid, {"outcome": "passed", "message": "", "duration": 0.0}
    )
    entry["duration"] += report.duration
    if entry["outcome"] != "passed":
        return  # keep the first non-pass (a teardown error after a failure adds nothing)
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["message"] = _message(report)
    elif report.skipped:
        entry["outcome"] = "skipped"
        entry["message"] = _message(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _results[report.nodeid] = {
            "outcome": "error", "message": _message(report), "duration": 0.0,
        }


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(REPORT_ENV)
    if path and os.getpid() == _MAIN_PID:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_results, f, indent=1, sort_keys=True)
