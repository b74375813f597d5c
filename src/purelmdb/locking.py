"""The lock file (``lock.mdb`` / ``<path>-lock``): exclusive mode.

Theory of operation
-------------------
C LMDB coordinates processes through the lock file: POSIX record locks on it, plus a shared
memory header holding two robust pthread mutexes, the last committed txnid and a reader table.
This release runs in LMDB's *exclusive mode* (format doc 13.5):

* Open takes ``F_WRLCK`` on byte 0 without waiting. That is the lock a C opener tries first;
  while we hold it, C openers block in ``mdb_env_open`` (``F_SETLKW F_RDLCK`` on byte 0) and no
  other process reads or writes the environment. If anyone holds any lock on byte 0, we raise
  `LockError` rather than wait.
* Holding the lock, we (re)initialise the header as a C first opener does: magic, format, both
  mutexes fresh and unlocked, ``numreaders`` = 0, reader slots zeroed, the file at least
  ``128 + 64 * max_readers`` bytes (never shrunk).
* A C process that was blocked gets only the *shared* lock when we release ours, so it does not
  re-initialise: it trusts the header we leave, ``lock.txnid`` included, as the latest commit.
  A stale txnid makes C read an old snapshot and reuse the next txnid, overwriting the newest
  meta. Hence the engine calls `LockFile.publish_txnid` at open and after every commit, and
  `LockFile.close` writes it once more before unlocking.

POSIX record locks belong to the (process, file) pair: closing *any* descriptor of the lock file
drops all of the process's locks on it. So a process must open each lock file once. A registry
of the ``(st_dev, st_ino)`` of open lock files enforces this, checked *before* opening (opening
and closing a second descriptor would already be too late).

Locks are not inherited by ``fork()``. A child's copy of a `LockFile` holds nothing: its
`close` only closes the inherited descriptor (which leaves the parent's lock alone) and writes
nothing; `publish_txnid` refuses. A child may open the environment anew (and will get
`LockError` while the parent holds it).

Read-only fallback: with ``readonly=True``, if the lock file cannot be opened for writing
because the file system or the file/folder is read-only (``EROFS``, ``EACCES``), we run without
a lock file (``active`` is False) as LMDB does for ``EROFS``. Nothing then stops a writer from
recycling pages under our readers, so this is only safe when no other process writes; with
``EROFS`` none can, with ``EACCES`` another user still might.

Layout and header access (the constants and ``_pack_header``) are kept apart from the locking
policy (`LockFile`), so that a shared mode with a reader table can be added later. Shared mode
will have to map the file and lock the mutexes through glibc; exclusive mode only needs
``pread``/``pwrite``.

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

import errno
import fcntl
import os
import struct
import sys
import threading
from typing import Callable, Dict, List, Optional, Tuple, Union

from .errors import Error, InvalidParameterError, LockError, closed_error, from_oserror
from .layout import LOCK_FORMAT, MAGIC

__all__ = ["LockFile", "lock_path_for", "lock_file_size", "readers_for_size"]

# -- layout -------------------------------------------------------------------------------------

HEADER = struct.Struct("<II40sQI4x40s24x")  # magic, format, rmutex, txnid, numreaders, wmutex
HEADER_SIZE = HEADER.size  # 128
READER_SLOT_SIZE = 64
TXNID = struct.Struct("<Q")
TXNID_OFFSET = 48
NUMREADERS = struct.Struct("<I")
NUMREADERS_OFFSET = 56

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

# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid; "0q" pads the
# end to off_t alignment as the C struct does.
_FLOCK = struct.Struct("hhqqi0q")


def _lock_holder(fd: int) -> Optional[int]:
    """Best effort: the pid of a process holding a lock that conflicts with ours on byte 0."""
    if not sys.platform.startswith("linux"):
        return None  # struct flock has another layout elsewhere
    try:
        got = fcntl.fcntl(fd, fcntl.F_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0))
    except OSError:
        return None
    l_type, _, _, _, pid = _FLOCK.unpack(got)
    # pid is 0 for a holder in another pid namespace, -1 for an open-file-description lock.
    return pid if l_type != fcntl.F_UNLCK and pid > 0 else None


def _pwrite_all(fd: int, data: Union[bytes, bytearray], offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


# -- the one-open-per-process registry ----------------------------------------------------------

_FileKey = Tuple[int, int]  # (st_dev, st_ino)
_registry_lock = threading.Lock()
_open_files: Dict[_FileKey, LockFile] = {}


def _file_key(st: os.stat_result) -> _FileKey:
    return (st.st_dev, st.st_ino)


def _claim(key: _FileKey, name: str) -> None:
    """Refuse a second open of lock file ``key`` in this process. Call with the registry lock."""
    other = _open_files.get(key)
    if other is None:
        return
    if other._pid != os.getpid():
        # Inherited through fork(): it holds no lock here; close its descriptor now, as closing
        # it after we lock the file again would drop our new lock.
        other._close_fds()
        return
    raise Error("The environment %r is already open in this process." % (name,))


# -- the lock file ------------------------------------------------------------------------------


class LockFile:
    """An environment's lock file, held in exclusive mode from construction until `close`.

    ``path`` is the lock file (see `lock_path_for`); ``env_path``, the environment's path as the
    user gave it, is only used in error messages (default: ``path``). ``mode`` is the file mode
    used if the file is created. ``max_readers`` is the reader-table size to provide; a larger
    existing file raises it (see the ``max_readers`` attribute).

    Raises `LockError` if another process uses the environment, `Error` if this process has it
    open already, `InvalidParameterError` for ``max_readers < 1``, and the `from_oserror` class
    for other failures to open or write the file. ``_open`` is a test seam for ``os.open``.
    """

    max_readers: int
    active: bool

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
        self.max_readers = max_readers
        self.active = False
        self._pid = os.getpid()
        self._txnid = 0
        self._fd: Optional[int] = None
        self._spare_fds: List[int] = []
        self._key: Optional[_FileKey] = None
        self._closed = False
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
                self._lock_exclusive(fd, name)
                self.max_readers = self._init_header(fd, max_readers, name)
            except BaseException:
                os.close(fd)  # we hold no other descriptor of this file: no lock is lost
                raise
            self._fd, self._key, self.active = fd, key, True
            _open_files[key] = self

    @staticmethod
    def _lock_exclusive(fd: int, name: str) -> None:
        """Take F_WRLCK on byte 0 without waiting, or raise `LockError`."""
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0, os.SEEK_SET)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise from_oserror(name, exc) from None
            holder = _lock_holder(fd)
            by = " (pid %d)" % holder if holder else ""
            raise LockError(
                "%s: environment is in use by another process%s; purelmdb opens environments "
                "exclusively, so it must be closed there first" % (name, by),
                errno.EAGAIN,
            ) from None

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

    def _check_usable(self) -> None:
        if self._closed:
            raise closed_error()
        if self._pid != os.getpid():
            raise Error(
                "The lock file %r was opened by process %d and cannot be used after "
                "fork() in process %d; open the environment again"
                % (self.path, self._pid, os.getpid())
            )

    def publish_txnid(self, txnid: int) -> None:
        """Store ``txnid`` as the last committed transaction (``lock.txnid``, offset 48).

        Call at open (with the current meta's txnid) and after every commit: the next C process
        trusts this value (see the module docstring). A no-op without a lock file.
        """
        self._check_usable()
        data = TXNID.pack(txnid)
        if self._fd is not None:
            self._write_txnid(self._fd, data)
        self._txnid = txnid

    def _write_txnid(self, fd: int, data: bytes) -> None:
        try:
            _pwrite_all(fd, data, TXNID_OFFSET)
        except OSError as exc:
            raise from_oserror(self.path, exc) from None

    def num_readers(self) -> int:
        """The ``numreaders`` field: reader slots ever used (always 0 in exclusive mode)."""
        self._check_usable()
        if self._fd is None:
            return 0
        return int(NUMREADERS.unpack(os.pread(self._fd, NUMREADERS.size, NUMREADERS_OFFSET))[0])

    def close(self) -> None:
        """Write the last published txnid, release the lock and close. Idempotent.

        In a child process after fork() only the inherited descriptor is closed: the lock and
        the header belong to the parent.
        """
        if self._closed:
            return
        fd = self._fd
        try:
            if fd is not None and self._pid == os.getpid():
                self._write_txnid(fd, TXNID.pack(self._txnid))
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0, os.SEEK_SET)
        finally:
            with _registry_lock:
                self._close_fds()

    def _close_fds(self) -> None:
        """Close every descriptor and leave the registry. Call with the registry lock."""
        self._closed, self.active = True, False
        fds = ([self._fd] if self._fd is not None else []) + self._spare_fds
        self._fd, self._spare_fds = None, []
        if self._key is not None and _open_files.get(self._key) is self:
            del _open_files[self._key]
        for fd in fds:
            os.close(fd)
