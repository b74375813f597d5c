"""docs/cli.md is the commands' current --help (regenerate with python docs/gen_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_md_is_up_to_date():
    done = subprocess.run([sys.executable, str(DOCS / "gen_cli.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
