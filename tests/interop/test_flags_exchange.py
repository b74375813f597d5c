"""Every database flag combination, in both directions of file exchange, with every cursor
operation compared against the C binding.

For each combination one binding (the *writer*: C, then purelmdb) creates a named database
with those flags next to some main-database records and fills it (small and overflow values,
sub-pages and sub-databases of duplicates, deletes), then closes the file. Two copies of that
file are opened, one by the C binding and one by purelmdb, and the same random script runs on
both in lockstep: every cursor operation of the `lmdb` package (first, last, next, prev,
set_key, set_range, set_key_dup, set_range_dup, first_dup, last_dup, next_dup, prev_dup,
next_nodup, prev_nodup, count, getmulti, putmulti, delete with and without dupdata, put, and
the iterators) must return the same result -- or raise the same error -- and leave the cursor
on the same record. So purelmdb reads and modifies a C-written file exactly as C does, and C
reads and modifies a purelmdb-written one exactly as on its own file. At the end each binding
reads the file the other one modified, and `mdb_dump -a` of the two results is identical.

Left out, as in test_dupsort_vs_c.py: relative moves right after a failed positioning (LMDB
stands on the leaf the search reached, possibly past its last node) and after writes through
the transaction rather than the cursor (LMDB's cursor may keep a stale view of a sub-page);
and, in DUPSORT databases, after a cursor delete that moves on to the next key: LMDB's
sub-cursor keeps the duplicate index it had (even one from an earlier key, when the cursor
stepped onto a single-value key since), so LMDB shows the next key at that index. purelmdb
reproduces that for sub-pages (cursor.py, `_step_onto`), not when the index (or the count)
comes from a sub-database, whose stale pages LMDB goes on reading.
More seeds: PURELMDB_FUZZ_SEEDS=N (default 2).
REVERSEDUP has no `lmdb` package flag: its database is made by `mdb_load`.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

import purelmdb
from c_variant import plain
from purelmdb.verify import verify

lmdb = pytest.importorskip("lmdb")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("mdb_load") is None, reason="lmdb-utils not installed"),
]

MAP_SIZE = 64 << 20
# combination -> (open_db flags, mdb_load header lines for flags open_db cannot set)
COMBOS: Dict[str, Any] = {
    "plain": ({}, None),
    "reverse_key": (dict(reverse_key=True), None),
    "integerkey": (dict(integerkey=True), None),
    "dupsort": (dict(dupsort=True), None),
    "dupsort+reverse_key": (dict(dupsort=True, reverse_key=True), None),
    "dupsort+integerkey": (dict(dupsort=True, integerkey=True), None),
    "dupfixed": (dict(dupsort=True, dupfixed=True), None),
    "integerdup": (dict(dupsort=True, integerdup=True), None),
    "integerdup+integerkey": (dict(dupsort=True, integerdup=True, integerkey=True), None),
    "dupfixed+reverse_key": (dict(dupsort=True, dupfixed=True, reverse_key=True), None),
    "reversedup": (None, "dupsort=1\nreversedup=1\n"),
    "reversedup+dupfixed": (None, "dupsort=1\ndupfixed=1\nreversedup=1\n"),
}
NAME = b"db"
# relative moves (iterators included: they start where the cursor stands)
MOVES = ["next", "prev", "next_dup", "prev_dup", "next_nodup", "prev_nodup", "first_dup",
         "last_dup", "count", "iternext", "iterprev", "iternext_dup", "iternext_nodup",
         "iterprev_dup", "iterprev_nodup"]
ANYWHERE = ["first", "last", "set_key", "set_range", "set_key_dup", "set_range_dup",
            "getmulti", "putmulti", "put"]
WRITES_THROUGH_TXN = ["txn_put", "txn_delete", "txn_delete_value"]


class Kind:
    """Keys and values suited to one flag combination."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dup = "dup" in name
        self.intkey = "integerkey" in name
        self.fixed = "dupfixed" in name or "integerdup" in name
        self.intdup = "integerdup" in name

    def key(self, rnd: random.Random) -> bytes:
        n = rnd.randrange(120)
        if self.intkey:
            return struct.pack("=Q", n * 7919 if rnd.random() < 0.8 else n << 40)
        return rnd.choice([b"k", b"key/", b"\xfe"]) + b"%03d" % n

    def value(self, rnd: random.Random) -> bytes:
        n = rnd.randrange(800)
        if self.intdup:
            return struct.pack("=I", n if rnd.random() < 0.7 else n << 20)
        if self.fixed:
            return b"v%05d" % n
        if self.dup:
            return b"v%d" % n + b"." * rnd.choice([0, 2, 50, 150])
        if rnd.random() < 0.08:
            return rnd.randbytes(rnd.randint(2100, 12000))    # overflow pages
        return rnd.randbytes(rnd.randint(0, 90))


