"""The data file: opening, the read-only map, writing pages and metas, syncing.

Every write and sync of the data file goes through one `FileIO` object (the I/O seam), so
tests can record, fail or replay them without patching `os`.

Python's mmap cannot map past the end of a file, so the map covers the file as it is and is
replaced when a commit makes the file longer. A read transaction keeps the map it started
with; an older map stays alive as long as anything (a transaction, a `memoryview` handed to
the user) still refers to it, and Python unmaps it once nothing does.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
import threading
from typing import Iterable, List, Optional, Tuple

from .errors import Error, InvalidError, VersionMismatchError, from_oserror
from .layout import (
    DATA_VERSION,
    MAGIC,
    META_SIZE,
    META_TAIL_OFFSET,
    P_META,
    Meta,
    new_meta,
    unpack_meta,
    valid_page_size,
)

# a single write call moves at most this many bytes (LMDB caps writev at 1 GiB too)
_MAX_WRITE = 1 << 30


class FileIO:
    """The only way purelmdb writes or syncs the data file. Subclass it in tests."""

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        if len(data) <= _MAX_WRITE:
            n = os.pwrite(fd, data, offset)   # the usual case: one call writes it all
            if n == len(data):
                return
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            data = data[n:]
            offset += n
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view[:_MAX_WRITE], offset)
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[n:]
            offset += n

    def sync(self, fd: int) -> None:
        if sys.platform == "darwin":
            import fcntl
            fcntl.fcntl(fd, getattr(fcntl, "F_FULLFSYNC", 51))
        else:
            os.fdatasync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)


DEFAULT_IO = FileIO()


def read_metas(fd: int, path: str) -> Tuple[int, Meta]:
    """Validate both meta pages of an open data file; return (page size, newest meta)."""
    head = os.pread(fd, META_SIZE, 0)
    if len(head) < META_SIZE:
        raise InvalidError(path, InvalidError.MDB_CODE)
    flags0, meta0 = unpack_meta(head)
    _check_meta(flags0, meta0, path)
    psize = meta0.page_size
    if not valid_page_size(psize):
        raise InvalidError(path, InvalidError.MDB_CODE)
    second = os.pread(fd, META_SIZE, psize)
    if len(second) < META_SIZE:
        raise InvalidError(path, InvalidError.MDB_CODE)
    flags1, meta1 = unpack_meta(second)
    _check_meta(flags1, meta1, path)
    if meta1.page_size != psize:
        raise InvalidError(path, InvalidError.MDB_CODE)
    return psize, (meta1 if meta1.txnid > meta0.txnid else meta0)


def _check_meta(flags: int, meta: Meta, path: str) -> None:
    if not flags & P_META or meta.magic != MAGIC:
        raise InvalidError(path, InvalidError.MDB_CODE)
    if meta.version != DATA_VERSION:
        raise VersionMismatchError(path, VersionMismatchError.MDB_CODE)
    for rec in (meta.free_db, meta.main_db):
        # duplicate-only flags without DUPSORT (LMDB's CVE-2019-16224 check)
        if rec.flags & 0x70 and not rec.flags & 0x04:
            raise InvalidError(path, InvalidError.MDB_CODE)


class DataFile:
    """The open data file and its current read-only map."""

    def __init__(self, path: str, *, readonly: bool, mode: int, io: FileIO = DEFAULT_IO,
                 new_mapsize: int, env_flags: int) -> None:
        self.path = path
        self.readonly = readonly
        self.io = io
        oflags = (os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(path, oflags, mode)
        except OSError as exc:
            raise from_oserror(path, exc) from None
        try:
            if os.fstat(self.fd).st_size == 0:
                if readonly:
                    raise InvalidError(path, InvalidError.MDB_CODE)
                self._create(new_mapsize, env_flags)
            self.psize, meta = read_metas(self.fd, path)
            self.map: Optional[mmap.mmap] = None
            self.map_len = 0
            self._remap_lock = threading.Lock()
            self.remap()
        except BaseException:
            os.close(self.fd)
            raise
        self.initial_meta = meta

    def _create(self, mapsize: int, env_flags: int) -> None:
        psize = mmap.PAGESIZE if valid_page_size(mmap.PAGESIZE) else 4096
        meta = new_meta(psize, mapsize, env_flags)
        self.io.pwrite(self.fd, meta.pack_page(0, psize) + meta.pack_page(1, psize), 0)
        self.io.sync(self.fd)

    def file_size(self) -> int:
        return os.fstat(self.fd).st_size

    def remap(self) -> mmap.mmap:
        """Map the whole file as it is now (read-only) and return the map. Threads of this
        process remap concurrently when another process grew the file: under the lock, and
        never to a smaller size (files never shrink), so a stale fstat cannot replace a newer,
        larger map."""
        with self._remap_lock:
            size = self.file_size()
            if self.map is None or size > self.map_len:
                self.map = mmap.mmap(self.fd, size, access=mmap.ACCESS_READ)
                self.map_len = size
            return self.map

    def read_meta_pages(self) -> Meta:
        return read_metas(self.fd, self.path)[1]

    def ensure_size(self, size: int) -> None:
        """Grow the file to at least ``size`` bytes, in steps, so the map is replaced rarely."""
        if size <= self.map_len:
            return   # the file had that size when it was last mapped, and never shrinks
        cur = self.file_size()
        if cur >= size:
            return
        step = max(size - cur, cur // 4, 64 * self.psize)
        target = cur + step
        target += -target % self.psize
        self.io.truncate(self.fd, target)

    def write_pages(self, runs: Iterable[Tuple[int, List[bytes]]]) -> None:
        """Write each run of consecutive pages ``(first pgno, [page bytes...])``."""
        psize = self.psize
        for pgno, chunks in runs:
            self.io.pwrite(self.fd, b"".join(chunks), pgno * psize)

    def write_meta(self, meta: Meta) -> None:
        """Rewrite bytes 32..151 of meta page ``txnid & 1``, as LMDB does."""
        offset = (meta.txnid & 1) * self.psize + META_TAIL_OFFSET
        self.io.pwrite(self.fd, meta.pack_tail(), offset)

    def sync(self) -> None:
        self.io.sync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            # the map is not closed: memoryviews handed out may still point into it
            self.map = None
            try:
                os.close(self.fd)
            finally:
                self.fd = -1


def open_error(path: str, exc: OSError) -> Error:
    return from_oserror(path, exc)
