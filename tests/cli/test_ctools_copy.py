"""``mdb_copy`` lookalike against Debian's mdb_copy: a compacting copy is Debian's page for
page (outside the unused middle of each page, which LMDB leaves as its buffer held it), opens
in the C library with the same data and no free pages; a plain copy holds the same data."""

from __future__ import annotations

import lmdb
import pytest
from test_ctools_support import (
    NAMED,
    assert_same,
    contents,
    make_env,
    mask_gaps,
    needs_c_tools,
    run_c,
    run_py,
)

import purelmdb

pytestmark = [pytest.mark.interop, needs_c_tools]

IMPLS = {"c": lmdb, "py": purelmdb}
NAMES = {name.encode() for name in NAMED}


@pytest.fixture(scope="module", params=sorted(IMPLS))
def source(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("copy-" + request.param) / "env")
    make_env(IMPLS[request.param], path)
    return path


def _c_contents(path: str, subdir: bool = True) -> dict:
    """Every record of every database, read by the C library."""
    env = lmdb.open(path, readonly=True, max_dbs=32, subdir=subdir, lock=False)
    try:
        out: dict = {}
        with env.begin() as txn:
            names = [k for k, _v in txn.cursor() if k in NAMES]
            # a named database's record holds page numbers, which compaction changes
            out[None] = [(k, v) for k, v in txn.cursor() if k not in NAMES]
            for name in names:
                db = env.open_db(name, txn=txn, create=False)
                out[name] = list(txn.cursor(db))
        return out
    finally:
        env.close()


def test_compact_copy_matches_c(source, tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "py").mkdir()
    c = run_c("mdb_copy", "-c", source, str(tmp_path / "c"))
    py = run_py("mdb_copy", "-c", source, str(tmp_path / "py"))
    assert_same(c, py)
    assert c.rc == 0
    c_data = (tmp_path / "c" / "data.mdb").read_bytes()
    py_data = (tmp_path / "py" / "data.mdb").read_bytes()
    assert len(py_data) == len(c_data)
    assert mask_gaps(py_data) == mask_gaps(c_data)
    free = run_c("mdb_stat", "-f", str(tmp_path / "py")).out
    assert b"  Free pages: 0\n" in free
    assert b"  Free pages: 0\n" not in run_c("mdb_stat", "-f", source).out
    assert contents(str(tmp_path / "py")) == contents(source)
    assert _c_contents(str(tmp_path / "py")) == _c_contents(source)


def test_compact_copy_to_stdout(source):
    c, py = run_c("mdb_copy", "-c", source), run_py("mdb_copy", "-c", source)
    assert c.rc == py.rc == 0 and c.err == py.err == b""
    assert mask_gaps(py.out) == mask_gaps(c.out)


def test_plain_copy_holds_the_same_data(source, tmp_path):
    """A plain copy is the snapshot's pages; purelmdb writes the snapshot's meta into both
    meta slots where LMDB copies its two meta pages, so only the data is compared."""
    (tmp_path / "py").mkdir()
    c_out = run_c("mdb_copy", source)
    py = run_py("mdb_copy", source, str(tmp_path / "py"))
    assert py.rc == 0 and py.out == py.err == b""
    copied = (tmp_path / "py" / "data.mdb").read_bytes()
    assert len(copied) == len(c_out.out)
    assert copied[2 * 4096:] == c_out.out[2 * 4096:]
    assert contents(str(tmp_path / "py")) == contents(source)
    assert run_c("mdb_stat", "-fff", str(tmp_path / "py")).out == \
        run_c("mdb_stat", "-fff", source).out
    stdout = run_py("mdb_copy", source)
    assert stdout.rc == 0 and stdout.out == copied


def test_copy_nosubdir(tmp_path):
    src = str(tmp_path / "src.lmdb")
    make_env(purelmdb, src, records=80, subdir=False)
    for side, run in (("c", run_c), ("py", run_py)):
        assert run("mdb_copy", "-n", "-c", src, str(tmp_path / (side + ".lmdb"))).rc == 0
    c_data = (tmp_path / "c.lmdb").read_bytes()
    py_data = (tmp_path / "py.lmdb").read_bytes()
    assert mask_gaps(py_data) == mask_gaps(c_data)
    assert run_c("mdb_dump", "-n", "-a", str(tmp_path / "py.lmdb")).out == \
        run_c("mdb_dump", "-n", "-a", src).out


@pytest.mark.parametrize("args", [
    [], ["-x", "SRC"], ["-c"], ["SRC", "DST", "extra"], ["-cn", "SRC", "DST"],
    ["MISSING", "DST"], ["SRC", "MISSING"], ["SRC", "FULL"], ["-n", "SRC", "DST"],
], ids=str)
def test_copy_errors_match_c(source, tmp_path, args):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "data.mdb").write_bytes(b"")
    names = {"SRC": source, "DST": str(tmp_path), "MISSING": str(tmp_path / "missing"),
             "FULL": str(tmp_path / "full")}
    args = [names.get(a, a) for a in args]
    c = run_c("mdb_copy", *args)
    assert c.rc == 1
    assert_same(c, run_py("mdb_copy", *args))


def test_copy_version():
    c, py = run_c("mdb_copy", "-V"), run_py("mdb_copy", "-V")
    assert c.rc == py.rc == 0 and py.out.startswith(b"LMDB 0.9.")


@pytest.mark.parametrize("compact", [True, False], ids=["compact", "plain"])
def test_copy_previous_snapshot(tmp_path, compact):
    """``-v`` (LMDB 1.0's MDB_PREVSNAPSHOT; Debian's 0.9.24 tool has no -v) copies the
    snapshot before the latest commit: the same as a copy Debian's mdb_copy took then."""
    src = str(tmp_path / "src")
    make_env(lmdb, src, records=150)
    flag = ["-c"] if compact else []
    earlier = run_c("mdb_copy", *flag, src).out
    env = lmdb.open(src, max_dbs=16, map_size=64 << 20)
    with env.begin(write=True) as txn:
        for i in range(300):
            txn.put(b"later%04d" % i, b"x" * 100)
    env.close()
    py = run_py("mdb_copy", "-v", *flag, src)
    assert py.rc == 0 and py.err == b""
    if compact:
        assert mask_gaps(py.out) == mask_gaps(earlier)
    # (a plain copy also holds the free pages, which the later commit may have reused)
    for name, data in (("then", earlier), ("prev", py.out)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.mdb").write_bytes(data)
    assert contents(str(tmp_path / "prev")) == contents(str(tmp_path / "then"))
    assert b"later" not in run_c("mdb_dump", "-p", str(tmp_path / "prev")).out
