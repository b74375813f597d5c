"""Hot backups: a plain copy of a snapshot's pages, or a compacting copy.

Both read one read transaction's snapshot, so writers may keep committing meanwhile.

The plain copy writes the snapshot's meta into both meta pages, then pages 2..last_pg as they
are.

The compacting copy numbers pages as LMDB's ``mdb_env_copy2(MDB_CP_COMPACT)`` does, so that
its output matches ``mdb_copy -c`` page for page: each tree is walked depth first and a page
gets the next number once everything below it has one (children before their branch, a
leaf's overflow runs and sub-databases, in node order, before the leaf). Page bytes are copied
as they are; only page numbers and the child, overflow and root pointers are rewritten. Meta
page 0 is a fresh environment's, meta page 1 holds the copied main database at txnid 1.

A write transaction's snapshot (``txn=`` a write transaction) has pages that are not in the
file yet, so it is copied by rebuilding every database into a fresh file instead; that copy has
no free pages either, but its page order is the rebuild's.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any, List, Set

from . import freelist
from .errors import IncompatibleError, corrupted
from .layout import (
    DB_RECORD,
    DB_RECORD_SIZE,
    EMPTY_DB,
    F_BIGDATA,
    F_DUPDATA,
    F_SUBDATA,
    MAIN_DBI,
    MAX_DEPTH,
    MDB_NOSUBDIR,
    NODE_HEADER,
    OVERFLOW_HEADER,
    P_BRANCH,
    P_INVALID,
    P_LEAF,
    P_LEAF2,
    P_OVERFLOW,
    PAGE_HEADER,
    PAGEHDRSZ,
    Meta,
    new_meta,
)

if TYPE_CHECKING:
    from .environment import Environment
    from .txn import Transaction

_CHUNK = 1 << 20
_PGNO = DB_RECORD.size - 8   # offset of md_root in an MDB_db record


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def plain_copy(env: Environment, txn: Transaction, fd: int) -> None:
    psize = env._psize
    meta = txn._meta
    # the snapshot's meta in its own slot; the other slot holds the same tree one id lower,
    # so any reader picks the snapshot
    other = meta._replace(txnid=max(meta.txnid - 1, 0))
    pages = {meta.txnid & 1: meta, (meta.txnid & 1) ^ 1: other}
    _write_all(fd, pages[0].pack_page(0, psize) + pages[1].pack_page(1, psize))
    m = txn._map
    end = (meta.last_pg + 1) * psize
    pos = 2 * psize
    while pos < end:
        chunk = bytes(m[pos:min(end, pos + _CHUNK)])
        want = min(end, pos + _CHUNK) - pos
        _write_all(fd, chunk + bytes(want - len(chunk)))   # pages never written are free
        pos += want


def compact_copy(env: Environment, txn: Transaction, fd: int) -> None:
    if txn._write:
        _rebuild_copy(env, txn, fd)
        return
    meta = txn._meta
    psize = env._psize
    # As LMDB, the meta pages go first (so a pipe will do): the new last page, which is also
    # the main root, is the old one less the free pages.
    expected = meta.last_pg - _free_page_count(txn)
    _write_all(fd, _compact_metas(env, meta, expected))
    walker = _Walker(txn, fd)
    root = walker.walk(meta.main_db.root, dups=False)
    walker.flush()
    if root != P_INVALID and root != expected:
        # a page leak (or a damaged free list): LMDB fails with MDB_INCOMPATIBLE; we can fix
        # the meta pages up when the target is seekable
        try:
            if walker.start < 0:
                raise OSError("not seekable")
            os.pwrite(fd, _compact_metas(env, meta, root), walker.start - 2 * psize)
        except OSError:
            raise IncompatibleError("mdb_env_copyfd3: page leak, and the target cannot seek",
                                    IncompatibleError.MDB_CODE) from None


def _compact_metas(env: Environment, meta: Meta, last_pg: int) -> bytes:
    """Meta page 0 as a new environment's, meta page 1 with the copied main database."""
    psize = env._psize
    fresh = new_meta(psize, env._map_size, meta.free_db.flags & MDB_NOSUBDIR)
    fresh = fresh._replace(address=meta.address)
    copied = fresh
    if meta.main_db.root != P_INVALID:
        copied = fresh._replace(main_db=meta.main_db._replace(root=last_pg), last_pg=last_pg,
                                txnid=1)
    elif meta.main_db.flags:
        copied = fresh._replace(main_db=EMPTY_DB._replace(flags=meta.main_db.flags), txnid=1)
    return fresh.pack_page(0, psize) + copied.pack_page(1, psize)


