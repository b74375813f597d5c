"""B+tree algorithms over decoded pages: search, insert with split, delete with rebalance.

Theory of operation. A *path* is two parallel lists, ``pages`` (root first) and ``idxs`` (the
index taken in each page; in the leaf, the entry's position). Functions that change the tree
take a path whose pages are already dirty (`touch_path`), edit the lists of those pages, then
repair page sizes upwards: an overfull page is split and its separator inserted into the
parent, an underfull one borrows a node from a sibling or merges with it. After any change the
path is stale; callers search again (cursors re-seek by key, see cursor.py).

The store behind a tree is the write transaction (``txn``), which provides ``page(pgno)``,
``touch(page)`` (copy on write), ``alloc(n)``, ``free(pgno, n)`` and ``psize``; the database
state (``db``) holds root, depth and the page and entry counters that LMDB keeps in its
`MDB_db` record, and every function here keeps them exact.

Invariants kept: keys strictly ascending in sort form within and across pages; every leaf at
depth ``db.depth``; branch ``keys[0] == b''``; separator ``keys[i]`` of a branch is greater than
every key of child ``i-1`` and not greater than any key of child ``i``; a page's ``used`` never
exceeds ``psize - 16`` once a public operation has returned.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import Any, List, Optional, Tuple

from .errors import corrupted
from .layout import F_BIGDATA, FILL_THRESHOLD, MAX_DEPTH, P_BRANCH, P_INVALID, P_LEAF2, PAGEHDRSZ
from .page import Page, branch_node_size, leaf_node_size, new_branch, new_leaf

Path = Tuple[List[Page], List[int]]


class DbState:
    """The mutable form of an `MDB_db` record, as a transaction sees it."""

    __slots__ = ("pad", "flags", "depth", "branch_pages", "leaf_pages", "overflow_pages",
                 "entries", "root", "rev", "changed", "leaf2")

    def __init__(self, pad: int, flags: int, depth: int, branch_pages: int, leaf_pages: int,
                 overflow_pages: int, entries: int, root: int, rev: bool = False) -> None:
        self.pad = pad
        self.flags = flags
        self.depth = depth
        self.branch_pages = branch_pages
        self.leaf_pages = leaf_pages
        self.overflow_pages = overflow_pages
        self.entries = entries
        self.root = root
        self.rev = rev
        self.changed = False
        self.leaf2 = False   # a fixed-size duplicates tree: its leaves are LEAF2 pages

    def record(self) -> Tuple[int, int, int, int, int, int, int, int]:
        return (self.pad, self.flags, self.depth, self.branch_pages, self.leaf_pages,
                self.overflow_pages, self.entries, self.root)

    @classmethod
    def from_record(cls, rec: Tuple[int, ...], rev: bool) -> DbState:
        pad, flags, depth, branch, leaf, overflow, entries, root = rec
        return cls(pad, flags, depth, branch, leaf, overflow, entries, root, rev)

    def copy(self) -> DbState:
        c = DbState(*self.record(), rev=self.rev)
        c.changed = self.changed
        c.leaf2 = self.leaf2
        return c


# -- reading ------------------------------------------------------------------------------------

def search(txn: Any, db: DbState, skey: bytes) -> Optional[Path]:
    """Path to the first entry >= ``skey`` (its leaf index may equal the leaf's length).

    Returns None for an empty tree. Bounded by the recorded depth, so a cycle or a wrong page
    type in a damaged file raises `CorruptedError` instead of looping.
    """
    root = db.root
    if root == P_INVALID:
        return None
    rev = db.rev
    get_page = txn.page
    page = get_page(root, rev)
    pages = [page]
    idxs: List[int] = []
    depth = db.depth
    level = depth
    while level > 1:
        if not page.flags & P_BRANCH:
            raise corrupted(page.pgno, "leaf page above the recorded depth %d" % depth)
        i = bisect_right(page.keys, skey) - 1
        idxs.append(i)
        page = get_page(page.vals[i], rev)
        pages.append(page)
        level -= 1
    if page.flags & P_BRANCH or depth < 1 or depth > MAX_DEPTH:
        raise corrupted(page.pgno, "branch page at leaf depth %d" % depth)
    idxs.append(bisect_left(page.keys, skey))
    return pages, idxs


def edge(txn: Any, db: DbState, last: bool) -> Optional[Path]:
    """Path to the first (or last) entry of the tree, None when empty."""
    root = db.root
    if root == P_INVALID:
        return None
    page = txn.page(root, db.rev)
    pages = [page]
    idxs: List[int] = []
    return descend_edge(txn, db, pages, idxs, page, last)


def descend_edge(txn: Any, db: DbState, pages: List[Page], idxs: List[int], page: Page,
                 last: bool, load_leaf: Any = None) -> Path:
    """Extend a path from ``page`` (already its last element) down to its first/last leaf
    entry; ``load_leaf(pgno)``, if given, fetches the page the recorded depth says is the
    leaf (a scan reads leaves it does not cache)."""
    while page.flags & P_BRANCH:
        if len(pages) > db.depth or len(pages) > MAX_DEPTH:
            raise corrupted(page.pgno, "tree deeper than the recorded depth %d" % db.depth)
        i = len(page.keys) - 1 if last else 0
        idxs.append(i)
        if load_leaf is not None and len(pages) == db.depth - 1:
            page = load_leaf(page.vals[i])
        else:
            page = txn.page(page.vals[i], db.rev)
        pages.append(page)
    if len(pages) != db.depth:
        raise corrupted(page.pgno, "leaf at depth %d, record says %d" % (len(pages), db.depth))
    n = len(page.keys)
    if n == 0 and len(pages) > 1:
        raise corrupted(page.pgno, "empty leaf page inside a tree")
    idxs.append(n - 1 if last else 0)
    return pages, idxs


def step(txn: Any, db: DbState, pages: List[Page], idxs: List[int], forward: bool,
         load_leaf: Any = None) -> bool:
    """Move a valid path to the next (or previous) leaf entry; False at the end.
    ``load_leaf`` as for `descend_edge`."""
    leaf = pages[-1]
    i = idxs[-1] + (1 if forward else -1)
    if 0 <= i < len(leaf.keys):
        idxs[-1] = i
        return True
    # climb to the first ancestor that has a sibling in that direction
    level = len(pages) - 2
    while level >= 0:
        j = idxs[level] + (1 if forward else -1)
        if 0 <= j < len(pages[level].keys):
            break
        level -= 1
    else:
        return False
    del pages[level + 1:]
    del idxs[level + 1:]
    idxs[level] = j
    c = pages[level].vals[j]
    child = load_leaf(c) if load_leaf is not None and level == db.depth - 2 \
        else txn.page(c, db.rev)
    pages.append(child)
    descend_edge(txn, db, pages, idxs, child, not forward, load_leaf)
    if not pages[-1].keys:
        raise corrupted(pages[-1].pgno, "empty leaf page inside a tree")
    return True


# -- changing -----------------------------------------------------------------------------------

def touch_path(txn: Any, db: DbState, pages: List[Page], idxs: List[int]) -> None:
    """Make every page of the path dirty, top-down, re-linking parents to the copies."""
    token = txn._token
    if pages[-1].dirty == token:
        return  # a page this txn owns is only ever reachable through pages it owns
    page = pages[0]
    if page.dirty != token:
        page = pages[0] = txn._touch(page)
        db.root = page.pgno
    for level in range(1, len(pages)):
        page = pages[level]
        if page.dirty != token:
            page = pages[level] = txn._touch(page)
            pages[level - 1].set_child(idxs[level - 1], page.pgno)


def insert_first(txn: Any, db: DbState, skey: bytes, val: Any, size: int, nflags: int) -> None:
    """Insert into an empty tree: a new root leaf."""
    leaf = new_leaf(txn._alloc(1), db.rev, txn._token)
    leaf.keys.append(skey)
    leaf.vals.append(val)
    leaf.sizes.append(size)  # type: ignore[union-attr]
    leaf.nfl.append(nflags)  # type: ignore[union-attr]
    if db.leaf2:
        leaf.flags |= P_LEAF2
        leaf.used = len(skey)
    else:
        leaf.used = leaf_node_size(len(skey), size, nflags)
    txn.dirty[leaf.pgno] = leaf
    db.root = leaf.pgno
    db.depth = 1
    db.leaf_pages += 1


def leaf_insert(txn: Any, db: DbState, pages: List[Page], idxs: List[int], skey: bytes,
                val: Any, size: int, nflags: int) -> None:
    """Insert a node at the path's leaf index (path dirty), splitting as needed."""
    leaf = pages[-1]
    i = idxs[-1]
    leaf.inserted = i       # lets the encoder patch the node into the page's old bytes
    leaf.keys.insert(i, skey)
    leaf.vals.insert(i, val)
    leaf.sizes.insert(i, size)  # type: ignore[union-attr]
    leaf.nfl.insert(i, nflags)  # type: ignore[union-attr]
    if leaf.flags & P_LEAF2:
        used = leaf.used + len(skey)
    else:
        used = leaf.used + ((9 + len(skey) + (8 if nflags & F_BIGDATA else size)) & ~1) + 2
    leaf.used = used
    if used > txn._psize - PAGEHDRSZ:
        _split_upwards(txn, db, pages, idxs, len(pages) - 1)


def leaf_set(txn: Any, db: DbState, pages: List[Page], idxs: List[int], val: Any, size: int,
             nflags: int) -> None:
    """Replace the value of the path's leaf entry (path dirty)."""
    leaf = pages[-1]
    i = idxs[-1]
    klen = len(leaf.keys[i])
    leaf.used += (leaf_node_size(klen, size, nflags)
                  - leaf_node_size(klen, leaf.sizes[i], leaf.nfl[i]))  # type: ignore[index]
    leaf.vals[i] = val
    leaf.sizes[i] = size  # type: ignore[index]
    leaf.nfl[i] = nflags  # type: ignore[index]
    cap = txn._psize - PAGEHDRSZ
    if leaf.used > cap:
        _split_upwards(txn, db, pages, idxs, len(pages) - 1)
    elif 1000 * leaf.used < FILL_THRESHOLD * cap:
        rebalance(txn, db, pages, idxs, len(pages) - 1)


def leaf_delete(txn: Any, db: DbState, pages: List[Page], idxs: List[int]) -> None:
    """Remove the path's leaf entry (path dirty) and rebalance."""
    leaf = pages[-1]
    i = idxs[-1]
    leaf.used -= _leaf_size(leaf, i)
    del leaf.keys[i], leaf.vals[i], leaf.sizes[i], leaf.nfl[i]  # type: ignore[index]
    rebalance(txn, db, pages, idxs, len(pages) - 1)


def _node_sizes(page: Page) -> List[int]:
    if page.flags & P_BRANCH:
        sizes = [branch_node_size(len(k)) for k in page.keys]
        sizes[0] = branch_node_size(0)
        return sizes
    if page.flags & P_LEAF2:
        return [len(k) for k in page.keys]
    ds = page.sizes
    fl = page.nfl
    assert ds is not None and fl is not None
    # leaf_node_size, inlined: this runs over every node of every leaf that splits
    return [((9 + len(k) + (8 if f & F_BIGDATA else d)) & ~1) + 2
            for k, d, f in zip(page.keys, ds, fl)]


def _leaf_size(leaf: Page, i: int) -> int:
    """Bytes entry ``i`` of a leaf takes (a LEAF2 item has no node header or pointer)."""
    if leaf.flags & P_LEAF2:
        return len(leaf.keys[i])
    return leaf_node_size(len(leaf.keys[i]), leaf.sizes[i], leaf.nfl[i])  # type: ignore[index]


def _split_point(page: Page, sizes: List[int], inserted_at: int, cap: int) -> int:
    n = len(sizes)
    branch = bool(page.flags & P_BRANCH)
    lo = 2 if branch and n >= 4 else 1
    hi = n - 2 if branch and n >= 4 else n - 1
    cum = list(accumulate(sizes))        # cum[i]: bytes of nodes 0..i
    total = cum[-1]
    if inserted_at == n - 1:
        # appending at the end (bulk loads): leave the left page full
        sp = hi
    else:
        # just past the first node that brings the left half to half the bytes
        sp = bisect_left(cum, (total + 1) // 2) + 1
    sp = max(lo, min(hi, sp))
    # a branch's right page turns its first node's key into the empty key
    shrink = branch_node_size(0)
    for _ in range(n):
        left = cum[sp - 1]
        right = total - left - (sizes[sp] - shrink if branch else 0)
        if left <= cap and right <= cap:
            return sp
        sp += -1 if left > cap else 1
        if not 1 <= sp <= n - 1:
            break
    raise corrupted(page.pgno, "no split point fits (internal error)")


def _split_upwards(txn: Any, db: DbState, pages: List[Page], idxs: List[int],
                   level: int) -> None:
    """Split ``pages[level]`` and any ancestor that overflows in turn."""
    cap = txn._psize - PAGEHDRSZ
    while level >= 0 and pages[level].used > cap:
        page = pages[level]
        branch = bool(page.flags & P_BRANCH)
        sizes = _node_sizes(page)
        sp = _split_point(page, sizes, idxs[level], cap)
        rpg = txn._alloc(1)
        right = (new_branch(rpg, db.rev, txn._token) if branch
                 else new_leaf(rpg, db.rev, txn._token))
        right.flags = page.flags
        right.keys = page.keys[sp:]
        right.vals = page.vals[sp:]
        del page.keys[sp:], page.vals[sp:]
        if not branch:
            right.sizes = page.sizes[sp:]  # type: ignore[index]
            right.nfl = page.nfl[sp:]  # type: ignore[index]
            del page.sizes[sp:], page.nfl[sp:]  # type: ignore[index]
        sep = right.keys[0]
        if branch:
            right.keys[0] = b""
            sizes[sp] = branch_node_size(0)
            db.branch_pages += 1
        else:
            db.leaf_pages += 1
        page.used = sum(sizes[:sp])
        right.used = sum(sizes[sp:])
        txn.dirty[rpg] = right
        if level == 0:
            root = new_branch(txn._alloc(1), db.rev, txn._token)
            root.keys = [b""]
            root.vals = [page.pgno]
            root.used = branch_node_size(0)
            txn.dirty[root.pgno] = root
            db.root = root.pgno
            db.depth += 1
            db.branch_pages += 1
            if db.depth > MAX_DEPTH:
                from .errors import CursorFullError
                raise CursorFullError("mdb_put", CursorFullError.MDB_CODE)
            pages.insert(0, root)
            idxs.insert(0, 0)
            level += 1
        parent = pages[level - 1]
        pi = idxs[level - 1] + 1
        parent.keys.insert(pi, sep)
        parent.vals.insert(pi, rpg)
        parent.used += branch_node_size(len(sep))
        level -= 1


def _fill_low(page: Page, cap: int) -> bool:
    if page.flags & P_BRANCH:
        return len(page.keys) < 2 or 1000 * page.used < cap
    return not page.keys or 1000 * page.used < FILL_THRESHOLD * cap


def rebalance(txn: Any, db: DbState, pages: List[Page], idxs: List[int], level: int) -> None:
    """Restore fill after a removal at ``pages[level]``: borrow a node or merge, upwards."""
    cap = txn._psize - PAGEHDRSZ
    while True:
        page = pages[level]
        if not _fill_low(page, cap):
            return
        branch = bool(page.flags & P_BRANCH)
        if level == 0:
            if not branch and not page.keys:
                txn._free(page.pgno, 1)
                db.root = P_INVALID
                db.depth = 0
                db.leaf_pages -= 1
            elif branch and len(page.keys) == 1:
                txn._free(page.pgno, 1)
                db.root = page.vals[0]
                db.depth -= 1
                db.branch_pages -= 1
            return
        parent = pages[level - 1]
        pi = idxs[level - 1]
        si = pi + 1 if pi == 0 else pi - 1
        if si >= len(parent.keys):
            # an only child: nothing to borrow from; the parent will collapse it
            level -= 1
            continue
        sib = txn.page(parent.vals[si], db.rev)
        if sib.dirty != txn._token:
            sib = txn._touch(sib)
            parent.set_child(si, sib.pgno)
        minkeys = 2 if branch else 1
        sib_low = (1000 * sib.used < (1 if branch else FILL_THRESHOLD) * cap)
        if not sib_low and len(sib.keys) > minkeys:
            _move_node(parent, pi, page, si, sib, branch)
            if parent.used > cap:
                _split_upwards(txn, db, pages, idxs, level - 1)
            return
        left, right, ri = (page, sib, si) if si > pi else (sib, page, pi)
        _merge(parent, ri, left, right, branch)
        txn._free(right.pgno, 1)
        if branch:
            db.branch_pages -= 1
        else:
            db.leaf_pages -= 1
        if left.used > cap:  # defensive: cannot happen with LMDB's fill rules
            raise corrupted(left.pgno, "merged page overfull (internal error)")
        level -= 1


def _move_node(parent: Page, pi: int, page: Page, si: int, sib: Page, branch: bool) -> None:
    """Move one node from sibling ``sib`` (parent index ``si``) into ``page`` (index ``pi``)."""
    if branch:
        if si > pi:
            # sib's first child joins page's end under its real key, the parent separator
            k = parent.keys[si]
            page.keys.append(k)
            page.vals.append(sib.vals.pop(0))
            page.used += branch_node_size(len(k))
            sib.keys.pop(0)
            newsep = sib.keys[0]
            sib.used -= branch_node_size(0) + branch_node_size(len(newsep)) - branch_node_size(0)
            sib.keys[0] = b""
            _set_sep(parent, si, newsep)
        else:
            # sib's last child becomes page's first; page's old first gets its real key
            k = sib.keys.pop()
            c = sib.vals.pop()
            sib.used -= branch_node_size(len(k))
            old_first = parent.keys[pi]
            page.keys[0] = old_first
            page.keys.insert(0, b"")
            page.vals.insert(0, c)
            page.used += branch_node_size(len(old_first)) + branch_node_size(0) - branch_node_size(0)
            _set_sep(parent, pi, k)
        return
    assert page.sizes is not None and page.nfl is not None
    assert sib.sizes is not None and sib.nfl is not None
    j = 0 if si > pi else len(sib.keys) - 1
    ns = _leaf_size(sib, j)
    k, v, s, f = sib.keys.pop(j), sib.vals.pop(j), sib.sizes.pop(j), sib.nfl.pop(j)
    sib.used -= ns
    page.used += ns
    if si > pi:
        page.keys.append(k)
        page.vals.append(v)
        page.sizes.append(s)
        page.nfl.append(f)
        _set_sep(parent, si, sib.keys[0])
    else:
        page.keys.insert(0, k)
        page.vals.insert(0, v)
        page.sizes.insert(0, s)
        page.nfl.insert(0, f)
        _set_sep(parent, pi, k)


def _set_sep(parent: Page, i: int, key: bytes) -> None:
    if i == 0:
        return  # child 0 has no separator
    parent.used += branch_node_size(len(key)) - branch_node_size(len(parent.keys[i]))
    parent.keys[i] = key


def _merge(parent: Page, ri: int, left: Page, right: Page, branch: bool) -> None:
    """Append ``right`` (parent index ``ri``) to ``left`` and drop it from the parent."""
    sep = parent.keys[ri]
    if branch:
        rkeys = right.keys[:]
        rkeys[0] = sep
        left.keys.extend(rkeys)
        left.used += right.used + branch_node_size(len(sep)) - branch_node_size(0)
    else:
        left.keys.extend(right.keys)
        left.sizes.extend(right.sizes)  # type: ignore[union-attr, arg-type]
        left.nfl.extend(right.nfl)  # type: ignore[union-attr, arg-type]
        left.used += right.used
    left.vals.extend(right.vals)
    parent.used -= branch_node_size(len(sep))
    del parent.keys[ri], parent.vals[ri]
