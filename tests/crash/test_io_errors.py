"""I/O errors during commit: a full disk (ENOSPC) on any write or on the file growth, an
EIO on either sync.

What this proves, for every write, truncate and sync a commit issues: `commit()` raises a
purelmdb error (`DiskError` for ENOSPC), the transaction is over, the same environment can
begin a new write transaction at once (it sees the previous commit) and commit it, and a
reopened file is sound and holds exactly the previous commit -- or, when the error came after
the meta write was issued (the sync that follows it), possibly the failed transaction, whole.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
from crash_model import Content, Model, apply_to_dict, apply_to_txn, describe_difference, ops_for
from crash_model import read_all as read_content

import purelmdb
from purelmdb.storage import FileIO
from purelmdb.verify import verify

BASE_TXNS = 25
BIG = 400_000               # a value that forces the file to grow during the failing commit


class FaultyIO(FileIO):
    """A real FileIO that, once armed, fails the ``n``-th call of one kind with ``err``.

    ``partial``: a failing pwrite first writes the first half of its data, as a disk that
    fills up in the middle of a write does.
    """

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.plan: Optional[Tuple[str, int, int, bool]] = None
        self.fired = False

    def arm(self, kind: str, n: int, err: int, partial: bool = False) -> None:
        self.calls.clear()
        self.plan = (kind, n, err, partial)
        self.fired = False

    def _fails(self, kind: str) -> bool:
        self.calls[kind] += 1
        plan = self.plan
        if plan is not None and plan[0] == kind and self.calls[kind] == plan[1]:
            self.plan = None
            self.fired = True
            return True
        return False

    def _error(self, err: int) -> OSError:
        return OSError(err, os.strerror(err))

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        plan = self.plan
        if self._fails("pwrite"):
            assert plan is not None
            if plan[3]:
                super().pwrite(fd, bytes(data)[:len(data) // 2], offset)
            raise self._error(plan[2])
        super().pwrite(fd, data, offset)

    def sync(self, fd: int) -> None:
        plan = self.plan
        if self._fails("sync"):
            assert plan is not None
            raise self._error(plan[2])
        super().sync(fd)

    def truncate(self, fd: int, size: int) -> None:
        plan = self.plan
        if self._fails("truncate"):
            assert plan is not None
            raise self._error(plan[2])
        super().truncate(fd, size)


def failing_ops() -> List[Tuple[str, bytes, bytes]]:
    """The transaction that meets the fault: the workload's next one plus a big value (the
    file grows) and puts spread over the key space (several separate page runs)."""
    ops = list(ops_for(BASE_TXNS + 1))
    ops.append(("put", b"~big", b"B" * BIG))
    ops += [("put", b"k%06d-spread" % i, b"s" * 100) for i in range(0, 500, 60)]
    return ops


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Tuple[Path, Content, Content]:
    """An environment after BASE_TXNS commits; (path, content then, content after the
    failing transaction)."""
    path = tmp_path_factory.mktemp("io") / "base"
    env = purelmdb.Environment(str(path))
    for t in range(1, BASE_TXNS + 1):
        with env.begin(write=True) as txn:
            apply_to_txn(txn, ops_for(t))
    env.close()
    before = dict(Model().content_at(BASE_TXNS))
    after = dict(before)
    apply_to_dict(after, failing_ops())
    return path, before, after


def io_counts(base_path: Path, workdir: Path) -> Counter:
    """How many pwrite/sync/truncate calls the failing transaction's commit makes."""
    path = workdir / "count"
    shutil.copytree(base_path, path)
    io = FaultyIO()
    env = purelmdb.Environment(str(path), _io=io)
    with env.begin(write=True) as txn:
        apply_to_txn(txn, failing_ops())
        io.calls.clear()
    env.close()
    return io.calls


def faults(counts: Counter) -> List[Tuple[str, int, int, bool]]:
    """Every (kind, n, errno, partial) to inject: ENOSPC on each pwrite (whole, and half
    written) and on each truncate, EIO on each sync."""
    out = []
    for n in range(1, counts["pwrite"] + 1):
        out += [("pwrite", n, errno.ENOSPC, False), ("pwrite", n, errno.ENOSPC, True)]
    out += [("truncate", n, errno.ENOSPC, False) for n in range(1, counts["truncate"] + 1)]
    out += [("sync", n, errno.EIO, False) for n in range(1, counts["sync"] + 1)]
    return out


def fail_one_commit(path: Path, fault: Tuple[str, int, int, bool]):
    """Open ``path`` through a FaultyIO armed with ``fault`` and run the failing
    transaction; returns (env, the error commit raised)."""
    io = FaultyIO()
    env = purelmdb.Environment(str(path), _io=io)
    txn = env.begin(write=True)
    apply_to_txn(txn, failing_ops())
    io.arm(*fault)
    with pytest.raises(purelmdb.Error) as info:
        txn.commit()
    assert io.fired
    kind, n, err, _ = fault
    if kind == "sync" and n == 2:
        # after the meta write the engine cannot know what is on disk: it panics, as LMDB
        assert isinstance(info.value, purelmdb.PanicError), repr(info.value)
    else:
        if err == errno.ENOSPC:
            assert isinstance(info.value, purelmdb.DiskError), repr(info.value)
        assert info.value.code == err, repr(info.value)
    # the transaction is over, and the environment still stands at the previous commit
    with pytest.raises(purelmdb.Error):
        txn.get(b"~txn")
    if not isinstance(info.value, purelmdb.PanicError):
        assert env.info()["last_txnid"] == BASE_TXNS
    return env, info.value


