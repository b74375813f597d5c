"""Process crashes: SIGKILL a writer at random moments, again and again, on one environment.

What this proves: a commit that returned is never lost, whatever the writer was doing when it
died (building a transaction, writing pages, between the two syncs, right after the meta
write), and a file left by a killed writer is sound: purelmdb opens it at exactly the content
of the last acknowledged transaction or of the one in flight, `verify` finds nothing, and the
C binding reads the same content. Only the OS page cache stands between the dead process and
the disk here, so this is the guarantee of every sync mode (see test_syncmodes.py for the
modes that sync less, and test_powercut.py for crashes of the machine).
"""

from __future__ import annotations

import random

import pytest
from crash_harness import check_recovered, check_writer_digests, run_writer
from crash_model import Model

KILLS = 60
MIN_DELAY, MAX_DELAY = 0.0, 0.35
C_BINDING_EVERY = 4


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_loses_no_acknowledged_commit(tmp_path):
    """60 SIGKILLs of writer.py at random delays, all on the same environment; after each:
    the last acknowledged txn (or the one in flight) is there with exactly the model's
    content, verify() == [], and every 4th time the C binding agrees."""
    pytest.importorskip("lmdb")
    rng = random.Random(1)
    model = Model()
    path = tmp_path / "env"
    kills = 0
    in_flight_seen = 0
    commits = 0
    for i in range(KILLS):
        run = run_writer(path, kill_after=rng.uniform(MIN_DELAY, MAX_DELAY))
        assert run.killed, "writer exited by itself (%s):\n%s" % (run.returncode, run.stderr)
        kills += 1
        check_writer_digests(run, model)
        commits += len(run.acked)
        found = check_recovered(path, model, run.last_acked, run.last_acked + 1,
                                with_c=i % C_BINDING_EVERY == 0)
        in_flight_seen += found == run.last_acked + 1
    assert kills >= 50
    # the kills did land among commits, and the workload went somewhere
    assert commits >= 3 * KILLS, "only %d commits in %d runs" % (commits, KILLS)
    print("kills=%d commits=%d in-flight commits found durable=%d"
          % (kills, commits, in_flight_seen))
