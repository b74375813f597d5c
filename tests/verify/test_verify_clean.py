"""Sound files of many shapes, written by C LMDB 0.9.36 (the `lmdb` binding) and 0.9.24
(`mdb_load`), must verify clean; so must the real-world files."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from purelmdb import verify as V

# -- fill functions: each takes an open C environment ------------------------------------------


def fill_empty(env) -> None:
    pass


def fill_splits(env) -> None:
    with env.begin(write=True) as txn:
        for i in range(6000):
            txn.put(b"k%06d" % (i * 7919 % 6000), b"v" * (i % 60))


def fill_churn(env) -> None:
    rnd = random.Random(1)
    for _ in range(25):
        with env.begin(write=True) as txn:
            for _ in range(200):
                key = b"k%05d" % rnd.randrange(2000)
                if rnd.random() < 0.4:
                    txn.delete(key)
                else:
                    txn.put(key, b"x" * rnd.randrange(0, 3000))


def fill_overflow(env) -> None:
    with env.begin(write=True) as txn:
        for i in range(40):
            txn.put(b"big%03d" % i, bytes([i]) * (2030 + i * 700))
        txn.put(b"edge-a", b"y" * 2024)             # node of exactly nodemax (2038): inline
        txn.put(b"edge-b", b"y" * 2025)             # one byte more: an overflow page
        txn.put(b"shrunk", b"a" * 20000)            # overwritten in place by a smaller value:
        txn.put(b"shrunk", b"b" * 5000)             # the run keeps its 5 pages (header)


def fill_big_free_record(env) -> None:
    """A free-list record long enough to go to overflow pages."""
    with env.begin(write=True) as txn:
        for i in range(1200):
            txn.put(b"k%06d" % i, b"x" * 5000)
    with env.begin(write=True) as txn:
        for i in range(1200):
            txn.delete(b"k%06d" % i)


def fill_named(env) -> None:
    env.open_db(b"created-but-empty")
    dbs = [env.open_db(b"n%d" % n) for n in range(6)]
    with env.begin(write=True) as txn:
        txn.put(b"a-plain-main-key", b"beside the named DBs")
        for n, db in enumerate(dbs):
            for i in range(100 * n + 1):
                txn.put(b"k%05d" % i, b"value%d" % i, db=db)


def fill_dupsort(env) -> None:
    """Sub-pages (few values) and sub-databases (400+ values), then partial deletes."""
    db = env.open_db(b"dups", dupsort=True)
    rnd = random.Random(2)
    odd = env.open_db(b"odd", dupsort=True)     # odd-length keys: sub-pages at odd offsets
    with env.begin(write=True) as txn:
        for i in range(24):
            for _ in range((1, 2, 7, 450)[i % 4]):
                txn.put(b"k%03d" % i, b"dv-%06d" % rnd.randrange(10 ** 6), db=db)
            for j in range((3, 40, 500)[i % 3]):
                txn.put(b"o" * (1 + i), b"%d" % j, db=odd)
    with env.begin(write=True) as txn:
        cursor = txn.cursor(db=db)
        for i in range(0, 24, 5):
            if cursor.set_key(b"k%03d" % i):
                for _ in range(300):
                    if not cursor.delete():
                        break


def fill_dupfixed(env) -> None:
    db = env.open_db(b"df", dupsort=True, dupfixed=True)
    one = env.open_db(b"df1", dupsort=True, dupfixed=True)
    with env.begin(write=True) as txn:
        for i in range(16):
            for j in range((1, 3, 700, 60)[i % 4]):
                txn.put(b"k%03d" % i, struct.pack("<Q", j * 7919 % 100003), db=db)
            for j in range((2, 255)[i % 2]):
                txn.put(b"k%03d" % i, bytes([j]), db=one)
    with env.begin(write=True) as txn:
        cursor = txn.cursor(db=db)
        for i in range(0, 16, 2):
            if cursor.set_key(b"k%03d" % i):
                for _ in range(200):
                    if not cursor.delete():
                        break


def fill_integer(env) -> None:
    ik8 = env.open_db(b"ik8", integerkey=True)
    ik4 = env.open_db(b"ik4", integerkey=True)
    idup = env.open_db(b"idup", dupsort=True, integerdup=True)
    ifix = env.open_db(b"ifix", dupsort=True, dupfixed=True, integerdup=True)
    with env.begin(write=True) as txn:
        for i in range(3000):
            txn.put(struct.pack("<Q", i * 2654435761 % (1 << 40)), b"v", db=ik8)
            txn.put(struct.pack("<I", i * 2654435761 % (1 << 32)), b"v", db=ik4)
        for i in range(8):
            for j in range((2, 500)[i % 2]):
                txn.put(b"k%d" % i, struct.pack("<Q", j * 7919 % 100003), db=idup)
                txn.put(b"k%d" % i, struct.pack("<I", j * 7919 % 100003), db=ifix)


def fill_reverse(env) -> None:
    rev = env.open_db(b"rev", reverse_key=True)
    both = env.open_db(b"rev-int", reverse_key=True, integerkey=True)
    with env.begin(write=True) as txn:
        for i in range(2500):
            txn.put(b"k%06d" % i, b"v" * 10, db=rev)
            txn.put(struct.pack("<Q", i * 11 % 50000), b"v", db=both)


SHAPES = {
    "empty": (fill_empty, {}),
    "splits": (fill_splits, {}),
    "churn": (fill_churn, {}),
    "overflow": (fill_overflow, {}),
    "big-free-record": (fill_big_free_record, {}),
    "named": (fill_named, {}),
    "dupsort": (fill_dupsort, {}),
    "dupfixed": (fill_dupfixed, {}),
    "integer": (fill_integer, {}),
    "reverse": (fill_reverse, {}),
    "churn-writemap": (fill_churn, {"writemap": True}),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_c_built_files_verify_clean(build, shape):
    fill, kwargs = SHAPES[shape]
    path = build(fill, **kwargs)
    assert V.verify(path) == []
    assert V.verify(path / "data.mdb", subdir=False) == []


def test_single_file_env(tmp_path, c_binding):
    path = tmp_path / "single.mdb"
    env = c_binding.open(str(path), subdir=False, map_size=8 << 20)
    with env.begin(write=True) as txn:
        for i in range(300):
            txn.put(b"k%04d" % i, b"v" * 100)
    env.close()
    assert V.verify(str(path)) == []          # subdir guessed: not a directory
    assert V.verify(path, subdir=False) == []


def test_verifier_class_exposes_free_pages(build):
    """The private interface upstream tests use: _Verifier(f, size), next_pgno, psize, free."""
    path = build(fill_churn)
    with open(path / "data.mdb", "rb") as fileobj:
        fileobj.seek(0, 2)
        checker = V._Verifier(fileobj, fileobj.tell())
        assert checker.verify() == []
    assert checker.psize == 4096
    free = [pgno for pgno in range(2, checker.next_pgno) if checker.free[pgno]]
    assert free
    assert not checker.free[checker.next_pgno + 5]
    assert all(checker.live[pgno] for pgno in range(2, checker.next_pgno) if not checker.free[pgno])


def test_garbage_beyond_last_pg_and_in_free_pages(build, image):
    path = build(fill_churn)
    with open(path / "data.mdb", "rb") as fileobj:
        checker = V._Verifier(fileobj, (path / "data.mdb").stat().st_size)
        assert checker.verify() == []
    img = image(path)
    for pgno in [p for p in range(2, checker.next_pgno) if checker.free[p]][:10]:
        img.raw[img.page(pgno):img.page(pgno + 1)] = b"\xff" * img.psize
    img.raw[img.page(checker.next_pgno):] = b""
    img.raw += b"\xa5" * (3 * img.psize)
    img.save()
    assert V.verify(path) == []


def test_file_shorter_than_last_pg_when_tail_is_free(build, image):
    """Pages past the end of the file are fine as long as they are free (§11.3)."""
    path = build(fill_churn)
    img = image(path)
    with open(img.path, "rb") as fileobj:
        checker = V._Verifier(fileobj, len(img.raw))
        checker.verify()
    tail = checker.next_pgno - 1
    if not checker.free[tail]:
        pytest.skip("the last page is in use in this file")
    del img.raw[img.page(tail):]
    img.save()
    assert V.verify(path) == []


# -- files written by LMDB 0.9.24 (mdb_load) ------------------------------------------------------


def test_0924_dupsort_counters_and_layouts(mdb_load):
    """0.9.24 counts only the outer tree's pages of a DUPSORT DB (§10.4)."""
    path = mdb_load([
        ("big", ["dupsort"], [(b"k%d" % i, b"val%05d" % j) for i in range(6) for j in range(500)]),
        ("fx", ["dupsort", "dupfixed"],
         [(b"k%d" % i, struct.pack("<Q", j)) for i in range(6) for j in range(700)]),
        ("ifx", ["dupsort", "dupfixed", "integerdup"],
         [(b"k%d" % i, struct.pack("<I", j * 977 % 10007)) for i in range(6) for j in range(700)]),
        ("rdup", ["dupsort", "reversedup"],
         [(b"k%d" % i, b"%dx%d" % (j, i)) for i in range(6) for j in range(300)]),
        ("ik", ["integerkey"], [(struct.pack("<Q", i * 31337), b"v") for i in range(2000)]),
    ])
    assert V.verify(path) == []