def meta_write_issued(fault: Tuple[str, int, int, bool], counts: Counter) -> bool:
    """Whether the meta write (the last pwrite, before the last sync) had been issued."""
    kind, n, _, partial = fault
    return (kind == "sync" and n == counts["sync"]) or (
        kind == "pwrite" and n == counts["pwrite"] and partial)


def assert_reopens_at(path: Path, allowed: List[Tuple[int, Content]]) -> None:
    env = purelmdb.Environment(str(path), readonly=True)
    with env.begin() as txn:
        txnid, found = txn.id(), read_content(txn)
    env.close()
    ids = [t for t, _ in allowed]
    assert txnid in ids, "reopened at txn %d, expected one of %s" % (txnid, ids)
    expected = dict(allowed)[txnid]
    if found != expected:
        pytest.fail("txn %d: %s" % (txnid, describe_difference(found, expected)))
    problems = verify(str(path))
    assert problems == [], "\n".join(problems[:20])


@pytest.mark.timeout(120)
def test_failed_commit_then_new_write_txn(base, tmp_path):
    """After each injected fault the same environment begins a write transaction at once,
    sees the previous commit, commits the same changes; the file is sound and holds them."""
    base_path, before, after = base
    counts = io_counts(base_path, tmp_path)
    assert counts["pwrite"] >= 3 and counts["sync"] == 2 and counts["truncate"] >= 1, counts
    for i, fault in enumerate(faults(counts)):
        path = tmp_path / ("retry%d" % i)
        shutil.copytree(base_path, path)
        env, error = fail_one_commit(path, fault)
        if isinstance(error, purelmdb.PanicError):
            with pytest.raises(purelmdb.PanicError):   # refuses writes until reopened
                env.begin(write=True)
            env.close()
            env = purelmdb.Environment(str(path))
            with env.begin() as txn:
                if txn.id() == BASE_TXNS + 1:          # the failed commit reached the disk
                    env.close()
                    assert_reopens_at(path, [(BASE_TXNS + 1, after)])
                    continue
        with env.begin(write=True) as txn:   # would raise if the failed one held the lock
            assert txn.id() == BASE_TXNS + 1
            if read_content(txn) != before:
                pytest.fail("%s: the new write txn does not see the previous commit" % (fault,))
            apply_to_txn(txn, failing_ops())
        env.close()
        assert_reopens_at(path, [(BASE_TXNS + 1, after)])


@pytest.mark.timeout(120)
def test_failed_commit_then_reopen(base, tmp_path):
    """After each injected fault, closing and reopening shows the previous commit intact
    (or, if the meta write had been issued, the failed transaction whole), and verify() is
    clean."""
    base_path, before, after = base
    counts = io_counts(base_path, tmp_path)
    for i, fault in enumerate(faults(counts)):
        path = tmp_path / ("reopen%d" % i)
        shutil.copytree(base_path, path)
        env, _ = fail_one_commit(path, fault)
        env.close()
        allowed = [(BASE_TXNS, before)]
        if meta_write_issued(fault, counts):
            allowed.append((BASE_TXNS + 1, after))
        assert_reopens_at(path, allowed)


class Crash(BaseException):
    """The process dies here (no further write reaches the file)."""


class CrashingIO(FaultyIO):
    """FaultyIO that can also 'kill the process' at the n-th sync."""

    crash_at_sync = 0

    def sync(self, fd: int) -> None:
        if self.crash_at_sync:
            self.crash_at_sync -= 1
            if not self.crash_at_sync:
                raise Crash()
        super().sync(fd)


@pytest.mark.timeout(60)
def test_eio_on_meta_sync_then_crash_in_next_commit_leaves_a_sound_file(base, tmp_path):
    """EIO on the sync after the meta write; the application goes on with another write
    transaction (different changes), and the process dies after that commit's page writes,
    before its meta write. The reopened file must be sound and hold exactly a committed
    state: the previous commit, or the failed transaction whole -- or the engine must have
    refused the second write transaction (PanicError)."""
    base_path, before, after = base
    path = tmp_path / "env"
    shutil.copytree(base_path, path)
    io = CrashingIO()
    env = purelmdb.Environment(str(path), _io=io)
    txn = env.begin(write=True)
    apply_to_txn(txn, failing_ops())
    io.arm("sync", 2, errno.EIO)               # the sync after the meta write
    with pytest.raises(purelmdb.Error):
        txn.commit()
    try:
        with env.begin(write=True) as txn:    # other changes: other page contents
            for t in (5001, 5002, 5003):
                apply_to_txn(txn, ops_for(t))
            io.crash_at_sync = 1               # dies between its page writes and its meta
    except purelmdb.PanicError:
        pass                                    # refusing is a correct answer too
    except Crash:
        pass
    env.close()
    env = purelmdb.Environment(str(path), readonly=True)
    with env.begin() as txn:
        txnid, found = txn.id(), read_content(txn)
    env.close()
    expected = {BASE_TXNS: before, BASE_TXNS + 1: after}.get(txnid)
    assert expected is not None, "reopened at txn %d" % txnid
    if found != expected:
        pytest.fail("txn %d: %s" % (txnid, describe_difference(found, expected)))
    assert verify(str(path)) == []
