"""Offline integrity checker for LMDB 0.9 data files (the `lmdb` package's ``lmdb.verify``).

Theory of operation
-------------------
The checker reads the data file itself (``os.pread``, or ``seek``/``read`` on file objects
without a descriptor) and never goes through the engine, so it can be pointed at a file from
an untrusted source. It must itself survive any file: every page number, count, offset and
size read from the file is bounds-checked before use, every tree is walked with an explicit
stack (depth limited to 32, LMDB's cursor stack), and every page is claimed at most once, so a
cycle or a page shared by two trees is reported instead of being followed again. The work is
therefore bounded by the size of the file, and the number of problems listed is capped.

What it checks, with the current meta page selected as LMDB does (larger txnid; tie: page 0):

* both meta pages: P_META, magic, version 1, page size (a power of two, 256..32768), the
  txnid parity of the slot (transaction N writes meta N & 1);
* every tree: the free list (FREE_DBI), the main DB, each named DB, each DUPSORT sub-database;
  also DUPSORT sub-pages, LEAF2 pages and overflow runs. Per page: header flags valid for the
  position and free of in-memory flags, ``lower``/``upper`` sane, nodes inside the node area and
  not overlapping, key sizes, strict key order under the database's comparator, separator keys
  of branch pages bounding their children, all leaves at one depth, at least two children per
  branch page (one is tolerated in the free list);
* each database record's counters against what the walk found;
* free-list records: 8-byte txnid keys, a count and that many strictly descending page numbers;
* page accounting: every page in [2, last_pg] is in exactly one tree or exactly one free-list
  record. Pages beyond last_pg are not looked at, nor is the content of free pages.

Decisions where the format allows a choice (see ``lmdb-format.md``):

* DUPSORT ``branch_pages``/``leaf_pages`` (§10.4): LMDB <= 0.9.35 counts only the outer tree,
  0.9.36 adds every sub-database's pages, and a file written by both can hold anything in
  between; any value in that closed range is accepted.
* DUPSORT ``entries`` (§8, §10.4): LMDB <= 0.9.35 can drop an empty duplicate value while still
  counting it, at most once per key holding several values. A record that claims more entries
  than found, by no more than the number of such keys, gives a problem string that starts with
  ``warning:``; callers that only care about readability may filter those out. Any other
  mismatch is a plain problem.
* An overflow run may be longer than its value needs (LMDB overwrites a run in place with a
  smaller value, §6.6); its extra pages belong to the run unless something else claims them.
* A free-list value may be longer than its count needs (§11.1); only the counted part is read.
* Problems about the meta pages do not stop the check when the other meta page is usable
  (C LMDB refuses such a file, and the problem says so); `VerifyError` is raised only when
  nothing can be checked: not an LMDB 0.9 file, too short, foreign byte order or word size,
  an invalid page size in meta page 0, or no usable meta page.
"""

from __future__ import annotations

import os
import struct
from typing import IO, Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from .layout import (
    DATA_VERSION,
    DB_RECORD_SIZE,
    F_BIGDATA,
    F_DUPDATA,
    F_SUBDATA,
    MAGIC,
    MAX_DEPTH,
    MAX_KEY_SIZE,
    MDB_DUPFIXED,
    MDB_DUPSORT,
    MDB_FIXEDMAP,
    MDB_INTEGERDUP,
    MDB_INTEGERKEY,
    MDB_NOSUBDIR,
    MDB_REVERSEDUP,
    MDB_REVERSEKEY,
    META_SIZE,
    NODE_HEADER,
    OVERFLOW_HEADER,
    P_BRANCH,
    P_DIRTY,
    P_INVALID,
    P_LEAF,
    P_LEAF2,
    P_META,
    P_OVERFLOW,
    P_SUBP,
    PAGE_HEADER,
    PAGEHDRSZ,
    PERSISTENT_DB_FLAGS,
    U32,
    U64,
    DbRecord,
    Meta,
    even,
    overflow_pages,
    unpack_meta,
    valid_page_size,
)

__all__ = ["VerifyError", "verify", "resolve_data_path", "format_report"]

MAX_PROBLEMS = 1000       # stop walking after this many: the file is bad enough to say so
LISTED_PAGES = 10         # accounting problems named page by page before a summary line

# In-memory page flags (mdb.c) that must never reach a committed tree page.
P_LOOSE = 0x4000
P_KEEP = 0x8000
MEMORY_FLAGS = P_DIRTY | P_LOOSE | P_KEEP
SUBPAGE_FLAGS = P_LEAF | P_DIRTY | P_SUBP          # 0x52; with P_LEAF2: 0x72
DUPSORT_ONLY = MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP
NODE_FLAGS = F_BIGDATA | F_SUBDATA | F_DUPDATA
FREE_DB_FLAGS = MDB_INTEGERKEY | MDB_FIXEDMAP | MDB_NOSUBDIR
FIRST_PGNO = 2                                     # pages 0 and 1 are the metas

# the kinds of tree
FREE, MAIN, NAMED, DUPS = "free", "main", "named", "dups"

# a key in comparable form: bytes, reversed bytes or int (one form per _Order)
SortKey = Any


class VerifyError(Exception):
    """The file cannot be verified at all (not an LMDB 0.9 file, or no usable meta page)."""


class _Stop(Exception):
    """Raised internally once MAX_PROBLEMS problems are recorded."""


class _PageMap(Dict[int, str]):
    """Page number -> who holds it (a non-empty label); a missing page maps to ``''``."""

    def __missing__(self, pgno: int) -> str:
        return ""


def _show(raw: bytes) -> str:
    """A short printable form of a key or DB name for problem strings."""
    if raw and all(32 <= b < 127 for b in raw) and len(raw) <= 40:
        return repr(raw.decode("ascii"))
    text = raw[:20].hex()
    return "0x" + text + ("..." if len(raw) > 20 else "")


# -- key orders (lmdb-format.md §7) ----------------------------------------------------------


