"""Transactions: snapshots for readers, copy-on-write for the single writer.

Theory of operation. A read transaction copies the current meta (roots, counters, last page)
and map at `begin` and never looks at anything newer, so it sees one snapshot for its whole
life; it is registered with the environment so the writer does not reuse pages it can reach.

A write transaction keeps every page it changes in ``dirty`` (decoded `Page` objects) under a
page number no snapshot can see: a page freed by an earlier transaction that no live reader
predates (the free list, see freelist.py), a page freed earlier in this transaction, or a new
one at the end of the file. Nothing reachable from either meta page is ever written, so a
crash at any moment leaves the last committed state intact. Commit saves the free list, writes
the dirty pages in page order, syncs, writes the meta page of the new id (``txnid & 1``) and
syncs again (environment.py owns that sequence).
"""

from __future__ import annotations

import errno
import itertools
import threading
from bisect import bisect_left, bisect_right
from itertools import islice
from operator import add
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import dups, freelist, tree
from . import page as pagemod
from .errors import (
    BadTxnError,
    BadValsizeError,
    Error,
    IncompatibleError,
    InvalidParameterError,
    MapFullError,
    ReadonlyError,
    closed_error,
    corrupted,
)
from .layout import (
    F_BIGDATA,
    F_DUPDATA,
    F_SUBDATA,
    FREE_DBI,
    MAIN_DBI,
    MAX_DATA_SIZE,
    MAX_DEPTH,
    MAX_KEY_SIZE,
    MDB_DUPSORT,
    MDB_INTEGERKEY,
    MDB_REVERSEKEY,
    OVERFLOW_HEADER,
    P_BRANCH,
    P_INVALID,
    P_LEAF2,
    P_OVERFLOW,
    PAGEHDRSZ,
    DbRecord,
    overflow_pages,
)
from .page import Page
from .tree import DbState

if TYPE_CHECKING:
    from .cursor import Cursor
    from .environment import Environment, _Database

_INDEX_AFTER = 32  # lookups per leaf below a branch page before it gets an index
# branch pages' record indexes (Transaction._index_below), in all, per page the cache holds:
# half a cached leaf's worth, so they add at most about half again to the cache's memory
INDEX_RECORDS_PER_PAGE = 16
_tokens = itertools.count(1)   # owner marks of write transactions' pages (page.dirty)
_UNICODE = "Won't implicitly convert Unicode to bytes; use .encode()"


def to_bytes(obj: Any) -> bytes:
    """Bytes of a buffer-protocol object; `TypeError` for `str` and non-buffers."""
    cls = obj.__class__
    if cls is bytes:
        return obj
    if isinstance(obj, str):
        raise TypeError(_UNICODE)
    try:
        return bytes(memoryview(obj))
    except TypeError:
        raise TypeError("expected a bytes-like object, got %s" % cls.__name__) from None


def _evict(cache: Dict[int, Page]) -> None:
    """Make room in a full cache: drop the oldest eighth of it, except branch pages
    (about 1 % of a tree, and on every lookup's path), which move to the young end, so a
    stream of leaves never pushes them out; if that left no room (a cache of branches), the
    oldest page goes whatever it is, so the cache stays bounded. A batch, because a dict
    popped from the front one entry at a time makes each `next(iter(...))` step over every
    entry popped before it (a 10^6-key scan spent 14 % of its time there). Another thread
    may change the dictionary meanwhile: then give up quietly."""
    try:
        size = len(cache)
        for pgno in list(islice(cache, max(1, size >> 3))):
            page = cache.pop(pgno, None)
            if page is not None and page.flags & P_BRANCH:
                cache[pgno] = page
        if len(cache) >= size:
            del cache[next(iter(cache))]
    except (KeyError, RuntimeError, StopIteration):
        pass


def check_key(key: Any, what: str) -> bytes:
    if key.__class__ is not bytes:
        key = to_bytes(key)
    if not 0 < len(key) <= MAX_KEY_SIZE:
        raise BadValsizeError(what, BadValsizeError.MDB_CODE)
    return key


