"""env.copy / copyfd: plain and compacting copies of a snapshot open in the C library with the
same contents; the compacted one has no free pages; the offline checker finds nothing."""

from __future__ import annotations

import os
import subprocess

import pytest

import purelmdb
from purelmdb.verify import verify

lmdb = pytest.importorskip("lmdb")


def _fill(env):
    a = env.open_db(b"dd", dupsort=True)
    b = env.open_db(b"rk", reverse_key=True)
    with env.begin(write=True) as t:
        for i in range(2000):
            t.put(b"%05d" % i, os.urandom(50 if i % 7 else 3000))
            t.put(b"k%d" % (i % 40), b"v%05d" % i, db=a)
            t.put(b"%05d" % i, b"x", db=b)
    with env.begin(write=True) as t:
        for i in range(0, 2000, 2):
            t.delete(b"%05d" % i)


@pytest.mark.interop
@pytest.mark.parametrize("compact", [False, True])
def test_copy_opens_in_c_with_the_same_contents(tmp_path, compact):
    env = purelmdb.open(str(tmp_path / "src"), max_dbs=4)
    _fill(env)
    snapshot = env.begin()
    with env.begin(write=True) as t:          # a writer goes on while the copy is taken
        t.put(b"later", b"not in the copy")
    dest = tmp_path / "dest"
    dest.mkdir()
    if compact:
        env.copy(str(dest), compact=True, txn=snapshot)
    else:
        env.copy(str(dest))
    assert verify(str(dest)) == []
    c = lmdb.open(str(dest), max_dbs=4, readonly=True)
    with c.begin() as ct:
        for name in (None, b"dd", b"rk"):
            cdb = c.open_db(name, txn=ct) if name else None
            pdb = env.open_db(name) if name else None
            got = [kv for kv in ct.cursor(db=cdb) if name or kv[0] not in (b"dd", b"rk")]
            want = [kv for kv in snapshot.cursor(db=pdb)
                    if name or kv[0] not in (b"dd", b"rk")]
            if compact or name:
                assert got == want
        if not compact:
            assert ct.get(b"later") == b"not in the copy"   # plain copy: the latest commit
    c.close()
    snapshot.abort()
    free = subprocess.run(["mdb_stat", "-f", str(dest)], capture_output=True, text=True)
    if compact:
        assert "Free pages: 0" in free.stdout
    env.close()
    with pytest.raises(purelmdb.Error):
        env.copy(str(tmp_path))


def test_copy_refuses_existing_file_and_txn_without_compact(tmp_path):
    env = purelmdb.open(str(tmp_path / "src"))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "data.mdb").write_bytes(b"x")
    with pytest.raises(purelmdb.Error):
        env.copy(str(dest))
    with env.begin() as txn:
        with pytest.raises(TypeError):
            env.copy(str(tmp_path / "other"), txn=txn)
    env.close()


def test_compact_copy_of_a_damaged_tree_raises_corrupted(tmp_path):
    from purelmdb.layout import NODE_HEADER, PAGEHDRSZ, unpack_meta

    env = purelmdb.open(str(tmp_path / "src"))
    with env.begin(write=True) as t:
        for i in range(3000):
            t.put(b"%06d" % i, b"v" * 30)
    env.close()
    path = tmp_path / "src" / "data.mdb"
    data = bytearray(path.read_bytes())
    metas = [unpack_meta(data, pg * 4096)[1] for pg in (0, 1)]
    root = max(metas, key=lambda m: m.txnid).main_db.root
    base = root * 4096
    node = int.from_bytes(data[base + PAGEHDRSZ + 2:base + PAGEHDRSZ + 4], "little")
    data[base + node:base + node + 6] = NODE_HEADER.pack(root & 0xFFFF, root >> 16, 0, 0)[:6]
    path.write_bytes(bytes(data))          # the root's second child is the root: a cycle
    env = purelmdb.open(str(tmp_path / "src"))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(purelmdb.CorruptedError):
        env.copy(str(dest), compact=True)
    env.close()


def test_compact_copy_of_a_write_txn_holds_its_uncommitted_changes(tmp_path):
    env = purelmdb.open(str(tmp_path / "src"), max_dbs=2)
    dd = env.open_db(b"dd", dupsort=True)
    with env.begin(write=True) as t:
        t.put(b"a", b"1")
    dest = tmp_path / "dest"
    dest.mkdir()
    with env.begin(write=True) as t:
        t.put(b"b", b"2")
        t.put(b"k", b"x", db=dd)
        t.put(b"k", b"y", db=dd)
        env.copy(str(dest), compact=True, txn=t)
        t.abort()
    env.close()
    c = lmdb.open(str(dest), max_dbs=2, readonly=True)
    cdd = c.open_db(b"dd", create=False)
    with c.begin() as ct:
        assert ct.get(b"a") == b"1" and ct.get(b"b") == b"2"
        assert list(ct.cursor(db=cdd)) == [(b"k", b"x"), (b"k", b"y")]
    c.close()
