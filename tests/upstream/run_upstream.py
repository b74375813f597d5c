#!/usr/bin/env python3
"""Run py-lmdb's own test suite against purelmdb.

    python tests/upstream/run_upstream.py                  # the CI selection (CI_FILES)
    python tests/upstream/run_upstream.py cursor txn_test  # chosen files (".py"/"_test" optional)
    python tests/upstream/run_upstream.py all              # every upstream test file

The upstream tests are not part of this repository: the sdist of lmdb==UPSTREAM_VERSION is
fetched with ``pip download`` into a cache folder (``tests/upstream/.cache/``, git-ignored) and
its ``tests/*.py`` extracted there. They run unmodified, with pytest in a subprocess whose
``PYTHONPATH`` starts with ``shim/`` (``import lmdb`` gives purelmdb) and ``src/``.

Every failing test must be listed in ``expectations.json`` with the reason it fails (see
README.md). The exit status is 0 when every failure is listed and every listed test that ran
failed; 1 otherwise (an unlisted failure, a listed test that passed, a stale entry); 2 when
the suite could not be fetched or run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

UPSTREAM_VERSION = "3.0.0"
SDIST_NAME = f"lmdb-{UPSTREAM_VERSION}.tar.gz"
SDIST_SHA256 = "06dda0723545e14d56ac7dcd6f582d9922c2ed5e16f1c3f8d0e670a96ec2ee65"

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIM_DIR = HERE / "shim"
DEFAULT_SRC = REPO / "src"
DEFAULT_CACHE = HERE / ".cache"
EXPECTATIONS_FILE = HERE / "expectations.json"
CACHE_ENV = "PURELMDB_UPSTREAM_CACHE"
REPORT_ENV = "PURELMDB_UPSTREAM_REPORT"  # read by shim/upstream_report.py

#: Files run by default and in CI (tests/upstream/test_upstream_suite.py): the whole suite.
CI_FILES = (
    "aio_test.py", "crash_test.py", "cursor_test.py", "cve_test.py", "engine_test.py",
    "env_test.py", "getmulti_test.py", "iteration_test.py", "large_write_test.py",
    "mdb_layout_test.py", "overflow_test.py", "package_test.py", "parity_test.py",
    "tool_test.py", "txn_test.py", "verify_test.py",
)
#: The categories of expectations.json (README.md says what each one means).
CATEGORIES = ("not-yet", "c-internals", "multi-process", "engine-bug")
FAILING = ("failed", "error")
SESSION_TIMEOUT = 1200  # seconds, for one pytest subprocess

PYTEST_INI = """\
# Written by tests/upstream/run_upstream.py: upstream's pytest options, except that the
# mdb_layout tests are not deselected.
[pytest]
markers =
    mdb_layout: low-level LMDB data layout validation tests
