"""The files other programs wrote (../shared/realworld): every named database reads exactly as
the C binding reads it; after purelmdb writes to a copy (new keys, overwrites, deletes in every
database it supports), the C binding, mdb_stat and mdb_dump accept the copy and see the
writes. (Writes to the sorted-duplicate databases are covered by test_dupsort_vs_c.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import purelmdb
from purelmdb.verify import verify

lmdb = pytest.importorskip("lmdb")
REALWORLD = Path(__file__).resolve().parents[2].parent / "shared" / "realworld"
FILES = sorted(p.name for p in REALWORLD.glob("*.mdb")) if REALWORLD.is_dir() else []
LMDB_FILES = [f for f in FILES if not f.startswith("not-lmdb")]

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(not REALWORLD.is_dir(), reason="../shared/realworld missing")]


def _c_contents(path: str) -> Dict[bytes, Tuple[bool, List[Tuple[bytes, bytes]]]]:
    """name -> (dupsort, records) for every named database, read by the C binding."""
    env = lmdb.open(path, subdir=False, readonly=True, lock=False, max_dbs=64, map_size=0)
    out = {}
    with env.begin() as txn:
        names = [k for k, _ in txn.cursor()]
    for name in names:
        try:
            db = env.open_db(name, create=False)
        except lmdb.Error:
            continue   # a plain key of the main database
        with env.begin() as txn:
            out[name] = (db.flags()["dupsort"], list(txn.cursor(db=db)))
    env.close()
    return out


@pytest.mark.parametrize("name", LMDB_FILES)
def test_named_databases_read_as_c_reads_them(tmp_path, name):
    path = str(tmp_path / name)
    shutil.copy(REALWORLD / name, path)
    expected = _c_contents(path)
    env = purelmdb.open(path, subdir=False, readonly=True, lock=False, max_dbs=64)
    assert sorted(env.dbs()) == sorted(expected)
    for dbname, (_dupsort, records) in expected.items():
        db = env.open_db(dbname, create=False)
        with env.begin() as txn:
            assert list(txn.cursor(db=db)) == records
            firsts = {}
            for k, v in records[:50]:
                firsts.setdefault(k, v)      # get() gives a key's first value
            for k, v in firsts.items():
                assert txn.get(k, db=db) == v
    env.close()


@pytest.mark.parametrize("name", LMDB_FILES)
def test_writes_to_a_copy_are_seen_by_c_and_the_tools(tmp_path, name):
    path = str(tmp_path / name)
    shutil.copy(REALWORLD / name, path)
    before = _c_contents(path)
    env = purelmdb.open(path, subdir=False, max_dbs=64)
    expected = {}
    with env.begin(write=True) as txn:
        for dbname, (dupsort, records) in before.items():
            if dupsort:
                continue
            db = env.open_db(dbname, txn=txn)
            model = dict(records)
            ints = db.flags()["integerkey"]
            width = len(records[0][0]) if records and ints else 8
            for i in range(40):
                k = (10**6 + i).to_bytes(width, "little") if ints else b"purelmdb-%03d" % i
                txn.put(k, b"v%d" % i * (1 + i * 37), db=db)
                model[k] = b"v%d" % i * (1 + i * 37)
            for k, _ in records[::3]:
                assert txn.delete(k, db=db)
                del model[k]
            expected[dbname] = model
        newdb = env.open_db(b"added-by-purelmdb", txn=txn)
        txn.put(b"hello", b"world", db=newdb)
        expected[b"added-by-purelmdb"] = {b"hello": b"world"}
    env.close()
    assert verify(path, subdir=False) == []
    after = _c_contents(path)
    for dbname, model in expected.items():
        dupsort, records = after[dbname]
        assert not dupsort
        assert len(records) == len(model) and dict(records) == model
    for dbname in before:
        if before[dbname][0]:
            assert after[dbname] == before[dbname]   # untouched dupsort databases
    stat = subprocess.run(["mdb_stat", "-n", "-a", path], capture_output=True, text=True)
    assert stat.returncode == 0, stat.stderr
    assert "Status of added-by-purelmdb" in stat.stdout
    dump = subprocess.run(["mdb_dump", "-n", "-s", "added-by-purelmdb", path],
                          capture_output=True, text=True)
    assert dump.returncode == 0 and " 68656c6c6f\n 776f726c64\n" in dump.stdout


def test_not_lmdb_file_is_refused(tmp_path):
    path = tmp_path / "x.mdb"
    shutil.copy(REALWORLD / "not-lmdb-lfs-pointer.mdb", path)
    with pytest.raises(purelmdb.InvalidError):
        purelmdb.open(str(path), subdir=False, readonly=True, lock=False)
