"""The environment: one data file, its lock file, the snapshot readers start from, and the
commit sequence.

Commit order (what makes a crash at any moment leave the last commit intact):

1. save the free list (freelist.save) -- the last change to the trees;
2. write every dirty page at ``pgno * psize``, in page order, neighbours in one call;
3. sync the data file (skipped with ``sync=False``);
4. write bytes 32..151 of meta page ``txnid & 1`` -- the commit point;
5. sync again (skipped with ``sync=False`` or ``metasync=False``);
6. publish the new id in the lock file and the new snapshot to new transactions.

Pages written in step 2 are all unreachable from both meta pages until step 4, and the meta
page overwritten in step 4 describes the snapshot before the previous one, which no live
reader holds (readers keep their pages out of reuse, see freelist.py).
"""

from __future__ import annotations

import errno
import itertools
import os
import struct
import threading
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import freelist, process
from .errors import (
    BadValsizeError,
    CorruptedError,
    DbsFullError,
    Error,
    IncompatibleError,
    InvalidParameterError,
    MapResizedError,
    NotFoundError,
    PanicError,
    ReadonlyError,
    closed_error,
    from_oserror,
)
from .layout import (
    F_DUPDATA,
    F_SUBDATA,
    FREE_DBI,
    IDLE_TXNID,
    MAGIC,
    MAIN_DBI,
    MAX_KEY_SIZE,
    MDB_DUPFIXED,
    MDB_DUPSORT,
    MDB_INTEGERDUP,
    MDB_INTEGERKEY,
    MDB_NOSUBDIR,
    MDB_REVERSEKEY,
    META_SIZE,
    META_TAIL,
    META_TAIL_OFFSET,
    OVERFLOW_HEADER,
    P_OVERFLOW,
    DbRecord,
    Meta,
    node_max,
    overflow_pages,
    unpack_meta,
)
from .page import adopt_image, encode_for_commit
from .storage import DEFAULT_IO, DataFile, FileIO
from .txn import INDEX_RECORDS_PER_PAGE, Transaction, to_bytes

DEFAULT_MAPSIZE = 10485760          # what a new file records when no map_size is given
# Decoded pages kept per environment and key order: 8192 leaves of small records take about
# 50 MB. A lookup that misses a full cache searches the leaf's bytes instead of decoding it
# (page.find_in_leaf), and eviction spares branch pages, so a tree larger than the cache
# costs a few probes per lookup, not a page decode.
DEFAULT_CACHE_PAGES = 8192
_RUN_BYTES = 1 << 20                # a commit writes neighbouring pages in calls of about this size

# data files open in this process: (st_dev, st_ino) -> (pid, path); entries another pid made
# were inherited through fork() and do not count
_open_files: Dict[Tuple[int, int], Tuple[int, str]] = {}
_open_files_lock = threading.RLock()


def _uint(value: Any, name: str) -> int:
    value = int(value)
    if value < 0:
        raise OverflowError("Integer argument must be >= 0")
    return value


def _snapshot_of(items: Any) -> List[Any]:
    """``list(items())`` of a weak collection that other threads change meanwhile (their
    iteration raises RuntimeError when that happens: try again)."""
    while True:
        try:
            return list(items())
        except RuntimeError:
            continue


class _Database:
    """Handle of one database of an environment: the main one or a named one."""

    def __init__(self, env: Environment, index: int, name: Optional[bytes], flags: int) -> None:
        self._env = env
        self._index = index
        self._name = name
        self._flags = flags
        self._is_main = index == MAIN_DBI
        self._closed = False     # dropped with delete=True, or created by an aborted txn
        # As in LMDB, a handle is usable in the transaction that opened it (and its children)
        # until that one ends, then in transactions begun after that.
        self._opener: Optional[Transaction] = None
        self._visible_from = 0

    @property
    def _rev(self) -> bool:
        """Keys compare as their reversed bytes (REVERSEKEY, INTEGERKEY)."""
        return bool(self._flags & (MDB_REVERSEKEY | MDB_INTEGERKEY))

    def _dbi(self, txn: Transaction) -> int:
        if txn.env is not self._env:
            raise Error("Database handle belongs to another environment.")   # the lmdb package's
        if self._closed:
            raise InvalidParameterError(
                "database handle was dropped or its creating transaction aborted",
                errno.EINVAL)
        if self._visible_from or self._opener is not None:
            root = txn
            while root._parent is not None:
                root = root._parent
            if self._opener is not None and self._opener is not root or \
                    self._opener is None and root._seq < self._visible_from:
                raise InvalidParameterError(
                    "mdb_cursor_open: database handle opened after this transaction began, "
                    "by another transaction", errno.EINVAL)
        return self._index

    def flags(self, *args: Any) -> Dict[str, bool]:
        """The database's flags as stored: reverse_key, dupsort, integerkey, integerdup,
        dupfixed."""
        if len(args) > 1:
            raise TypeError("flags() takes at most 1 argument")
        f = self._flags
        return {"reverse_key": bool(f & MDB_REVERSEKEY), "dupsort": bool(f & MDB_DUPSORT),
                "integerkey": bool(f & MDB_INTEGERKEY), "integerdup": bool(f & MDB_INTEGERDUP),
                "dupfixed": bool(f & MDB_DUPFIXED)}


