"""Power cuts: every file a power cut could leave opens at a committed transaction, never
older than the last acknowledged one, with exactly its content, and is sound.

A workload of transactions (crash_model.ops_for: small and overflow values, deletes, splits,
merges, reused free pages) runs through a `RecordingIO`; crash_powercut.py turns the log into
the disk images a cut between two syncs may leave (durable prefix + any subset of the later
writes, some torn at sector boundaries) and checks each. The same check run on two broken
stores (a sync dropped, the meta page written first) must find violations: that is the
evidence the simulation can see the failures it is meant to rule out.
"""

from __future__ import annotations

import re

import pytest
from crash_powercut import (
    MetaFirstIO,
    RecordingIO,
    SkipDataSyncIO,
    acked_bound,
    check_log,
    record_workload,
    windows,
)

TXNS = 100


def test_log_has_the_expected_shape(tmp_path):
    """Sanity of the recording: per commit, page writes, a sync, one meta write, a sync."""
    events, _ = record_workload(RecordingIO(), tmp_path, txns=5)
    kinds = "".join(e[0] for e in events)
    # creation: both meta pages and a sync; then each commit: t? w+ s w s c
    assert kinds.startswith("wsc")
    assert re.fullmatch(r"wsc((t?w)+swsc){5}", kinds), kinds
    assert len(list(windows(events))) == 1 + 2 * 5


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_every_power_cut_state_is_a_committed_txn(tmp_path):
    """Hundreds of power-cut images of a 100-transaction workload: each opens at a txn id
    >= the last acknowledged commit, with exactly that txn's content, and verify() == []."""
    events, snapshots = record_workload(RecordingIO(), tmp_path, TXNS)
    report = check_log(events, snapshots, tmp_path, bound=acked_bound, seed=7)
    assert report.violations == [], "\n".join(report.violations[:20])
    assert report.windows == 1 + 2 * TXNS
    assert report.states >= 300, report.states
    # the cuts between the data sync and the meta sync do produce the in-flight commit
    assert report.newer >= TXNS // 2, report.newer
    print("power-cut states=%d windows=%d opened at the in-flight txn=%d"
          % (report.states, report.windows, report.newer))


@pytest.mark.parametrize("broken_io", [SkipDataSyncIO, MetaFirstIO])
def test_checker_catches_a_store_without_the_ordering_sync(tmp_path, broken_io):
    """The same check finds violations when the pages are not on disk before the meta
    page: the power-cut simulation can tell a correct commit order from a broken one."""
    events, snapshots = record_workload(broken_io(), tmp_path, txns=25)
    report = check_log(events, snapshots, tmp_path, bound=acked_bound, seed=7,
                       samples=6, stop_at_first=True)
    assert report.violations, "no violation found in %d states of a broken store" % (
        report.states)