"""


class UpstreamError(Exception):
    """The upstream suite could not be fetched or run."""


# --------------------------------------------------------------------------------------------
# Fetching


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def download_sdist(cache: Path) -> Path:
    """The verified sdist of lmdb==UPSTREAM_VERSION in ``cache``, downloaded if missing."""
    sdist = cache / SDIST_NAME
    if not sdist.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "pip", "download", f"lmdb=={UPSTREAM_VERSION}",
            "--no-binary", ":all:", "--no-deps", "--disable-pip-version-check", "-q",
            "-d", str(cache),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not sdist.is_file():
            raise UpstreamError(
                f"could not download {SDIST_NAME} ({' '.join(cmd)}):\n{proc.stderr.strip()}"
            )
    actual = _sha256(sdist)
    if actual != SDIST_SHA256:
        raise UpstreamError(f"{sdist}: sha256 {actual}, expected {SDIST_SHA256}; delete it")
    return sdist


def fetch(cache: Optional[Path] = None) -> Path:
    """Directory holding the upstream ``tests/*.py`` (and a pytest.ini), fetched if needed."""
    cache = cache or cache_dir()
    tests_dir = cache / f"lmdb-{UPSTREAM_VERSION}-tests"
    if (tests_dir / "pytest.ini").is_file():
        return tests_dir
    sdist = download_sdist(cache)
    staging = Path(tempfile.mkdtemp(prefix="tests-", dir=cache))
    try:
        prefix = f"lmdb-{UPSTREAM_VERSION}/tests/"
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar.getmembers():
                name = member.name[len(prefix):] if member.name.startswith(prefix) else ""
                if not member.isfile() or not name.endswith(".py") or "/" in name:
                    continue
                source = tar.extractfile(member)
                assert source is not None
                (staging / name).write_bytes(source.read())
        if not (staging / "testlib.py").is_file():
            raise UpstreamError(f"{sdist} has no {prefix}testlib.py")
        (staging / "pytest.ini").write_text(PYTEST_INI)
        shutil.rmtree(tests_dir, ignore_errors=True)
        staging.rename(tests_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tests_dir


def upstream_files(tests_dir: Path) -> List[str]:
    return sorted(p.name for p in tests_dir.glob("*_test.py"))


# --------------------------------------------------------------------------------------------
# Expectations


@dataclass(frozen=True)
class Expectation:
    category: str
    reason: str


def load_expectations(path: Path = EXPECTATIONS_FILE) -> Dict[str, Expectation]:
    """Test id -> why it fails. The file maps category -> reason -> [test ids]."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    expectations: Dict[str, Expectation] = {}
    for category, groups in data.items():
        if category.startswith("_"):
            continue  # comments
        if category not in CATEGORIES:
            raise UpstreamError(f"{path}: unknown category {category!r}")
        for reason, test_ids in groups.items():
            for test_id in test_ids:
                if test_id in expectations:
                    raise UpstreamError(f"{path}: {test_id} is listed twice")
                expectations[test_id] = Expectation(category, reason)
    return expectations


# --------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Result:
    outcome: str  # passed, failed, error or skipped
    message: str
    duration: float


def pythonpath(src: Path) -> str:
    parts = [str(SHIM_DIR), str(src)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def run_pytest(
    tests_dir: Path,
    files: Sequence[str],
    *,
    src: Path = DEFAULT_SRC,
    timeout: float = 60.0,
    pytest_args: Sequence[str] = (),
    verbose: bool = False,
) -> Dict[str, Result]:
    """Run the upstream ``files`` in a pytest subprocess; test id -> result.

    ``timeout`` bounds each test (pytest-timeout); the whole run gets SESSION_TIMEOUT."""
    fd, report_path = tempfile.mkstemp(prefix="upstream-report-", suffix=".json")
    os.close(fd)
    env = dict(os.environ, PYTHONPATH=pythonpath(src), PYTHONDONTWRITEBYTECODE="1")
    env[REPORT_ENV] = report_path
    cmd = [
        sys.executable, "-m", "pytest", *files,
        "-c", "pytest.ini", "--rootdir", ".", "--confcutdir", ".",
        "-p", "upstream_report", "-p", "no:cacheprovider", "--continue-on-collection-errors",
        f"--timeout={timeout:g}", "-q" if verbose else "-qq", "-rN", "--no-header",
        *pytest_args,
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=tests_dir, env=env, stdin=subprocess.DEVNULL,
            stdout=None if verbose else subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=SESSION_TIMEOUT,
        )
        with open(report_path, encoding="utf-8") as f:
            raw = f.read()
    except subprocess.TimeoutExpired:
        raise UpstreamError(f"pytest ran longer than {SESSION_TIMEOUT} s") from None
    finally:
        os.unlink(report_path)
    if not raw:
        raise UpstreamError(
            f"pytest exited {proc.returncode} without a report:\n{proc.stdout or ''}"
        )
    return {test_id: Result(**r) for test_id, r in json.loads(raw).items()}


# --------------------------------------------------------------------------------------------
# Comparing with the expectations


@dataclass
class Report:
    files: List[str]
    results: Dict[str, Result]
    expectations: Dict[str, Expectation]
    passed: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    expected: Dict[str, List[str]] = field(default_factory=dict)  # category -> test ids
    unexpected: List[str] = field(default_factory=list)  # failed, not listed
    fixed: List[str] = field(default_factory=list)  # listed, but passed
    listed_skipped: List[str] = field(default_factory=list)  # listed, but skipped
    stale: List[str] = field(default_factory=list)  # listed, in a file that ran, absent

    def __post_init__(self) -> None:
        for test_id, result in sorted(self.results.items()):
            listed = self.expectations.get(test_id)
            if result.outcome in FAILING:
                if listed is None:
                    self.unexpected.append(test_id)
                else:
                    self.expected.setdefault(listed.category, []).append(test_id)
            elif result.outcome == "skipped":
                self.skipped.append(test_id)
                if listed is not None:
                    self.listed_skipped.append(test_id)
            else:
                self.passed.append(test_id)
                if listed is not None:
                    self.fixed.append(test_id)
        ran = set(self.files)
        self.stale = sorted(
            test_id for test_id in self.expectations
            if test_id.split("::")[0] in ran and test_id not in self.results
        )

    @property
    def ok(self) -> bool:
        return not (self.unexpected or self.fixed or self.listed_skipped or self.stale)

    def counts(self, file: Optional[str] = None) -> Dict[str, int]:
        def n(ids: List[str]) -> int:
            return sum(1 for i in ids if file is None or i.split("::")[0] == file)

        counts = {"passed": n(self.passed), "skipped": n(self.skipped)}
        for category in CATEGORIES:
            counts[category] = n(self.expected.get(category, []))
        counts["unexpected"] = n(self.unexpected)
        counts["fixed"] = n(self.fixed)
        return counts

    def render(self) -> str:
        lines = []
        header = ["file", "passed", "skipped", *CATEGORIES, "unexpected", "fixed"]
        rows = [[f, *map(str, self.counts(f).values())] for f in self.files]
        rows.append(["total", *map(str, self.counts().values())])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        for test_id in self.unexpected:
            r = self.results[test_id]
            lines.append(f"UNEXPECTED {r.outcome.upper()}: {test_id}: {r.message}")
        for test_id in self.fixed:
            e = self.expectations[test_id]
            lines.append(f"NOW PASSES (remove it from expectations.json): {test_id} "
                         f"[{e.category}: {e.reason}]")
        for test_id in self.listed_skipped:
            lines.append(f"SKIPPED BUT LISTED (remove it from expectations.json): {test_id}")
        for test_id in self.stale:
            lines.append(f"STALE (no such test): {test_id}")
        lines.append("OK" if self.ok else "FAILED: the results differ from expectations.json")
        return "\n".join(lines)


def normalize_files(names: Sequence[str], available: Sequence[str]) -> List[str]:
    """``cursor``, ``cursor_test`` and ``cursor_test.py`` all name cursor_test.py."""
    if not names:
        return list(CI_FILES)
    if list(names) == ["all"]:
        return list(available)
    files = []
    for name in names:
        base = Path(name).name
        base = base[:-3] if base.endswith(".py") else base
        base = base if base.endswith("_test") else base + "_test"
        if base + ".py" not in available:
            raise UpstreamError(f"no upstream test file {name!r}; have {', '.join(available)}")
        files.append(base + ".py")
    return files


def run(
    files: Sequence[str] = (),
    *,
    src: Path = DEFAULT_SRC,
    timeout: float = 60.0,
    pytest_args: Sequence[str] = (),
    verbose: bool = False,
    expectations: Optional[Dict[str, Expectation]] = None,
) -> Report:
    """Fetch the suite if needed, run ``files`` (default CI_FILES) and compare."""
    tests_dir = fetch()
    chosen = normalize_files(files, upstream_files(tests_dir))
    results = run_pytest(
        tests_dir, chosen, src=src, timeout=timeout, pytest_args=pytest_args, verbose=verbose
    )
    if expectations is None:
        expectations = load_expectations()
    return Report(chosen, results, expectations)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="upstream test files, or 'all' (default: CI)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-test timeout, seconds")
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC,
                        help="directory holding the purelmdb package (default: src/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every test's outcome and message to PATH")
    parser.add_argument("--fetch-only", action="store_true", help="fetch the suite and stop")
    parser.add_argument("-k", dest="keyword", help="passed to pytest -k")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.fetch_only:
            print(fetch())
            return 0
        report = run(
            args.files, src=args.src.resolve(), timeout=args.timeout, verbose=args.verbose,
            pytest_args=["-k", args.keyword] if args.keyword else (),
        )
    except UpstreamError as exc:
        print(f"run_upstream: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(
            {k: vars(v) for k, v in sorted(report.results.items())}, indent=1))
    print(report.render())
    print(f"({time.monotonic() - started:.1f} s)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
