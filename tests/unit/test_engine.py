"""Engine behaviour: trees that split and merge, free-page reuse, map sizing, commit order,
snapshots, threads. Every test checks the file with the offline verifier afterwards."""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Dict, List, Tuple

import pytest

import purelmdb
from purelmdb.storage import FileIO
from purelmdb.verify import verify


def sound(path: str, subdir: bool = True) -> None:
    problems = verify(path, subdir=subdir)
    assert problems == [], problems


def accounting(env: purelmdb.Environment) -> Tuple[int, int]:
    """(pages in trees + free pages, last_pgno - 1) read back through the engine."""
    meta = env._snap[0]
    with env.begin() as txn:
        free_total = 0
        cur_free = txn._dbs[0]
        tree_pages = cur_free.branch_pages + cur_free.leaf_pages + cur_free.overflow_pages
        main = txn._dbs[1]
        tree_pages += main.branch_pages + main.leaf_pages + main.overflow_pages
        from purelmdb import freelist, tree
        path = tree.edge(txn, cur_free, False)
        if path is not None:
            pages, idxs = path
            while True:
                leaf = pages[-1]
                i = idxs[-1]
                data = txn._value(leaf.vals[i], leaf.sizes[i], leaf.nfl[i])
                free_total += len(freelist.unpack_pages(bytes(data), leaf.pgno, meta.last_pg))
                if not tree.step(txn, cur_free, pages, idxs, True):
                    break
    return tree_pages + free_total, meta.last_pg - 1


def test_random_history_matches_model(tmp_path):
    rnd = random.Random(7)
    env = purelmdb.open(str(tmp_path))
    model: Dict[bytes, bytes] = {}
    for _ in range(40):
        txn = env.begin(write=True)
        pending = dict(model)
        for _ in range(rnd.randint(1, 300)):
            k = b"%05d" % rnd.randint(0, 4000) * rnd.choice([1, 1, 4, 60])
            if rnd.random() < 0.65:
                v = os.urandom(rnd.choice([0, 10, 200, 1500, 2100, 9000, 70000]))
                assert txn.put(k, v) is True
                pending[k] = v
            else:
                assert txn.delete(k) == (k in pending)
                pending.pop(k, None)
        if rnd.random() < 0.25:
            txn.abort()
        else:
            txn.commit()
            model = pending
        with env.begin() as r:
            assert list(r.cursor()) == sorted(model.items())
        used, expected = accounting(env)
        assert used == expected
    assert env.stat()["entries"] == len(model)
    env.close()
    sound(str(tmp_path))


def test_splits_and_merges_keep_order_and_depth(tmp_path):
    env = purelmdb.open(str(tmp_path))
    keys = [b"%06d" % i for i in range(30000)]
    with env.begin(write=True) as txn:
        for k in keys:
            txn.put(k, k * 10)
    assert env.stat()["depth"] >= 3
    with env.begin(write=True) as txn:
        for k in keys[::2]:
            txn.delete(k)
        for k in keys[5000:25000]:
            txn.delete(k)
    with env.begin() as txn:
        got = [k for k, _ in txn.cursor()]
    expect = [k for i, k in enumerate(keys) if i % 2 and not 5000 <= i < 25000]
    assert got == expect
    with env.begin(write=True) as txn:
        for k in expect:
            assert txn.delete(k)
    st = env.stat()
    assert (st["depth"], st["entries"], st["leaf_pages"], st["branch_pages"]) == (0, 0, 0, 0)
    env.close()
    sound(str(tmp_path))


def test_append_packs_pages_full(tmp_path):
    env = purelmdb.open(str(tmp_path))
    with env.begin(write=True) as txn:
        for i in range(10000):
            assert txn.put(b"%08d" % i, b"x" * 20, append=True)
        assert txn.put(b"00000005", b"y", append=True) is False
    st = env.stat()
    # 38-byte nodes: a full 4 KiB leaf holds 107 of them
    assert st["leaf_pages"] <= 10000 // 100 + 1
    env.close()
    sound(str(tmp_path))


