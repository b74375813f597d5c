"""Real-world LMDB files written by other programs (../shared/realworld, see its README.md).

Each is a single data file (subdir=False) without a lock file; the tests work on copies.
All of them hold named databases, whose records show up in the main database as keys with
48-byte values: the main database is compared as it is, records included.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

GiB = 1 << 30
REALWORLD = Path(__file__).resolve().parents[2].parent / "shared" / "realworld"
NOT_LMDB = "not-lmdb-lfs-pointer.mdb"
FILES = sorted(p.name for p in REALWORLD.glob("*.mdb")) if REALWORLD.is_dir() else []
LMDB_FILES = [f for f in FILES if f != NOT_LMDB]
NEW_PREFIX = b"\xfe\xfepurelmdb-test/"

if not REALWORLD.is_dir():
    pytestmark = [pytest.mark.interop,
                  pytest.mark.skip(reason=f"{REALWORLD} is missing")]


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def copy(tmp_path):
    def make(name: str) -> str:
        dst = tmp_path / name
        shutil.copyfile(REALWORLD / name, dst)
        dst.chmod(0o644)
        return str(dst)

    return make


def read_main(mod, path, **kw):
    env = mod.open(path, subdir=False, map_size=GiB, **kw)
    try:
        with env.begin() as txn:
            items = [(bytes(k), bytes(v)) for k, v in txn.cursor()]
            reverse = [(bytes(k), bytes(v)) for k, v in txn.cursor().iterprev()]
            gets = {k: txn.get(k) for k, _ in items}
        return items, reverse, gets, env.stat(), env.info()
    finally:
        env.close()


def read_named(clmdb, path):
    """{name: [(key, value), ...]} of every named database, read by the C binding."""
    env = clmdb.open(path, subdir=False, map_size=GiB, readonly=True, lock=False, max_dbs=64)
    try:
        with env.begin() as txn:
            names = [bytes(k) for k, v in txn.cursor() if len(v) == 48]
        out = {}
        for name in names:
            try:
                db = env.open_db(name, create=False)
            except clmdb.Error:
                continue
            with env.begin(db=db) as txn:
                out[name] = list(txn.cursor())
        return out
    finally:
        env.close()


def test_readme_lists_every_file():
    if not REALWORLD.is_dir():
        pytest.skip("no realworld folder")
    readme = (REALWORLD / "README.md").read_text()
    for name in FILES:
        assert name in readme


@pytest.mark.parametrize("name", LMDB_FILES)
def test_realworld_main_db_read(impl, clmdb, copy, sound, name):
    path = copy(name)
    before = sha(path)
    c_items, c_rev, _, c_stat, c_info = read_main(clmdb, path, readonly=True, lock=False)
    items, rev, gets, stat, info = read_main(impl, path, readonly=True, lock=False)
    assert items == c_items
    assert rev == c_rev == items[::-1]
    assert gets == dict(items)
    assert stat == c_stat
    assert (info["last_pgno"], info["last_txnid"]) == (c_info["last_pgno"], c_info["last_txnid"])
    assert all(len(v) == 48 for _, v in items)  # named-database records
    assert sha(path) == before, "reading changed the file"
    sound(path, subdir=False)


@pytest.mark.parametrize("name", LMDB_FILES)
def test_realworld_main_db_write_keeps_named_dbs(impl, clmdb, copy, sound, sound_c, name):
    """Writing plain keys into the main database of a file that holds named databases
    leaves every named database readable and unchanged."""
    path = copy(name)
    named = read_named(clmdb, path)
    c_items = read_main(clmdb, path, readonly=True, lock=False)[0]
    assert len(named) == len(c_items)

    env = impl.open(path, subdir=False, map_size=GiB)
    added = {}
    for t in range(3):
        with env.begin(write=True) as txn:
            for i in range(200):
                k = NEW_PREFIX + b"%d-%04d" % (t, i)
                v = bytes([i % 256]) * (5000 if i % 50 == 0 else i)
                assert txn.put(k, v) is True
                added[k] = v
            for k in sorted(added)[::3]:
                if k in added and k.startswith(NEW_PREFIX + b"%d" % t):
                    assert txn.delete(k) is True
                    del added[k]
    env.close()
    sound(path, subdir=False)
    sound_c(path, subdir=False)

    assert read_named(clmdb, path) == named
    items = read_main(clmdb, path)[0]
    assert items == sorted(c_items + list(added.items()))


def test_not_lmdb_raises_an_lmdb_error(impl, clmdb, copy):
    path = copy(NOT_LMDB)
    before = sha(path)
    with pytest.raises(clmdb.InvalidError):
        clmdb.open(path, subdir=False, readonly=True, lock=False, map_size=GiB)
    for kw in (dict(readonly=True, lock=False), dict(lock=False), dict()):
        with pytest.raises(impl.Error):
            impl.open(path, subdir=False, map_size=GiB, **kw)
    assert sha(path) == before, "a failed open changed the file"


def test_not_lmdb_raises_invalid_error_like_the_c_binding(impl, copy):
    path = copy(NOT_LMDB)
    with pytest.raises(impl.Error) as ei:
        impl.open(path, subdir=False, readonly=True, lock=False, map_size=GiB)
    assert type(ei.value) is impl.InvalidError
    assert ei.value.code == -30793
    assert str(ei.value).endswith("MDB_INVALID: File is not an LMDB file")
