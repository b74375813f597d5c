"""The crash tests' workload: transactions whose effect is a pure function of the txn id.

Transaction ``T`` (the id purelmdb gives the ``T``-th commit of a fresh environment) applies
`ops_for(T)`: a few puts of small values, some puts of overflow values (3-100 KB), deletes,
and now and then a run of adjacent puts (leaf splits) or a range delete (leaf merges, freed
pages that later transactions reuse). The operations depend only on ``T`` (seeded RNG), never
on the database's content: deleting a key that is absent is a no-op in the store and in the
model alike. So the expected content after transaction ``T`` can be recomputed anywhere (in
the writer subprocess, in the test process) by replaying ``ops_for(1..T)`` over an empty dict
(`Model`). The last op of every transaction writes its own id under ``b"~txn"``, so every
transaction changes something (an empty write transaction commits nothing and takes no id)
and the content of a file names the transaction it came from.

This module is imported by the tests and by ``writer.py``; it needs only the standard library.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Dict, List, Tuple

SEED = 20240517
TXN_KEY = b"~txn"

Op = Tuple[str, bytes, bytes]          # ("put", key, value) or ("del", key, b"")
Content = Dict[bytes, bytes]


def key_of(i: int) -> bytes:
    """Key number ``i``: keys of different lengths (8..47 bytes) so pages split unevenly."""
    return b"k%06d" % i + b"." * (i * 7 % 40)


def ops_for(txnid: int, *, nkeys: int = 500, big_p: float = 0.05,
            big_min: int = 3000, big_max: int = 100_000) -> List[Op]:
    """The operations of transaction ``txnid`` (deterministic; see the module docstring).

    A random op is a put of an overflow value of ``big_min..big_max`` bytes with probability
    ``big_p``, else a put of a small value (0..900 bytes) or a delete.
    """
    rng = random.Random(SEED * 1_000_003 + txnid)
    ops: List[Op] = []

    def small() -> bytes:
        return rng.randbytes(rng.choice((0, 1, 8, 40, 120, 400, 900)))

    shape = rng.random()
    if shape < 0.12:                               # a run of adjacent puts: splits
        start = rng.randrange(nkeys)
        for i in range(start, min(nkeys, start + rng.randint(20, 80))):
            ops.append(("put", key_of(i), small()))
    elif shape < 0.24:                             # a range delete: merges, freed pages
        start = rng.randrange(nkeys)
        for i in range(start, min(nkeys, start + rng.randint(20, 80))):
            ops.append(("del", key_of(i), b""))
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        k = key_of(rng.randrange(nkeys))
        if r < big_p:
            ops.append(("put", k, rng.randbytes(rng.randint(big_min, big_max))))
        elif r < 0.62:
            ops.append(("put", k, small()))
        else:
            ops.append(("del", k, b""))
    ops.append(("put", TXN_KEY, b"%d" % txnid))
    return ops


def apply_to_dict(content: Content, ops: List[Op]) -> None:
    for kind, k, v in ops:
        if kind == "put":
            content[k] = v
        else:
            content.pop(k, None)


def apply_to_txn(txn: Any, ops: List[Op]) -> None:
    """Run ``ops`` in a write transaction of purelmdb or of the C binding."""
    for kind, k, v in ops:
        if kind == "put":
            txn.put(k, v)
        else:
            txn.delete(k)


def digest(content: Content) -> str:
    """A short digest of a whole content (order-independent input, sorted here)."""
    h = hashlib.blake2b(digest_size=12)
    for k in sorted(content):
        v = content[k]
        h.update(b"%d:%d:" % (len(k), len(v)))
        h.update(k)
        h.update(v)
    return h.hexdigest()


class Model:
    """Expected content per transaction id, computed forward by replaying `ops_for`.

    ``content_at(T)`` returns the content after transaction ``T`` (replaying from the newest
    id reached, or from scratch when ``T`` is older); ``digest_at(T)`` its digest. The crash
    tests only move forward, so each transaction is replayed about once.
    """

    def __init__(self, **workload: Any) -> None:
        self.workload = workload
        self._reset()

    def _reset(self) -> None:
        self.txnid = 0
        self.content: Content = {}
        self.digests: List[str] = [digest({})]

    def content_at(self, txnid: int) -> Content:
        if txnid < self.txnid:
            self._reset()
        while self.txnid < txnid:
            self.txnid += 1
            apply_to_dict(self.content, ops_for(self.txnid, **self.workload))
            self.digests.append(digest(self.content))
        return self.content

    def digest_at(self, txnid: int) -> str:
        if txnid > self.txnid:
            self.content_at(txnid)
        return self.digests[txnid]


def read_all(txn: Any) -> Content:
    """Every key and value of the main database, as bytes."""
    return {bytes(k): bytes(v) for k, v in txn.cursor()}


def describe_difference(found: Content, expected: Content, limit: int = 5) -> str:
    """A short human-readable diff of two contents, for assertion messages."""
    missing = sorted(set(expected) - set(found))[:limit]
    extra = sorted(set(found) - set(expected))[:limit]
    changed = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])[:limit]
    return ("%d keys found, %d expected; missing %r; unexpected %r; different values %r"
            % (len(found), len(expected), missing, extra, changed))
