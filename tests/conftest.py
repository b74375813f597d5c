"""Shared fixtures for the purelmdb test suites.

Implementation under test
    Every test reaches the library through the ``impl`` fixture, which returns the ``purelmdb``
    module, or the C binding ``lmdb`` when ``PURELMDB_TEST_IMPL=lmdb`` is set. Running the suite
    against the C binding proves that the tests encode real LMDB behaviour; running it against
    purelmdb checks the engine. Tests that need the C binding as an oracle use ``clmdb`` (always
    the C binding, whatever ``impl`` is).

Hypothesis profiles (``HYPOTHESIS_PROFILE``)
    ``dev`` (default outside CI): few examples, quick feedback.
    ``ci`` (default when ``CI`` is set): moderate examples, derandomized so that CI runs are
    reproducible.
    ``ci-quick``: ``ci`` with fewer examples (the PyPy run of ``.ci/run``).
    ``thorough``: many examples, for a long run by hand.

mdb_* tools
    ``mdb_tools`` runs Debian's ``mdb_dump``/``mdb_stat``/... . A missing tool skips the test,
    except under CI (``CI`` set) where it fails it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, List, Optional

import pytest
from hypothesis import HealthCheck, settings

from c_variant import CFFI_REASON, c_binding_is_cffi

_SRC = Path(__file__).resolve().parents[1] / "src"
if importlib.util.find_spec("purelmdb") is None and _SRC.is_dir():
    # Not installed: test the working tree.
    sys.path.insert(0, str(_SRC))

IMPL_ENV_VAR = "PURELMDB_TEST_IMPL"
GiB = 1 << 30
CLOSED_MESSAGE = "Attempt to operate on closed/deleted/dropped object."
REALWORLD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "realworld"

# --------------------------------------------------------------------------------------------
# Hypothesis profiles

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "dev", max_examples=20, stateful_step_count=40, deadline=None,
    suppress_health_check=_HEALTH,
)
settings.register_profile(
    "ci", max_examples=100, stateful_step_count=60, deadline=None, derandomize=True,
    database=None, print_blob=True, suppress_health_check=_HEALTH,
)
# ``ci`` with fewer examples, for the PyPy run of .ci/run (the CPython run keeps ``ci``).
settings.register_profile(
    "ci-quick", max_examples=25, stateful_step_count=40, deadline=None, derandomize=True,
    database=None, print_blob=True, suppress_health_check=_HEALTH,
)
settings.register_profile(
    "thorough", max_examples=500, stateful_step_count=100, deadline=None,
    suppress_health_check=_HEALTH,
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


# --------------------------------------------------------------------------------------------
# Implementation selection


def impl_name() -> str:
    """'purelmdb' or 'lmdb', from ``PURELMDB_TEST_IMPL`` (default 'purelmdb')."""
    name = os.environ.get(IMPL_ENV_VAR, "purelmdb").strip() or "purelmdb"
    if name not in ("purelmdb", "lmdb"):
        raise pytest.UsageError(f"{IMPL_ENV_VAR} must be 'purelmdb' or 'lmdb', not {name!r}")
    return name


def load_impl() -> ModuleType:
    """The module under test: purelmdb, or the C binding when PURELMDB_TEST_IMPL=lmdb."""
    return importlib.import_module(impl_name())


def load_c_binding() -> ModuleType:
    """The C binding; skips (fails under CI) when it is not installed."""
    try:
        return importlib.import_module("lmdb")
    except ImportError:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            pytest.fail("the C binding 'lmdb' is required under CI")
        pytest.skip("the C binding 'lmdb' is not installed")


def load_verifier(module: ModuleType) -> Optional[Callable[..., List[str]]]:
    """``module.verify.verify`` when the module has it (purelmdb and lmdb>=3 both do)."""
    try:
        mod = importlib.import_module(module.__name__ + ".verify")
    except ImportError:
        return None
    return getattr(mod, "verify", None)


_OV_KEPT = re.compile(r"overflow page \d+ header mp_pages (\d+) != OVPAGES\(\d+\)=(\d+)$")
_OV_WALKED = re.compile(r"walked (\d+) overflow pages, record says (\d+)$")
_LEAK = re.compile(r"^(\d+) page\(s\) are neither reachable nor in the freeDB")


def _drop_kept_overflow_runs(problems: List[str]) -> List[str]:
    """Remove the C binding verifier's false alarms about a kept overflow run.

    LMDB 0.9 overwrites a value that lives on overflow pages dirtied in the same transaction
    in place, keeping the longer run even when the new value is smaller (it is then still
    F_BIGDATA, and stat() counts the whole run). lmdb 3.0.0's ``lmdb.verify`` reports such a
    run as a header/size mismatch, an overflow-count mismatch and a leak of the extra pages.
    Only these three messages are dropped, and only when their page counts agree.
    """
    excess = 0
    rest = []
    for p in problems:
        m = _OV_KEPT.search(p)
        if m and int(m.group(1)) > int(m.group(2)):
            excess += int(m.group(1)) - int(m.group(2))
        else:
            rest.append(p)
    if not excess:
        return problems
    out = []
    for p in rest:
        m = _OV_WALKED.search(p)
        if m and int(m.group(2)) - int(m.group(1)) == excess:
            continue
        m = _LEAK.search(p)
        if m and int(m.group(1)) == excess:
            continue
        out.append(p)
    return out


def assert_sound(module: ModuleType, path, subdir: Optional[bool] = None) -> None:
    """Run the offline verifier of ``module`` on a closed store, if it has one."""
    verify = load_verifier(module)
    if verify is None:
        return
    problems = verify(str(path), subdir=subdir)
    if module.__name__ == "lmdb":
        problems = _drop_kept_overflow_runs(problems)
    assert problems == [], f"verify({path}) found problems:\n" + "\n".join(problems[:50])


@pytest.fixture(scope="session")
def impl() -> ModuleType:
    """The implementation under test (see the module docstring)."""
    return load_impl()


@pytest.fixture(scope="session")
def clmdb() -> ModuleType:
    """The C binding, always (the oracle of differential tests)."""
    return load_c_binding()


@pytest.fixture(scope="session")
def impl_is_c(impl) -> bool:
    """True when the suite runs against the C binding instead of purelmdb."""
    return impl.__name__ == "lmdb"


@pytest.fixture(params=["impl", "c"])
def lib(request, impl) -> ModuleType:
    """Parametrizes a test over the implementation under test and the C binding."""
    if request.param == "c":
        return load_c_binding()
    return impl


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_c_extension: compares with the C binding's CPython extension; skipped under "
        "its CFFI variant (PyPy), only for lib='c' when parametrized by lib (c_variant.py)",
    )


@pytest.fixture(autouse=True)
def _needs_c_extension(request) -> None:
    """Skip a ``needs_c_extension`` test (or its ``lib="c"`` case) under the CFFI variant."""
    if request.node.get_closest_marker("needs_c_extension") is None:
        return
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if params.get("lib", "c") == "c" and c_binding_is_cffi():
        pytest.skip(CFFI_REASON)


@pytest.fixture
def sound_c() -> Callable[..., None]:
    """Like ``sound``, with the C binding's own verifier (``lmdb.verify``, lmdb>=3)."""
    clmdb = load_c_binding()

    def check(path, subdir: Optional[bool] = None) -> None:
        assert_sound(clmdb, path, subdir)

    return check