class Transaction:
    """A read snapshot or the environment's single write transaction.

    ``Transaction(env, db=None, parent=None, write=False, buffers=False)``; usually
    ``env.begin(...)``. As a context manager it commits when the block ends normally and
    aborts on an exception.
    """

    _map: Any                       # the snapshot's map of the data file
    _psize: int
    _meta: Any                      # the snapshot's Meta
    _mv: Any
    _txnid: int
    _caches: List[Dict[int, Page]]
    _last_pg: int
    _dbs: Dict[int, DbState]
    _created: List[Any]             # handles of databases created here
    # the writer's state
    dirty: Dict[int, Page]
    ovf: Dict[int, bytes]           # dirty overflow runs: first pgno -> value
    freed: List[int]                # pages this txn stops using (clean ones)
    loose: List[int]                # pages allocated and freed in this txn
    next_pgno: int
    reclaim: freelist.Reclaimer
    _seq = 0                        # begin order (environment.py: handle visibility)
    # (db state, path, its leaf, the inline value limit, the page capacity) of the last
    # append, valid while the generation is _append_gen (see put and _put)
    _append_hint: Optional[Tuple[DbState, tree.Path, Page, int, int]] = None
    _append_gen = -1
    _slot: Optional[int] = None     # a read transaction's slot in the lock file's reader table
    _reader_txnid = 0               # the txnid that slot publishes (<= the snapshot's)

    def __init__(self, env: Environment, db: Optional[_Database] = None,
                 parent: Optional[Transaction] = None, write: bool = False,
                 buffers: bool = False) -> None:
        env._check_open()
        self.env = env
        self._db = db if db is not None else env._main_db
        self._write = bool(write)
        self._buffers = bool(buffers)
        self._done = False
        self._spoiled = False
        self._gen = 0          # bumped by every change to the trees (cursors re-find keys)
        self._mutations = 0    # bumped where the lmdb package counts a write (see cursor.py)
        self._cursors: List[Cursor] = []
        self._owner = 0
        # the thread that may write now (-1: nobody): one check in put() stands for "not
        # ended, not spoiled, no child, a write transaction, on its own thread"
        self._putter = -1
        self._unusable = False   # ended, spoiled or has a child: one check in get()
        self._token = next(_tokens)
        self._parent: Optional[Transaction] = None
        self._child: Optional[Transaction] = None
        if parent is not None:
            self._begin_nested(parent)
        elif self._write:
            env._begin_write(self)
        else:
            env._begin_read(self)

    def _begin_nested(self, parent: Transaction) -> None:
        """A child of write transaction ``parent``: it starts from the parent's state and
        its commit hands its state back; its abort leaves the parent as it was."""
        if parent.env is not self.env or not parent._write or not self._write:
            raise InvalidParameterError(
                "mdb_txn_begin: a nested transaction needs a write parent of the same "
                "environment and write=True", errno.EINVAL)
        parent._check_usable()
        if parent._owner != threading.get_ident():
            raise Error("mdb_txn_begin: the parent belongs to another thread")
        self._parent = parent
        parent._child = self
        parent._putter = -1
        parent._unusable = True
        self._owner = self._putter = parent._owner
        self._map, self._mv = parent._map, parent._mv
        self._meta = parent._meta
        self._txnid = parent._txnid
        self._psize = parent._psize
        self._caches = parent._caches
        self._last_pg = parent._last_pg
        self._dbs = {i: d.copy() for i, d in parent._dbs.items()}
        self._created = []
        self.dirty = dict(parent.dirty)
        self.ovf = dict(parent.ovf)
        self.freed = parent.freed[:]
        self.loose = parent.loose[:]
        self.next_pgno = parent.next_pgno
        self.reclaim = parent.reclaim.copy_for(self)
        self.page = self._page_write
        self._d0_index = self._db._dbi(self)
        self._d0 = self._dbstate(self._db)
        self.env._txns.add(self)

    def _adopt(self, child: Transaction) -> None:
        """Fold a committing child's state into this transaction."""
        token = self._token
        for p in child.dirty.values():
            if p.dirty == child._token:
                p.dirty = token
        self.dirty = child.dirty
        self.ovf = child.ovf
        self.freed = child.freed
        self.loose = child.loose
        self.next_pgno = child.next_pgno
        self.reclaim = child.reclaim
        self.reclaim.txn = self
        self._dbs = child._dbs
        self._d0 = self._dbs[self._d0_index]
        self._created.extend(child._created)
        self._gen += 1

    # -- set-up (called by the environment with its locks held) ---------------------------------

    def _init_snapshot(self, snap: Any, txnid: int) -> None:
        meta, self._map, self._mv = snap
        self._meta = meta
        self._txnid = txnid
        self._psize = self.env._psize
        self._caches = self.env._caches
        self._last_pg = meta.last_pg
        free = meta.free_db
        main = meta.main_db
        self._dbs = {
            FREE_DBI: DbState.from_record(free, True),
            # a main database flagged REVERSEKEY or INTEGERKEY (made by C) sorts reversed
            MAIN_DBI: DbState.from_record(
                main, bool(main.flags & (MDB_REVERSEKEY | MDB_INTEGERKEY))),
        }
        self._created = []
        if self._write:
            self.dirty = {}
            self.ovf = {}
            self.freed = []
            self.loose = []
            self.next_pgno = meta.last_pg + 1
            self.reclaim = freelist.Reclaimer(self)
            self.page = self._page_write
        else:
            self.page = self._page_read
        self._d0_index = self._db._dbi(self)
        self._d0 = self._dbstate(self._db)          # the default database's state

    # -- page access ----------------------------------------------------------------------------

    def _decode(self, pgno: int, rev: bool, values_out: Optional[List[bytes]] = None) -> Page:
        """Page ``pgno`` of this snapshot, decoded and not cached (`pagemod.decode`)."""
        if pgno < 2 or pgno > self._last_pg:
            raise corrupted(pgno, "page number out of range (last page %d)" % self._last_pg)
        return pagemod.decode(self._map, pgno, self._psize, rev, values_out)

    def _load(self, pgno: int, rev: bool) -> Page:
        cache = self._caches[rev]
        p = self._decode(pgno, rev)
        if len(cache) >= self.env._cache_pages:
            _evict(cache)
        cache[pgno] = p
        return p

    def _page_read(self, pgno: int, rev: bool = False) -> Page:
        p = self._caches[rev].get(pgno)
        if p is None:
            p = self._load(pgno, rev)
        return p

    def _page_write(self, pgno: int, rev: bool = False) -> Page:
        p = self.dirty.get(pgno)
        if p is None:
            p = self._caches[rev].get(pgno)
            if p is None:
                p = self._load(pgno, rev)
        return p

    # -- writer's page allocation (used by tree.py and freelist.py) -----------------------------

    def _alloc(self, n: int) -> int:
        if n == 1 and self.loose:
            return self.loose.pop()
        pgno = self.reclaim.take(n)
        if pgno is not None:
            return pgno
        pgno = self.next_pgno
        limit = self.env._max_pgno
        if limit is not None and pgno + n >= limit:
            raise MapFullError("mdb_put", MapFullError.MDB_CODE)
        self.next_pgno = pgno + n
        return pgno

    def _touch(self, page: Page) -> Page:
        """This transaction's copy of a page: a clean page moves to a new number and the
        old one is freed; a page an enclosing transaction owns is copied in place."""
        if page.dirty:
            new = page.copy(page.pgno, self._token)
            self.dirty[new.pgno] = new
            return new
        new = page.copy(self._alloc(1), self._token)
        self.dirty[new.pgno] = new
        self.freed.append(page.pgno)
        return new

    def _free(self, pgno: int, n: int) -> None:
        if self.dirty.pop(pgno, None) is not None or pgno in self.ovf:
            self.ovf.pop(pgno, None)
            self.loose.extend(range(pgno, pgno + n))
        else:
            self.freed.extend(range(pgno, pgno + n))

    # -- values -----------------------------------------------------------------------------------

    def _overflow_run(self, pgno: int, size: int) -> int:
        """Validate the clean overflow run at ``pgno``; return the file offset of its data."""
        need = overflow_pages(size, self._psize)
        if pgno < 2 or pgno + need - 1 > self._last_pg:
            raise corrupted(pgno, "overflow page out of range")
        base = pgno * self._psize
        if base + PAGEHDRSZ + size > len(self._map):
            raise corrupted(pgno, "overflow run beyond EOF")
        _p, _pad, flags, pages = OVERFLOW_HEADER.unpack_from(self._map, base)
        if not flags & P_OVERFLOW or pages < need:
            raise corrupted(pgno, "not an overflow page of %d pages" % need)
        return base + PAGEHDRSZ

    def _value(self, v: Any, size: int, fl: int) -> Any:
        """A leaf value as the user sees it (bytes, or a memoryview with buffers=True)."""
        if fl & F_BIGDATA:
            if self._write:
                data = self.ovf.get(v)
                if data is not None:
                    return memoryview(data) if self._buffers else data
            off = self._overflow_run(v, size)
        elif v.__class__ is int:
            off = v
        else:
            return memoryview(v) if self._buffers else v
        if self._buffers:
            return self._mv[off:off + size]
        return self._map[off:off + size]

    # -- checks -----------------------------------------------------------------------------------

    def _check(self, what: str = "mdb_txn") -> None:
        if self._done:
            raise closed_error()
        if self._spoiled or self._child is not None:
            raise BadTxnError(what, BadTxnError.MDB_CODE)

    _check_usable = _check

    def _check_write(self, what: str) -> None:
        self._check(what)
        if not self._write:
            raise ReadonlyError(what, ReadonlyError.MDB_CODE)
        if self._owner != threading.get_ident():
            raise Error("%s: a write transaction may only be used by the thread that began it"
                        % what)

    def _dbstate(self, db: Optional[_Database]) -> DbState:
        if db is None:
            return self._d0
        index = db._dbi(self)
        d = self._dbs.get(index)
        if d is None:
            d = self._load_db(db)
        return d

    def _load_db(self, db: _Database) -> DbState:
        """A named database's state as this transaction's main database records it."""
        found = self._find_node(self._dbs[MAIN_DBI], db._name)  # type: ignore[arg-type]
        if found is not None and found[0] & F_SUBDATA:
            if len(found[1]) != 48:
                raise corrupted(None, "record of database %r is %d bytes, not 48"
                                % (db._name, len(found[1])))
            d = DbState.from_record(DbRecord.unpack(found[1]), db._rev)
        else:
            # created after this snapshot was taken: empty here
            d = DbState(0, db._flags, 0, 0, 0, 0, 0, P_INVALID, db._rev)
        self._dbs[db._index] = d
        return d

    def _find_node(self, d: DbState, key: bytes) -> Optional[Tuple[int, bytes]]:
        """(node flags, value as bytes) of ``key`` in tree ``d``, or None."""
        skey = key[::-1] if d.rev else key
        path = tree.search(self, d, skey)
        if path is None:
            return None
        leaf = path[0][-1]
        i = path[1][-1]
        if i >= len(leaf.keys) or leaf.keys[i] != skey:
            return None
        fl = leaf.nfl[i]  # type: ignore[index]
        return fl, bytes(self._value(leaf.vals[i], leaf.sizes[i], fl))  # type: ignore[index]

    def _create_db(self, db: _Database) -> None:
        """Record a new, empty named database in the main database."""
        d = DbState(0, db._flags, 0, 0, 0, 0, 0, P_INVALID, db._rev)
        self._dbs[db._index] = d
        self._created.append(db)
        self._put_record(db._name, d)  # type: ignore[arg-type]

    def _put_record(self, name: bytes, d: DbState) -> None:
        main = self._dbs[MAIN_DBI]
        record = DbRecord(*d.record()).pack()
        self._gen += 1
        self._put(main, name[::-1] if main.rev else name, record, True, False, F_SUBDATA)
        d.changed = False

    def _write_db_records(self) -> None:
        """At commit: store the records of the named databases this transaction changed."""
        handles = self.env._handles
        for index, d in list(self._dbs.items()):
            if index > MAIN_DBI and d.changed:
                db = handles[index]
                if db is not None and not db._closed:
                    self._put_record(db._name, d)  # type: ignore[arg-type]

    def _db_names(self) -> List[bytes]:
        """Keys of the main database that are named-database records."""
        self._check()
        main = self._dbs[MAIN_DBI]
        names: List[bytes] = []
        path = tree.edge(self, main, False)
        if path is None:
            return names
        pages, idxs = path
        while True:
            leaf = pages[-1]
            i = idxs[-1]
            k = leaf.keys[i][::-1] if main.rev else leaf.keys[i]
            if leaf.nfl[i] & F_SUBDATA and b"\0" not in k:  # type: ignore[index]
                names.append(k)
            if not tree.step(self, main, pages, idxs, True):
                return names

    def _spoil(self, exc: BaseException) -> None:
        if self._write and isinstance(exc, Error) and not isinstance(exc, BadValsizeError):
            self._spoiled = True
            self._putter = -1
            self._unusable = True

    # -- public API -------------------------------------------------------------------------------

    def id(self) -> int:
        """The snapshot's transaction id (read), or the id this one commits as (write)."""
        self._check()
        return self._txnid

    def stat(self, db: Optional[_Database] = None) -> Dict[str, int]:
        """Statistics of ``db`` (default: the transaction's database), as `Environment.stat`."""
        self._check("mdb_stat")
        d = self._dbstate(db)
        return {"psize": self._psize, "depth": d.depth, "branch_pages": d.branch_pages,
                "leaf_pages": d.leaf_pages, "overflow_pages": d.overflow_pages,
                "entries": d.entries}

    def get(self, key: Any, default: Any = None, db: Optional[_Database] = None) -> Any:
        """The value of ``key``, or ``default``. O(log n) page visits, no copying of pages."""
        if self._unusable:
            self._check("mdb_get")
        if key.__class__ is not bytes:
            key = to_bytes(key)
        if not 0 < len(key) <= MAX_KEY_SIZE:
            if not key:
                raise BadValsizeError("mdb_get", BadValsizeError.MDB_CODE)
            return default
        d = self._d0 if db is None else self._dbstate(db)
        rev = d.rev
        if rev:
            key = key[::-1]
        root = d.root
        if root == P_INVALID:
            return default
        depth = d.depth
        if self._write:
            page = self._page_write
            p = page(root, rev)
            while depth > 1:
                if not p.flags & P_BRANCH:
                    raise corrupted(p.pgno, "leaf page above the recorded depth")
                p = page(p.vals[bisect_right(p.keys, key) - 1], rev)
                depth -= 1
        else:
            # the hot path: cached decoded pages, no function call per level
            cache = self._caches[rev]
            p = cache.get(root) or self._load(root, rev)
            lower = True    # may the branch above the leaves count lookups and index?
            if depth > 2:
                # the root indexes the whole tree when it is small enough (_index_below)
                below = p.below
                if below is None:
                    p.hits += 1
                    if p.hits > _INDEX_AFTER * d.leaf_pages:
                        if d.entries > self.env._cache_pages * INDEX_RECORDS_PER_PAGE:
                            p.below = False         # too big: the lower branches index
                        else:
                            below = self._index_below(p, cache, rev, depth, d.entries)
                if below:
                    i = below.get(key)
                    if i is None:
                        return default
                    return self._mv[i] if self._buffers else self._map[i]
                lower = below is False
            while depth > 2:
                if not p.flags & P_BRANCH:
                    raise corrupted(p.pgno, "leaf page above the recorded depth")
                c = p.vals[bisect_right(p.keys, key) - 1]
                p = cache.get(c) or self._load(c, rev)
                depth -= 1
            if depth == 2:
                # the branch above the leaves: its index of their records, once it has one
                if not p.flags & P_BRANCH:
                    raise corrupted(p.pgno, "leaf page above the recorded depth")
                below = p.below
                if below is None and lower:
                    p.hits += 1
                    if p.hits > _INDEX_AFTER * len(p.vals):
                        below = self._index_below(p, cache, rev, 2, 32 * len(p.vals))
                if below:
                    i = below.get(key)
                    if i is None:
                        return default
                    return self._mv[i] if self._buffers else self._map[i]
                c = p.vals[bisect_right(p.keys, key) - 1]
                q = cache.get(c)
                if q is None:
                    if len(cache) >= self.env._cache_pages:
                        # a leaf the full cache lacks: searching its bytes costs a few
                        # probes, decoding it all (to evict another) costs every node
                        found = pagemod.find_in_leaf(self._map, c, self._psize, key, rev,
                                                     self._last_pg)
                        if found is None:
                            return default
                        if found.__class__ is slice:
                            return self._mv[found] if self._buffers else self._map[found]
                    q = self._load(c, rev)
                p = q
                depth = 1
            if depth == 1 and not p.flags & P_BRANCH:
                ix = p.index
                if ix is None:
                    ix = p.index = pagemod.leaf_index(p)
                i = ix.get(key)
                if i is None:
                    return default
                if i.__class__ is slice:
                    return self._mv[i] if self._buffers else self._map[i]
                return self._leaf_value(d, p, i)
        if p.flags & P_BRANCH or depth != 1:
            raise corrupted(p.pgno, "branch page at leaf depth")
        keys = p.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            v = p.vals[i]
            fl = p.nfl[i]  # type: ignore[index]
            if not fl and v.__class__ is int and not self._buffers:
                return self._map[v:v + p.sizes[i]]  # type: ignore[index]
            return self._leaf_value(d, p, i)
        return default

    def _index_below(self, branch: Page, cache: Dict[int, Page], rev: bool, depth: int,
                     records: int) -> Optional[Dict[bytes, slice]]:
        """Give clean branch page ``branch`` (``depth`` levels down to the leaves, about
        ``records`` records below it) one dictionary of the records below it: key -> slice
        of the map holding the value. A point lookup through it then skips the bisects and
        cache probes of the levels below and the leaf's own index (1.9 -> 1.1 us per random
        get at 10^5 keys). The root gets one when the whole tree fits the environment's
        bound on indexed records (`_index_room`), else the branches just above the leaves
        do. Built once the page served `_INDEX_AFTER` lookups per leaf below it, so a sparse
        reader never pays for it; refused when a leaf holds anything but plain inline
        values. The page holds it, so it lives and dies with the cached page (a page
        number's contents only change once no snapshot reaches it, when commits and
        foreign-commit flushes drop the cached page)."""
        if not self.env._index_room(records):
            branch.below = False
            return None
        index: Dict[bytes, slice] = {}
        level = [branch]
        while depth > 1:
            below: List[Page] = []
            for parent in level:
                if not parent.flags & P_BRANCH:
                    raise corrupted(parent.pgno, "leaf page above the recorded depth")
                for c in parent.vals:
                    # pages not cached yet stay so: no churn
                    below.append(cache.get(c) or self._decode(c, rev))
                if len(below) > records + 1:     # a forged record count: no index
                    branch.below = False
                    return None
            level = below
            depth -= 1
        for leaf in level:
            if leaf.flags & (P_BRANCH | P_LEAF2) or any(leaf.nfl):  # type: ignore[arg-type]
                branch.below = False
                return None
            vals = leaf.vals
            index.update(zip(leaf.keys, map(slice, vals, map(add, vals, leaf.sizes))))  # type: ignore[arg-type]
        if len(index) > records and not self.env._index_room(len(index)):
            branch.below = False        # more records than the room asked for
            return None
        self.env._indexed += len(index)
        branch.below = index
        return index

    def _leaf_value(self, d: DbState, leaf: Page, i: int) -> Any:
        """The (first) value of leaf entry ``i`` as the user sees it."""
        fl = leaf.nfl[i]  # type: ignore[index]
        if fl & F_DUPDATA:
            if not d.flags & MDB_DUPSORT:
                raise corrupted(leaf.pgno, "duplicates node in a database without DUPSORT")
            v = dups.Dups(self, d, leaf, i).first()
            v = v[::-1] if dups.value_rev(d.flags) else v
            return memoryview(v) if self._buffers else v
        return self._value(leaf.vals[i], leaf.sizes[i], fl)  # type: ignore[index]

    def put(self, key: Any, value: Any, dupdata: bool = True, overwrite: bool = True,
            append: bool = False, db: Optional[_Database] = None) -> bool:
        """Store ``value`` under ``key``. False when refused: the key exists and
        ``overwrite=False``, or ``append=True`` and the key is not past the last one."""
        if self._putter != threading.get_ident():
            self._check_write("mdb_put")
        if key.__class__ is not bytes or not 0 < len(key) <= MAX_KEY_SIZE:
            key = check_key(key, "mdb_put")
        if value.__class__ is not bytes:
            value = b"" if value is None else to_bytes(value)
        d = self._d0 if db is None else self._dbstate(db)
        self._gen += 1
        self._mutations += 1
        if append and self._append_gen == self._gen and self._append_hint[0] is d:  # type: ignore[index]
            # A bulk load of sorted keys: the previous append's leaf takes this one too
            # unless it is full or the value needs an overflow run; then `_put` does it.
            # `_put`, inlined for that case (three calls per record were half its cost).
            _d, path, leaf, nodemax, cap = self._append_hint  # type: ignore[misc]
            skey = key[::-1] if d.rev else key
            keys = leaf.keys
            size = len(value)
            used = leaf.used + ((9 + len(skey) + size) & ~1) + 2
            if skey > keys[-1] and used <= cap and 8 + len(skey) + size <= nodemax \
                    and leaf.dirty == self._token:
                path[1][-1] = leaf.inserted = len(keys)
                keys.append(skey)
                leaf.vals.append(value)
                leaf.sizes.append(size)  # type: ignore[union-attr]
                leaf.nfl.append(0)  # type: ignore[union-attr]
                leaf.used = used
                d.entries += 1
                d.changed = True
                gen = self._gen = self._gen + 1
                self._append_gen = gen + 1
                return True
        elif not append and not d.flags & MDB_DUPSORT:
            # A new key into a leaf this transaction owns already, with room: a load's
            # common case, done here (_put's descent, lookup and insert, without its
            # calls and its branches for every other case, which it still handles).
            dirty = self.dirty
            p = dirty.get(d.root)
            if p is not None:
                skey = key[::-1] if d.rev else key
                depth = d.depth
                while depth > 1 and p is not None and p.flags & P_BRANCH:
                    p = dirty.get(p.vals[bisect_right(p.keys, skey) - 1])
                    depth -= 1
                if depth == 1 and p is not None and p.dirty == self._token \
                        and not p.flags & (P_BRANCH | P_LEAF2):
                    keys = p.keys
                    assert p.sizes is not None and p.nfl is not None
                    i = bisect_left(keys, skey)
                    size = len(value)
                    if i < len(keys) and keys[i] == skey:
                        # an update to a plain value of the same size: only the value changes
                        if overwrite and size == p.sizes[i] and not p.nfl[i] \
                                and 8 + len(skey) + size <= self.env._nodemax:
                            p.vals[i] = value
                            d.changed = True
                            self._gen += 1
                            return True
                    elif p.used + ((9 + len(skey) + size) & ~1) + 2 <= self._psize - PAGEHDRSZ \
                            and 8 + len(skey) + size <= self.env._nodemax:
                        p.inserted = i
                        keys.insert(i, skey)
                        p.vals.insert(i, value)
                        p.sizes.insert(i, size)
                        p.nfl.insert(i, 0)
                        p.used += ((9 + len(skey) + size) & ~1) + 2
                        d.entries += 1
                        d.changed = True
                        self._gen += 1
                        return True
        try:
            if d.flags & MDB_DUPSORT:
                return self._put_dup(d, key[::-1] if d.rev else key, value, dupdata,
                                     overwrite, append)
            return self._put(d, key[::-1] if d.rev else key, value, overwrite, append)
        except BaseException as exc:
            self._spoil(exc)
            raise

    def _put_dup(self, d: DbState, skey: bytes, value: bytes, dupdata: bool,
                 overwrite: bool, append: bool) -> bool:
        """Put into a DUPSORT database: a new key gets a plain node, an existing one gains a
        value (``append``: only past its last value, as LMDB's APPENDDUP)."""
        dups.check_value(value, "mdb_put")
        path = tree.search(self, d, skey)
        self._gen += 1
        if path is not None:
            pages, idxs = path
            leaf = pages[-1]
            i = idxs[-1]
            if i < len(leaf.keys) and leaf.keys[i] == skey:
                if not overwrite:
                    return False
                sv = value[::-1] if dups.value_rev(d.flags) else value
                tree.touch_path(self, d, pages, idxs)
                d.changed = True
                return dups.put(self, d, pages, idxs, sv, dupdata, append)
        return self._put(d, skey, value, True, False)

    def _put(self, d: DbState, skey: bytes, value: bytes, overwrite: bool,
             append: bool, node_flags: int = 0) -> bool:
        """Insert or overwrite (``skey`` in sort form). The workhorse of every write."""
        if len(value) > MAX_DATA_SIZE:
            raise BadValsizeError("mdb_put", BadValsizeError.MDB_CODE)
        if append:
            hint = self._append_hint
            path: Optional[tree.Path]
            if hint is not None and hint[0] is d and self._append_gen == self._gen:
                # nothing was written since the last append: its path still ends at the
                # tree's last leaf (a bulk load of sorted keys walks down only once a leaf)
                path = hint[1]
            else:
                path = tree.edge(self, d, True)
            if path is not None:
                pages, idxs = path
                last = pages[-1].keys[idxs[-1]]
                if skey <= last:
                    return False
                idxs[-1] += 1
        elif d.root == P_INVALID:
            path = None
        else:
            # tree.search, inlined: this is the hot path of every load
            rev = d.rev
            dirty = self.dirty
            cache = self._caches[rev]
            root = d.root
            p = dirty.get(root) or cache.get(root) or self._load(root, rev)
            pages = [p]
            idxs = []
            depth = d.depth
            if depth > MAX_DEPTH:
                raise corrupted(root, "tree depth %d exceeds %d" % (depth, MAX_DEPTH))
            while depth > 1:
                if not p.flags & P_BRANCH:
                    raise corrupted(p.pgno, "leaf page above the recorded depth")
                i = bisect_right(p.keys, skey) - 1
                idxs.append(i)
                c = p.vals[i]
                p = dirty.get(c) or cache.get(c) or self._load(c, rev)
                pages.append(p)
                depth -= 1
            if p.flags & P_BRANCH or depth != 1:
                raise corrupted(p.pgno, "branch page at leaf depth")
            idxs.append(bisect_left(p.keys, skey))
            path = pages, idxs
        self._gen += 1
        if path is None:
            val, size, fl = self._make_value(d, skey, value, node_flags)
            tree.insert_first(self, d, skey, val, size, fl)
            d.entries += 1
            d.changed = True
            return True
        pages, idxs = path
        leaf = pages[-1]
        i = idxs[-1]
        exists = i < len(leaf.keys) and leaf.keys[i] == skey
        if exists:
            fl = leaf.nfl[i]  # type: ignore[index]
            if fl & F_DUPDATA or (fl ^ node_flags) & F_SUBDATA:
                if fl & F_DUPDATA:
                    # DUPSORT keys never get here: a forged duplicates node (cve-2019-16227)
                    raise corrupted(leaf.pgno, "duplicates node in a database without "
                                    "DUPSORT")
                # a named database's record, or a plain key where one should go
                raise IncompatibleError("mdb_put", IncompatibleError.MDB_CODE)
            if not overwrite:
                return False
        if leaf.dirty != self._token:
            tree.touch_path(self, d, pages, idxs)
            leaf = pages[-1]
        d.changed = True
        if exists:
            old_fl = leaf.nfl[i]  # type: ignore[index]
            if old_fl & F_BIGDATA:
                old = leaf.vals[i]
                run = self.ovf.get(old)
                need = overflow_pages(len(value), self._psize)
                if run is not None and overflow_pages(len(run), self._psize) == need \
                        and 8 + len(skey) + len(value) > self.env._nodemax:
                    self.ovf[old] = value  # a run of this txn is rewritten in place
                    tree.leaf_set(self, d, pages, idxs, old, len(value), F_BIGDATA)
                    return True
                self._free_overflow(d, old, leaf.sizes[i])  # type: ignore[index]
            val, size, fl = self._make_value(d, skey, value, node_flags)
            tree.leaf_set(self, d, pages, idxs, val, size, fl)
            return True
        if 8 + len(skey) + len(value) <= self.env._nodemax:
            tree.leaf_insert(self, d, pages, idxs, skey, value, len(value), node_flags)
        else:
            val, size, fl = self._make_value(d, skey, value, node_flags)
            tree.leaf_insert(self, d, pages, idxs, skey, val, size, fl)
        d.entries += 1
        if append and pages[-1].keys[-1] is skey and not d.flags & MDB_DUPSORT \
                and not pages[-1].flags & P_LEAF2:
            # no split moved the new key away from the path: the next append may reuse it
            # (put() bumps the generation once before it gets here)
            self._append_hint = (d, path, pages[-1], self.env._nodemax,
                                 self._psize - PAGEHDRSZ)
            self._append_gen = self._gen + 1
        return True

    def _make_value(self, d: DbState, skey: bytes, value: bytes,
                    node_flags: int = 0) -> tuple[Any, int, int]:
        """Node contents for a value: inline, or a new overflow run."""
        size = len(value)
        if 8 + len(skey) + size <= self.env._nodemax:
            return value, size, node_flags
        n = overflow_pages(size, self._psize)
        pgno = self._alloc(n)
        self.ovf[pgno] = value
        d.overflow_pages += n
        return pgno, size, F_BIGDATA

    def _free_overflow(self, d: DbState, pgno: int, size: int) -> None:
        if pgno in self.ovf:
            n = overflow_pages(len(self.ovf[pgno]), self._psize)
        else:
            self._overflow_run(pgno, size)
            n = OVERFLOW_HEADER.unpack_from(self._map, pgno * self._psize)[3]
            if pgno + n - 1 > self._last_pg:
                raise corrupted(pgno, "overflow header mp_pages %d runs past last page" % n)
        d.overflow_pages -= n
        self._free(pgno, n)

    def replace(self, key: Any, value: Any, db: Optional[_Database] = None) -> Any:
        """Store ``value`` and return the previous value (as bytes) or None. On a DUPSORT
        database the key's values are all replaced by ``value``; the first old one is
        returned."""
        self._check_write("mdb_put")
        key = check_key(key, "mdb_put")
        old = self._get_bytes(key, db)
        if not self._dbstate(db).flags & MDB_DUPSORT:
            self.put(key, value, db=db)
        elif old is not None:
            self.delete(key, db=db)
            self.put(key, value, db=db)
        else:
            # the lmdb package counts no write here, so cursors are not re-read
            mutations = self._mutations
            self.put(key, value, db=db)
            self._mutations = mutations
        return old

    def pop(self, key: Any, db: Optional[_Database] = None) -> Any:
        """Delete ``key`` and return its value (as bytes), or None if absent. On a DUPSORT
        database only the first value goes."""
        self._check("mdb_cursor_get")
        key = to_bytes(key)
        if not key:
            raise BadValsizeError("mdb_cursor_get", BadValsizeError.MDB_CODE)
        old = self._get_bytes(key, db) if len(key) <= MAX_KEY_SIZE else None
        if old is not None:
            if not self._write:
                raise ReadonlyError("mdb_cursor_del", ReadonlyError.MDB_CODE)
            self.delete(key, old if self._dbstate(db).flags & MDB_DUPSORT else b"", db=db)
        return old

    def _get_bytes(self, key: bytes, db: Optional[_Database]) -> Optional[bytes]:
        v = self.get(key, None, db)
        if v is not None and v.__class__ is not bytes:
            v = bytes(v)
        return v

    def delete(self, key: Any, value: Any = b"", db: Optional[_Database] = None) -> bool:
        """Delete ``key``; True if it existed. (``value`` matters for dupsort databases.)"""
        self._check_write("mdb_del")
        key = to_bytes(key)
        if len(key) > MAX_KEY_SIZE:
            return False
        key = check_key(key, "mdb_del")
        d = self._dbstate(db)
        self._gen += 1
        self._mutations += 1
        if value and d.flags & MDB_DUPSORT:
            value = to_bytes(value)
            sv = value[::-1] if dups.value_rev(d.flags) else value
        else:
            sv = None
        try:
            return self._delete(d, key[::-1] if d.rev else key, sv)
        except BaseException as exc:
            self._spoil(exc)
            raise

    def _delete(self, d: DbState, skey: bytes, sv: Optional[bytes] = None) -> bool:
        """Delete key ``skey`` (sort form), or only its value ``sv`` in a DUPSORT
        database."""
        path = tree.search(self, d, skey)
        if path is None:
            return False
        pages, idxs = path
        leaf = pages[-1]
        i = idxs[-1]
        if i >= len(leaf.keys) or leaf.keys[i] != skey:
            return False
        fl = leaf.nfl[i]  # type: ignore[index]
        if fl & (F_SUBDATA | F_DUPDATA):
            if fl & F_DUPDATA and not d.flags & MDB_DUPSORT:
                # LMDB's cve-2019-16227 patch: no delete through a forged duplicates node
                raise corrupted(leaf.pgno, "duplicates node in a database without DUPSORT")
            if not fl & F_DUPDATA:
                raise IncompatibleError("mdb_del", IncompatibleError.MDB_CODE)
        if sv is not None:
            self._gen += 1
            tree.touch_path(self, d, pages, idxs)
            d.changed = True
            done = dups.delete_value(self, d, pages, idxs, sv)
            self._fix_cursors()
            return done
        self._delete_at(d, pages, idxs)
        return True

    def _fix_cursors(self) -> None:
        """After a delete: move every cursor whose record went to the one that followed it,
        now, as LMDB does; a later insert into the gap must not pull it back."""
        for c in self._cursors:
            if c._gen != self._gen and c._pages is not None:
                c._sync()

    def _delete_at(self, d: DbState, pages: List[Page], idxs: List[int]) -> None:
        """Delete the leaf entry at the path, with all its values."""
        self._gen += 1
        tree.touch_path(self, d, pages, idxs)
        d.changed = True
        leaf = pages[-1]
        i = idxs[-1]
        if d.flags & MDB_DUPSORT:
            dups.delete_all(self, d, pages, idxs)
            self._fix_cursors()
            return
        if leaf.nfl[i] & F_BIGDATA:  # type: ignore[index]
            self._free_overflow(d, leaf.vals[i], leaf.sizes[i])  # type: ignore[index]
        tree.leaf_delete(self, d, pages, idxs)
        d.entries -= 1
        self._fix_cursors()

    def drop(self, db: _Database, delete: bool = True) -> None:
        """Empty ``db``; with ``delete=True`` also remove a named database (its handle is
        closed). The main database is only emptied."""
        self._check_write("mdb_drop")
        d = self._dbstate(db)
        self._gen += 1
        self._mutations += 1
        try:
            freelist.free_tree(self, d)
            d.changed = True
            if delete and not db._is_main:
                main = self._dbs[MAIN_DBI]
                assert db._name is not None
                name = db._name[::-1] if main.rev else db._name
                path = tree.search(self, main, name)
                if path is not None:
                    leaf, i = path[0][-1], path[1][-1]
                    if i < len(leaf.keys) and leaf.keys[i] == name:
                        self._delete_at(main, path[0], path[1])
                del self._dbs[db._index]
                for c in list(self._cursors):
                    if c.db is db:
                        c.close()
                self.env._forget_db(db)
        except BaseException as exc:
            self._spoil(exc)
            raise

    def cursor(self, db: Optional[_Database] = None) -> Cursor:
        """A new, unpositioned cursor on ``db`` (default: the transaction's database)."""
        from .cursor import Cursor
        return Cursor(db if db is not None else self._db, self)

    # -- ending -----------------------------------------------------------------------------------

    def commit(self) -> None:
        """Make the writes durable and end the transaction (a read one just ends)."""
        if self._child is not None:
            self._child.abort()   # as the lmdb package: an open child is discarded
        if self._spoiled and not self._done:
            self._finish()        # a spoiled transaction ends on a failed commit
            raise BadTxnError("mdb_txn_commit", BadTxnError.MDB_CODE)
        self._check("mdb_txn_commit")
        if self._parent is not None:
            self._parent._adopt(self)
        elif self._write:
            try:
                self.env._commit(self)
            except BaseException:
                self._finish()
                raise
        self._finish(committed=True)

    def abort(self) -> None:
        """Discard the writes and end the transaction; a no-op once it has ended."""
        if not self._done:
            self._finish()

    def _finish(self, committed: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._putter = -1
        self._unusable = True
        for c in self._cursors:
            c._txn_ended()
        if self._child is not None:
            self._child._finish()
        if self._created and not committed:
            for db in self._created:
                self.env._forget_db(db)
        self._cursors = []
        if self._parent is not None:
            parent = self._parent
            parent._child = None
            if not (parent._done or parent._spoiled):
                parent._putter = parent._owner
                parent._unusable = False
            self._parent._gen += 1
            self._parent._mutations += 1
            self.dirty = {}
            self.ovf = {}
        elif self._write:
            self.dirty = {}
            self.ovf = {}
            self.env._end_write(self)
        else:
            self.env._end_read(self)
        self._map = None
        self._mv = None

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __del__(self) -> None:
        try:
            if not self._done:
                self._finish()
        except Exception:
            pass