def test_0924_main_db_with_dupsort_and_integerkey(mdb_load):
    items = [(struct.pack("<Q", i % 7), struct.pack("<Q", i * 13 % 1000)) for i in range(900)]
    path = mdb_load([(None, ["dupsort", "integerkey"], items)])
    assert V.verify(path) == []


def test_0924_lost_empty_duplicate_is_a_warning(mdb_load):
    """0.9.24 drops an empty value when a second value arrives, but still counts it (§8)."""
    path = mdb_load([("e", ["dupsort"], [(b"e", b""), (b"e", b"a"), (b"e", b"b"), (b"g", b"x")])])
    problems = V.verify(path)
    assert len(problems) == 1
    assert problems[0].startswith("warning: DB 'e': walked 3 entries, record says 4")


# -- real-world files -----------------------------------------------------------------------------


REALWORLD = Path(__file__).resolve().parents[2].parent / "shared" / "realworld"


def realworld_files() -> list:
    return sorted(p.name for p in REALWORLD.glob("*.mdb")) if REALWORLD.is_dir() else []


@pytest.mark.parametrize("name", realworld_files() or ["(no realworld folder)"])
def test_realworld_files(name: str):
    if not REALWORLD.is_dir():
        pytest.skip("%s is missing" % REALWORLD)
    path = REALWORLD / name
    if name.startswith("not-lmdb"):
        with pytest.raises(V.VerifyError, match="too short|not an LMDB"):
            V.verify(path, subdir=False)
    else:
        assert V.verify(path, subdir=False) == []
