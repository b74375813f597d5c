"""py-lmdb's own test suite against purelmdb, as part of the ordinary ``pytest`` run.

One session-wide subprocess runs every file of ``run_upstream.CI_FILES`` (see README.md); each
file is then one test here, which fails when that file has a failure not listed in
expectations.json, or a listed test that no longer fails. When the suite cannot be downloaded
the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import run_upstream

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def report() -> run_upstream.Report:
    try:
        run_upstream.fetch()
    except run_upstream.UpstreamError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot fetch the upstream suite under CI: {exc}")
        pytest.skip(f"cannot fetch the upstream suite: {exc}")
    return run_upstream.run(run_upstream.CI_FILES)


@pytest.mark.parametrize("file", run_upstream.CI_FILES)
def test_upstream_file(report: run_upstream.Report, file: str) -> None:
    problems = []
    for test_id in report.unexpected:
        if test_id.startswith(file + "::"):
            result = report.results[test_id]
            problems.append(f"unexpected {result.outcome}: {test_id}: {result.message}")
    for test_id in report.fixed + report.listed_skipped:
        if test_id.startswith(file + "::"):
            problems.append(f"listed in expectations.json but did not fail: {test_id}")
    for test_id in report.stale:
        if test_id.startswith(file + "::"):
            problems.append(f"listed in expectations.json but not in the suite: {test_id}")
    assert not problems, "\n".join(problems)
    assert any(test_id.startswith(file + "::") for test_id in report.results), "no tests ran"


SHIM_CHECK = textwrap.dedent(
    """
    import sys
    import lmdb
    import purelmdb
    assert lmdb is purelmdb and sys.modules["lmdb"] is purelmdb
    assert lmdb.open is purelmdb.Environment and lmdb.__all__ is purelmdb.__all__
    import lmdb.errors
    from lmdb import errors
    assert lmdb.errors is errors is purelmdb.errors is sys.modules["purelmdb.errors"]
    assert errors.__spec__.name == "purelmdb.errors"
    try:
        import lmdb.no_such_module
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("lmdb.no_such_module imported")
    print("ok")
    """
)


def test_shim_aliases_purelmdb() -> None:
    """``import lmdb`` under the shim gives purelmdb, submodules included (in a subprocess:
    the shim replaces ``sys.modules['lmdb']``)."""
    env = dict(os.environ, PYTHONPATH=run_upstream.pythonpath(run_upstream.DEFAULT_SRC))
    proc = subprocess.run(
        [sys.executable, "-c", SHIM_CHECK], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