def _open(lib: Any, path: Path, readonly: bool = False) -> Any:
    return lib.open(str(path), map_size=MAP_SIZE, max_dbs=2, readonly=readonly)


def _db(env: Any, combo: str, txn: Any = None) -> Any:
    flags = COMBOS[combo][0]
    return env.open_db(NAME, txn=txn, **(flags or {}))


def _write_initial(lib: Any, path: Path, combo: str, kind: Kind, seed: int) -> None:
    """The writer's file: main-database records and the flagged database, with churn."""
    header = COMBOS[combo][1]
    path.mkdir()
    if header is not None:
        text = "VERSION=3\nformat=bytevalue\ntype=btree\n%sHEADER=END\nDATA=END\n" % header
        subprocess.run(["mdb_load", "-s", NAME.decode(), str(path)], input=text.encode(),
                       check=True, capture_output=True)
    rnd = random.Random(seed)
    env = _open(lib, path)
    try:
        db = _db(env, combo)
        hot = kind.key(rnd)
        for t in range(4):
            with env.begin(write=True) as txn:
                txn.put(b"main-%d" % t, b"x" * (t * 900))
                for _ in range(400):
                    k = hot if kind.dup and rnd.random() < 0.4 else kind.key(rnd)
                    if rnd.random() < 0.8:
                        txn.put(k, kind.value(rnd), db=db)
                    elif kind.dup and rnd.random() < 0.5:
                        txn.delete(k, kind.value(rnd), db=db)
                    elif k != hot:
                        txn.delete(k, db=db)
    finally:
        env.close()


def _plain(x: Any) -> Any:
    """A result with buffers and iterators turned into comparable values."""
    return plain(x)


def _run(op: str, side: Dict[str, Any], rnd_args: Dict[str, Any]) -> Any:
    txn, cur, db = side["txn"], side["cur"], side["db"]
    k, v, items = rnd_args["k"], rnd_args["v"], rnd_args["items"]
    if op in ("set_key", "set_range"):
        return getattr(cur, op)(k)
    if op in ("set_key_dup", "set_range_dup"):
        return getattr(cur, op)(k, v)
    if op == "getmulti":
        kw = rnd_args["getmulti"]
        return list(_plain(cur.getmulti(rnd_args["keys"], **kw))) if not kw.get("keyfixed") \
            else bytes(cur.getmulti(rnd_args["keys"], **kw))
    if op == "putmulti":
        return cur.putmulti(items, **rnd_args["put_flags"])
    if op == "put":
        return cur.put(k, v, **rnd_args["put_flags"])
    if op == "delete":
        return cur.delete(dupdata=rnd_args["dupdata"])
    if op.startswith("iter"):
        return [_plain(x) for _, x in zip(range(6), getattr(cur, op)())]
    if op == "txn_put":
        return txn.put(k, v, db=db)
    if op == "txn_delete":
        return txn.delete(k, db=db)
    if op == "txn_delete_value":
        return txn.delete(k, v, db=db)
    return getattr(cur, op)()


