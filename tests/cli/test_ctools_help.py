"""``--help`` of every C-tool lookalike: exit 0, the usage line the C tool prints on bad
options first, and a line for each of its options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH"))
                                                  if p))


@pytest.mark.parametrize("tool", ["mdb_stat", "mdb_dump", "mdb_load", "mdb_copy", "mdb_drop"])
def test_help(tool):
    done = subprocess.run([sys.executable, "-m", "purelmdb", tool, "--help"], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    bad = subprocess.run([sys.executable, "-m", "purelmdb", tool, "-Z"], env=ENV,
                         capture_output=True, text=True, timeout=60)
    usage = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode != 0 and usage.startswith("usage: ")
    assert done.stdout.splitlines()[0] == usage
    for option in set(re.findall(r"-([A-Za-z])", usage)):
        assert re.search(r"^  -%s\b" % option, done.stdout, re.M), option