def _free_page_count(txn: Transaction) -> int:
    """Pages of the snapshot that hold nothing live: the free list's entries and its tree."""
    rec = txn._meta.free_db
    listed = sum(count for _txnid, count, _pages in freelist.records(txn))
    return rec.branch_pages + rec.leaf_pages + rec.overflow_pages + listed


class _Walker:
    """Copies trees page by page in LMDB's compacting order (see the module docstring)."""

    def __init__(self, txn: Transaction, fd: int) -> None:
        self.map: Any = txn._map
        self.psize: int = txn._psize
        self.last_pg: int = txn._meta.last_pg
        self.fd = fd
        try:
            self.start = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            self.start = -1                         # a pipe
        self.next_pgno = 2
        self.out: List[bytes] = []
        self.pending = 0
        self.seen: Set[int] = set()

    # -- output ----------------------------------------------------------------------------

    def emit_raw(self, data: bytes) -> None:
        self.out.append(data)
        self.pending += len(data)
        self.next_pgno += len(data) // self.psize
        if self.pending >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.out:
            _write_all(self.fd, b"".join(self.out))
            self.out, self.pending = [], 0

    def emit(self, page: bytearray) -> int:
        pgno = self.next_pgno
        page[0:8] = pgno.to_bytes(8, "little")
        self.emit_raw(bytes(page))
        return pgno

    # -- input -----------------------------------------------------------------------------

    def load(self, pgno: int, expect: int) -> bytearray:
        """A writable copy of tree page ``pgno``, checked as far as the walk relies on it."""
        if pgno < 2 or pgno > self.last_pg:
            raise corrupted(pgno, "page number out of range (last page %d)" % self.last_pg)
        if pgno in self.seen:
            raise corrupted(pgno, "page reached twice (the tree has a cycle or shared page)")
        self.seen.add(pgno)
        base = pgno * self.psize
        page = bytearray(self.map[base:base + self.psize])
        if len(page) < self.psize:
            raise corrupted(pgno, "page beyond the end of the file")
        _p, _pad, flags, lower, upper = PAGE_HEADER.unpack_from(page)
        if not flags & expect:
            raise corrupted(pgno, "not a %s page (flags 0x%x)"
                            % ("tree" if expect & P_BRANCH else "leaf", flags))
        if lower < PAGEHDRSZ or lower > upper or upper > self.psize:
            raise corrupted(pgno, "bad free-space bounds %d..%d" % (lower, upper))
        return page

    def node(self, page: bytearray, pgno: int, i: int) -> int:
        """Offset of node ``i`` of ``page``, with its header inside the page."""
        off = int.from_bytes(page[PAGEHDRSZ + 2 * i:PAGEHDRSZ + 2 * i + 2], "little")
        if off < PAGEHDRSZ or off + NODE_HEADER.size > self.psize:
            raise corrupted(pgno, "node %d offset %d out of the page" % (i, off))
        return off

    # -- the walk --------------------------------------------------------------------------

    def walk(self, root: int, dups: bool) -> int:
        """Copy the tree under ``root``; its new root page number."""
        if root == P_INVALID:
            return root
        path: List[List] = []            # [branch page, its old pgno, child index]
        pgno = root
        page = self.load(pgno, P_BRANCH | P_LEAF)
        while True:
            flags = PAGE_HEADER.unpack_from(page)[2]
            if flags & P_BRANCH:                            # down to the first leaf
                if len(path) >= MAX_DEPTH:
                    raise corrupted(pgno, "tree deeper than %d" % MAX_DEPTH)
                if self._count(page) == 0:
                    raise corrupted(pgno, "empty branch page")
                path.append([page, pgno, 0])
                pgno = self._child(page, pgno, 0)
                page = self.load(pgno, P_BRANCH | P_LEAF)
                continue
            if not flags & P_LEAF2 and not dups:
                self._copy_leaf_children(page, pgno)
            new = self.emit(page)
            while path:                                     # up, numbering finished branches
                parent, ppgno, i = path[-1]
                self._set_child(parent, i, new)
                i += 1
                if i < self._count(parent):
                    path[-1][2] = i
                    pgno = self._child(parent, ppgno, i)
                    page = self.load(pgno, P_BRANCH | P_LEAF)
                    break
                path.pop()
                new = self.emit(parent)
            else:
                return new

    def _count(self, page: bytearray) -> int:
        return (PAGE_HEADER.unpack_from(page)[3] - PAGEHDRSZ) >> 1

    def _child(self, page: bytearray, pgno: int, i: int) -> int:
        lo, hi, fl, _ks = NODE_HEADER.unpack_from(page, self.node(page, pgno, i))
        return lo | hi << 16 | fl << 32

    def _set_child(self, page: bytearray, i: int, child: int) -> None:
        off = int.from_bytes(page[PAGEHDRSZ + 2 * i:PAGEHDRSZ + 2 * i + 2], "little")
        page[off:off + 6] = NODE_HEADER.pack(child & 0xFFFF, child >> 16 & 0xFFFF,
                                             child >> 32 & 0xFFFF, 0)[:6]

    def _copy_leaf_children(self, page: bytearray, pgno: int) -> None:
        for i in range(self._count(page)):
            off = self.node(page, pgno, i)
            lo, hi, nflags, ksize = NODE_HEADER.unpack_from(page, off)
            data = off + NODE_HEADER.size + ksize
            if nflags & F_BIGDATA:
                if data + 8 > self.psize:
                    raise corrupted(pgno, "node %d overflow pointer out of the page" % i)
                old = int.from_bytes(page[data:data + 8], "little")
                page[data:data + 8] = self.next_pgno.to_bytes(8, "little")
                self._copy_overflow(old, lo | hi << 16)
            elif nflags & F_SUBDATA:
                if data + DB_RECORD_SIZE > self.psize:
                    raise corrupted(pgno, "node %d database record out of the page" % i)
                root = int.from_bytes(page[data + _PGNO:data + _PGNO + 8], "little")
                root = self.walk(root, dups=bool(nflags & F_DUPDATA))
                page[data + _PGNO:data + _PGNO + 8] = root.to_bytes(8, "little")

    def _copy_overflow(self, pgno: int, size: int) -> None:
        if pgno < 2 or pgno > self.last_pg or pgno in self.seen:
            raise corrupted(pgno, "bad overflow page number")
        base = pgno * self.psize
        _p, _pad, flags, pages = OVERFLOW_HEADER.unpack_from(self.map, base)
        if not flags & P_OVERFLOW or pages < 1 or pgno + pages - 1 > self.last_pg \
                or (pages * self.psize - PAGEHDRSZ) < size:
            raise corrupted(pgno, "not an overflow run holding %d bytes" % size)
        self.seen.add(pgno)
        run = bytearray(self.map[base:base + pages * self.psize])
        if len(run) < pages * self.psize:
            raise corrupted(pgno, "overflow run beyond the end of the file")
        self.emit(run)


def _rebuild_copy(env: Environment, txn: Transaction, fd: int) -> None:
    from .environment import Environment as Env
    main = txn._dbs[MAIN_DBI]
    names = txn._db_names()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.mdb")
        out = Env(path, subdir=False, lock=False, sync=False, max_dbs=len(names) + 1)
        try:
            with out.begin(write=True) as wtxn:
                wmain = wtxn._dbs[MAIN_DBI]
                wmain.flags = main.flags
                wmain.rev = main.rev
                for name in names:
                    src = env.open_db(name, txn=txn, create=False)
                    dst = out.open_db(name, txn=wtxn, **src.flags())
                    cur = txn.cursor(db=src)
                    for key, value in cur:
                        wtxn.put(key, value, append=True, db=dst)
                cur = txn.cursor(db=env._main_db)
                for key, value in cur:
                    leaf, i = cur._current()
                    if not leaf.nfl[i] & F_SUBDATA:  # type: ignore[index]
                        wtxn.put(key, value)    # between the records of named databases
        finally:
            out.close()
        with open(path, "rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                _write_all(fd, chunk)