@pytest.fixture
def sound(impl) -> Callable[..., None]:
    """``sound(path, subdir=None)``: assert the verifier finds no problem in a closed store."""

    def check(path, subdir: Optional[bool] = None) -> None:
        assert_sound(impl, path, subdir)

    return check


# --------------------------------------------------------------------------------------------
# mdb_* command-line tools


class MdbTools:
    """Runs Debian's lmdb-utils; output is returned as text (``latin-1``, lossless)."""

    def require(self, name: str) -> str:
        exe = shutil.which(name)
        if exe is None:
            if os.environ.get("CI"):
                pytest.fail(f"{name} (lmdb-utils) is required under CI but is not installed")
            pytest.skip(f"{name} (lmdb-utils) is not installed")
        return exe

    def run(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        exe = self.require(name)
        proc = subprocess.run([exe, *map(str, args)], capture_output=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{name} {' '.join(map(str, args))} exited {proc.returncode}: "
                f"{proc.stderr.decode('latin-1')}"
            )
        return proc

    def text(self, name: str, *args: str) -> str:
        return self.run(name, *args).stdout.decode("latin-1")

    def stat(self, path, subdir: bool = True) -> dict:
        """Parse ``mdb_stat -ef[n] path`` into {'env': {...}, 'free': {...}, 'main': {...}}."""
        return parse_mdb_stat(self.text("mdb_stat", "-ef" if subdir else "-efn", path))

    def dump(self, path, subdir: bool = True) -> str:
        args = [] if subdir else ["-n"]
        return self.text("mdb_dump", *args, path)


def parse_mdb_stat(out: str) -> dict:
    """{'env': {'Number of pages used': 5, ...}, 'free': {'Free pages': 6, ...},
    'main': {'Entries': 2, ...}} from mdb_stat's text."""
    sections: dict = {}
    current = None
    for line in out.splitlines():
        if line.startswith("Environment Info"):
            current = sections.setdefault("env", {})
        elif line.startswith("Freelist Status"):
            current = sections.setdefault("free", {})
        elif line.startswith("Status of Main DB"):
            current = sections.setdefault("main", {})
        elif line.startswith("  ") and current is not None and ":" in line:
            name, _, value = line.strip().partition(":")
            value = value.strip()
            try:
                current[name] = int(value)
            except ValueError:
                current[name] = value
    return sections


@pytest.fixture(scope="session")
def mdb_tools() -> MdbTools:
    return MdbTools()


# --------------------------------------------------------------------------------------------
# Misc


@pytest.fixture(scope="session")
def realworld_dir() -> Path:
    if not REALWORLD_DIR.is_dir():
        pytest.skip(f"{REALWORLD_DIR} is missing")
    return REALWORLD_DIR
