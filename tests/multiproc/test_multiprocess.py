"""Several processes share one environment: purelmdb ones and C LMDB ones (the `lmdb`
binding), through LMDB's own lock file, mutexes and reader table."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import purelmdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mp_workers  # noqa: E402

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="shares C LMDB's lock file, whose mutexes are glibc's"),
]

CTX = multiprocessing.get_context("spawn")
SRC = str(HERE.parents[1] / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (SRC, str(HERE), os.environ.get("PYTHONPATH")) if p)


def _has_c() -> bool:
    try:
        import lmdb  # noqa: F401
    except ImportError:
        return False
    return True


needs_c = pytest.mark.skipif(not _has_c(), reason="needs the C binding (pip install lmdb)")


def _run(target, *args):
    proc = CTX.Process(target=target, args=args)
    proc.start()
    return proc


def _join_all(procs, timeout=180):
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, "worker %s exited %s" % (p.name, p.exitcode)


def _seed_accounts(path: str) -> None:
    env = purelmdb.open(path)
    with env.begin(write=True) as txn:
        for i in range(mp_workers.N_ACCOUNTS):
            txn.put(b"acct%03d" % i, b"%d" % (mp_workers.TOTAL // mp_workers.N_ACCOUNTS))
    env.close()


@pytest.mark.parametrize("kinds", [("p", "p"), pytest.param(("p", "c"), marks=needs_c)])
def test_writer_processes_lose_no_update(tmp_path, kinds):
    path = str(tmp_path)
    purelmdb.open(path).close()
    procs = [_run(mp_workers.increment, kind, path, 150) for kind in kinds]
    _join_all(procs)
    env = purelmdb.open(path)
    with env.begin() as txn:
        assert txn.get(b"counter") == b"%d" % (150 * len(kinds))
    env.close()


@pytest.mark.parametrize("auditor", ["p", pytest.param("c", marks=needs_c)])
def test_readers_keep_consistent_snapshots_while_writers_commit(tmp_path, auditor):
    path = str(tmp_path)
    _seed_accounts(path)
    queue = CTX.Queue()
    writers = [_run(mp_workers.transfer, "p", path, 120, 1)]
    if _has_c():
        writers.append(_run(mp_workers.transfer, "c", path, 120, 2))
    auditors = [_run(mp_workers.audit, kind, path, 3.0, queue) for kind in ("p", auditor)]
    # threads of this process audit too
    env = purelmdb.open(path)
    thread_bad = []

    def audit_thread():
        deadline = time.monotonic() + 3.0
        try:
            while time.monotonic() < deadline:
                with env.begin() as txn:
                    total = sum(int(v) for k, v in txn.cursor() if k.startswith(b"acct"))
                    if total != mp_workers.TOTAL:
                        thread_bad.append(total)
        except Exception as exc:        # an error in a thread must fail the test, too
            thread_bad.append(repr(exc))

    threads = [threading.Thread(target=audit_thread) for _ in range(2)]
    for t in threads:
        t.start()
    results = [queue.get(timeout=120) for _ in auditors]
    for t in threads:
        t.join()
    _join_all(writers + auditors)
    assert thread_bad == []
    for checked, bad in results:
        assert checked > 0 and bad == []
    with env.begin() as txn:
        assert sum(int(v) for k, v in txn.cursor() if k.startswith(b"acct")) == \
            mp_workers.TOTAL
    env.close()
    from purelmdb.verify import verify
    assert verify(path) == []


@pytest.mark.parametrize("kind", ["p", pytest.param("c", marks=needs_c)])
def test_a_reader_in_another_process_holds_its_snapshot_and_is_reclaimed_when_killed(
        tmp_path, kind):
    path = str(tmp_path)
    env = purelmdb.open(path)
    with env.begin(write=True) as txn:
        txn.put(b"v", b"old")
        for i in range(200):
            txn.put(b"k%04d" % i, b"x" * 100)
    queue = CTX.Queue()
    holder = _run(mp_workers.hold_reader, kind, path, queue)
    try:
        assert queue.get(timeout=60) == b"old"
        assert str(holder.pid) in env.readers()
        size_before = os.path.getsize(os.path.join(path, "data.mdb"))
        # rewrite everything many times: the pages the old snapshot needs must stay intact,
        # so the file grows while the reader lives
        for round_ in range(30):
            with env.begin(write=True) as txn:
                txn.put(b"v", b"new%d" % round_)
                for i in range(200):
                    txn.put(b"k%04d" % i, b"y" * 100)
        grown = os.path.getsize(os.path.join(path, "data.mdb"))
        assert grown > size_before
        assert env.reader_check() == 0          # it is alive
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    assert env.reader_check() == 1
    assert env.reader_check() == 0
    assert str(holder.pid) not in env.readers()
    # with the reader gone, its pages are reused: more rounds do not grow the file
    for _ in range(3):
        with env.begin(write=True) as txn:
            for i in range(200):
                txn.put(b"k%04d" % i, b"z" * 100)
    last = os.path.getsize(os.path.join(path, "data.mdb"))
    for round_ in range(30):
        with env.begin(write=True) as txn:
            for i in range(200):
                txn.put(b"k%04d" % i, b"w%d" % round_ * 30)
    assert os.path.getsize(os.path.join(path, "data.mdb")) == last
    env.close()


def test_a_writer_killed_mid_transaction_leaves_the_last_commit_and_the_lock_usable(tmp_path):
    path = str(tmp_path)
    env = purelmdb.open(path)
    with env.begin(write=True) as txn:
        txn.put(b"committed", b"yes")
    queue = CTX.Queue()
    holder = _run(mp_workers.hold_writer, path, queue)
    try:
        assert queue.get(timeout=60) == "writing"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    with env.begin(write=True) as txn:      # the robust mutex comes back to us
        assert txn.get(b"uncommitted") is None
        txn.put(b"after", b"death")
    with env.begin() as txn:
        assert txn.get(b"committed") == b"yes" and txn.get(b"after") == b"death"
    env.close()
    from purelmdb.verify import verify
    assert verify(path) == []


@needs_c
def test_c_and_purelmdb_read_and_write_live_at_the_same_time(tmp_path):
    path = str(tmp_path)
    env = purelmdb.open(path)
    with env.begin(write=True) as txn:
        txn.put(b"from-p", b"0")
    code = textwrap.dedent(f"""
        import lmdb, sys
        env = lmdb.open({path!r})
        with env.begin() as t:
            print(t.get(b"from-p").decode(), flush=True)
        sys.stdin.readline()
        with env.begin() as t:
            print(t.get(b"from-p").decode(), flush=True)
        with env.begin(write=True) as t:
            t.put(b"from-c", b"hello")
        print(env.readers(), flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"
        snapshot = env.begin()                      # C sees this reader
        with env.begin(write=True) as txn:
            txn.put(b"from-p", b"1")
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "1"
        table = []
        while True:
            line = proc.stdout.readline()
            if not line.strip():
                break
            table.append(line)
        assert any(line.split()[0] == str(os.getpid()) for line in table[1:]), table
        with env.begin() as txn:
            assert txn.get(b"from-c") == b"hello"
        assert snapshot.get(b"from-p") == b"0" and snapshot.get(b"from-c") is None
        snapshot.abort()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    env.close()


def test_max_readers_bounds_the_table(tmp_path):
    env = purelmdb.open(str(tmp_path), max_readers=3)
    txns = [env.begin() for _ in range(3)]
    with pytest.raises(purelmdb.ReadersFullError):
        env.begin()
    txns[0].abort()
    env.begin().abort()
    for t in txns[1:]:
        t.abort()
    env.close()


def test_spare_slots_are_reused(tmp_path):
    env = purelmdb.open(str(tmp_path), max_spare_txns=1)
    with env.begin():
        pass
    assert env.readers().splitlines()[1].split()[2] == "-"     # kept, idle
    first = env.info()["num_readers"]
    for _ in range(10):
        with env.begin():
            pass
    assert env.info()["num_readers"] == first
    env.close()


def test_use_after_fork_is_refused_and_the_child_may_open_its_own(tmp_path):
    path = str(tmp_path)
    env = purelmdb.open(path)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            try:
                env.begin()
            except purelmdb.Error as exc:
                if "fork" in str(exc):
                    own = purelmdb.open(path)
                    with own.begin(write=True) as txn:
                        txn.put(b"child", txn.get(b"k"))
                    own.close()
                    status = 0
        finally:
            os.write(w, b"%d" % status)
            os._exit(status)
    os.close(w)
    _, code = os.waitpid(pid, 0)
    assert os.read(r, 8) == b"0" and code == 0
    os.close(r)
    with env.begin() as txn:
        assert txn.get(b"child") == b"v"
    with env.begin(write=True) as txn:      # the parent's locks survived the child
        txn.put(b"parent", b"ok")
    env.close()


def test_a_write_txn_ended_on_another_thread_releases_the_writer_lock_safely(tmp_path):
    """The writer mutex belongs to the thread that began the transaction: an end on another
    thread leaves the unlock to it (its next transaction), and other threads get a clear
    error meanwhile instead of a hang; other processes get the lock once it is released."""
    path = str(tmp_path)
    env = purelmdb.open(path)
    txn = env.begin(write=True)
    txn.put(b"a", b"1")
    ender = threading.Thread(target=txn.commit)
    ender.start()
    ender.join()
    errors = []

    def other_writer():
        try:
            env.begin(write=True).abort()
        except purelmdb.Error as exc:
            errors.append(str(exc))

    t = threading.Thread(target=other_writer)
    t.start()
    t.join(30)
    assert not t.is_alive() and errors and "another thread" in errors[0]
    with env.begin() as txn:                     # this thread settles the unlock
        assert txn.get(b"a") == b"1"
    proc = _run(mp_workers.increment, "p", path, 3)
    _join_all([proc], timeout=60)
    with env.begin(write=True) as txn:
        assert txn.get(b"counter") == b"3"
    env.close()