class _Order:
    """How one set of keys is sized and ordered: a DB's keys, or the duplicates of one key.

    ``sort`` maps a key to a value whose Python ordering is the comparator's: the key itself
    (memcmp, then length), the reversed key (REVERSEKEY/REVERSEDUP), or its integer value
    (INTEGERKEY/INTEGERDUP and the free list).
    """

    def __init__(self, mode: str, integer: bool = False, fixed: int = 0,
                 dups: bool = False, free: bool = False) -> None:
        self.mode = mode
        self.integer = integer
        self.fixed = fixed        # DUPFIXED item size, 0 when items may differ
        self.dups = dups          # items are duplicate values ("dup data" in problems)
        self.free = free          # free-list keys: 8-byte txnids
        self.int_size = 0         # size of the first integer key seen
        self.width_reported = False

    def sort(self, key: bytes) -> SortKey:
        if self.mode == "int":
            return int.from_bytes(key, "little")
        if self.mode == "reverse":
            return key[::-1]
        return key

    def size_problem(self, key: bytes) -> Optional[str]:
        """Why this key's size is not allowed here, or None."""
        n = len(key)
        noun = "value" if self.dups else "key"
        if self.free:
            return None if n == 8 else "free-list key of %d bytes (must be 8)" % n
        if not 1 <= n <= MAX_KEY_SIZE:
            return "%s of %d bytes (must be 1..%d)" % (noun, n, MAX_KEY_SIZE)
        if self.width_reported:
            return None
        # a width problem concerns the whole set: say it once, then compare as they are
        if self.fixed and n != self.fixed:
            self.width_reported = True
            return "DUPFIXED value of %d bytes, expected %d" % (n, self.fixed)
        if self.integer and n != self.int_size:
            first, self.int_size = self.int_size, n
            if n not in (4, 8) or first:
                self.width_reported = True
                if n not in (4, 8):
                    return "integer %s of %d bytes (must be 4 or 8)" % (noun, n)
                return "integer %s of %d bytes among %d-byte ones" % (noun, n, first)
        return None


def _key_order(flags: int) -> _Order:
    """Keys of a main or named DB: REVERSEKEY wins over INTEGERKEY."""
    if flags & MDB_REVERSEKEY:
        return _Order("reverse")
    if flags & MDB_INTEGERKEY:
        return _Order("int", integer=True)
    return _Order("bytes")


def _dup_order(flags: int, fixed: int = 0) -> _Order:
    """Duplicate values of a DUPSORT DB with these flags: INTEGERDUP wins over REVERSEDUP."""
    if flags & MDB_INTEGERDUP:
        return _Order("int", integer=True, fixed=fixed, dups=True)
    if flags & MDB_REVERSEDUP:
        return _Order("reverse", fixed=fixed, dups=True)
    return _Order("bytes", fixed=fixed, dups=True)


class _Tree:
    """One B+tree being walked, with its record and what the walk found."""

    def __init__(self, name: str, kind: str, flags: int, record: DbRecord) -> None:
        self.name = name
        self.kind = kind
        self.flags = flags        # the DB's flags; for DUPS those of the parent DB
        self.record = record
        self.dupsort = kind in (MAIN, NAMED) and bool(flags & MDB_DUPSORT)
        self.fixed = kind == DUPS and bool(flags & MDB_DUPFIXED)
        if kind == FREE:
            self.order = _Order("int", free=True)
        elif kind == DUPS:
            self.order = _dup_order(flags, record.pad if self.fixed else 0)
        else:
            self.order = _key_order(flags)
        self.branch = self.leaf = self.overflow = self.entries = 0
        self.dup_branch = self.dup_leaf = 0   # pages of this DB's DUPSORT sub-databases
        self.multi = 0                         # keys holding several values (sub-page/sub-DB)
        self.leaf_depths: Set[int] = set()


Bound = Optional[SortKey]


