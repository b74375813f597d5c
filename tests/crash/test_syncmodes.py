"""What ``sync=False`` and ``metasync=False`` promise, and what they do not.

``sync=True, metasync=True`` (the default)
    commit: page writes, fdatasync, meta write, fdatasync. A commit that returned survives a
    process crash and a power cut (test_kill.py, test_powercut.py).

``metasync=False``
    commit: page writes, fdatasync, meta write -- no sync after the meta write. A process
    crash loses nothing that committed (the OS has the writes). A power cut keeps the file
    sound (every state opens at a committed transaction with exactly its content) but may
    undo the most recent commits whose meta page was not yet synced: a commit is durable once
    a later sync covers its meta write (the next commit's data sync, or ``env.sync()``). This
    is LMDB's MDB_NOMETASYNC: atomicity, consistency and isolation kept; durability deferred.

``sync=False``
    commit: page writes, meta write, no sync at all. A process crash still loses nothing
    (the writes are in the OS page cache). A power cut may lose recent commits *or corrupt the
    file*, because nothing orders the page writes before the meta write on disk (LMDB's
    MDB_NOSYNC). ``env.sync(force=True)`` flushes: everything committed before it is durable.

``env.sync(force=True)``
    issues one sync of the data file, in every mode.
"""

from __future__ import annotations

import random
import re

import pytest
from crash_harness import check_recovered, check_writer_digests, run_writer
from crash_model import Model, apply_to_txn, ops_for, read_all
from crash_powercut import RecordingIO, check_image, check_log, record_workload, windows

import purelmdb

KILLS_PER_MODE = 8


def commit_shapes(events) -> str:
    """The log as a string of event kinds, one commit per line (after creation)."""
    kinds = "".join(e[0] for e in events)
    return kinds.replace("c", "c\n")


def test_sync_false_issues_no_sync_at_commit(tmp_path):
    """sync=False: no sync at all after the environment exists; the meta write still
    comes after the page writes."""
    events, _ = record_workload(RecordingIO(), tmp_path, txns=10, sync=False)
    lines = commit_shapes(events).split()
    assert lines[0] == "wsc"                             # creation is synced once
    for line in lines[1:]:
        assert re.fullmatch(r"(t?w)+wc", line), line      # pages..., meta, no sync


def test_metasync_false_syncs_the_data_but_not_the_meta(tmp_path):
    """metasync=False: page writes, one sync, meta write, and no sync after it."""
    events, _ = record_workload(RecordingIO(), tmp_path, txns=10, metasync=False)
    for line in commit_shapes(events).split()[1:]:
        assert re.fullmatch(r"(t?w)+swc", line), line


@pytest.mark.parametrize("kwargs", [{}, {"sync": False}, {"metasync": False}],
                         ids=["default", "sync=False", "metasync=False"])
def test_env_sync_force_issues_a_sync(tmp_path, kwargs):
    """env.sync(force=True) syncs the data file, whatever the mode."""
    io = RecordingIO()
    env = purelmdb.Environment(str(tmp_path / "e.mdb"), subdir=False, _io=io, **kwargs)
    with env.begin(write=True) as txn:
        txn.put(b"a", b"b")
    del io.events[:]
    env.sync(True)
    assert [e[0] for e in io.events] == ["s"]
    env.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", [{"sync": False}, {"metasync": False}],
                         ids=["sync=False", "metasync=False"])
def test_process_kill_loses_nothing_committed(tmp_path, mode):
    """Without (some) syncs, a killed writer still loses no acknowledged commit: the OS
    holds the writes. Same check as test_kill.py, fewer kills."""
    rng = random.Random(3)
    model = Model()
    path = tmp_path / "env"
    for _ in range(KILLS_PER_MODE):
        run = run_writer(path, kill_after=rng.uniform(0.0, 0.3), **mode)
        assert run.killed, run.stderr
        check_writer_digests(run, model)
        check_recovered(path, model, run.last_acked, run.last_acked + 1)


@pytest.mark.timeout(120)
def test_metasync_false_power_cut_keeps_integrity_not_the_last_commit(tmp_path):
    """metasync=False under power cuts: every state is a committed transaction with its
    exact content and verify() == []; it is never older than the newest commit whose meta
    write a completed sync covered, so at most the commits since the last sync are undone."""
    events, snapshots = record_workload(RecordingIO(), tmp_path, txns=30, metasync=False)
    report = check_log(events, snapshots, tmp_path, bound=lambda w: w.durable_meta, seed=11)
    assert report.violations == [], "\n".join(report.violations[:20])
    assert report.states >= 100
    # the promise is really weaker than the default's: some state loses an acked commit
    lost = check_log(events, snapshots, tmp_path, bound=lambda w: w.acked, seed=11,
                     stop_at_first=True)
    assert lost.violations and "had been acknowledged" in lost.violations[0]


def test_sync_false_commits_are_durable_after_env_sync(tmp_path):
    """sync=False: the disk image at env.sync(force=True) holds the last commit before it,
    exactly, and is sound."""
    io = RecordingIO()
    path = tmp_path / "live.mdb"
    env = purelmdb.Environment(str(path), subdir=False, sync=False, _io=io)
    model = Model()
    snapshots = {}
    for t in range(1, 21):
        with env.begin(write=True) as txn:
            apply_to_txn(txn, ops_for(t))
        snapshots[t] = dict(model.content_at(t))
        if t % 5 == 0:
            env.sync(True)
            io.mark_commit(t)
    with env.begin() as txn:
        assert read_all(txn) == model.content_at(20), "the live environment lost commits"
    env.close()
    checked = 0
    for window in windows(io.events):
        if window.acked > 0:
            txnid, problem = check_image(window.durable, tmp_path / "cut.mdb", snapshots,
                                         window.acked)
            assert problem is None, problem
            checked += 1
    assert checked == 4
