"""docs/api.md is generated from the docstrings: it must match a fresh generation.

When this fails, run ``python docs/gen_api.py`` and commit docs/api.md with the docstring
change. The generator is imported from docs/ and run in this process, on the purelmdb that
the tests import (the working tree's ``src``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("purelmdb_gen_api", DOCS / "gen_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_api() -> ModuleType:
    return load_generator()


def test_api_md_is_up_to_date(gen_api):
    fresh = gen_api.generate()
    current = (DOCS / "api.md").read_text(encoding="utf-8")
    assert current == fresh, (
        "docs/api.md is out of date with the docstrings: run `python docs/gen_api.py`")


def test_api_md_covers_the_public_api(gen_api):
    text = gen_api.generate()
    for needle in ("class `purelmdb.Environment(", "`Environment.begin(", "`Transaction.put(",
                   "`Cursor.set_range(", "`MapFullError`", "`purelmdb.verify.verify(",
                   "class `purelmdb.mapping.PersistentDict(", "`PersistentDict.batch()`",
                   "`purelmdb.codecs.encode_int("):
        assert needle in text, needle
    assert " at 0x" not in text                 # no object addresses: same on every machine
    assert "Transaction.alloc" not in text      # engine hooks are not API


def test_optional_modules_are_skipped_when_they_do_not_import(gen_api):
    real = importlib.import_module

    def importer(name: str) -> ModuleType:
        if name in ("purelmdb.aio", "purelmdb.tool", "purelmdb.ctools"):
            raise ModuleNotFoundError(name)
        return real(name)

    text = gen_api.generate(importer)
    assert "## purelmdb.mapping" in text
    assert "## purelmdb.aio" not in text and "(#purelmdbaio)" not in text
    with pytest.raises(ModuleNotFoundError):
        gen_api.generate(lambda name: importer("purelmdb.aio"))   # a required one fails


def test_check_mode_reports_a_stale_file(gen_api, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "api.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(gen_api, "OUTPUT", os.fspath(stale))
    assert gen_api.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert gen_api.main([]) == 0
    assert gen_api.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == gen_api.generate()