class _Verifier:
    """Checks one data file. ``_Verifier(fileobj, filesize).verify()`` -> problems.

    After `verify`, ``psize`` is the page size, ``next_pgno`` is last_pg + 1, ``live`` maps
    each reachable page to its owner and ``free`` each free-listed page to its record
    (``free[pgno]`` is ``''`` for a page not in the free list).
    """

    def __init__(self, fileobj: IO[bytes], filesize: int) -> None:
        self.fileobj = fileobj
        self.filesize = filesize
        self._fd: Optional[int] = None    # read with os.pread when there is a descriptor
        if hasattr(os, "pread"):
            try:
                self._fd = fileobj.fileno()
            except (AttributeError, OSError, ValueError):   # e.g. io.BytesIO
                pass
        self.problems: List[str] = []
        self.psize = 0
        self.last_pg = 0
        self.next_pgno = 0
        self.meta_txnid = 0
        self.live = _PageMap()
        self.free = _PageMap()
        self._slack: Dict[int, str] = {}   # extra pages of over-long overflow runs
        self._named: List[_Tree] = []

    # -- entry point -----------------------------------------------------------------------

    def verify(self) -> List[str]:
        """Run every check; returns the problems found (empty: sound)."""
        try:
            meta = self._load_metas()
            self._check_core_records(meta)
            self._walk_tree(_Tree("free DB", FREE, meta.free_db.flags, meta.free_db))
            self._walk_tree(_Tree("main DB", MAIN, meta.main_db.flags, meta.main_db))
            while self._named:
                self._walk_tree(self._named.pop(0))
            self._check_accounting()
        except _Stop:
            self.problems.append("... stopped after %d problems" % MAX_PROBLEMS)
        except OSError as exc:
            raise VerifyError("read error: %s" % exc) from exc
        return self.problems

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        if len(self.problems) >= MAX_PROBLEMS:
            raise _Stop

    # -- reading ---------------------------------------------------------------------------

    def _read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; short (or empty) at the end of the file."""
        size = max(0, min(size, self.filesize - offset))
        if size == 0:
            return b""
        if self._fd is not None:
            return os.pread(self._fd, size, offset)
        self.fileobj.seek(offset)
        return self.fileobj.read(size)

    def _in_file(self, pgno: int, count: int = 1) -> bool:
        return (pgno + count) * self.psize <= self.filesize

    def _page(self, pgno: int) -> Optional[bytes]:
        """Page ``pgno``, or None when the file does not hold all of it."""
        if not self._in_file(pgno):
            return None
        data = self._read(pgno * self.psize, self.psize)
        return data if len(data) == self.psize else None

    # -- meta pages (§4) -------------------------------------------------------------------

    def _load_metas(self) -> Meta:
        """Validate both metas, pick the current one, set psize/last_pg. Raises VerifyError."""
        head = self._read(0, META_SIZE)
        if len(head) < META_SIZE:
            raise VerifyError("file of %d bytes is too short for an LMDB meta page (%d bytes)"
                              % (self.filesize, META_SIZE))
        psize = DbRecord.unpack(head, 40).pad
        if U32.unpack_from(head, 16)[0] != MAGIC:
            self._refuse_foreign(head)
            # meta 0 is damaged; go on only if its page size leads to an intact meta 1
            tail = self._read(psize + 16, 4) if valid_page_size(psize) else b""
            if len(tail) < 4 or U32.unpack_from(tail, 0)[0] != MAGIC:
                raise VerifyError("not an LMDB data file (no LMDB magic in page 0)")
        if not valid_page_size(psize):
            raise VerifyError("page 0: bad page size %d (must be a power of two in 256..32768)"
                              % psize)
        self.psize = psize
        if self.filesize < psize + META_SIZE:
            raise VerifyError("file of %d bytes is too short to hold meta page 1 (page size %d)"
                              % (self.filesize, psize))
        usable: List[Tuple[int, Meta]] = []
        defects: List[str] = []
        for idx in (0, 1):
            buf = self._read(idx * psize, META_SIZE)
            defect = self._meta_defect(idx, buf, psize)
            if defect:
                defects.append(defect)
            else:
                usable.append((idx, unpack_meta(buf)[1]))
        if not usable:
            raise VerifyError("no usable meta page: " + "; ".join(defects))
        for defect in defects:
            self._problem(defect + " (C LMDB refuses to open the file)")
        for idx, meta in usable:
            self._check_meta_fields(idx, buf=self._read(idx * psize, PAGEHDRSZ), meta=meta)
        # larger txnid wins; on a tie, page 0 (max() keeps the first of equals)
        _idx, meta = max(usable, key=lambda item: item[1].txnid)
        self.last_pg = meta.last_pg
        self.next_pgno = meta.last_pg + 1
        self.meta_txnid = meta.txnid
        return meta

    @staticmethod
    def _refuse_foreign(head: bytes) -> None:
        """Raise VerifyError if page 0 holds the magic of another LMDB layout."""
        def u32(off: int) -> int:
            return int(U32.unpack_from(head, off)[0])

        if u32(24) == MAGIC:
            raise VerifyError("LMDB 1.0 file (24-byte page header, data version %d); only the "
                              "0.9 format (data version 1) is supported" % u32(28))
        if u32(12) == MAGIC:
            raise VerifyError("file written by a 32-bit LMDB build; only 64-bit files are "
                              "supported")
        swapped = int.from_bytes(MAGIC.to_bytes(4, "little"), "big")
        if swapped in (u32(12), u32(16), u32(24)):
            raise VerifyError("file written on a machine of the other byte order")

    @staticmethod
    def _meta_defect(idx: int, buf: bytes, psize: int) -> str:
        """Why meta page ``idx`` cannot be used, or '' when it can."""
        where = "page %d: meta page" % idx
        if len(buf) < META_SIZE:
            return "%s beyond EOF" % where
        flags, meta = unpack_meta(buf)
        if not flags & P_META:
            return "%s lacks P_META (flags 0x%x)" % (where, flags)
        if meta.magic != MAGIC:
            return "%s has bad magic 0x%08x" % (where, meta.magic)
        if meta.version != DATA_VERSION:
            return "%s has data version %d, not %d" % (where, meta.version, DATA_VERSION)
        if meta.page_size != psize:
            return "%s says page size %d, meta page 0 says %d" % (where, meta.page_size, psize)
        return ""

    def _check_meta_fields(self, idx: int, buf: bytes, meta: Meta) -> None:
        """Problems a usable meta can still have."""
        pgno = int(U64.unpack_from(buf, 0)[0])
        if pgno != idx:
            self._problem("page %d: meta page header says pgno %d" % (idx, pgno))
        # transaction N writes meta N & 1; a C reader with a lock file picks the meta that way
        if meta.txnid & 1 != idx and meta.txnid:
            self._problem("page %d: meta page holds txnid %d, but transaction N writes meta "
                          "page N & 1" % (idx, meta.txnid))
        if meta.last_pg < 1:
            self._problem("page %d: meta page says last_pg %d (at least 1)" % (idx, meta.last_pg))

    def _check_core_records(self, meta: Meta) -> None:
        """Flags of FREE_DBI: INTEGERKEY plus the environment's FIXEDMAP/NOSUBDIR bits (§4).
        C ignores the environment bits but honours DUPSORT and the like if present."""
        flags = meta.free_db.flags
        if flags & ~FREE_DB_FLAGS or not flags & MDB_INTEGERKEY:
            self._problem("free DB: invalid flag combination 0x%x (INTEGERKEY, plus the "
                          "environment's FIXEDMAP/NOSUBDIR bits)" % flags)

    # -- trees -----------------------------------------------------------------------------

    def _record_walkable(self, tree: _Tree) -> bool:
        """Check a DB record before its walk; False when there is nothing to walk."""
        rec, name = tree.record, tree.name
        self._check_record_flags(tree)
        if rec.root == P_INVALID:
            if tree.kind == DUPS:
                self._problem("%s: empty duplicate sub-DB (C frees it with its last value)"
                              % name)
            elif rec.depth or rec.branch_pages or rec.leaf_pages or rec.overflow_pages \
                    or rec.entries:
                self._problem("%s: empty (root P_INVALID) but record says depth %d, %d branch, "
                              "%d leaf, %d overflow pages, %d entries"
                              % (name, rec.depth, rec.branch_pages, rec.leaf_pages,
                                 rec.overflow_pages, rec.entries))
            return False
        if rec.depth == 0:
            self._problem("%s: record says depth 0 but has root page %d" % (name, rec.root))
        elif rec.depth > MAX_DEPTH:
            self._problem("%s: record says depth %d, more than %d" % (name, rec.depth, MAX_DEPTH))
        return self._root_ok(tree)

    def _check_record_flags(self, tree: _Tree) -> None:
        rec, name = tree.record, tree.name
        if tree.kind in (MAIN, NAMED):
            if rec.flags & ~PERSISTENT_DB_FLAGS:
                self._problem("%s: unknown flag bits 0x%x" % (name, rec.flags & ~PERSISTENT_DB_FLAGS))
            if rec.flags & DUPSORT_ONLY and not rec.flags & MDB_DUPSORT:
                self._problem("%s: invalid flag combination 0x%x (DUPFIXED, INTEGERDUP and "
                              "REVERSEDUP need DUPSORT)" % (name, rec.flags))
            if rec.pad > MAX_KEY_SIZE:
                self._problem("%s: md_pad %d is too large (at most %d)"
                              % (name, rec.pad, MAX_KEY_SIZE))
        elif tree.kind == DUPS:
            want = 0
            if tree.flags & MDB_DUPFIXED:
                want = MDB_DUPFIXED | (MDB_INTEGERKEY if tree.flags & MDB_INTEGERDUP else 0)
                if not 1 <= rec.pad <= MAX_KEY_SIZE:
                    self._problem("%s: md_pad %d is not a DUPFIXED value size (1..%d)"
                                  % (name, rec.pad, MAX_KEY_SIZE))
            elif rec.pad > MAX_KEY_SIZE:
                self._problem("%s: md_pad %d is too large" % (name, rec.pad))
            if rec.flags != want:
                self._problem("%s: record flags 0x%x, expected 0x%x for a DB with flags 0x%x"
                              % (name, rec.flags, want, tree.flags))

    def _root_ok(self, tree: _Tree) -> bool:
        root = tree.record.root
        if not FIRST_PGNO <= root <= self.last_pg:
            self._problem("%s: root page %d out of range (2..last_pg %d)"
                          % (tree.name, root, self.last_pg))
            return False
        if not self._in_file(root):
            self._problem("%s: root page %d beyond EOF (the file holds %d pages)"
                          % (tree.name, root, self.filesize // self.psize))
            return False
        return True

    def _ref_ok(self, pgno: int, what: str) -> bool:
        """Check a page reference; ``what`` names the referrer, e.g. 'page 12: child 3'."""
        if pgno < FIRST_PGNO:
            self._problem("%s points to meta page %d (out-of-range page)" % (what, pgno))
            return False
        if pgno > self.last_pg:
            self._problem("%s points past last_pg %d (page %d)" % (what, self.last_pg, pgno))
            return False
        if not self._in_file(pgno):
            self._problem("%s points to page %d, beyond EOF (the file holds %d pages)"
                          % (what, pgno, self.filesize // self.psize))
            return False
        return True

    def _claim(self, pgno: int, owner: str) -> bool:
        """Record that ``owner`` holds ``pgno``; False (and a problem) if someone already does."""
        other = self.live.get(pgno)
        if other is not None:
            if other == owner:
                self._problem("page %d: reached twice within %s (cycle or shared subtree)"
                              % (pgno, owner))
            else:
                self._problem("page %d: reachable twice (%s and %s)" % (pgno, other, owner))
            return False
        self.live[pgno] = owner
        return True

    def _walk_tree(self, tree: _Tree) -> None:
        """Walk one tree from its record's root, then compare the record's counters.

        Uses an explicit stack of (pgno, depth, low bound, high bound): every key below a
        child must satisfy low <= key < high in the comparator's order.
        """
        if not self._record_walkable(tree):
            return
        stack: List[Tuple[int, int, Bound, Bound]] = [(tree.record.root, 1, None, None)]
        while stack:
            pgno, depth, low, high = stack.pop()
            if not self._claim(pgno, tree.name):
                continue
            page = self._page(pgno)
            if page is None:     # the file shrank under us
                self._problem("page %d: short read (beyond EOF)" % pgno)
                continue
            ptype = self._tree_page_type(tree, pgno, page)
            if ptype == P_BRANCH:
                tree.branch += 1
                if depth >= MAX_DEPTH:
                    self._problem("page %d: branch page at depth %d; trees are at most %d deep"
                                  % (pgno, depth, MAX_DEPTH))
                    continue
                children = self._branch_page(tree, pgno, page, low, high)
                for child, c_low, c_high in reversed(children):
                    stack.append((child, depth + 1, c_low, c_high))
            elif ptype is not None:
                tree.leaf += 1
                tree.leaf_depths.add(depth)
                if ptype & P_LEAF2:
                    self._leaf2_page(tree, pgno, page, low, high)
                else:
                    self._leaf_page(tree, pgno, page, low, high)
        self._check_counters(tree)

    def _tree_page_type(self, tree: _Tree, pgno: int, page: bytes) -> Optional[int]:
        """P_BRANCH, P_LEAF or P_LEAF|P_LEAF2 after checking the header; None if unusable."""
        hdr_pgno, _pad, flags, _lower, _upper = PAGE_HEADER.unpack_from(page, 0)
        if hdr_pgno != pgno:
            self._problem("page %d: header says pgno %d" % (pgno, hdr_pgno))
        if flags & MEMORY_FLAGS:
            self._problem("page %d: in-memory flags 0x%x (P_DIRTY/P_LOOSE/P_KEEP) on a committed "
                          "page of %s" % (pgno, flags & MEMORY_FLAGS, tree.name))
        ptype = flags & ~MEMORY_FLAGS
        if ptype == P_BRANCH:
            return ptype
        if ptype == P_LEAF:
            if tree.fixed:
                self._problem("page %d: plain leaf in DUPFIXED %s (LEAF2 expected)"
                              % (pgno, tree.name))
            return ptype
        if ptype == P_LEAF | P_LEAF2:
            if tree.fixed:
                return ptype
            self._problem("page %d: LEAF2 page in %s, which is not a DUPFIXED duplicate tree"
                          % (pgno, tree.name))
            return None
        self._problem("page %d: mixed or invalid page flags 0x%x for a page of %s"
                      % (pgno, flags, tree.name))
        return None

    def _node_offsets(self, where: str, buf: bytes, base: int,
                      span: int) -> Optional[List[Tuple[int, int]]]:
        """(index, absolute offset) of each node of a page or sub-page whose header is at
        ``base`` and which is ``span`` bytes long; problems for pointers outside the node area.
        None when lower/upper are insane."""
        lower, upper = struct.unpack_from("<HH", buf, base + 12)
        if lower < PAGEHDRSZ or upper > span or lower > upper or lower & 1:
            self._problem("%s: bad mp_lower/mp_upper (%d/%d, size %d)" % (where, lower, upper, span))
            return None
        count = (lower - PAGEHDRSZ) // 2
        ptrs = struct.unpack_from("<%dH" % count, buf, base + PAGEHDRSZ)
        nodes = []
        for i, ptr in enumerate(ptrs):
            if ptr < upper or ptr + 8 > span or ptr & 1:
                self._problem("%s: node %d offset %d outside the node area %d..%d"
                              % (where, i, ptr, upper, span))
                continue
            nodes.append((i, base + ptr))
        return nodes

    def _check_overlap(self, where: str, extents: List[Tuple[int, int, int]]) -> None:
        """extents: (start, end, index) of each node; none may overlap another."""
        extents.sort()
        for (start_a, end_a, i), (start_b, _end_b, j) in zip(extents, extents[1:]):
            if start_b < end_a:
                self._problem("%s: node %d overlaps node %d (offsets %d and %d)"
                              % (where, j, i, start_a, start_b))

    def _ordered(self, order: _Order, where: str, idx: int, key: bytes, prev: Bound,
                 low: Bound, high: Bound, separator: bool = False) -> Optional[SortKey]:
        """Check one key's size, order after ``prev`` and bounds; its sort key, or None."""
        why = order.size_problem(key)
        if why:
            noun = "separator" if separator else "item" if order.dups else "key"
            self._problem("%s: %s %d: %s" % (where, noun, idx, why))
            return None
        skey = order.sort(key)
        if prev is not None and skey <= prev:
            if order.dups and not separator:
                self._problem("%s: dup data out of order at item %d" % (where, idx))
            else:
                self._problem("%s: %s %d out of order"
                              % (where, "separator key" if separator else "key", idx))
        elif (low is not None and skey < low) or (high is not None and skey >= high):
            what = ("separator key" if separator else
                    "dup data item" if order.dups else "key")
            self._problem("%s: %s %d %s outside the range its parent's separator keys allow"
                          % (where, what, idx, _show(key)))
        return skey

    def _branch_page(self, tree: _Tree, pgno: int, page: bytes, low: Bound,
                     high: Bound) -> List[Tuple[int, Bound, Bound]]:
        """Check a branch page; its children as (pgno, low, high), in key order."""
        where = "page %d" % pgno
        nodes = self._node_offsets(where, page, 0, self.psize)
        if nodes is None:
            return []
        count = (int(struct.unpack_from("<H", page, 12)[0]) - PAGEHDRSZ) // 2
        if count < 2 and not (tree.kind == FREE and count == 1):
            self._problem("%s: branch page with %d child(ren), at least 2 required" % (where, count))
        seps: Dict[int, SortKey] = {}
        children: List[Tuple[int, int]] = []
        extents = []
        prev: Bound = None
        for i, off in nodes:
            lo16, hi16, top16, ksize = NODE_HEADER.unpack_from(page, off)
            end = off + 8 + ksize
            if end > self.psize:
                self._problem("%s: node %d key of %d bytes runs past the page end" % (where, i, ksize))
                continue
            extents.append((off, even(end), i))
            if i > 0:   # key 0 of a branch page is ignored (normally empty)
                skey = self._ordered(tree.order, where, i, page[off + 8:end], prev, low, high,
                                     separator=True)
                if skey is not None:
                    seps[i] = prev = skey
            child = lo16 | hi16 << 16 | top16 << 32
            if self._ref_ok(child, "%s: child %d" % (where, i)):
                children.append((i, child))
        self._check_overlap(where, extents)
        out: List[Tuple[int, Bound, Bound]] = []
        for i, child in children:
            out.append((child, _tighter(low, seps.get(i), max),
                        _tighter(high, seps.get(i + 1) if i + 1 < count else None, min)))
        return out

    def _leaf_page(self, tree: _Tree, pgno: int, page: bytes, low: Bound, high: Bound) -> None:
        where = "page %d" % pgno
        nodes = self._node_offsets(where, page, 0, self.psize)
        if nodes is None:
            return
        if not nodes:
            self._problem("%s: leaf page without nodes" % where)
        extents = []
        prev: Bound = None
        for i, off in nodes:
            lo16, hi16, nflags, ksize = NODE_HEADER.unpack_from(page, off)
            kend = off + 8 + ksize
            if kend > self.psize:
                self._problem("%s: node %d key of %d bytes runs past the page end" % (where, i, ksize))
                continue
            key = page[off + 8:kend]
            skey = self._ordered(tree.order, where, i, key, prev, low, high)
            if skey is not None:
                prev = skey
            dsize = lo16 | hi16 << 16
            if tree.kind == DUPS:
                end = self._dup_tree_node(tree, where, i, nflags, dsize, kend)
            else:
                end = self._leaf_value(tree, "%s: node %d" % (where, i), page, nflags, key,
                                       kend, dsize)
            if end:
                extents.append((off, even(end), i))
        self._check_overlap(where, extents)

    def _dup_tree_node(self, tree: _Tree, where: str, i: int, nflags: int, dsize: int,
                       kend: int) -> int:
        """A node of a DUPSORT sub-DB: the key is the value, there is no data."""
        if nflags or dsize:
            self._problem("%s: node %d of %s has flags 0x%x and %d data bytes (must be 0 and 0)"
                          % (where, i, tree.name, nflags, dsize))
        tree.entries += 1
        return kend

    def _leaf_value(self, tree: _Tree, where: str, page: bytes, nflags: int, key: bytes,
                    dstart: int, dsize: int) -> int:
        """Check one leaf node's data by its flags; the node's end offset, 0 if unusable."""
        if nflags & ~NODE_FLAGS:
            self._problem("%s: unknown node flags 0x%x" % (where, nflags))
            return 0
        if tree.kind == FREE and nflags not in (0, F_BIGDATA):
            self._problem("%s: free-list node with flags 0x%x" % (where, nflags))
            return 0
        if tree.dupsort and not nflags & F_DUPDATA and dsize > MAX_KEY_SIZE:
            self._problem("%s: DUPSORT value of %d bytes (at most %d)"
                          % (where, dsize, MAX_KEY_SIZE))
        if nflags == F_BIGDATA:
            if dstart + 8 > self.psize:
                self._problem("%s: overflow page number runs past the page end" % where)
                return 0
            run = int(U64.unpack_from(page, dstart)[0])
            data = self._overflow(tree, where, run, dsize, want_data=tree.kind == FREE)
            tree.entries += 1
            if data is not None:
                self._free_record(where, key, data)
            return dstart + 8
        if nflags & F_BIGDATA:
            self._problem("%s: invalid flag combination 0x%x on a node" % (where, nflags))
            return 0
        end = dstart + dsize
        if end > self.psize:
            self._problem("%s: data of %d bytes runs past the page end" % (where, dsize))
            return 0
        data = page[dstart:end]
        if nflags == 0:
            tree.entries += 1
            if tree.kind == FREE:
                self._free_record(where, key, data)
        elif nflags == F_SUBDATA:
            self._named_db(tree, where, key, data)
        elif not tree.dupsort:
            self._problem("%s: F_DUPDATA node in %s, which is not DUPSORT" % (where, tree.name))
        elif nflags == F_DUPDATA:
            tree.multi += 1
            tree.entries += self._sub_page(tree, where, page, dstart, dsize)
        else:
            tree.multi += 1
            self._dup_sub_db(tree, where, key, data)
        return end

    def _named_db(self, tree: _Tree, where: str, key: bytes, data: bytes) -> None:
        """An F_SUBDATA node: a named DB's record, allowed only in a plain main DB."""
        tree.entries += 1
        if tree.kind != MAIN:
            self._problem("%s: named-DB record (F_SUBDATA) in %s; only the main DB holds them"
                          % (where, tree.name))
            return
        if tree.flags & (MDB_DUPSORT | MDB_INTEGERKEY):
            self._problem("%s: named-DB record in a main DB with flags 0x%x (DUPSORT/INTEGERKEY "
                          "main DBs cannot hold named DBs)" % (where, tree.flags))
            return
        if len(data) != DB_RECORD_SIZE:
            self._problem("%s: named-DB record of %d bytes (must be %d)"
                          % (where, len(data), DB_RECORD_SIZE))
            return
        rec = DbRecord.unpack(data)
        self._named.append(_Tree("DB %s" % _show(key), NAMED, rec.flags, rec))

    def _dup_sub_db(self, tree: _Tree, where: str, key: bytes, data: bytes) -> None:
        """An F_DUPDATA|F_SUBDATA node: walk the key's duplicate tree now (it is counted in
        the parent's entries and, under 0.9.36, in its page counters)."""
        if len(data) != DB_RECORD_SIZE:
            self._problem("%s: duplicate sub-DB record of %d bytes (must be %d)"
                          % (where, len(data), DB_RECORD_SIZE))
            return
        rec = DbRecord.unpack(data)
        sub = _Tree("%s duplicates of key %s" % (tree.name, _show(key)), DUPS, tree.flags, rec)
        self._walk_tree(sub)
        tree.entries += sub.entries
        tree.dup_branch += sub.branch
        tree.dup_leaf += sub.leaf

    def _sub_page(self, tree: _Tree, where: str, page: bytes, base: int, size: int) -> int:
        """Check a DUPSORT sub-page of ``size`` bytes at ``base``; the number of values."""
        where = "%s sub-page" % where
        if size < PAGEHDRSZ:
            self._problem("%s: %d bytes, smaller than a page header" % (where, size))
            return 0
        _pg, pad, flags, lower, upper = PAGE_HEADER.unpack_from(page, base)
        fixed = bool(tree.flags & MDB_DUPFIXED)
        want = SUBPAGE_FLAGS | (P_LEAF2 if fixed else 0)
        if flags != want:
            self._problem("%s: flags 0x%x, expected 0x%x (sub-pages carry P_LEAF|P_DIRTY|P_SUBP%s)"
                          % (where, flags, want, "|P_LEAF2" if fixed else ""))
        order = _dup_order(tree.flags)
        values: Optional[List[Tuple[int, bytes]]]
        if flags & P_LEAF2:
            items = self._leaf2_items(where, page, base, size, pad, lower, upper)
            values = None if items is None else list(enumerate(items))
        else:
            values = self._sub_page_nodes(where, page, base, size)
        if values is None:
            return 0
        if not values:
            self._problem("%s: no values (an empty duplicate set must be deleted)" % where)
        prev: Bound = None
        for j, value in values:
            skey = self._ordered(order, where, j, value, prev, None, None)
            if skey is not None:
                prev = skey
        return len(values)

    def _sub_page_nodes(self, where: str, page: bytes, base: int,
                        size: int) -> Optional[List[Tuple[int, bytes]]]:
        """The (index, value) nodes of a non-LEAF2 sub-page."""
        nodes = self._node_offsets(where, page, base, size)
        if nodes is None:
            return None
        limit = base + size
        values: List[Tuple[int, bytes]] = []
        extents = []
        for j, off in nodes:
            lo16, hi16, nflags, ksize = NODE_HEADER.unpack_from(page, off)
            end = off + 8 + ksize
            if end > limit:
                self._problem("%s: value %d of %d bytes runs past the sub-page end"
                              % (where, j, ksize))
                continue
            if nflags or lo16 or hi16:
                self._problem("%s: value node %d has flags 0x%x and %d data bytes (must be 0 and 0)"
                              % (where, j, nflags, lo16 | hi16 << 16))
            extents.append((off, base + min(even(end - base), size), j))   # even relative to base
            values.append((j, page[off + 8:end]))
        self._check_overlap(where, extents)
        return values

    def _leaf2_items(self, where: str, buf: bytes, base: int, span: int, size: int,
                     lower: int, upper: int) -> Optional[List[bytes]]:
        """The fixed-size items of a LEAF2 page or sub-page (§6.7)."""
        if lower < PAGEHDRSZ or lower & 1:
            self._problem("%s: bad mp_lower/mp_upper (%d/%d, size %d)" % (where, lower, upper, span))
            return None
        count = (lower - PAGEHDRSZ) // 2
        if not 1 <= size <= MAX_KEY_SIZE:
            self._problem("%s: LEAF2 item size %d (must be 1..%d)" % (where, size, MAX_KEY_SIZE))
            return None
        if PAGEHDRSZ + count * size > span:
            self._problem("%s: bad mp_lower/mp_upper: %d items of %d bytes do not fit in %d bytes"
                          % (where, count, size, span))
            return None
        # C keeps upper - lower = free bytes, and trusts it when inserting
        if upper != span - count * (size - 2):
            self._problem("%s: bad mp_lower/mp_upper (%d/%d): %d items of %d bytes in %d bytes "
                          "need upper %d" % (where, lower, upper, count, size, span,
                                             span - count * (size - 2)))
        start = base + PAGEHDRSZ
        return [buf[start + j * size:start + (j + 1) * size] for j in range(count)]

    def _leaf2_page(self, tree: _Tree, pgno: int, page: bytes, low: Bound, high: Bound) -> None:
        where = "page %d" % pgno
        _pg, pad, _flags, lower, upper = PAGE_HEADER.unpack_from(page, 0)
        if pad != tree.record.pad:
            self._problem("%s: LEAF2 item size %d, but %s's record says md_pad %d"
                          % (where, pad, tree.name, tree.record.pad))
        items = self._leaf2_items(where, page, 0, self.psize, pad, lower, upper)
        if items is None:
            return
        if not items:
            self._problem("%s: leaf page without items" % where)
        prev: Bound = None
        for j, item in enumerate(items):
            skey = self._ordered(tree.order, where, j, item, prev, low, high)
            if skey is not None:
                prev = skey
        tree.entries += len(items)

    # -- overflow runs (§6.6) --------------------------------------------------------------

    def _overflow(self, tree: _Tree, where: str, run: int, dsize: int,
                  want_data: bool) -> Optional[bytes]:
        """Check and claim the overflow run of a node; the value when ``want_data``."""
        if not self._ref_ok(run, "%s: overflow" % where):
            return None
        head = self._page(run)
        if head is None:
            self._problem("page %d: short read (beyond EOF)" % run)
            return None
        hdr_pgno, _pad, flags, pages = OVERFLOW_HEADER.unpack_from(head, 0)
        if flags != P_OVERFLOW:
            self._problem("%s points to page %d, which is not a pure overflow page (flags 0x%x)"
                          % (where, run, flags))
            return None
        if hdr_pgno != run:
            self._problem("page %d: header says pgno %d" % (run, hdr_pgno))
        need = overflow_pages(dsize, self.psize)
        owner = "%s overflow run at page %d" % (tree.name, run)
        length = max(pages, need)
        if pages < need:
            self._problem("page %d: overflow header mp_pages %d, but the %d-byte value of %s "
                          "needs %d" % (run, pages, dsize, where, need))
        elif pages > need:
            owner += " (header mp_pages %d, value needs %d)" % (pages, need)
        if run + length - 1 > self.last_pg:
            self._problem("page %d: overflow run of %d pages (header mp_pages %d) runs past "
                          "last_pg %d" % (run, length, pages, self.last_pg))
            length = self.last_pg - run + 1
        if not self._in_file(run, length):
            self._problem("page %d: overflow run of %d pages (header mp_pages %d) runs beyond "
                          "EOF" % (run, length, pages))
            length = self.filesize // self.psize - run
        tree.overflow += max(pages, need)
        for pgno in range(run, run + min(need, length)):
            if not self._claim(pgno, owner):
                return None
        # extra pages of an over-long run: theirs unless something else claims them (at the end)
        for pgno in range(run + need, run + length):
            if pgno in self._slack:
                self._problem("page %d: claimed by two overflow runs (%s and %s)"
                              % (pgno, self._slack[pgno], owner))
                break
            self._slack[pgno] = owner
        if not want_data or need > length:
            return None
        data = self._read(run * self.psize + PAGEHDRSZ, dsize)
        return data if len(data) == dsize else None

    # -- the free list (§11) ---------------------------------------------------------------

    def _free_record(self, where: str, key: bytes, data: bytes) -> None:
        """A FREE_DBI record: u64 count, then count strictly descending page numbers."""
        if len(key) != 8:
            return   # already reported by the key check
        txnid = int(U64.unpack_from(key, 0)[0])
        label = "free-list record %d" % txnid
        if not 1 <= txnid <= self.meta_txnid:
            self._problem("%s: %s outside the committed txnids 1..%d"
                          % (where, label, self.meta_txnid))
        if len(data) < 8:
            self._problem("%s: %s has %d bytes, no room for its count (count does not match "
                          "value size)" % (where, label, len(data)))
            return
        count = int(U64.unpack_from(data, 0)[0])
        if 8 * (count + 1) > len(data):
            self._problem("%s: %s count %d does not match value size %d (needs %d bytes)"
                          % (where, label, count, len(data), 8 * (count + 1)))
            return
        pages = struct.unpack_from("<%dQ" % count, data, 8)
        disorder = next((idx for idx in range(1, count) if pages[idx] >= pages[idx - 1]), 0)
        if disorder:
            self._problem("%s: %s not strictly descending at entry %d (%d after %d)"
                          % (where, label, disorder, pages[disorder], pages[disorder - 1]))
        for pgno in pages:
            if not FIRST_PGNO <= pgno <= self.last_pg:
                self._problem("%s: %s lists out-of-range page %d (2..last_pg %d)"
                              % (where, label, pgno, self.last_pg))
                continue
            other = self.free.get(pgno)
            if other is not None:
                self._problem("page %d: in the freeDB twice (%s and %s)" % (pgno, other, label))
                continue
            self.free[pgno] = label

    # -- counters and accounting -----------------------------------------------------------

    def _check_counters(self, tree: _Tree) -> None:
        rec, name = tree.record, tree.name
        depth = max(tree.leaf_depths) if tree.leaf_depths else 0
        if len(tree.leaf_depths) > 1:
            self._problem("%s: leaves at different depths %s"
                          % (name, ", ".join(map(str, sorted(tree.leaf_depths)))))
        if depth and depth != rec.depth:
            self._problem("%s: walked depth %d, record says %d" % (name, depth, rec.depth))
        for label, own, subs, said in (("branch pages", tree.branch, tree.dup_branch,
                                        rec.branch_pages),
                                       ("leaf pages", tree.leaf, tree.dup_leaf, rec.leaf_pages)):
            # DUPSORT: 0.9.24 counts the outer tree only, 0.9.36 adds the sub-DBs (§10.4)
            if own <= said <= own + subs:
                continue
            walked = "%d %s" % (own, label)
            if subs:
                walked += " (%d with duplicate sub-DBs)" % (own + subs)
            self._problem("%s: walked %s, record says %d" % (name, walked, said))
        if tree.overflow != rec.overflow_pages:
            self._problem("%s: walked %d overflow pages, record says %d"
                          % (name, tree.overflow, rec.overflow_pages))
        if tree.entries != rec.entries:
            excess = rec.entries - tree.entries
            text = "%s: walked %d entries, record says %d" % (name, tree.entries, rec.entries)
            if tree.dupsort and 0 < excess <= tree.multi:
                self._problem("warning: %s; LMDB <= 0.9.35 counts empty duplicate values it "
                              "dropped" % text)
            else:
                self._problem(text)

    def _check_accounting(self) -> None:
        """Every page in [2, last_pg] in exactly one tree or exactly one free-list record."""
        live, free = self.live, self.free
        for pgno, owner in sorted(self._slack.items()):
            other = live.get(pgno) or free.get(pgno)
            if other:
                self._problem("page %d: claimed by %s and also by %s" % (pgno, owner, other))
            else:
                live[pgno] = owner
        both = sorted(pgno for pgno in free if pgno in live)
        for pgno in both[:LISTED_PAGES]:
            self._problem("page %d: both reachable and in the freeDB (%s; %s)"
                          % (pgno, live[pgno], free[pgno]))
        if len(both) > LISTED_PAGES:
            self._problem("... %d more pages both reachable and in the freeDB"
                          % (len(both) - LISTED_PAGES))
        missing = max(0, self.last_pg - 1) - (len(live) + len(free) - len(both))
        if missing <= 0:
            return
        found = 0
        pgno = FIRST_PGNO
        while found < min(missing, LISTED_PAGES):   # bounded: len(live)+len(free)+LISTED steps
            if pgno not in live and pgno not in free:
                self._problem("page %d: neither reachable nor in the freeDB (leaked)" % pgno)
                found += 1
            pgno += 1
        if missing > found:
            self._problem("... %d more pages up to last_pg %d neither reachable nor in the freeDB"
                          % (missing - found, self.last_pg))