def _exchange(tmp_path: Path, combo: str, writer: Any, seed: int) -> None:
    kind = Kind(combo)
    origin = tmp_path / "origin"
    _write_initial(writer, origin, combo, kind, seed)
    sides: List[Dict[str, Any]] = []
    for lib in (lmdb, purelmdb):
        path = tmp_path / lib.__name__
        shutil.copytree(origin, path)
        env = _open(lib, path)
        db = _db(env, combo)
        txn = env.begin(write=True)
        sides.append(dict(lib=lib, path=path, env=env, db=db, txn=txn,
                          cur=txn.cursor(db=db)))
    rnd = random.Random(seed * 31 + 7)
    keys = [kind.key(random.Random(seed)) for _ in range(1)] + [kind.key(rnd) for _ in range(60)]
    trusted = False      # the cursor's last positioning succeeded and no txn write followed
    # DUPSORT after a write through the transaction: LMDB's cursor may keep a stale view of
    # the key's duplicates, so what it shows is not compared until it is positioned again
    stale = False
    history: List[Any] = []
    for step in range(700):
        if rnd.random() < 0.01:
            op = "commit"
        else:
            pool = ANYWHERE + ["delete"] * 2 + WRITES_THROUGH_TXN
            if trusted:
                pool = pool + MOVES * 2
            op = rnd.choice(pool)
        args: Dict[str, Any] = dict(
            k=rnd.choice(keys), v=kind.value(rnd), dupdata=rnd.random() < 0.5,
            items=[(rnd.choice(keys), kind.value(rnd)) for _ in range(rnd.randint(1, 8))],
            keys=[rnd.choice(keys) for _ in range(rnd.randint(1, 5))],
            put_flags=dict(dupdata=rnd.random() < 0.8, overwrite=rnd.random() < 0.8,
                           append=rnd.random() < 0.1),
            getmulti=dict(dupdata=rnd.random() < 0.5))
        if op == "getmulti" and kind.fixed and args["getmulti"]["dupdata"] and rnd.random() < 0.5:
            args["getmulti"]["dupfixed_bytes"] = len(kind.value(rnd))
            args["getmulti"]["keyfixed"] = not kind.intkey and rnd.random() < 0.5 and \
                len({len(x) for x in args["keys"]}) == 1
        if op == "delete" and not trusted:
            continue
        if op in WRITES_THROUGH_TXN and kind.dup:
            stale = True
        if op == "delete":
            before = [bytes(side["cur"].key()) for side in sides][1]
        results = []
        for side in sides:
            if op == "commit":
                side["txn"].commit()
                side["txn"] = side["env"].begin(write=True)
                side["cur"] = side["txn"].cursor(db=side["db"])
                r: Any = None
            else:
                try:
                    r = _plain(_run(op, side, args))
                except side["lib"].Error as exc:
                    r = ("error", type(exc).__name__)
            results.append((r, _plain(side["cur"].item())))   # both sides re-read alike
        # a cursor delete that moved on to the next key: LMDB shows that key at the
        # duplicate index its sub-cursor last had, possibly in an earlier key (see above)
        moved = op == "delete" and kind.dup and results[1][1][0] != before
        if stale or moved:
            results = [(r, None) for r, _ in results]
        history.append((op, args["k"], args["v"][:12], results[0]))
        assert results[0] == results[1], (combo, writer.__name__, seed, step, history[-6:],
                                          results[1])
        if op in ("first", "last", "set_key", "set_range", "set_key_dup", "set_range_dup"):
            trusted = results[0][0] is True
            # after a failed set_key LMDB stands where the search ended in its leaf, maybe
            # past the leaf's last node: a re-read after a write depends on page layout
            stale = not trusted and op != "set_range"
        elif op == "getmulti":
            trusted = False      # it ends on a failed set_key or past a key's last value
            stale = True
        elif op in WRITES_THROUGH_TXN:
            trusted = False
        elif op == "commit":
            trusted = stale = False
        elif op in ("put", "putmulti"):
            trusted = True       # the cursor stands on the record written (or refused)
            stale = False
        elif moved:
            trusted = False
            stale = True
        elif op in MOVES or op.startswith("iter"):
            trusted = trusted and results[0][1] != (b"", b"")
    for side in sides:
        side["txn"].commit()
        side["env"].close()
    c_side, py_side = sides[0]["path"], sides[1]["path"]
    assert verify(str(py_side)) == []
    # each binding reads what the other one wrote
    views = []
    for lib, path in ((purelmdb, c_side), (lmdb, py_side)):
        env = _open(lib, path, readonly=True)
        with env.begin() as txn:
            views.append([_plain(kv) for kv in txn.cursor(db=_db(env, combo, txn))])
        env.close()
    assert views[0] == views[1]
    dump = [subprocess.run(["mdb_dump", "-a", str(p)], check=True, capture_output=True).stdout
            for p in (c_side, py_side)]
    assert dump[0] == dump[1]


@pytest.mark.parametrize("seed", range(int(os.environ.get("PURELMDB_FUZZ_SEEDS", "2"))))
@pytest.mark.parametrize("combo", list(COMBOS))
def test_c_writes_purelmdb_reads_and_modifies(tmp_path: Path, combo: str, seed: int) -> None:
    _exchange(tmp_path, combo, lmdb, seed)


@pytest.mark.parametrize("seed", range(int(os.environ.get("PURELMDB_FUZZ_SEEDS", "2"))))
@pytest.mark.parametrize("combo", list(COMBOS))
def test_purelmdb_writes_c_reads_and_modifies(tmp_path: Path, combo: str, seed: int) -> None:
    _exchange(tmp_path, combo, purelmdb, seed)

