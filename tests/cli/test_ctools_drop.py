"""``mdb_drop`` lookalike. Debian's lmdb-utils 0.9.24 has no mdb_drop, so the oracle is the
C library itself: the same drop through the C binding (``lmdb``) must leave the same data,
read back with Debian's mdb_dump and mdb_stat."""

from __future__ import annotations

import shutil

import lmdb
import pytest
from test_ctools_support import (
    NAMED,
    contents,
    make_env,
    needs_c_tools,
    run_c,
    run_py,
)

import purelmdb

pytestmark = [pytest.mark.interop, needs_c_tools]

IMPLS = {"c": lmdb, "py": purelmdb}


@pytest.fixture(scope="module", params=sorted(IMPLS))
def source(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("drop-" + request.param) / "env")
    make_env(IMPLS[request.param], path, records=200)
    return path


def _copy(source: str, dest) -> str:
    dest.mkdir()
    shutil.copyfile(source + "/data.mdb", str(dest / "data.mdb"))
    return str(dest)


def _c_drop(path: str, name, delete: bool) -> None:
    env = lmdb.open(path, max_dbs=32)
    try:
        with env.begin(write=True) as txn:
            db = env.open_db(name.encode(), txn=txn, create=False) if name else env.open_db()
            txn.drop(db, delete=delete)
    finally:
        env.close()


@pytest.mark.parametrize("name", [None, *NAMED])
@pytest.mark.parametrize("delete", [False, True], ids=["empty", "delete"])
def test_drop_matches_c_library(source, tmp_path, name, delete):
    ours = _copy(source, tmp_path / "ours")
    theirs = _copy(source, tmp_path / "theirs")
    args = (["-d"] if delete else []) + (["-s", name] if name else [])
    result = run_py("mdb_drop", *args, ours)
    assert result == (0, b"", b"")
    _c_drop(theirs, name, delete)
    assert contents(ours) == contents(theirs)
    listed = run_c("mdb_dump", "-l", ours).out
    if name and delete:
        assert name.encode() + b"\n" not in listed
        assert run_c("mdb_stat", "-s", name, ours).rc == 1
    elif name:
        assert name.encode() + b"\n" in listed
        assert run_c("mdb_stat", "-s", name, ours).out == \
            run_c("mdb_stat", "-s", name, theirs).out
    # the dropped pages went to the free list
    before = run_c("mdb_stat", "-f", source).out.split(b"Free pages: ")[1]
    after = run_c("mdb_stat", "-f", ours).out.split(b"Free pages: ")[1]
    assert int(after.split(b"\n")[0]) > int(before.split(b"\n")[0])


def test_drop_errors(source, tmp_path):
    path = _copy(source, tmp_path / "env")
    missing = run_py("mdb_drop", "-s", "nosuch", path)
    assert missing == (1, b"", b"mdb_open failed, error -30798 MDB_NOTFOUND: "
                               b"No matching key/data pair found\n")
    plain_key = run_py("mdb_drop", "-s", "main00001", path)
    assert plain_key.rc == 1 and plain_key.err.startswith(b"mdb_open failed, error -30784 ")
    usage = b"usage: mdb_drop [-V] [-n] [-d] [-s subdb] dbpath\n"
    assert run_py("mdb_drop") == (1, b"", usage)
    assert run_py("mdb_drop", "-x", path) == \
        (1, b"", b"mdb_drop: invalid option -- 'x'\n" + usage)
    assert run_py("mdb_drop", path, "-s") == \
        (1, b"", b"mdb_drop: option requires an argument -- 's'\n" + usage)
    gone = run_py("mdb_drop", str(tmp_path / "missing"))
    assert gone == (1, b"", b"mdb_env_open failed, error 2 No such file or directory\n")
    assert contents(path) == contents(source)        # nothing changed on any error


def test_drop_nosubdir(tmp_path):
    src = str(tmp_path / "env.lmdb")
    make_env(purelmdb, src, records=50, subdir=False)
    assert run_py("mdb_drop", "-n", "-d", "-s", "dups", src).rc == 0
    listed = run_c("mdb_dump", "-n", "-l", src).out
    assert b"dups\n" not in listed and b"plain\n" in listed
