"""The lock file (``lock.mdb`` / ``<path>-lock``): LMDB's shared locking protocol.

Theory of operation
-------------------
Processes that share an environment, C LMDB ones included, coordinate through the lock file:
POSIX record locks on it, and a memory-mapped header holding two robust pthread mutexes, the
last committed txnid and a reader table (format doc 13). purelmdb follows LMDB's protocol:

* Open tries ``F_WRLCK`` on byte 0 without waiting. Whoever gets it is the only user: it
  (re)initialises the header (magic, format, both mutexes fresh, no readers, the file at least
  ``128 + 64 * max_readers`` bytes), publishes the data file's txnid, and only then downgrades
  to ``F_RDLCK`` (`LockFile.share`). Everyone else waits for ``F_RDLCK`` on byte 0 (so for
  the initialiser to finish) and checks the header's magic and format.
* A reader takes a slot (pid, thread id, txnid) under the reader mutex, or reuses one it kept
  idle (``max_spare_txns``), publishes the txnid it reads in its slot without any lock, and
  clears it when done. Before its first slot a process takes ``F_WRLCK`` on the byte at offset
  = its pid: the lock lives as long as the process does, so `LockFile.reader_check` can tell
  the slots of dead processes (no lock on their byte) and free them.
* The single writer holds the writer mutex from begin to commit or abort, and publishes the
  new txnid in the header after the meta page is written. It reuses only pages freed before the
  oldest txnid published in the reader table (`LockFile.oldest`).

The mutexes are glibc's robust process-shared mutexes; mutex.py says how we operate them, and
what happens on platforms where C LMDB uses another lock-file format (we refuse to share it).

POSIX record locks belong to the (process, file) pair: closing *any* descriptor of the lock file
drops all of the process's locks on it. So a process must open each lock file once. A registry
of the ``(st_dev, st_ino)`` of open lock files enforces this, checked *before* opening (opening
and closing a second descriptor would already be too late).

Locks are not inherited by ``fork()``. A child's copy of a `LockFile` holds nothing and must
not touch the table: every method refuses in the child, and its `close` only closes the
inherited descriptor (which leaves the parent's locks alone). A child may open the environment
anew.

Read-only fallback: with ``readonly=True``, if the lock file cannot be opened for writing
because the file system or the file/folder is read-only (``EROFS``, ``EACCES``), we run without
a lock file (``active`` is False) as LMDB does for ``EROFS``. Nothing then stops a writer from
recycling pages under our readers, so this is only safe when no other process writes; with
``EROFS`` none can, with ``EACCES`` another user still might.

Lock file layout (64-bit Linux, glibc robust mutexes; format doc 13.1)::

    offset size field       meaning
    0      4    magic       0xBEEFC0DE
    4      4    format      0x00010001: lock version 1 + "readers take pid locks"
    8      40   rmutex      pthread_mutex_t guarding reader-slot allocation
    48     8    txnid       last committed txnid
    56     4    numreaders  high-water mark of reader slots used
    60     4    -           padding
    64     40   wmutex      pthread_mutex_t: the single-writer lock
    104    24   -           padding
    128+64i 64  slot i      reader slot: txnid u64, pid u32, pad, tid u64, pad to 64
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
import sys
import threading
from typing import Callable, Dict, List, Optional, Tuple, Union

from . import process
from .errors import (
    Error,
    InvalidParameterError,
    LockError,
    ReadersFullError,
    VersionMismatchError,
    closed_error,
    from_oserror,
)
from .layout import IDLE_TXNID, LOCK_FORMAT, MAGIC
from .mutex import FcntlMutex, LockedAfterOwnerDied, PthreadMutex, glibc_mutexes

__all__ = ["LockFile", "lock_path_for", "lock_file_size", "readers_for_size"]

# -- layout -------------------------------------------------------------------------------------

HEADER = struct.Struct("<II40sQI4x40s24x")  # magic, format, rmutex, txnid, numreaders, wmutex
HEADER_SIZE = HEADER.size  # 128
READER_SLOT_SIZE = 64
TXNID = struct.Struct("<Q")
TXNID_OFFSET = 48
NUMREADERS = struct.Struct("<I")
NUMREADERS_OFFSET = 56
RMUTEX_OFFSET = 8
WMUTEX_OFFSET = 64

# A glibc pthread_mutex_t (40 bytes) as pthread_mutex_init leaves it with the process-shared and
# robust attributes: all zero but __kind (i32 at 16) = PTHREAD_MUTEX_ROBUST | PSHARED = 0x90.
MUTEX_INIT = struct.pack("<16xi20x", 0x90)


def lock_file_size(max_readers: int) -> int:
    """The lock file size C LMDB wants for ``max_readers`` slots: ``128 + 64 * max_readers``."""
    return HEADER_SIZE + READER_SLOT_SIZE * max_readers


def readers_for_size(size: int) -> int:
    """The reader-table size C LMDB derives from an existing lock file of ``size`` bytes."""
    return (size - HEADER_SIZE - READER_SLOT_SIZE) // READER_SLOT_SIZE + 1


def _pack_header(txnid: int) -> bytes:
    """A fresh header: both mutexes unlocked, no readers, ``txnid`` published."""
    return HEADER.pack(MAGIC, LOCK_FORMAT, MUTEX_INIT, txnid, 0, MUTEX_INIT)


def lock_path_for(path: str, subdir: bool) -> str:
    """The lock file of the environment at ``path``: ``<path>/lock.mdb`` or ``<path>-lock``."""
    return os.path.join(path, "lock.mdb") if subdir else path + "-lock"


# -- fcntl helpers ------------------------------------------------------------------------------

# struct flock: Linux has l_type, l_whence (short), l_start, l_len (off_t), l_pid; BSDs and
# macOS have l_start, l_len, l_pid, l_type, l_whence.
_LINUX_FLOCK = sys.platform.startswith("linux")
_FLOCK = struct.Struct("hhqqi0q" if _LINUX_FLOCK else "qqihh")


def _probe_lock(fd: int, offset: int) -> Optional[int]:
    """Pid of a process holding a lock that conflicts with a write lock on byte ``offset``
    (-1 when the holder is in another pid namespace), or None when nobody does."""
    if _LINUX_FLOCK:
        arg = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    else:
        arg = _FLOCK.pack(offset, 1, 0, fcntl.F_WRLCK, os.SEEK_SET)
    got = fcntl.fcntl(fd, fcntl.F_GETLK, arg)
    fields = _FLOCK.unpack(got)
    l_type, pid = (fields[0], fields[4]) if _LINUX_FLOCK else (fields[3], fields[2])
    if l_type == fcntl.F_UNLCK:
        return None
    return pid if pid > 0 else -1


# fcntl lock byte of the writer mutex where glibc mutexes are not available (mutex.py): past
# any pid, so that it never meets a reader's pid lock
_FCNTL_WRITER_BYTE = 1 << 40


def _pwrite_all(fd: int, data: Union[bytes, bytearray], offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


# -- the one-open-per-process registry ----------------------------------------------------------

_FileKey = Tuple[int, int]  # (st_dev, st_ino)
_registry_lock = threading.RLock()   # reentrant: a __del__ may close a LockFile mid-open
_open_files: Dict[_FileKey, LockFile] = {}


def _file_key(st: os.stat_result) -> _FileKey:
    return (st.st_dev, st.st_ino)


def _claim(key: _FileKey, name: str) -> None:
    """Refuse a second open of lock file ``key`` in this process. Call with the registry lock."""
    other = _open_files.get(key)
    if other is None:
        return
    if other._pid != process.pid:
        # Inherited through fork(): it holds no lock here; close its descriptor now, as closing
        # it after we lock the file again would drop our new lock.
        other._close_fds()
        return
    raise Error("The environment %r is already open in this process." % (name,))


# -- the lock file ------------------------------------------------------------------------------


class LockFile:
    """An environment's lock file, shared with every other process that opens it.

    ``path`` is the lock file (see `lock_path_for`); ``env_path``, the environment's path as the
    user gave it, is only used in error messages (default: ``path``). ``mode`` is the file mode
    used if the file is created. ``max_readers`` is the reader-table size to provide when we are
    the first opener; otherwise, and for a larger file, the file's size decides (see the
    ``max_readers`` attribute).

    When ``first`` is True this process initialised the header and still holds the exclusive
    lock: it must call `share` (with the data file's txnid) before anyone else can open.

    Raises `Error` if this process has it open already, `VersionMismatchError` for a lock file
    of another format, `InvalidParameterError` for ``max_readers < 1``, and the `from_oserror`
    class for other failures to open or write the file. ``_open`` is a test seam for ``os.open``.
    """

    max_readers: int
    active: bool
    first: bool

    def __init__(
        self,
        path: str,
        *,
        readonly: bool,
        mode: int,
        max_readers: int,
        env_path: Optional[str] = None,
        _open: Callable[[str, int, int], int] = os.open,
    ) -> None:
        if max_readers < 1:
            raise InvalidParameterError("mdb_env_set_maxreaders", errno.EINVAL)
        name = path if env_path is None else env_path
        self.path = path
        self.name = name
        self.max_readers = max_readers
        self.active = False
        self.first = False
        self._pid = process.pid
        self._fd: Optional[int] = None
        self._spare_fds: List[int] = []
        self._key: Optional[_FileKey] = None
        self._closed = False
        self._map: Optional[mmap.mmap] = None
        self._u64: Optional[memoryview] = None
        self._u32: Optional[memoryview] = None
        self._rmutex: Optional[Union[PthreadMutex, FcntlMutex]] = None
        self._wmutex: Optional[Union[PthreadMutex, FcntlMutex]] = None
        self._writer_thread: Optional[int] = None   # the thread that locked the writer mutex
        self._unlock_pending = False                # ...and must unlock it (see unlock_writer)
        self._slot_lock = threading.RLock()     # our threads, around the reader mutex
        self._pid_locked = False
        self._slots: set = set()                # slots this LockFile holds
        with _registry_lock:
            try:
                st: Optional[os.stat_result] = os.stat(path)
            except OSError:
                st = None  # missing: nobody here has it open; unreadable: open() reports it
            if st is not None:
                _claim(_file_key(st), name)
            try:
                fd = _open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
            except OSError as exc:
                if readonly and exc.errno in (errno.EROFS, errno.EACCES):
                    return  # run without a lock file; see the module docstring
                raise from_oserror(name, exc) from None
            key = _file_key(os.fstat(fd))
            try:
                _claim(key, name)
            except Error:
                # The path was switched to an open lock file between stat and open. Closing fd
                # would drop that LockFile's lock, so it closes fd along with its own.
                _open_files[key]._spare_fds.append(fd)
                raise
            try:
                self.first = self._lock_byte0(fd, name)
                if self.first:
                    self.max_readers = self._init_header(fd, max_readers, name)
                else:
                    self.max_readers = self._check_header(fd, name)
                self._map_table(fd)
            except BaseException:
                self._drop_map()
                os.close(fd)  # we hold no other descriptor of this file: no lock is lost
                raise
            self._fd, self._key, self.active = fd, key, True
            _open_files[key] = self

    # -- opening --------------------------------------------------------------------------------

    @staticmethod
    def _lock_byte0(fd: int, name: str) -> bool:
        """LMDB's opening lock: exclusive if nobody else has the file (True), else shared,
        waiting while an opener initialises it (False)."""
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0, os.SEEK_SET)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise from_oserror(name, exc) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH, 1, 0, os.SEEK_SET)
        except OSError as exc:
            raise from_oserror(name, exc) from None
        return False

    @staticmethod
    def _init_header(fd: int, max_readers: int, name: str) -> int:
        """Write a fresh header and zeroed reader slots; return the reader-table size in effect.

        Expects the exclusive lock held. Never shrinks the file: a larger one keeps its size and
        its larger reader table, as C LMDB derives the table size from the file size.
        """
        size = os.fstat(fd).st_size
        if size > lock_file_size(max_readers):
            max_readers = readers_for_size(size)
        image = bytearray(max(size, lock_file_size(max_readers)))
        image[:HEADER_SIZE] = _pack_header(0)
        try:
            _pwrite_all(fd, image, 0)
        except OSError as exc:
            raise from_oserror(name, exc) from None
        return max_readers

    @staticmethod
    def _check_header(fd: int, name: str) -> int:
        """Check a header another process initialised; its reader-table size."""
        size = os.fstat(fd).st_size
        head = os.pread(fd, HEADER_SIZE, 0)
        if size < lock_file_size(1) or len(head) < 8:
            raise VersionMismatchError("%s: lock file too short (%d bytes)" % (name, size),
                                       VersionMismatchError.MDB_CODE)
        magic, fmt = struct.unpack_from("<II", head)
        if magic != MAGIC or fmt != LOCK_FORMAT:
            raise VersionMismatchError(
                "%s: lock file of another format (magic 0x%x, format 0x%x; purelmdb shares "
                "0x%x with LMDB 0.9 on Linux/glibc)" % (name, magic, fmt, LOCK_FORMAT),
                VersionMismatchError.MDB_CODE)
        return readers_for_size(size)

    def _map_table(self, fd: int) -> None:
        size = lock_file_size(self.max_readers)
        self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        view = memoryview(self._map)
        self._u64 = view.cast("Q")
        self._u32 = view.cast("I")
        view.release()
        if glibc_mutexes():
            self._rmutex = PthreadMutex(self._map, RMUTEX_OFFSET)
            self._wmutex = PthreadMutex(self._map, WMUTEX_OFFSET)
        else:
            self._rmutex = FcntlMutex(fd, _FCNTL_WRITER_BYTE + 1)
            self._wmutex = FcntlMutex(fd, _FCNTL_WRITER_BYTE)

    def _drop_map(self) -> None:
        for mutex in (self._rmutex, self._wmutex):
            if mutex is not None:
                mutex.release()
        self._rmutex = self._wmutex = None
        for view in (self._u64, self._u32):
            if view is not None:
                view.release()
        self._u64 = self._u32 = None
        if self._map is not None:
            self._map.close()
            self._map = None

    def share(self, txnid: int) -> None:
        """First opener: publish ``txnid`` and let other openers in (downgrade to F_RDLCK)."""
        self._check_usable()
        if not self.first or self._fd is None:
            return
        self.publish_txnid(txnid)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_SH, 1, 0, os.SEEK_SET)
        except OSError as exc:
            raise from_oserror(self.name, exc) from None
        self.first = False

    def _check_usable(self) -> None:
        if self._closed:
            raise closed_error()
        if self._pid != process.pid:
            raise Error(
                "The lock file %r was opened by process %d and cannot be used after "
                "fork() in process %d; open the environment again"
                % (self.path, self._pid, process.pid)
            )

    # -- the header -----------------------------------------------------------------------------

    def txnid(self) -> int:
        """The last committed txnid as published in the header."""
        u64 = self._u64
        if u64 is None:
            raise closed_error()
        return int(u64[TXNID_OFFSET >> 3])

    def publish_txnid(self, txnid: int) -> None:
        """Store ``txnid`` as the last committed transaction (after its meta page is written).
        A no-op without a lock file."""
        self._check_usable()
        if self._u64 is not None:
            self._u64[TXNID_OFFSET >> 3] = txnid

    def num_readers(self) -> int:
        """The ``numreaders`` field: reader slots ever used."""
        self._check_usable()
        if self._u32 is None:
            return 0
        return int(self._u32[NUMREADERS_OFFSET >> 2])

    # -- the writer -----------------------------------------------------------------------------

    def lock_writer(self) -> None:
        """Take the writer mutex, waiting for another process's writer. After a writer died
        holding it, ``owner_died`` is set (the caller republishes the txnid of the last
        complete commit) and dead readers are reclaimed, as LMDB does.

        The caller serialises its own threads (one write transaction per environment)."""
        self._check_usable()
        assert self._wmutex is not None
        me = threading.get_ident()
        if self._unlock_pending:
            if self._writer_thread == me:
                self._unlock_pending = False    # still ours from the last transaction
                return
            if self._writer_thread in {t.ident for t in threading.enumerate()}:
                raise Error("mdb_txn_begin: the last write transaction ended on another "
                            "thread than the one that began it, and that thread still holds "
                            "the writer lock; end write transactions on their own thread")
            self._unlock_pending = False        # its thread is gone: the lock comes back dead
        try:
            self._wmutex.lock()
        except LockedAfterOwnerDied:
            self.owner_died = True
            self.reader_check()
        except OSError as exc:
            raise from_oserror("mdb_txn_begin", exc) from None
        self._writer_thread = me

    owner_died = False

    def unlock_writer(self) -> None:
        """Release the writer mutex. A pthread mutex can only be unlocked by the thread that
        locked it: from another thread the unlock waits for that thread's next call to
        `settle` (any transaction it begins) or `lock_writer`."""
        assert self._wmutex is not None
        if isinstance(self._wmutex, PthreadMutex) and self._writer_thread != threading.get_ident():
            self._unlock_pending = True
            return
        self._unlock_now()

    def _unlock_now(self) -> None:
        assert self._wmutex is not None
        self._writer_thread = None
        self._unlock_pending = False
        try:
            self._wmutex.unlock()
        except OSError as exc:
            raise from_oserror("mdb_txn_commit", exc) from None

    def settle(self) -> None:
        """Do an unlock `unlock_writer` left to this thread."""
        if self._unlock_pending and self._writer_thread == threading.get_ident():
            self._unlock_now()

    # -- reader slots ---------------------------------------------------------------------------

    def _slot_txnid_index(self, slot: int) -> int:
        return (HEADER_SIZE + READER_SLOT_SIZE * slot) >> 3

    def acquire_slot(self) -> int:
        """A free reader slot, now ours (txnid idle). `ReadersFullError` when none is left."""
        pid = self._pid
        with self._slot_lock:       # close() takes it too: the map stays while we use it
            u64, u32 = self._u64, self._u32
            if u64 is None or u32 is None or self._rmutex is None:
                raise closed_error()
            if not self._pid_locked:
                self._lock_pid_byte()
            try:
                self._rmutex.lock()
            except LockedAfterOwnerDied:
                self._clear_dead(locked=True)
            except OSError as exc:
                raise from_oserror("mdb_txn_begin", exc) from None
            try:
                used = int(u32[NUMREADERS_OFFSET >> 2])
                for slot in range(used):
                    if not u32[(HEADER_SIZE + READER_SLOT_SIZE * slot + 8) >> 2]:
                        break
                else:
                    if used >= self.max_readers:
                        raise ReadersFullError("mdb_txn_begin", ReadersFullError.MDB_CODE)
                    slot = used
                base = self._slot_txnid_index(slot)
                # as LMDB: reset the slot, publish it in numreaders, then claim it
                u32[(base << 1) + 2] = 0
                u64[base] = IDLE_TXNID
                u64[base + 2] = threading.get_ident() & 0xFFFFFFFFFFFFFFFF
                if slot == used:
                    u32[NUMREADERS_OFFSET >> 2] = used + 1
                u32[(base << 1) + 2] = pid
            finally:
                self._rmutex.unlock()
            self._slots.add(slot)
            return slot

    def _lock_pid_byte(self) -> None:
        assert self._fd is not None
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self._pid, os.SEEK_SET)
        except OSError as exc:
            raise LockError("%s: cannot take the liveness lock of pid %d: %s"
                            % (self.name, self._pid, exc.strerror), errno.EAGAIN) from None
        self._pid_locked = True

    def read_snapshot(self, slot: int) -> int:
        """Publish the latest txnid in ``slot`` and return it, retrying if a commit raced."""
        u64 = self._u64
        if u64 is None:
            raise closed_error()
        base = self._slot_txnid_index(slot)
        at = TXNID_OFFSET >> 3
        try:
            while True:
                txnid = u64[at]
                u64[base] = txnid
                if u64[at] == txnid:
                    return int(txnid)
        except ValueError:          # the view was released: closed meanwhile
            raise closed_error() from None

    def idle_slot(self, slot: int) -> None:
        """The slot's reader ended; the slot stays ours for the next one."""
        if self._u64 is not None and self._pid == process.pid:
            with contextlib.suppress(ValueError):       # closed meanwhile: nothing to do
                self._u64[self._slot_txnid_index(slot)] = IDLE_TXNID

    def free_slot(self, slot: int) -> None:
        """Give the slot back to every process."""
        if self._u64 is None or self._u32 is None or self._pid != process.pid:
            return
        base = self._slot_txnid_index(slot)
        with contextlib.suppress(ValueError):           # closed meanwhile: nothing to do
            self._u64[base] = IDLE_TXNID
            self._u32[(base << 1) + 2] = 0
        self._slots.discard(slot)

    def oldest(self, start: int) -> int:
        """The lowest txnid any reader publishes, or ``start`` if that is lower."""
        u64, u32 = self._u64, self._u32
        if u64 is None or u32 is None:
            return start
        oldest = start
        for slot in range(int(u32[NUMREADERS_OFFSET >> 2])):
            base = self._slot_txnid_index(slot)
            if u32[(base << 1) + 2]:
                txnid = u64[base]
                if txnid < oldest:
                    oldest = int(txnid)
        return oldest

    def reader_rows(self) -> List[Tuple[int, int, int]]:
        """(pid, thread id, txnid) of every claimed slot, as ``mdb_reader_list`` walks them."""
        self._check_usable()
        u64, u32 = self._u64, self._u32
        if u64 is None or u32 is None:
            return []
        rows = []
        try:
            for slot in range(int(u32[NUMREADERS_OFFSET >> 2])):
                base = self._slot_txnid_index(slot)
                pid = int(u32[(base << 1) + 2])
                if pid:
                    rows.append((pid, int(u64[base + 2]), int(u64[base])))
        except ValueError:          # the view was released: closed meanwhile
            raise closed_error() from None
        return rows

    def reader_check(self) -> int:
        """Free the slots of processes that died holding them; how many were freed."""
        self._check_usable()
        with self._slot_lock:
            if self._rmutex is None:
                return 0
            try:
                self._rmutex.lock()
            except LockedAfterOwnerDied:
                pass
            except OSError as exc:
                raise from_oserror("mdb_reader_check", exc) from None
            try:
                return self._clear_dead(locked=True)
            finally:
                self._rmutex.unlock()

    def _clear_dead(self, locked: bool) -> int:
        u64, u32 = self._u64, self._u32
        assert u64 is not None and u32 is not None and self._fd is not None and locked
        verdict: Dict[int, bool] = {}
        cleared = 0
        for slot in range(int(u32[NUMREADERS_OFFSET >> 2])):
            base = self._slot_txnid_index(slot)
            pid = int(u32[(base << 1) + 2])
            if not pid or pid == self._pid:
                continue
            if pid not in verdict:
                try:
                    verdict[pid] = _probe_lock(self._fd, pid) is None
                except OSError:
                    verdict[pid] = False
            if verdict[pid]:
                u64[base] = IDLE_TXNID
                u32[(base << 1) + 2] = 0
                cleared += 1
        return cleared

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Free our reader slots, release the locks and close. Idempotent.

        In a child process after fork() only the inherited descriptor is closed: the locks and
        the slots belong to the parent.
        """
        if self._closed:
            return
        try:
            if self._pid == process.pid:
                for slot in list(self._slots):
                    self.free_slot(slot)
        finally:
            with _registry_lock:
                self._close_fds()

    def _close_fds(self) -> None:
        """Close every descriptor and leave the registry. Call with the registry lock."""
        self._closed, self.active = True, False
        with self._slot_lock:       # no thread is inside a mutex call on the map
            try:
                self._drop_map()
            except BufferError:
                pass  # a view still exported: the map goes when it does
        fds = ([self._fd] if self._fd is not None else []) + self._spare_fds
        self._fd, self._spare_fds = None, []
        if self._key is not None and _open_files.get(self._key) is self:
            del _open_files[self._key]
        for fd in fds:
            os.close(fd)
