"""The two process-shared mutexes of the lock file, as C LMDB uses them.

On Linux with glibc, C LMDB keeps two robust, process-shared ``pthread_mutex_t`` in the lock
file (the reader-slot mutex at offset 8, the writer mutex at offset 64). To share one
environment with C processes we must take the very same mutexes, so `PthreadMutex` calls
glibc's ``pthread_mutex_lock``/``unlock`` through ctypes on the address of the mutex inside our
shared map of the lock file. ctypes releases the GIL during the call, so a thread waiting for
the writer mutex does not stop the others.

A robust mutex whose owner died is handed to the next locker with ``EOWNERDEAD``: the caller
repairs what the dead owner may have left (`LockedAfterOwnerDied` tells it to) and the mutex is
marked consistent, as LMDB's ``mdb_mutex_failed`` does.

Elsewhere (macOS, musl), C LMDB uses other primitives (named semaphores) and another lock-file
format, which purelmdb refuses to share (see locking.py); purelmdb processes then exclude each
other with `FcntlMutex`, an ``fcntl`` write lock on one byte far beyond the reader table.

A pthread mutex belongs to the thread that locked it; locking.py deals with a write
transaction that ends on another thread than the one that began it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import sys
from typing import Any, Optional

__all__ = ["glibc_mutexes", "PthreadMutex", "FcntlMutex", "LockedAfterOwnerDied"]

EOWNERDEAD = getattr(errno, "EOWNERDEAD", 130)
ENOTRECOVERABLE = getattr(errno, "ENOTRECOVERABLE", 131)


class LockedAfterOwnerDied(Exception):
    """Raised by ``lock()`` *holding* the mutex, whose previous owner died while holding it."""


def _load_pthread() -> Optional[Any]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):
        return None
    for name in (None, "libpthread.so.0"):
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            for fn in ("pthread_mutex_lock", "pthread_mutex_unlock", "pthread_mutex_consistent"):
                f = getattr(lib, fn)
                f.argtypes = [ctypes.c_void_p]
                f.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    return None


_pthread = _load_pthread()


def glibc_mutexes() -> bool:
    """True where the lock file holds glibc robust mutexes that we can operate."""
    return _pthread is not None


class PthreadMutex:
    """A robust, process-shared glibc mutex at ``offset`` in the writable map ``buf``."""

    def __init__(self, buf: Any, offset: int) -> None:
        assert _pthread is not None
        self._anchor: Optional[ctypes.c_char] = ctypes.c_char.from_buffer(buf, offset)
        self._addr = ctypes.addressof(self._anchor)

    def lock(self) -> None:
        assert _pthread is not None and self._anchor is not None
        rc = _pthread.pthread_mutex_lock(self._addr)
        if rc == 0:
            return
        if rc == EOWNERDEAD:
            _pthread.pthread_mutex_consistent(self._addr)
            raise LockedAfterOwnerDied()
        raise OSError(rc, os.strerror(rc))

    def unlock(self) -> None:
        assert _pthread is not None and self._anchor is not None
        rc = _pthread.pthread_mutex_unlock(self._addr)
        if rc:
            raise OSError(rc, os.strerror(rc))

    def release(self) -> None:
        """Drop the reference into the map (so that it can be closed)."""
        self._anchor = None


class FcntlMutex:
    """Exclusion among purelmdb processes: an fcntl write lock on byte ``offset``.

    fcntl locks belong to the process, so callers serialise their own threads first."""

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._offset = offset

    def lock(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, self._offset, os.SEEK_SET)

    def unlock(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, self._offset, os.SEEK_SET)

    def release(self) -> None:
        pass

