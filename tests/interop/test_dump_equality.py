"""`mdb_dump` of a purelmdb-written environment equals, byte for byte, `mdb_dump` of the same
content written by the C binding.

The same random operations (puts of small and overflow values, overwrites, deletes of keys and
of single duplicates, `putmulti`, cursor deletes, several commits and an aborted transaction)
are applied through both bindings, to a named database of every flag combination and to the
main database. `mdb_dump -a` prints every named database, header included (map size, reader
slots, page size, flags), and plain `mdb_dump` the main database. The page layout (split
points, page numbers) is free to differ: it shows in `mdb_stat`, not in a dump -- except in the
main database of an environment with named databases, whose values are the databases' records
(root page, page counts), so the main database is compared in an environment of its own.

REVERSEDUP cannot be asked for through the `lmdb` package: that database is made by `mdb_load`
(``reversedup=1``) in one file that both bindings then start from.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import purelmdb

lmdb = pytest.importorskip("lmdb")

pytestmark = pytest.mark.skipif(shutil.which("mdb_dump") is None or shutil.which("mdb_load") is None,
                                reason="mdb_dump and mdb_load (lmdb-utils) are not installed")

MAP_SIZE = 64 << 20
# name -> open_db flags (None: made by mdb_load with the header lines given in LOADED)
FLAGS: Dict[str, Optional[Dict[str, bool]]] = {
    "plain": {},
    "reverse_key": dict(reverse_key=True),
    "integerkey": dict(integerkey=True),
    "dupsort": dict(dupsort=True),
    "dupfixed": dict(dupsort=True, dupfixed=True),
    "integerdup": dict(dupsort=True, integerdup=True),
    "reversedup": None,
}
LOADED = {"reversedup": "dupsort=1\nreversedup=1\n"}
DUPSORT = {"dupsort", "dupfixed", "integerdup", "reversedup"}
Op = Tuple[Any, ...]


def _key(kind: str, rnd: random.Random) -> bytes:
    if kind == "integerkey":
        return struct.pack("=Q", rnd.choice([rnd.randrange(300), rnd.randrange(1 << 64)]))
    return rnd.choice([b"", b"k", b"key/", b"\xff" * 3]) + b"%d" % rnd.randrange(400)


def _value(kind: str, rnd: random.Random) -> bytes:
    if kind == "integerdup":
        return struct.pack("=I", rnd.randrange(1 << 32) if rnd.random() < 0.3
                           else rnd.randrange(500))
    if kind == "dupfixed":
        return b"v%07d" % rnd.randrange(2000)
    if kind in DUPSORT:
        return b"v%d" % rnd.randrange(2000) + b"." * rnd.choice([0, 1, 30, 200])
    r = rnd.random()
    if r < 0.1:
        return rnd.randbytes(rnd.randint(2000, 20000))   # overflow pages
    if r < 0.15:
        return b""
    return rnd.randbytes(rnd.randint(1, 120))


def _keys(kind: str, seed: int) -> Tuple[random.Random, List[bytes]]:
    rnd = random.Random(seed * 7919 + len(kind))
    return rnd, [_key(kind, rnd) for _ in range(150)]


def _script(kind: str, seed: int) -> List[List[Op]]:
    """Transactions of operations; a transaction starting with ("abort",) is aborted."""
    rnd, keys = _keys(kind, seed)
    txns: List[List[Op]] = []
    for t in range(8):
        ops: List[Op] = []
        for _ in range(rnd.choice([50, 300])):
            k = rnd.choice(keys[1:])
            r = rnd.random()
            if r < 0.6:
                ops.append(("put", k, _value(kind, rnd)))
            elif r < 0.67:
                ops.append(("putmulti", [(k, _value(kind, rnd)) for _ in range(5)]))
            elif r < 0.8:
                ops.append(("delete", k))
            elif r < 0.95:
                if kind in DUPSORT:
                    ops.append(("delete_value", k, _value(kind, rnd)))
                else:
                    ops.append(("put", k, _value(kind, rnd)))
            else:
                ops.append(("cursor_delete", k, rnd.randint(1, 6)))
        if kind in DUPSORT:
            # one busy key, whose values outgrow a sub-page into a sub-database, lose some
            # again, and once go all at once (the sub-database freed whole, then regrown)
            for _ in range(300):
                op = "put" if rnd.random() < 0.85 else "delete_value"
                ops.insert(rnd.randint(0, len(ops)), (op, keys[0], _value(kind, rnd)))
            if t == 2:
                ops.append(("delete", keys[0]))
        if t == 5:
            ops.insert(0, ("abort",))
        txns.append(ops)
    return txns


def _apply(env: Any, db: Any, txns: List[List[Op]]) -> None:
    for ops in txns:
        txn = env.begin(write=True, db=db)
        for op in ops:
            if op[0] == "put":
                txn.put(op[1], op[2])
            elif op[0] == "putmulti":
                txn.cursor().putmulti(op[1])
            elif op[0] == "delete":
                txn.delete(op[1])
            elif op[0] == "delete_value":
                txn.delete(op[1], op[2])
            elif op[0] == "cursor_delete":
                cur = txn.cursor()
                if cur.set_range(op[1]):
                    for _ in range(op[2]):
                        if not cur.delete():
                            break
        if ops and ops[0] == ("abort",):
            txn.abort()
        else:
            txn.commit()


def _mdb_load(path: Path, name: Optional[str], header: str) -> None:
    """An empty environment whose database ``name`` (None: the main one) has the flags that
    the header lines give."""
    text = "VERSION=3\nformat=bytevalue\ntype=btree\n%sHEADER=END\nDATA=END\n" % header
    path.mkdir()
    args = ["mdb_load"] + (["-s", name] if name else []) + [str(path)]
    subprocess.run(args, input=text.encode(), check=True, capture_output=True)


def _dump(*args: str) -> bytes:
    return subprocess.run(["mdb_dump", *args], check=True, capture_output=True).stdout


def _write_both(tmp_path: Path, kind: str, seed: int, named: bool,
                loaded: Optional[str]) -> List[Path]:
    """Run the script of ``kind`` through the C binding and purelmdb; the two paths."""
    txns = _script(kind, seed)
    paths = []
    for lib in (lmdb, purelmdb):
        path = tmp_path / lib.__name__
        if loaded is not None:
            _mdb_load(path, kind if named else None, loaded)
        env = lib.open(str(path), map_size=MAP_SIZE, max_dbs=4 if named else 0)
        try:
            db = env.open_db(kind.encode(), **(FLAGS[kind] or {})) if named else None
            _apply(env, db, txns)
        finally:
            env.close()
        paths.append(path)
    return paths


@pytest.mark.interop
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", list(FLAGS))
def test_named_database_dump_equal(tmp_path, kind, seed):
    c_path, py_path = _write_both(tmp_path, kind, seed, True, LOADED.get(kind))
    theirs = _dump("-a", str(c_path))
    assert b"database=%s\n" % kind.encode() in theirs
    assert theirs.count(b"\n") > 40
    if kind in DUPSORT:
        # the busy key's values are in a sub-database (node flags F_DUPDATA|F_SUBDATA)
        with purelmdb.open(str(py_path), max_dbs=4, readonly=True) as env:
            with env.begin() as txn:
                cur = txn.cursor(env.open_db(kind.encode(), txn=txn))
                assert cur.set_key(_keys(kind, seed)[1][0])
                assert cur._dp is not None and cur._dp.dups.kind == 2
    assert _dump("-a", str(py_path)) == theirs


MAIN_HEADERS = {"plain": "", "reverse_key": "reversekey=1\n", "integerkey": "integerkey=1\n",
                "dupsort": "dupsort=1\n", "dupfixed": "dupsort=1\ndupfixed=1\n",
                "integerdup": "dupsort=1\ndupfixed=1\nintegerdup=1\n",
                "reversedup": "dupsort=1\nreversedup=1\n"}


@pytest.mark.interop
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", list(MAIN_HEADERS))
def test_main_database_dump_equal(tmp_path, kind, seed):
    """The main database alone. The `lmdb` package sets no flags on it, so a flagged main
    database is made by `mdb_load` and then written by both bindings."""
    c_path, py_path = _write_both(tmp_path, kind, seed, False, MAIN_HEADERS[kind])
    theirs = _dump(str(c_path))
    assert theirs.count(b"\n") > 40
    assert _dump(str(py_path)) == theirs
