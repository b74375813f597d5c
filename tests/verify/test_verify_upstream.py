"""py-lmdb 3.0.0's own verifier tests (``tests/verify_test.py`` of its sdist), run against
``purelmdb.verify``.

The upstream module builds its files with the C binding (``import lmdb``) and checks them with
``lmdb.verify``, which it imports as ``V``; replacing that module global is all it takes. The
sdist is looked for in ``$TMPDIR/lmdbsdist`` and downloaded there with pip when missing (CI has
access to PyPI); a failed download fails this module rather than skipping it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

from purelmdb import verify as purelmdb_verify

VERSION = "3.0.0"
SDIST_DIR = Path(tempfile.gettempdir()) / "lmdbsdist"
NEEDED = ("tests/verify_test.py", "tests/testlib.py")


def _tests_dir() -> Path:
    """The sdist's tests/ folder, downloading and unpacking the sdist if needed."""
    tests = SDIST_DIR / ("lmdb-%s" % VERSION) / "tests"
    if all((tests.parent / name).is_file() for name in NEEDED):
        return tests
    tarball = SDIST_DIR / ("lmdb-%s.tar.gz" % VERSION)
    if not tarball.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "lmdb==%s" % VERSION,
                        "--no-binary", ":all:", "--no-deps", "-d", str(SDIST_DIR)],
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
    with tarfile.open(tarball) as tar:
        for name in NEEDED:
            member = tar.getmember("lmdb-%s/%s" % (VERSION, name))
            data = tar.extractfile(member)
            assert data is not None
            target = tests.parent / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(data.read())
            partial.replace(target)     # atomic: a concurrent session sees all or nothing
    return tests


def _load_upstream() -> ModuleType:
    tests = _tests_dir()
    if str(tests) not in sys.path:
        sys.path.append(str(tests))     # for its `import testlib`
    spec = importlib.util.spec_from_file_location("upstream_verify_test",
                                                  tests / "verify_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SUPPORTED, "the C binding wrote a file the upstream tests cannot navigate"
    module.V = purelmdb_verify          # the one substitution
    return module


_UPSTREAM = _load_upstream()

# unittest.TestCase classes in module globals are collected by pytest
VerifyPositiveTest = _UPSTREAM.VerifyPositiveTest
VerifyNegativeTest = _UPSTREAM.VerifyNegativeTest
VerifyReversedupTest = _UPSTREAM.VerifyReversedupTest