def test_freed_pages_are_reused_once_readers_are_gone(tmp_path):
    env = purelmdb.open(str(tmp_path))
    with env.begin(write=True) as txn:
        for i in range(2000):
            txn.put(b"%05d" % i, b"v" * 100)
    reader = env.begin()
    for round_ in range(10):
        with env.begin(write=True) as txn:
            for i in range(2000):
                txn.put(b"%05d" % i, b"%d" % round_ * 50)
    grown = env.info()["last_pgno"]
    # the old snapshot is intact although every page was rewritten ten times
    assert reader.get(b"00010") == b"v" * 100
    reader.abort()
    for round_ in range(10):
        with env.begin(write=True) as txn:
            for i in range(2000):
                txn.put(b"%05d" % i, b"%d" % round_ * 50)
    assert env.info()["last_pgno"] <= grown + 5
    used, expected = accounting(env)
    assert used == expected
    env.close()
    sound(str(tmp_path))


def test_overflow_values_roundtrip_and_free(tmp_path):
    env = purelmdb.open(str(tmp_path))
    big = {b"k%d" % i: os.urandom(n) for i, n in enumerate([2030, 4080, 4081, 10000, 1 << 20])}
    with env.begin(write=True) as txn:
        for k, v in big.items():
            txn.put(k, v)
    assert env.stat()["overflow_pages"] == sum(
        (len(v) + 15) // 4096 + 1 for v in big.values())
    with env.begin(buffers=True) as txn:
        for k, v in big.items():
            got = txn.get(k)
            assert isinstance(got, memoryview) and got == v
    with env.begin(write=True) as txn:
        txn.put(b"k4", b"small now")
        txn.delete(b"k3")
    assert env.stat()["overflow_pages"] == 1 + 1 + 2
    env.close()
    sound(str(tmp_path))


def test_rewriting_overflow_value_in_same_txn(tmp_path):
    env = purelmdb.open(str(tmp_path))
    with env.begin(write=True) as txn:
        txn.put(b"a", b"1" * 9000)
        txn.put(b"a", b"2" * 8000)
        txn.put(b"a", b"3" * 20000)
        assert txn.get(b"a") == b"3" * 20000
    with env.begin() as txn:
        assert txn.get(b"a") == b"3" * 20000
    env.close()
    sound(str(tmp_path))


def test_map_size_is_a_hard_limit(tmp_path):
    env = purelmdb.open(str(tmp_path), map_size=64 * 4096)
    with env.begin(write=True) as txn:
        txn.put(b"keep", b"me")
    txn = env.begin(write=True)
    with pytest.raises(purelmdb.MapFullError) as info:
        for i in range(10000):
            txn.put(b"%06d" % i, b"v" * 200)
    assert info.value.what == "mdb_put" and info.value.code == -30792
    with pytest.raises(purelmdb.BadTxnError):
        txn.put(b"x", b"y")
    txn.abort()
    with env.begin() as r:
        assert r.get(b"keep") == b"me" and r.get(b"000001") is None
    env.set_mapsize(16 << 20)
    with env.begin(write=True) as txn:
        for i in range(10000):
            txn.put(b"%06d" % i, b"v" * 200)
    env.close()
    sound(str(tmp_path))


def test_map_grows_by_itself_without_map_size(tmp_path):
    env = purelmdb.open(str(tmp_path))
    with env.begin(write=True) as txn:
        for i in range(300):
            txn.put(b"%04d" % i, os.urandom(100_000))   # 30 MB, past the 10 MiB default
    info = env.info()
    assert info["map_size"] >= (info["last_pgno"] + 1) * 4096
    env.close()
    sound(str(tmp_path))
    # the recorded map size lets the C library open it with its own default
    lmdb = pytest.importorskip("lmdb")
    c = lmdb.open(str(tmp_path), readonly=True, map_size=0)
    with c.begin() as txn:
        assert sum(1 for _ in txn.cursor()) == 300
    c.close()


class RecordingIO(FileIO):
    def __init__(self) -> None:
        self.log: List[Tuple[str, int, int]] = []

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self.log.append(("write", offset, len(data)))
        super().pwrite(fd, data, offset)

    def sync(self, fd: int) -> None:
        self.log.append(("sync", 0, 0))
        super().sync(fd)


def test_commit_writes_pages_then_syncs_then_meta(tmp_path):
    io = RecordingIO()
    env = purelmdb.Environment(str(tmp_path), _io=io)
    io.log.clear()
    with env.begin(write=True) as txn:
        for i in range(500):
            txn.put(b"%04d" % i, b"v" * 100)
    kinds = [(k, off) for k, off, _ in io.log]
    meta_at = kinds.index(("write", 4096 + 32))        # txn 1 writes meta page 1
    assert all(k == "write" and off >= 8192 for k, off in kinds[:meta_at - 1])
    assert kinds[meta_at - 1][0] == "sync" and kinds[meta_at + 1][0] == "sync"
    assert kinds[meta_at + 2:] == []
    io.log.clear()
    with env.begin(write=True) as txn:
        txn.put(b"x", b"y")
    assert ("write", 32) in [(k, off) for k, off, _ in io.log]  # txn 2: meta page 0
    env.close()


def test_sync_false_skips_every_sync(tmp_path):
    io = RecordingIO()
    env = purelmdb.Environment(str(tmp_path), sync=False, _io=io)
    io.log.clear()
    with env.begin(write=True) as txn:
        txn.put(b"a", b"b")
    assert [k for k, _, _ in io.log if k == "sync"] == []
    env.close()


def test_empty_write_txn_commits_nothing(tmp_path):
    env = purelmdb.open(str(tmp_path))
    with env.begin(write=True) as txn:
        txn.put(b"a", b"b")
    with env.begin(write=True) as txn:
        assert txn.get(b"a") == b"b"
    assert env.info()["last_txnid"] == 1
    env.close()


def test_snapshot_isolation_across_threads(tmp_path):
    env = purelmdb.open(str(tmp_path))
    n = 200
    with env.begin(write=True) as txn:
        for i in range(n):
            txn.put(b"%03d" % i, b"0")
    stop = threading.Event()
    errors: List[str] = []

    def reader() -> None:
        while not stop.is_set():
            with env.begin() as txn:
                vals = {v for _, v in txn.cursor()}
                if len(vals) != 1:
                    errors.append("torn snapshot: %r" % sorted(vals))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for round_ in range(1, 30):
        with env.begin(write=True) as txn:
            for i in range(n):
                txn.put(b"%03d" % i, b"%d" % round_)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    env.close()
    sound(str(tmp_path))


def test_second_writer_waits_for_the_first(tmp_path):
    env = purelmdb.open(str(tmp_path))
    first = env.begin(write=True)
    first.put(b"k", b"1")
    order: List[str] = []

    def other() -> None:
        with env.begin(write=True) as txn:
            order.append("second began, saw %r" % txn.get(b"k"))
            txn.put(b"k", b"2")

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.3)
    order.append("first commits")
    first.commit()
    t.join(10)
    assert order == ["first commits", "second began, saw b'1'"]
    with env.begin() as txn:
        assert txn.get(b"k") == b"2"
    env.close()


def test_same_thread_second_writer_is_refused(tmp_path):
    env = purelmdb.open(str(tmp_path))
    txn = env.begin(write=True)
    with pytest.raises(purelmdb.Error) as info:
        env.begin(write=True)
    assert str(info.value).endswith("This would deadlock.")
    txn.abort()
    env.close()


def test_reopen_and_subdir_false(tmp_path):
    path = str(tmp_path / "single.mdb")
    env = purelmdb.open(path, subdir=False)
    with env.begin(write=True) as txn:
        txn.put(b"a", b"1")
    env.close()
    assert sorted(os.listdir(tmp_path)) == ["single.mdb", "single.mdb-lock"]
    env = purelmdb.open(path, subdir=False, readonly=True)
    with env.begin() as txn:
        assert txn.get(b"a") == b"1"
    with pytest.raises(purelmdb.ReadonlyError):
        env.begin(write=True)
    env.close()
    sound(path, subdir=False)


def test_not_an_lmdb_file_is_refused(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"A" * 8192)
    with pytest.raises(purelmdb.InvalidError):
        purelmdb.open(str(path), subdir=False)
    path.write_bytes(b"short")
    with pytest.raises(purelmdb.InvalidError):
        purelmdb.open(str(path), subdir=False)
