"""A compacting copy numbers and lays out pages exactly as LMDB's (``mdb_copy -c``): the two
files hold the same pages in the same order, equal byte for byte outside each page's unused
gap (whose bytes LMDB leaves undefined)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading

import pytest

import purelmdb
from purelmdb.layout import OVERFLOW_HEADER, P_LEAF2, P_META, P_OVERFLOW, PAGE_HEADER, PAGEHDRSZ

lmdb = pytest.importorskip("lmdb")
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("mdb_copy") is None, reason="needs lmdb-utils (mdb_copy)"),
]


def _mdb_copy_c(src, dest):
    os.mkdir(dest)
    subprocess.run(["mdb_copy", "-c", src, str(dest)], check=True)


def _fill(mod, path, seed):
    rng = random.Random(seed)
    env = mod.open(path, max_dbs=8, map_size=64 << 20)
    plain = env.open_db(b"plain")
    dups = env.open_db(b"dups", dupsort=True)
    fixed = env.open_db(b"fixed", dupsort=True, dupfixed=True)
    ints = env.open_db(b"ints", integerkey=True)
    env.open_db(b"empty")
    for _round in range(3):
        with env.begin(write=True) as t:
            for _i in range(1500):
                k = b"%06d" % rng.randrange(5000)
                t.put(k, os.urandom(rng.choice((8, 100, 900, 5000))))
                t.put(k, b"v" * rng.randrange(1, 40), db=plain)
                t.put(b"d%03d" % rng.randrange(60), b"%08d" % rng.randrange(10**6), db=dups)
                t.put(b"f%02d" % rng.randrange(9), b"%012d" % rng.randrange(10**9), db=fixed)
                t.put(rng.randrange(1 << 32).to_bytes(4, "little"), b"i", db=ints)
        with env.begin(write=True) as t:
            for cur_db in (None, plain, dups):
                for key, value in list(t.cursor(db=cur_db))[::3]:
                    if cur_db is None and key in (b"plain", b"dups", b"fixed", b"ints",
                                                  b"empty"):
                        continue
                    t.delete(key, value if cur_db is dups else b"", db=cur_db)
    env.close()


def _masked_pages(path):
    """The file's pages with each page's unused gap zeroed; meta pages decoded apart."""
    data = bytearray(open(path, "rb").read())
    psize = 4096
    pages = []
    pgno = 0
    while pgno * psize < len(data):
        base = pgno * psize
        _p, _pad, flags, lower, upper = PAGE_HEADER.unpack_from(data, base)
        if flags & P_OVERFLOW:
            n = OVERFLOW_HEADER.unpack_from(data, base)[3]
            pages.append(("overflow", bytes(data[base:base + n * psize])))
            pgno += n
            continue
        page = bytearray(data[base:base + psize])
        if flags & P_META:
            page[PAGEHDRSZ + 16:PAGEHDRSZ + 24] = bytes(8)   # mapsize: each tool's own
        elif flags & P_LEAF2:
            page[psize - (upper - lower):] = bytes(upper - lower)
        else:
            page[lower:upper] = bytes(upper - lower)
        pages.append((pgno, bytes(page)))
        pgno += 1
    return pages


@pytest.mark.parametrize("writer", ["c", "purelmdb"])
@pytest.mark.parametrize("seed", [1, 2])
def test_compact_copy_matches_mdb_copy_c(tmp_path, writer, seed):
    src = str(tmp_path / "src")
    _fill(lmdb if writer == "c" else purelmdb, src, seed)
    c_out = tmp_path / "c"
    _mdb_copy_c(src, c_out)
    ours = tmp_path / "ours"
    ours.mkdir()
    env = purelmdb.open(src, max_dbs=8)
    env.copy(str(ours), compact=True)
    env.close()
    want = _masked_pages(str(c_out / "data.mdb"))
    got = _masked_pages(str(ours / "data.mdb"))
    assert len(got) == len(want)
    for (gn, g), (wn, w) in zip(got, want):
        assert gn == wn and g == w, "page %s differs from mdb_copy -c" % (gn,)
    dump = subprocess.run(["mdb_dump", "-a", str(ours)], capture_output=True, check=True)
    assert dump.stdout == subprocess.run(["mdb_dump", "-a", src], capture_output=True,
                                         check=True).stdout


def test_compact_copy_of_an_empty_environment_matches(tmp_path):
    src = str(tmp_path / "src")
    purelmdb.open(src).close()
    _mdb_copy_c(src, tmp_path / "c")
    (tmp_path / "ours").mkdir()
    env = purelmdb.open(src)
    env.copy(str(tmp_path / "ours"), compact=True)
    env.close()
    assert _masked_pages(str(tmp_path / "ours" / "data.mdb")) == \
        _masked_pages(str(tmp_path / "c" / "data.mdb"))


def test_compact_copyfd_to_a_pipe(tmp_path):
    src = str(tmp_path / "src")
    _fill(purelmdb, src, 3)
    env = purelmdb.open(src, max_dbs=8)
    r, w = os.pipe()
    chunks = []
    def drain():
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)

    reader = threading.Thread(target=drain)
    reader.start()
    env.copyfd(w, compact=True)
    os.close(w)
    reader.join()
    os.close(r)
    env.close()
    (tmp_path / "piped").mkdir()
    (tmp_path / "piped" / "data.mdb").write_bytes(b"".join(chunks))
    _mdb_copy_c(src, tmp_path / "c")
    assert _masked_pages(str(tmp_path / "piped" / "data.mdb")) == \
        _masked_pages(str(tmp_path / "c" / "data.mdb"))