def _tighter(bound: Bound, key: Bound, pick: Any) -> Bound:
    """The tighter of a parent's bound and a separator key (``pick`` is max or min)."""
    if key is None:
        return bound
    if bound is None:
        return key
    return pick(bound, key)


# -- public API ---------------------------------------------------------------------------------


def resolve_data_path(path: Union[str, "os.PathLike[str]"], subdir: Optional[bool] = None) -> str:
    """The data file of an environment: ``<path>/data.mdb`` for a directory environment
    (``subdir=None`` guesses from whether ``path`` is a directory), else ``path`` itself."""
    path = os.fspath(path)
    if subdir is None:
        subdir = os.path.isdir(path)
    return os.path.join(path, "data.mdb") if subdir else path


def verify(path: Union[str, "os.PathLike[str]"], subdir: Optional[bool] = None) -> List[str]:
    """Check an environment's data file offline; returns the problems found (empty: sound).

    Reads the file directly, never through the engine, so it is safe on untrusted files; the
    cost is one read of every reachable page. Strings starting with ``warning:`` describe
    states older LMDB versions leave behind that do not affect reading. Raises `VerifyError`
    when the file cannot be verified at all (unreadable, not an LMDB 0.9 file, no usable meta
    page).
    """
    data_path = resolve_data_path(path, subdir)
    try:
        with open(data_path, "rb") as fileobj:
            size = os.fstat(fileobj.fileno()).st_size
            return _Verifier(fileobj, size).verify()
    except OSError as exc:
        raise VerifyError("cannot read %s: %s" % (data_path, exc)) from exc


def format_report(problems: Sequence[str]) -> str:
    """'verify: OK' when there is no problem, else the problems one per line."""
    if not problems:
        return "verify: OK"
    return "\n".join(problems)
