"""Worker functions run in child processes by the multi-process tests (spawned, so each child
imports purelmdb afresh). Each takes plain arguments and reports through its exit status or a
queue."""

from __future__ import annotations

import os
import random
import time
from typing import Any

N_ACCOUNTS = 50
TOTAL = 1000 * N_ACCOUNTS


def _module(kind: str) -> Any:
    if kind == "c":
        import lmdb
        return lmdb
    import purelmdb
    return purelmdb


def increment(kind: str, path: str, times: int) -> None:
    """Add 1 to the counter ``times`` times, one write transaction each."""
    mod = _module(kind)
    env = mod.open(path)
    for _ in range(times):
        with env.begin(write=True) as txn:
            n = int(txn.get(b"counter", b"0"))
            txn.put(b"counter", b"%d" % (n + 1))
    env.close()


def transfer(kind: str, path: str, rounds: int, seed: int) -> None:
    """Move money between accounts: the sum over all accounts never changes."""
    mod = _module(kind)
    rng = random.Random(seed)
    env = mod.open(path)
    for _ in range(rounds):
        with env.begin(write=True) as txn:
            for _ in range(5):
                a, b = rng.sample(range(N_ACCOUNTS), 2)
                ka, kb = b"acct%03d" % a, b"acct%03d" % b
                va, vb = int(txn.get(ka)), int(txn.get(kb))
                amount = rng.randrange(0, 50)
                txn.put(ka, b"%d" % (va - amount))
                txn.put(kb, b"%d" % (vb + amount))
            txn.put(b"pad%d" % rng.randrange(200), os.urandom(rng.choice((10, 3000, 9000))))
    env.close()


def audit(kind: str, path: str, seconds: float, queue: Any) -> None:
    """Check the sum in many snapshots; put (snapshots checked, bad sums) on the queue."""
    mod = _module(kind)
    env = mod.open(path)
    checked, bad = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with env.begin() as txn:
            total = sum(int(v) for k, v in txn.cursor() if k.startswith(b"acct"))
            if total != TOTAL:
                bad.append(total)
            checked += 1
    env.close()
    queue.put((checked, bad))


def hold_reader(kind: str, path: str, queue: Any) -> None:
    """Open a read transaction, report its view of ``b'v'``, then wait to be killed."""
    mod = _module(kind)
    env = mod.open(path)
    txn = env.begin()
    queue.put(bytes(txn.get(b"v")))
    time.sleep(600)


def hold_writer(path: str, queue: Any) -> None:
    """Begin a write transaction, write into it, report, then wait to be killed."""
    import purelmdb
    env = purelmdb.open(path)
    txn = env.begin(write=True)
    txn.put(b"uncommitted", b"x" * 5000)
    queue.put("writing")
    time.sleep(600)
