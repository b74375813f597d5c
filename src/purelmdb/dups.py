"""Sorted duplicates (DUPSORT databases): the values of one key.

Theory of operation. In a DUPSORT database a key with one value is a plain leaf node. A key
with several values holds them as the *keys* of a small inner structure, kept in the value
comparator's order:

* a sub-page (node flag F_DUPDATA): a miniature leaf page inside the node, flags 0x52 (or
  0x72 with LEAF2 for fixed-size values), sized to fit its values exactly;
* a sub-database (F_DUPDATA|F_SUBDATA) once the sub-page would make the node larger than
  ``nodemax``: an ordinary B+tree whose 48-byte record is the node's data. It never turns back
  into a sub-page; it is freed when its last value goes.

Values are handled in sort form, like keys (see page.py): reversed for REVERSEDUP and
INTEGERDUP databases. `Dups` is a read/write view of one key's values that the transaction
and the cursors use; it hides which of the three layouts holds them.

Page counters follow LMDB 0.9.36: the outer database's branch and leaf counts include the
pages of its sub-databases, whose own records count only their own pages.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, insort
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from . import tree
from .errors import BadValsizeError, corrupted
from .layout import (
    F_DUPDATA,
    F_SUBDATA,
    MDB_DUPFIXED,
    MDB_DUPSORT,
    MDB_INTEGERDUP,
    MDB_INTEGERKEY,
    MDB_REVERSEDUP,
    NODE_HEADER,
    P_DIRTY,
    P_INVALID,
    P_LEAF,
    P_LEAF2,
    P_SUBP,
    PAGE_HEADER,
    PAGEHDRSZ,
    DbRecord,
)
from .tree import DbState

if TYPE_CHECKING:
    from .txn import Transaction

SUBPAGE_FLAGS = P_LEAF | P_DIRTY | P_SUBP      # 0x52: P_DIRTY is required on sub-pages


def value_rev(db_flags: int) -> bool:
    """Whether values of a DUPSORT database sort as their reversed bytes."""
    return bool(db_flags & (MDB_REVERSEDUP | MDB_INTEGERDUP))


# -- sub-page codec -------------------------------------------------------------------------------

def decode_subpage(data: bytes, rev: bool) -> List[bytes]:
    """The values (sort form) of a sub-page; `CorruptedError` if it is malformed."""
    size = len(data)
    if size < PAGEHDRSZ:
        raise corrupted(None, "sub-page of %d bytes is shorter than its header" % size)
    _pgno, pad, flags, lower, upper = PAGE_HEADER.unpack_from(data, 0)
    if lower < PAGEHDRSZ or lower & 1:
        raise corrupted(None, "sub-page has bad mp_lower %d" % lower)
    n = (lower - PAGEHDRSZ) >> 1
    # LMDB grows a sub-page by copying mp_upper.. of it (validate-subpage-bounds patch);
    # a LEAF2 sub-page has no pointers, so its mp_upper may exceed its size by 2 per item
    if upper < lower or upper > size + (2 * n if flags & P_LEAF2 else 0):
        raise corrupted(None, "sub-page has bad mp_lower/mp_upper (%d/%d)" % (lower, upper))
    if flags & P_LEAF2:
        if pad == 0 or PAGEHDRSZ + n * pad > size:
            raise corrupted(None, "LEAF2 sub-page items overrun it")
        vals = [data[PAGEHDRSZ + i * pad:PAGEHDRSZ + (i + 1) * pad] for i in range(n)]
    else:
        if lower > size:
            raise corrupted(None, "sub-page pointer array overruns it")
        ptrs = struct.unpack_from("<%dH" % n, data, PAGEHDRSZ)
        vals = []
        for off in ptrs:
            if off < lower or off + 8 > size:
                raise corrupted(None, "sub-page node offset %d out of bounds" % off)
            ksize = NODE_HEADER.unpack_from(data, off)[3]
            if off + 8 + ksize > size:
                raise corrupted(None, "sub-page value runs past its end")
            vals.append(data[off + 8:off + 8 + ksize])
    if rev:
        vals = [v[::-1] for v in vals]
    return vals


def encode_subpage(vals: List[bytes], rev: bool, fixed: bool) -> bytes:
    """A sub-page holding exactly ``vals`` (sort form), with no free space."""
    raw = [v[::-1] for v in vals] if rev else vals
    n = len(raw)
    lower = PAGEHDRSZ + 2 * n
    if fixed:
        size = len(raw[0])
        return PAGE_HEADER.pack(0, size, SUBPAGE_FLAGS | P_LEAF2, lower, lower) + b"".join(raw)
    nodes = []
    ptrs = []
    end = lower + sum((9 + len(v)) & ~1 for v in raw)
    upper = end
    for v in raw:
        node = NODE_HEADER.pack(0, 0, 0, len(v)) + v
        if len(node) & 1:
            node += b"\0"
        upper -= len(node)
        ptrs.append(upper)
        nodes.append(node)
    nodes.reverse()
    return b"".join((PAGE_HEADER.pack(0, 0, SUBPAGE_FLAGS, lower, lower),
                     struct.pack("<%dH" % n, *ptrs), *nodes))


def subpage_size(vals: List[bytes], fixed: bool) -> int:
    if fixed:
        return PAGEHDRSZ + len(vals[0]) * len(vals)
    return PAGEHDRSZ + sum(((9 + len(v)) & ~1) + 2 for v in vals)


# -- one key's values --------------------------------------------------------------------------

class Dups:
    """The values of the leaf entry ``leaf.keys[i]`` of DUPSORT database ``d``.

    ``kind`` is 0 (one plain value), 1 (a sub-page) or 2 (a sub-database). For kinds 0 and 1
    ``vals`` is the sorted list of sort-form values; for kind 2 ``sub`` is the sub-database's
    state and values are found through its tree.
    """

    __slots__ = ("txn", "d", "kind", "vals", "sub", "rev", "fixed")

    def __init__(self, txn: Transaction, d: DbState, leaf: Any, i: int) -> None:
        self.txn = txn
        self.d = d
        self.rev = value_rev(d.flags)
        self.fixed = bool(d.flags & MDB_DUPFIXED)
        fl = leaf.nfl[i]
        if fl & F_DUPDATA and not d.flags & MDB_DUPSORT:
            raise corrupted(leaf.pgno, "duplicates node in a database without DUPSORT")
        self.sub: Optional[DbState] = None
        self.vals: List[bytes] = []
        if not fl & F_DUPDATA:
            v = bytes(txn._value(leaf.vals[i], leaf.sizes[i], fl))
            self.kind = 0
            self.vals = [v[::-1] if self.rev else v]
        elif fl & F_SUBDATA:
            self.kind = 2
            raw = txn._value(leaf.vals[i], leaf.sizes[i], fl)
            if len(raw) != 48:
                raise corrupted(leaf.pgno, "sub-database record of %d bytes" % len(raw))
            self.sub = sub_state(DbRecord.unpack(raw), d, txn._psize)
        else:
            self.kind = 1
            self.vals = decode_subpage(bytes(txn._value(leaf.vals[i], leaf.sizes[i], fl)),
                                       self.rev)

    def count(self) -> int:
        if self.kind == 2:
            return self.sub.entries  # type: ignore[union-attr]
        return len(self.vals)

    def first(self) -> bytes:
        if self.kind == 2:
            pages, idxs = _edge(self.txn, self.sub, False)
            return pages[-1].keys[idxs[-1]]
        return self.vals[0]

    def all(self) -> List[bytes]:
        """Every value, in order (sort form)."""
        if self.kind != 2:
            return list(self.vals)
        out: List[bytes] = []
        pages, idxs = _edge(self.txn, self.sub, False)
        while True:
            out.append(pages[-1].keys[idxs[-1]])
            if not tree.step(self.txn, self.sub, pages, idxs, True):  # type: ignore[arg-type]
                return out


def sub_state(rec: DbRecord, outer: DbState, psize: int) -> DbState:
    """The state of a sub-database from its record; `CorruptedError` if the record's item
    size (md_pad) cannot be that of its pages (LMDB's validate-md-pad patch)."""
    fixed = (rec.flags | outer.flags) & MDB_DUPFIXED
    if rec.pad > psize - PAGEHDRSZ or (fixed and rec.pad == 0):
        raise corrupted(None, "sub-database record has item size (md_pad) %d" % rec.pad)
    d = DbState.from_record(rec, value_rev(outer.flags))
    d.leaf2 = bool(outer.flags & MDB_DUPFIXED)
    return d


def check_items(sub: Optional[DbState], leaf: Any) -> None:
    """A fixed-size sub-database's leaf must hold items of its record's size: LMDB reads
    the items with the record's md_pad, so a forged one would misread (or overrun) them."""
    if sub.leaf2 and leaf.keys and len(leaf.keys[0]) != sub.pad:  # type: ignore[union-attr]
        raise corrupted(leaf.pgno, "LEAF2 items of %d bytes in a sub-database of item size "
                        "%d" % (len(leaf.keys[0]), sub.pad))  # type: ignore[union-attr]


def sub_search(txn: Transaction, sub: Optional[DbState], sv: bytes) -> Optional[tree.Path]:
    """`tree.search` in a sub-database, with `check_items` on the leaf reached."""
    path = tree.search(txn, sub, sv)  # type: ignore[arg-type]
    if path is not None:
        check_items(sub, path[0][-1])
    return path


def new_sub_state(outer: DbState, fixed_size: int) -> DbState:
    """An empty sub-database for a key of DUPSORT database ``outer``."""
    flags = 0
    pad = 0
    if outer.flags & MDB_DUPFIXED:
        flags = MDB_DUPFIXED | (MDB_INTEGERKEY if outer.flags & MDB_INTEGERDUP else 0)
        pad = fixed_size
    d = DbState(pad, flags, 0, 0, 0, 0, 0, P_INVALID, value_rev(outer.flags))
    d.leaf2 = bool(outer.flags & MDB_DUPFIXED)
    return d


def _edge(txn: Transaction, d: Optional[DbState], last: bool) -> tree.Path:
    path = tree.edge(txn, d, last)  # type: ignore[arg-type]
    if path is None:
        raise corrupted(None, "empty sub-database in a node")
    check_items(d, path[0][-1])
    return path


def _pages_of(d: DbState) -> Tuple[int, int, int]:
    return d.branch_pages, d.leaf_pages, d.overflow_pages


def _sub_insert(txn: Transaction, sub: DbState, sv: bytes) -> None:
    path = tree.search(txn, sub, sv)
    if path is None:
        tree.insert_first(txn, sub, sv, b"", 0, 0)
    else:
        pages, idxs = path
        tree.touch_path(txn, sub, pages, idxs)
        tree.leaf_insert(txn, sub, pages, idxs, sv, b"", 0, 0)
    sub.entries += 1


# -- writes ---------------------------------------------------------------------------------------

def check_value(value: bytes, what: str) -> None:
    """Values of a DUPSORT database are keys of their sub-structure: 1..511 bytes."""
    if not 0 < len(value) <= 511:
        raise BadValsizeError(what, BadValsizeError.MDB_CODE)


def put(txn: Transaction, d: DbState, pages: List[Any], idxs: List[int], sv: bytes,
        dupdata: bool, append: bool) -> bool:
    """Add sort-form value ``sv`` to the existing key at the path (already touched).
    False when the pair exists and ``dupdata`` is False, or ``append`` is not in order."""
    leaf = pages[-1]
    i = idxs[-1]
    dups = Dups(txn, d, leaf, i)
    if dups.fixed:
        size = len(dups.first())
        if len(sv) != size:
            raise BadValsizeError("mdb_put", BadValsizeError.MDB_CODE)
    if dups.kind == 2:
        sub = dups.sub
        assert sub is not None
        path = sub_search(txn, sub, sv)
        if path is not None:
            sp, si = path
            if append and (si[-1] < len(sp[-1].keys) or tree.step(txn, sub, sp, si, True)):
                return False   # APPENDDUP: only past the last value
            if si[-1] < len(sp[-1].keys) and sp[-1].keys[si[-1]] == sv:
                return dupdata
        before = _pages_of(sub)
        _sub_insert(txn, sub, sv)
        _store_sub(txn, d, pages, idxs, sub, before)
        d.entries += 1
        return True
    vals = dups.vals
    j = bisect_left(vals, sv)
    if append and j < len(vals):
        return False   # APPENDDUP: only past the last value
    if j < len(vals) and vals[j] == sv:
        return dupdata
    insort(vals, sv)
    _store_list(txn, d, pages, idxs, vals, dups.fixed)
    d.entries += 1
    return True


def _store_list(txn: Transaction, d: DbState, pages: List[Any], idxs: List[int],
                vals: List[bytes], fixed: bool) -> None:
    """Write ``vals`` back as a sub-page, or as a new sub-database if too large."""
    leaf = pages[-1]
    klen = len(leaf.keys[idxs[-1]])
    if 8 + klen + subpage_size(vals, fixed) <= txn.env._nodemax:
        data = encode_subpage(vals, value_rev(d.flags), fixed)
        tree.leaf_set(txn, d, pages, idxs, data, len(data), F_DUPDATA)
        return
    sub = new_sub_state(d, len(vals[0]))
    for v in vals:
        _sub_insert(txn, sub, v)
    _store_sub(txn, d, pages, idxs, sub, (0, 0, 0))


def _store_sub(txn: Transaction, d: DbState, pages: List[Any], idxs: List[int],
               sub: DbState, before: Tuple[int, int, int]) -> None:
    """Write a sub-database's record into its node; count its page changes in ``d``."""
    d.branch_pages += sub.branch_pages - before[0]
    d.leaf_pages += sub.leaf_pages - before[1]
    d.overflow_pages += sub.overflow_pages - before[2]
    rec = DbRecord(*sub.record()).pack()
    tree.leaf_set(txn, d, pages, idxs, rec, len(rec), F_DUPDATA | F_SUBDATA)


def delete_value(txn: Transaction, d: DbState, pages: List[Any], idxs: List[int],
                 sv: bytes) -> bool:
    """Remove one value from the key at the path (touched); the key goes with its last
    value. False if the pair does not exist."""
    leaf = pages[-1]
    i = idxs[-1]
    dups = Dups(txn, d, leaf, i)
    if dups.kind == 2:
        sub = dups.sub
        assert sub is not None
        path = sub_search(txn, sub, sv)
        if path is None:
            return False
        sp, si = path
        if si[-1] >= len(sp[-1].keys) or sp[-1].keys[si[-1]] != sv:
            return False
        before = _pages_of(sub)
        tree.touch_path(txn, sub, sp, si)
        tree.leaf_delete(txn, sub, sp, si)
        sub.entries -= 1
        d.entries -= 1
        if sub.root == P_INVALID:
            _count_pages(d, sub, before)
            tree.leaf_delete(txn, d, pages, idxs)
        else:
            _store_sub(txn, d, pages, idxs, sub, before)
        return True
    vals = dups.vals
    j = bisect_left(vals, sv)
    if j >= len(vals) or vals[j] != sv:
        return False
    del vals[j]
    d.entries -= 1
    if not vals:
        tree.leaf_delete(txn, d, pages, idxs)
    else:
        _store_list(txn, d, pages, idxs, vals, dups.fixed)
    return True


def _count_pages(d: DbState, sub: DbState, before: Tuple[int, int, int]) -> None:
    d.branch_pages += sub.branch_pages - before[0]
    d.leaf_pages += sub.leaf_pages - before[1]
    d.overflow_pages += sub.overflow_pages - before[2]


def delete_all(txn: Transaction, d: DbState, pages: List[Any], idxs: List[int]) -> None:
    """Remove the key at the path (touched) with every value."""
    from .freelist import free_tree
    leaf = pages[-1]
    i = idxs[-1]
    dups = Dups(txn, d, leaf, i)
    d.entries -= dups.count()
    if dups.kind == 2:
        sub = dups.sub
        assert sub is not None
        before = _pages_of(sub)
        free_tree(txn, sub)
        _count_pages(d, sub, before)
    tree.leaf_delete(txn, d, pages, idxs)


def free_subtrees(txn: Transaction, d: DbState, leaf: Any) -> None:
    """Free the sub-databases referenced from a leaf (when its database is dropped)."""
    from .freelist import free_tree
    for i, fl in enumerate(leaf.nfl):
        if fl & F_DUPDATA and fl & F_SUBDATA:
            sub = sub_state(DbRecord.unpack(txn._value(leaf.vals[i], leaf.sizes[i], fl)), d,
                            txn._psize)
            free_tree(txn, sub)
