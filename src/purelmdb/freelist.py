"""Free pages: reclaiming them from the free-list database and saving it at commit.

Theory of operation. The free-list database (FREE_DBI, keyed by an 8-byte transaction id)
holds, under key T, the pages that transaction T stopped using. Those pages are still part of
the snapshots older than T, so a writer takes pages from record T only when T is older than
every live reader and than the previous commit (``T < oldest``), as LMDB does: the two
newest snapshots, the ones the two meta pages describe, always stay intact.

`Reclaimer` consumes records lazily, oldest first, when the writer needs pages, and keeps the
pages it has not handed out yet in ``pool`` (sorted descending: the smallest is taken first, as
LMDB does). At commit, `save` deletes the consumed records, writes this transaction's freed
pages under its own id and the unused pool under the newest consumed id (still ``< oldest``).
Writing those records allocates and frees pages itself, so `save` repeats until a round changes
nothing. It converges because, during the save, the pool only shrinks and the freed list only grows,
and a value rewritten at its old size takes no page. Records are written at their exact size
(LMDB readers would accept slack after the count, but the `lmdb` package's verifier does not).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Tuple

from . import tree
from .errors import PanicError, corrupted
from .layout import F_BIGDATA, FREE_DBI, MDB_DUPSORT, P_BRANCH, P_INVALID, U64

if TYPE_CHECKING:
    from .tree import DbState
    from .txn import Transaction

def txn_key(txnid: int) -> bytes:
    """Sort form of a free-list key: the big-endian id (the reverse of LMDB's LE bytes)."""
    return txnid.to_bytes(8, "big")


def pack_pages(pages: List[int], slots: int) -> bytes:
    """A record value: count, the pages in descending order, zero padding to ``slots``."""
    body = struct.pack("<%dQ" % (len(pages) + 1), len(pages), *sorted(pages, reverse=True))
    return body + bytes(8 * (slots - len(pages)))


def unpack_pages(data: Any, pgno_hint: int, last_pg: int) -> List[int]:
    """Decode and validate a record value; `CorruptedError` on a forged or damaged one."""
    if len(data) < 8:
        raise corrupted(pgno_hint, "free-list record shorter than its count")
    (count,) = U64.unpack_from(data, 0)
    if 8 * (count + 1) > len(data):
        raise corrupted(pgno_hint, "free-list record count %d exceeds its size" % count)
    pages = list(struct.unpack_from("<%dQ" % count, data, 8))
    prev = last_pg + 1
    for p in pages:
        if p >= prev or p < 2:
            raise corrupted(pgno_hint, "free-list record not strictly descending or out of range")
        prev = p
    return pages


class Reclaimer:
    """Hands a write transaction pages from free-list records older than every reader."""

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn
        self.pool: List[int] = []          # descending
        self.consumed: List[int] = []      # record ids taken, ascending
        self.oldest: Optional[int] = None
        self.exhausted = False
        self.saving = False

    def copy_for(self, txn: "Transaction") -> "Reclaimer":
        """The state a nested transaction starts from."""
        c = Reclaimer(txn)
        c.pool = self.pool[:]
        c.consumed = self.consumed[:]
        c.oldest = self.oldest
        c.exhausted = self.exhausted
        return c

    def take(self, n: int) -> Optional[int]:
        """First page of ``n`` consecutive free pages, or None (then extend the file)."""
        while True:
            pgno = self._from_pool(n)
            if pgno is not None:
                return pgno
            if not self._consume_next():
                return None

    def _from_pool(self, n: int) -> Optional[int]:
        pool = self.pool
        if not pool:
            return None
        if n == 1:
            return pool.pop()
        # lowest run of n consecutive pages: pool[i-n+1] == pool[i] + n - 1
        for i in range(len(pool) - 1, n - 2, -1):
            if pool[i - n + 1] == pool[i] + n - 1:
                first = pool[i]
                del pool[i - n + 1:i + 1]
                return first
        return None

    def _consume_next(self) -> bool:
        if self.exhausted or self.saving:
            return False
        txn = self.txn
        if self.oldest is None:
            self.oldest = txn.env._oldest_reader(txn._txnid)
        d = txn._dbs[FREE_DBI]
        after = self.consumed[-1] + 1 if self.consumed else 0
        path = tree.search(txn, d, txn_key(after))
        if path is None:
            self.exhausted = True
            return False
        pages, idxs = path
        leaf = pages[-1]
        i = idxs[-1]
        if i >= len(leaf.keys):
            if not tree.step(txn, d, pages, idxs, True):
                self.exhausted = True
                return False
            leaf = pages[-1]
            i = idxs[-1]
        key = int.from_bytes(leaf.keys[i], "big")
        if key >= self.oldest:
            self.exhausted = True
            return False
        data = txn._value(leaf.vals[i], leaf.sizes[i], leaf.nfl[i])  # type: ignore[index]
        if txn._buffers:
            data = bytes(data)
        got = unpack_pages(data, leaf.pgno, txn._last_pg)
        self.consumed.append(key)
        merged = self.pool + got
        merged.sort(reverse=True)
        self.pool = merged
        return True


def save(txn: Transaction) -> None:
    """Write the free list of a committing transaction (see the module docstring)."""
    rec = txn.reclaim
    d = txn._dbs[FREE_DBI]
    # Rewriting the free list copies a few of its pages and may need overflow pages for big
    # records: take those from reusable records now, or the file would grow a little on
    # every commit while old records wait.
    want = 4 * (d.depth + 2) + 2 * (8 * (len(txn.freed) + len(txn.loose)) // txn._psize + 1)
    while len(rec.pool) < want and rec._consume_next():
        pass
    rec.saving = True
    pool_key = rec.consumed[-1] if rec.consumed else None
    to_delete = list(rec.consumed)
    pool_written = False
    for _round in range(64):
        while to_delete:
            txn._delete(d, txn_key(to_delete.pop()))
        txn.freed.extend(txn.loose)
        txn.loose.clear()
        # the records below are final if writing them allocates and frees nothing
        before = (len(txn.freed), len(rec.pool), txn.next_pgno)
        if txn.freed:
            txn._put(d, txn_key(txn._txnid), pack_pages(txn.freed, len(txn.freed)), True, False)
        if pool_key is not None:
            if rec.pool:
                txn._put(d, txn_key(pool_key), pack_pages(rec.pool, len(rec.pool)), True, False)
                pool_written = True
            elif pool_written:
                txn._delete(d, txn_key(pool_key))
                pool_written = False
        txn.freed.extend(txn.loose)
        txn.loose.clear()
        if (len(txn.freed), len(rec.pool), txn.next_pgno) == before:
            return
    raise PanicError("mdb_txn_commit: free list did not settle", PanicError.MDB_CODE)


def free_tree(txn: Transaction, d: DbState) -> None:
    """Free every page of a tree (and its overflow runs) and leave it empty."""
    if d.root != P_INVALID:
        stack = [(d.root, 1)]
        seen = 0
        limit = d.branch_pages + d.leaf_pages + 1
        while stack:
            pgno, depth = stack.pop()
            seen += 1
            if seen > limit or depth > d.depth:
                raise corrupted(pgno, "tree larger than its record says")
            page = txn.page(pgno, d.rev)
            if page.flags & P_BRANCH:
                stack.extend((c, depth + 1) for c in page.vals)
            else:
                if d.flags & MDB_DUPSORT:
                    from .dups import free_subtrees
                    free_subtrees(txn, d, page)
                for i, fl in enumerate(page.nfl):  # type: ignore[arg-type]
                    if fl & F_BIGDATA:
                        txn._free_overflow(d, page.vals[i], page.sizes[i])  # type: ignore[index]
            txn._free(pgno, 1)
    d.root = P_INVALID
    d.depth = d.branch_pages = d.leaf_pages = d.overflow_pages = d.entries = 0


def records(txn: Transaction) -> Iterator[Tuple[int, int, List[int]]]:
    """(transaction id, page count, pages as stored) of every free-list record, in key order. A record
    shorter than its count yields the pages it holds (mdb_stat flags what looks wrong)."""
    d = txn._dbs[FREE_DBI]
    path = tree.edge(txn, d, False)
    if path is None:
        return
    pages, idxs = path
    while True:
        leaf = pages[-1]
        i = idxs[-1]
        txnid = int.from_bytes(leaf.keys[i], "big")   # sort form: the id big-endian
        data = bytes(txn._value(leaf.vals[i], leaf.sizes[i], leaf.nfl[i]))  # type: ignore[index]
        count = U64.unpack_from(data, 0)[0] if len(data) >= 8 else 0
        have = min(count, (len(data) - 8) // 8) if len(data) >= 8 else 0
        yield txnid, count, list(struct.unpack_from("<%dQ" % have, data, 8)) if have else []
        if not tree.step(txn, d, pages, idxs, True):
            return