class Environment:
    """An LMDB environment: a data file and its lock file.

    Takes the `lmdb` package's arguments in its order. Differences: ``map_size=None`` (the
    default) means no limit: the file and the map grow as writes need room, and the recorded
    map size grows with them so C LMDB keeps opening the file; a given ``map_size`` is a hard
    limit as in LMDB (`MapFullError` past it, `set_mapsize` to raise it). ``writemap``,
    ``map_async``, ``readahead``, ``meminit`` and ``max_spare_txns`` are accepted and reported
    by `flags`, but purelmdb always writes with ``pwrite`` from memory, so they change nothing
    but speed. ``lib_version`` may be None or 0 (the 0.9 format).
    """

    def __init__(self, path: Any, map_size: Optional[int] = None, subdir: bool = True,
                 readonly: bool = False, metasync: bool = True, sync: bool = True,
                 map_async: bool = False, mode: int = 0o755, create: bool = True,
                 readahead: bool = True, writemap: bool = False, meminit: bool = True,
                 max_readers: int = 126, max_dbs: int = 0, max_spare_txns: int = 0,
                 lock: bool = True, lib_version: Optional[int] = None,
                 _io: FileIO = DEFAULT_IO) -> None:
        self._closed = True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        elif not isinstance(path, str):
            if not hasattr(path, "__fspath__"):
                raise TypeError("path must be str or bytes, not %s" % type(path).__name__)
            path = os.fspath(path)
        if map_size is not None:
            map_size = _uint(map_size, "map_size")
        max_dbs = _uint(max_dbs, "max_dbs")
        max_readers = _uint(max_readers, "max_readers")
        if max_readers == 0:
            raise InvalidParameterError(path, errno.EINVAL)
        if lib_version is not None and _uint(lib_version, "lib_version") != 0:
            raise Error("lib_version=%d: purelmdb implements the LMDB 0.9 format only"
                        % lib_version)
        self._path = path
        self._subdir = bool(subdir)
        self._readonly = bool(readonly)
        self._flags = {"subdir": bool(subdir), "readonly": bool(readonly),
                       "metasync": bool(metasync), "sync": bool(sync),
                       "map_async": bool(map_async), "readahead": bool(readahead),
                       "writemap": bool(writemap), "meminit": bool(meminit),
                       "lock": bool(lock)}
        self._max_dbs = max_dbs
        self._pid = process.pid

        if self._subdir:
            if not os.path.isdir(path):
                if not create or readonly:
                    raise Error(path, errno.ENOENT)
                try:
                    os.mkdir(path, mode)
                except OSError as exc:
                    raise from_oserror(path, exc) from None
            data_path = os.path.join(path, "data.mdb")
            lock_path = os.path.join(path, "lock.mdb")
        else:
            data_path = path
            lock_path = path + "-lock"
        if readonly and not os.path.exists(data_path):
            raise Error(path, errno.ENOENT)
        file_mode = mode & 0o666

        self._lock: Any = None
        self._file: Optional[DataFile] = None
        self._file_id: Optional[Tuple[int, int]] = None
        try:
            if lock:
                from .locking import LockFile
                self._lock = LockFile(lock_path, readonly=bool(readonly), mode=file_mode,
                                      max_readers=max_readers, env_path=path)
            self._file = DataFile(
                data_path, readonly=bool(readonly), mode=file_mode, io=_io,
                new_mapsize=map_size if map_size else DEFAULT_MAPSIZE,
                env_flags=0 if subdir else MDB_NOSUBDIR)
            st = os.fstat(self._file.fd)
            self._register((st.st_dev, st.st_ino))
        except BaseException:
            self._release_files()
            raise
        self._max_readers = self._lock.max_readers if self._lock is not None else max_readers
        self._spare_max = _uint(max_spare_txns, "max_spare_txns")
        self._spare_slots: List[int] = []
        self._seqs = itertools.count(1)     # transaction begin order, for handle visibility
        self._unpublished = 0               # handles whose opening transaction is still live
        meta = self._file.initial_meta
        self._psize = self._file.psize
        self._nodemax = node_max(self._psize)
        self._auto_grow = map_size is None
        used = (meta.last_pg + 1) * self._psize
        self._map_size = max(meta.mapsize if map_size is None else map_size, used)
        self._max_pgno: Optional[int] = None if self._auto_grow else self._map_size // self._psize
        self._caches: List[Dict[int, Any]] = [{}, {}]
        self._cache_pages = DEFAULT_CACHE_PAGES
        self._indexed = 0       # records in branch pages' indexes (an upper bound, see below)
        self._index_refusals = 0
        self._state_lock = threading.RLock()   # reentrant: a txn's __del__ may run under it
        self._write_lock = threading.Lock()
        self._writer: Optional[Transaction] = None
        self._writer_thread: Optional[int] = None
        self._panic = False       # a commit failed after its meta write: no more writes
        self._readers: Dict[int, int] = {}
        self._txns: weakref.WeakSet[Transaction] = weakref.WeakSet()
        self._reader_threads: weakref.WeakKeyDictionary[Transaction, int] = \
            weakref.WeakKeyDictionary()
        self._main_db = _Database(self, MAIN_DBI, None, meta.main_db.flags)  # _read_meta sets it
        self._publish(meta)
        if self._lock is not None and self._lock.active:
            try:
                if self._lock.first:
                    self._lock.share(meta.txnid)    # lets other openers in
                elif self._lock.txnid() > meta.txnid:
                    self._publish(self._read_meta(self._lock.txnid()))
            except BaseException:
                self._release_files()
                raise
        # handles by index (0, the free list, has none) and named ones by name
        self._handles: List[Optional[_Database]] = [None, self._main_db]
        self._named: Dict[bytes, _Database] = {}
        self._closed = False

    # -- files --------------------------------------------------------------------------------

    def _register(self, file_id: Tuple[int, int]) -> None:
        with _open_files_lock:
            if _open_files.get(file_id, (-1, ""))[0] == process.pid:
                raise Error("The environment '%s' is already open in this process."
                            % self._path)
            _open_files[file_id] = (process.pid, self._path)
            self._file_id = file_id

    def _release_files(self) -> None:
        if self._file_id is not None:
            with _open_files_lock:
                if _open_files.get(self._file_id, (-1, ""))[0] == process.pid:
                    del _open_files[self._file_id]
            self._file_id = None
        if self._file is not None:
            self._file.close()
        if self._lock is not None:
            self._lock.close()

    def _publish(self, meta: Meta, written_by_us: bool = False) -> None:
        """Make ``meta`` the snapshot new transactions start from. After this process's own
        commit the map already covers every page the meta reaches (`_write_dirty` grew the
        file under the current map's length or remapped), so no fstat is needed."""
        assert self._file is not None
        f = self._file
        m = f.map
        if not written_by_us or m is None or (meta.last_pg + 1) * self._psize > f.map_len:
            m = f.remap()
        snap = getattr(self, "_snap", None)
        self._snap = (meta, m, snap[2] if snap is not None and snap[1] is m else memoryview(m))

    # -- checks -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error()
        if process.pid != self._pid:
            raise Error("%s: environment was opened in process %d and cannot be used after "
                        "fork(); open it again in the child" % (self._path, self._pid))

    # -- transactions -------------------------------------------------------------------------

    def begin(self, db: Optional[_Database] = None, parent: Optional[Transaction] = None,
              write: bool = False, buffers: bool = False) -> Transaction:
        """A new transaction: a read snapshot, or with ``write=True`` the single writer
        (waits while another thread holds it)."""
        return Transaction(self, db, parent, write, buffers)

    def _begin_write(self, txn: Transaction) -> None:
        if self._readonly:
            raise ReadonlyError("Cannot start write transaction with read-only environment.",
                                errno.EACCES)
        me = threading.get_ident()
        if self._writer_thread == me:
            err = Error("mdb_txn_begin: Device or resource busy. A write transaction is "
                        "already open in this thread. This would deadlock.")
            err.code = errno.EBUSY
            raise err
        if self._panic:
            raise PanicError("mdb_txn_begin: an earlier commit failed after writing its meta "
                             "page; reopen the environment", PanicError.MDB_CODE)
        self._write_lock.acquire()
        lock = self._lock if self._lock is not None and self._lock.active else None
        try:
            self._check_open()
            if lock is not None:
                lock.lock_writer()          # other processes' writers
                try:
                    self._catch_up_writer(lock)
                except BaseException:
                    lock.unlock_writer()
                    raise
        except BaseException:
            self._write_lock.release()
            raise
        self._writer = txn
        self._writer_thread = me
        txn._owner = txn._putter = me
        txn._seq = next(self._seqs)
        meta = self._snap[0]
        txn._init_snapshot(self._snap, meta.txnid + 1)
        self._txns.add(txn)

    def _catch_up_writer(self, lock: Any) -> None:
        """With the writer mutex held: start from the last commit, whoever made it."""
        if lock.owner_died:
            # a writer died holding the mutex: its commit counts only if its meta is complete
            lock.owner_died = False
            assert self._file is not None
            newest = self._file.read_meta_pages()
            lock.publish_txnid(newest.txnid)
        txnid = lock.txnid()
        if txnid != self._snap[0].txnid:
            with self._state_lock:
                self._publish(self._read_meta(txnid))
                self._caches = [{}, {}]

    def _publish_handles(self, txn: Transaction) -> None:
        """``txn`` ended: the handles it opened become usable by transactions begun later."""
        if not self._unpublished:
            return
        with self._state_lock:
            for db in self._named.values():
                if db._opener is txn:
                    db._opener = None
                    db._visible_from = next(self._seqs)
                    self._unpublished -= 1

    def _end_write(self, txn: Transaction) -> None:
        self._publish_handles(txn)
        if self._writer is txn:
            self._writer = None
            self._writer_thread = None
            try:
                if self._lock is not None and self._lock.active:
                    self._lock.unlock_writer()
            finally:
                self._write_lock.release()

    def _begin_read(self, txn: Transaction) -> None:
        lock = self._lock
        if lock is not None and lock.active:
            if lock._unlock_pending:
                lock.settle()
            slot = self._take_slot(lock)
            try:
                txnid = lock.read_snapshot(slot)
                snap = self._snap
                if snap[0].txnid < txnid:
                    snap = self._refresh(txnid)
            except BaseException:
                self._give_slot(lock, slot)
                raise
            txn._slot = slot
        else:
            # without a lock file this process's readers are counted here instead
            snap = self._snap
            txnid = snap[0].txnid
            with self._state_lock:
                self._readers[txnid] = self._readers.get(txnid, 0) + 1
        txn._seq = next(self._seqs)
        txn._init_snapshot(snap, snap[0].txnid)
        txn._reader_txnid = txnid
        self._txns.add(txn)
        self._reader_threads[txn] = threading.get_ident()

    def _take_slot(self, lock: Any) -> int:
        if self._spare_slots:
            with self._state_lock:
                if self._spare_slots:
                    return self._spare_slots.pop()
        return int(lock.acquire_slot())

    def _give_slot(self, lock: Any, slot: int) -> None:
        """A read transaction ended: keep its slot as a spare (``max_spare_txns``) or free it."""
        with self._state_lock:
            if len(self._spare_slots) < self._spare_max and not self._closed:
                lock.idle_slot(slot)
                self._spare_slots.append(slot)
                return
        lock.free_slot(slot)

    def _refresh(self, txnid: int) -> Tuple[Meta, Any, Any]:
        """Adopt a commit another process made (at least ``txnid``); our decoded pages may
        describe pages it reused, so the page caches start afresh."""
        meta = self._read_meta(txnid)
        with self._state_lock:
            if self._snap[0].txnid < meta.txnid:
                self._publish(meta)
                self._caches = [{}, {}]
            return self._snap

    def _read_meta(self, txnid: int) -> Meta:
        """The meta page of commit ``txnid`` (or a newer one in its slot), checked; the newest
        valid meta if that slot does not hold it."""
        assert self._file is not None
        psize = self._psize
        m = self._file.remap()
        offset = (txnid & 1) * psize
        meta: Optional[Meta] = None
        for _ in range(100):
            # another process may be rewriting this slot (with a newer commit): a read that
            # two reads in a row agree on is not torn
            raw = bytes(m[offset:offset + META_SIZE])
            if raw == m[offset:offset + META_SIZE]:
                try:
                    meta = unpack_meta(raw)[1]
                except (ValueError, struct.error):
                    meta = None
                break
        if meta is None or meta.magic != MAGIC or meta.txnid < txnid or \
                meta.free_db.pad != psize or (meta.last_pg + 1) * psize > len(m):
            meta = self._file.read_meta_pages()
        if not self._auto_grow and meta.last_pg >= self._map_size // psize:
            raise MapResizedError("mdb_txn_begin", MapResizedError.MDB_CODE)
        if self._auto_grow and meta.mapsize > self._map_size:
            self._map_size = meta.mapsize
        self._main_db._flags = meta.main_db.flags
        return meta

    def _end_read(self, txn: Transaction) -> None:
        if self._unpublished:
            self._publish_handles(txn)
        slot = txn._slot
        if slot is not None:
            txn._slot = None
            lock = self._lock
            if lock is not None and lock.active:
                self._give_slot(lock, slot)
            return
        txnid = txn._reader_txnid
        with self._state_lock:
            n = self._readers.get(txnid, 0) - 1
            if n > 0:
                self._readers[txnid] = n
            else:
                self._readers.pop(txnid, None)

    def _oldest_reader(self, write_txnid: int) -> int:
        """Free-list records below this id may be reused by the writer."""
        with self._state_lock:
            oldest = write_txnid - 1
            if self._readers:
                oldest = min(oldest, min(self._readers))
        lock = self._lock
        if lock is not None and lock.active:
            oldest = lock.oldest(oldest)      # every process's readers
        return oldest

    # -- commit -------------------------------------------------------------------------------

    def _commit(self, txn: Transaction) -> None:
        dbs = txn._dbs
        if not (txn.dirty or txn.freed or txn.ovf or any(d.changed for d in dbs.values())):
            return
        txn._write_db_records()
        freelist.save(txn)
        assert self._file is not None
        psize = self._psize
        old = self._snap[0]
        last_pg = txn.next_pgno - 1
        used = (last_pg + 1) * psize
        if self._auto_grow and used + used // 2 > self._map_size:
            grown = used + used // 2
            self._map_size = grown + (-grown % (1 << 20))
        free = dbs[FREE_DBI]
        main = dbs[MAIN_DBI]
        free_rec = DbRecord(psize, old.free_db.flags, *free.record()[2:])
        main_rec = DbRecord(0, main.flags, *main.record()[2:])
        meta = Meta(old.magic, old.version, old.address, max(old.mapsize, self._map_size),
                    free_rec, main_rec, last_pg, txn._txnid)
        written, offsets = self._write_dirty(txn)
        f = self._file
        try:
            if self._flags["sync"]:
                f.sync()
        except OSError as exc:
            raise from_oserror("mdb_txn_commit", exc) from None
        offset = (meta.txnid & 1) * psize + META_TAIL_OFFSET
        previous = txn._map[offset:offset + META_TAIL.size]   # the map shows the file
        try:
            f.write_meta(meta)
        except OSError as exc:
            # put back what the slot held (LMDB does the same); if even that fails, panic
            try:
                f.io.pwrite(f.fd, previous, offset)
            except OSError:
                self._panic = True
                raise PanicError("mdb_txn_commit: %s" % exc, PanicError.MDB_CODE) from None
            raise from_oserror("mdb_txn_commit", exc) from None
        try:
            if self._flags["sync"] and self._flags["metasync"]:
                f.sync()
        except BaseException as exc:
            # The new meta page may or may not be on disk, so this process can no longer
            # tell which pages are free: like LMDB (MDB_PANIC), refuse every further write
            # until the environment is opened again.
            self._panic = True
            if isinstance(exc, OSError):
                raise PanicError("mdb_txn_commit: %s" % exc, PanicError.MDB_CODE) from None
            raise
        for cache in self._caches:
            for pgno in written:
                cache.pop(pgno, None)
        self._cache_committed(txn, offsets)
        with self._state_lock:
            self._publish(meta, written_by_us=True)
        self._main_db._flags = main.flags
        if self._lock is not None and self._lock.active:
            self._lock.publish_txnid(meta.txnid)     # after our own snapshot: see _begin_read

    def _index_room(self, records: int) -> bool:
        """Whether a branch page may index ``records`` more records (Transaction.
        _index_below): all indexes together stay under INDEX_RECORDS_PER_PAGE per cached
        page. The count only grows as indexes are built; pages leaving the caches take
        theirs along, so once it reaches the bound it is recounted from the caches now and
        then. A page refused stays without an index while it is cached."""
        limit = self._cache_pages * INDEX_RECORDS_PER_PAGE
        if self._indexed + records <= limit:
            return True
        # recounting walks the caches: only every so many refusals
        self._index_refusals += 1
        if self._index_refusals % 64:
            return False
        total = 0
        for cache in self._caches:
            try:
                total += sum(len(p.below) for p in list(cache.values()) if p.below)
            except RuntimeError:        # another thread changed the cache meanwhile
                return False
        self._indexed = total
        return total + records <= limit

    def _cache_committed(self, txn: Transaction,
                         offsets: Dict[int, Optional[Sequence[int]]]) -> None:
        """Keep the pages just written as clean decoded pages, so the next transaction does
        not decode them again. Their inline values are re-pointed at the bytes just written
        (`adopt_image`): the offsets they held point into pages this commit freed, which a
        later writer may reuse."""
        limit = self._cache_pages
        psize = self._psize
        caches = self._caches
        for pgno, page in txn.dirty.items():
            cache = caches[page.rev]
            if len(cache) < limit:
                adopt_image(page, offsets[pgno], pgno * psize)
                cache[pgno] = page

    def _write_dirty(self, txn: Transaction
                     ) -> Tuple[List[int], Dict[int, Optional[Sequence[int]]]]:
        """Encode and write every dirty page and overflow run, in page order, neighbours
        together; returns the pages written and where the nodes of each dirty page went
        (for `_cache_committed`). Pages are encoded run by run and each run is written at
        once (up to _RUN_BYTES), so a big commit never holds all its images: building them
        all first left a malloc heap as big as the commit behind it."""
        psize = self._psize
        m = txn._map
        dirty = txn.dirty
        ovf = txn.ovf
        offsets: Dict[int, Optional[Sequence[int]]] = {}
        written: List[int] = []
        assert self._file is not None
        f = self._file
        run: List[bytes] = []
        first = end = -1
        size = 0
        try:
            f.ensure_size(txn.next_pgno * psize)
            for pgno in sorted([*dirty, *ovf]):
                page = dirty.get(pgno)
                if page is not None:
                    n = 1
                    data, offsets[pgno] = encode_for_commit(page, psize, m)
                else:
                    value = ovf[pgno]
                    n = overflow_pages(len(value), psize)
                    head = OVERFLOW_HEADER.pack(pgno, 0, P_OVERFLOW, n)
                    data = b"".join((head, value, bytes(n * psize - 16 - len(value))))
                if pgno != end or size >= _RUN_BYTES:
                    if run:
                        f.write_pages([(first, run)])
                    run = []
                    first = pgno
                    size = 0
                run.append(data)
                size += len(data)
                end = pgno + n
                written.extend(range(pgno, end))
            if run:
                f.write_pages([(first, run)])
        except OSError as exc:
            raise from_oserror("mdb_txn_commit", exc) from None
        return written, offsets

    # -- information ----------------------------------------------------------------------------

    def stat(self) -> Dict[str, int]:
        """Statistics of the main database: psize, depth, branch_pages, leaf_pages,
        overflow_pages, entries."""
        self._check_open()
        rec = self._snap[0].main_db
        return {"psize": self._psize, "depth": rec.depth, "branch_pages": rec.branch_pages,
                "leaf_pages": rec.leaf_pages, "overflow_pages": rec.overflow_pages,
                "entries": rec.entries}

    def info(self) -> Dict[str, int]:
        """map_addr, map_size, last_pgno, last_txnid, max_readers, num_readers."""
        self._check_open()
        meta = self._snap[0]
        return {"map_addr": 0, "map_size": self._map_size, "last_pgno": meta.last_pg,
                "last_txnid": meta.txnid, "max_readers": self._max_readers,
                "num_readers": self._lock.num_readers() if self._lock is not None else 0}

    def flags(self) -> Dict[str, bool]:
        """The open flags: subdir, readonly, metasync, sync, map_async, readahead, writemap,
        meminit, lock."""
        self._check_open()
        return dict(self._flags)

    def path(self) -> str:
        self._check_open()
        return self._path

    def lib_version(self) -> Tuple[int, int, int]:
        """The LMDB version whose format and behaviour this environment follows."""
        self._check_open()
        return (0, 9, 36)

    def max_key_size(self) -> int:
        self._check_open()
        return MAX_KEY_SIZE

    def max_readers(self) -> int:
        self._check_open()
        return self._max_readers

    def readers(self) -> str:
        """The reader table as ``mdb_stat -r`` prints it: every process's readers (``-`` for
        a slot kept idle for reuse)."""
        self._check_open()
        lock = self._lock
        if lock is not None and lock.active:
            rows = ["%10d %x %s\n" % (pid, tid, "-" if txnid == IDLE_TXNID else txnid)
                    for pid, tid, txnid in lock.reader_rows()]
        else:
            rows = ["%10d %x %d\n" % (self._pid, tid, txn._txnid)
                    for txn, tid in _snapshot_of(self._reader_threads.items) if not txn._done]
        if not rows:
            return "(no active readers)\n"
        return "    pid     thread     txnid\n" + "".join(rows)

    def reader_check(self) -> int:
        """Free the reader slots of processes that died; returns how many."""
        self._check_open()
        lock = self._lock
        if lock is None or not lock.active:
            return 0
        return int(lock.reader_check())

    def sync(self, force: bool = False) -> None:
        """Flush the data file to disk."""
        self._check_open()
        assert self._file is not None
        if self._readonly:
            return
        try:
            self._file.sync()
        except OSError as exc:
            raise from_oserror("mdb_env_sync", exc) from None

    def set_mapsize(self, map_size: int) -> None:
        """Change the map size limit (0: adopt the size recorded in the file). Ends every
        open transaction of this environment."""
        self._check_open()
        map_size = _uint(map_size, "map_size")
        me = threading.get_ident()
        if self._writer_thread == me:
            raise Error("Cannot set_mapsize while a write transaction is active")
        # this thread's transactions end, as in the lmdb package; other threads' readers keep
        # their own maps and need nothing, and their writer is waited for
        for txn in _snapshot_of(self._txns.__iter__):
            if self._reader_threads.get(txn) == me:
                txn.abort()
        with self._write_lock:
            self._check_open()
            assert self._file is not None
            meta = self._snap[0]
            used = (meta.last_pg + 1) * self._psize
            if map_size == 0:
                map_size = self._file.read_meta_pages().mapsize
            self._map_size = max(map_size, used)
            if not self._auto_grow:
                self._max_pgno = self._map_size // self._psize

    # -- copies ---------------------------------------------------------------------------------

    def copy(self, path: Any, compact: bool = False, txn: Optional[Transaction] = None) -> None:
        """A consistent copy of the environment into the existing, empty folder ``path``
        (as ``data.mdb``), taken from one snapshot while writers go on. ``compact=True``
        rebuilds it without free pages."""
        self._check_open()
        if txn is not None and not compact:
            raise TypeError("txn argument only compatible with compact=True")
        path = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
        if not os.path.isdir(path):
            raise Error(path, errno.ENOENT)
        target = os.path.join(path, "data.mdb")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise from_oserror(target, exc) from None
        try:
            self.copyfd(fd, compact=compact, txn=txn)
        finally:
            os.close(fd)

    def copyfd(self, fd: int, compact: bool = False, txn: Optional[Transaction] = None) -> None:
        """`copy` to an open file descriptor."""
        self._check_open()
        if txn is not None and not compact:
            raise TypeError("txn argument only compatible with compact=True")
        from .copying import compact_copy, plain_copy
        own = txn is None
        snap = self.begin() if own else txn
        try:
            (compact_copy if compact else plain_copy)(self, snap, fd)  # type: ignore[arg-type]
        except OSError as exc:
            raise from_oserror("mdb_env_copyfd3", exc) from None
        finally:
            if own:
                snap.abort()  # type: ignore[union-attr]

    # -- databases ------------------------------------------------------------------------------

    def open_db(self, key: Any = None, txn: Optional[Transaction] = None,
                reverse_key: bool = False, dupsort: bool = False, create: bool = True,
                integerkey: bool = False, integerdup: bool = False,
                dupfixed: bool = False) -> _Database:
        """A handle of the database named ``key`` (the main database for None), created
        with the given flags if missing and ``create``. Without ``txn`` a transaction of its
        own is used and committed. Flags of an existing database are read from the file."""
        self._check_open()
        if key is None:
            if reverse_key or dupsort or integerkey or integerdup or dupfixed:
                raise ValueError("May not set flags on the main database")
            return self._main_db
        name = to_bytes(key).split(b"\0", 1)[0]
        if not 0 < len(name) <= MAX_KEY_SIZE:
            raise BadValsizeError("mdb_dbi_open", BadValsizeError.MDB_CODE)
        with self._state_lock:
            known = self._named.get(name)
        if known is not None:
            return known
        flags = 0
        if reverse_key:
            flags |= MDB_REVERSEKEY
        if integerkey:
            flags |= MDB_INTEGERKEY
        if integerdup:
            flags |= MDB_INTEGERDUP | MDB_DUPFIXED | MDB_DUPSORT
        if dupfixed:
            flags |= MDB_DUPFIXED | MDB_DUPSORT
        if dupsort:
            flags |= MDB_DUPSORT
        if txn is not None:
            return self._open_named(txn, name, flags, create)
        if self._writer_thread == threading.get_ident():
            raise Error("mdb_dbi_open: a write transaction is open in this thread; pass it "
                        "as open_db(..., txn=txn), or this would deadlock")
        with Transaction(self, write=not self._readonly) as own:
            return self._open_named(own, name, flags, create)

    def _open_named(self, txn: Transaction, name: bytes, flags: int,
                    create: bool) -> _Database:
        txn._check()
        with self._state_lock:
            known = self._named.get(name)
        if known is not None:
            return known
        main = txn._dbs[MAIN_DBI]
        if main.flags & (MDB_DUPSORT | MDB_INTEGERKEY):
            raise IncompatibleError("mdb_dbi_open", IncompatibleError.MDB_CODE)
        found = txn._find_node(main, name)
        if found is not None:
            nflags, value = found
            if not nflags & F_SUBDATA or nflags & F_DUPDATA:
                raise IncompatibleError("mdb_dbi_open", IncompatibleError.MDB_CODE)
            if len(value) != 48:
                raise CorruptedError("mdb_dbi_open: record of %r is %d bytes, not 48"
                                     % (name, len(value)), CorruptedError.MDB_CODE)
            flags = DbRecord.unpack(value).flags
        elif not create:
            raise NotFoundError("mdb_dbi_open", NotFoundError.MDB_CODE)
        elif not txn._write:
            raise ReadonlyError("mdb_dbi_open", errno.EACCES)
        with self._state_lock:
            if len(self._named) >= self._max_dbs:
                raise DbsFullError("mdb_dbi_open", DbsFullError.MDB_CODE)
            db = _Database(self, len(self._handles), name, flags)
            root = txn
            while root._parent is not None:
                root = root._parent
            db._opener = root
            self._unpublished += 1
            self._handles.append(db)
            self._named[name] = db
        if found is None:
            txn._create_db(db)
        return db

    def _forget_db(self, db: _Database) -> None:
        """Close a handle: dropped with delete=True, or created by a transaction that
        aborted."""
        db._closed = True
        with self._state_lock:
            if db._opener is not None:
                db._opener = None
                self._unpublished -= 1
            if self._named.get(db._name) is db:  # type: ignore[arg-type]
                del self._named[db._name]  # type: ignore[arg-type]

    def dbs(self, txn: Optional[Transaction] = None) -> List[bytes]:
        """Names of the named databases, found by walking the main database."""
        self._check_open()
        if txn is not None:
            return txn._db_names()[:self._max_dbs]
        with Transaction(self) as own:
            return own._db_names()[:self._max_dbs]

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the environment, ending every transaction and cursor made from it."""
        if self._closed:
            return
        writer = self._writer
        if writer is not None and self._writer_thread == threading.get_ident():
            writer.abort()
        with self._write_lock:
            self._closed = True
            for txn in _snapshot_of(self._txns.__iter__):
                try:
                    txn.abort()
                except Exception:
                    pass
        self._caches = [{}, {}]
        self._release_files()

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and process.pid == self._pid:
                self.close()
        except Exception:
            pass


open = Environment
