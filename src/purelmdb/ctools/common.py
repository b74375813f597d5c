"""What the C tools share: option parsing as glibc's ``getopt``, LMDB's error texts, byte
output, and opening an environment the way the tools do.

Every message is built as the C tools print it (``printf`` formats, ``mdb_strerror`` texts),
so a script that parses their output keeps working. Output is written as bytes: database
names and records are bytes and are printed as they are.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO, Any, Iterator, List, Optional, Tuple

from .. import LMDB_VERSION, Environment, Error
from ..errors import from_oserror

#: what ``-V`` prints: ``MDB_VERSION_STRING`` of the LMDB release purelmdb follows (as the
#: lmdb package's bundled library reports it)
VERSION_STRING = "LMDB %d.%d.%d: (Aug 6, 2026)" % LMDB_VERSION

EXIT_SUCCESS = 0
EXIT_FAILURE = 1

MDB_NOTFOUND = -30798

#: a map this large fails LMDB's mmap (beyond a 64-bit process's 47-bit address space)
MAX_MAPSIZE = 1 << 47

#: enough database handles for any file: the C tools close each handle after use, purelmdb
#: keeps them for the environment's life
MANY_DBS = 1 << 30


class ToolExit(Exception):
    """Leave the tool with this exit status (the C tools' ``exit()``)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def fs(text: str) -> bytes:
    """Command-line text as the bytes the user typed (undecodable bytes survive)."""
    return os.fsencode(text)


def err(message: str) -> None:
    """Write to stderr, unbuffered like C's."""
    err_bytes(fs(message))


def err_bytes(data: bytes) -> None:
    """Write bytes (a line of the input, a database name) to stderr as they are."""
    stream = sys.stderr
    stream.flush()
    buf = getattr(stream, "buffer", None)
    if buf is None:     # a replaced sys.stderr (an embedding program, a test harness)
        stream.write(os.fsdecode(data))
        stream.flush()
    else:
        buf.write(data)
        buf.flush()


def strerror(code: int) -> str:
    """``mdb_strerror``: LMDB's text for its own codes, the C library's for errno values."""
    from ..errors import _reason_for
    return _reason_for(code)


def error_code(exc: BaseException) -> int:
    """The LMDB or errno code of an exception (an unknown failure counts as EIO)."""
    if isinstance(exc, Error) and exc.code:
        return exc.code
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    return errno.EIO


def failed(what: str, exc: BaseException) -> None:
    """``<what> failed, error <code> <text>``, the tools' report of a failed call."""
    code = error_code(exc)
    err("%s failed, error %d %s\n" % (what, code, strerror(code)))


def getopt(prog: str, argv: List[str], optstring: str) -> Iterator[Tuple[str, Optional[str]]]:
    """Options in command-line order, as glibc's ``getopt`` finds them: clusters (``-ffe``),
    arguments attached or in the next word, operands anywhere (unless POSIXLY_CORRECT is
    set), ``--`` ends the options. The operands are left in ``argv`` afterwards. A bad option
    is reported as glibc reports it and yields ``("?", None)``."""
    takes_arg = {c: optstring[i + 1:i + 2] == ":" for i, c in enumerate(optstring) if c != ":"}
    posix = "POSIXLY_CORRECT" in os.environ
    words = list(argv)
    operands: List[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            operands.extend(words[i:])
            break
        if not word.startswith("-") or word == "-":
            operands.append(word)
            if posix:
                operands.extend(words[i:])
                break
            continue
        j = 1
        while j < len(word):
            c = word[j]
            j += 1
            if c not in takes_arg:
                err("%s: invalid option -- '%s'\n" % (prog, c))
                yield "?", None
                continue
            if not takes_arg[c]:
                yield c, None
                continue
            if j < len(word):
                arg = word[j:]
            elif i < len(words):
                arg = words[i]
                i += 1
            else:
                err("%s: option requires an argument -- '%s'\n" % (prog, c))
                yield "?", None
                break
            yield c, arg
            break
    argv[:] = operands


def open_env(path: str, *, nosubdir: bool, readonly: bool, max_dbs: int = MANY_DBS,
             map_size: Optional[int] = None, max_readers: int = 126,
             mode: int = 0o664) -> Environment:
    """``mdb_env_open`` as the tools call it: the folder (or with ``nosubdir`` the data
    file) must exist; a writable open creates the data file in it if missing."""
    data = path if nosubdir else os.path.join(path, "data.mdb")
    if not nosubdir and os.path.exists(path) and not os.path.isdir(path):
        raise Error(path, errno.ENOTDIR)      # LMDB fails opening PATH/lock.mdb
    if readonly and os.path.isfile(data) and os.path.getsize(data) == 0:
        # LMDB takes an empty data file for a new environment and fails writing its first
        # meta page through the read-only descriptor
        raise Error(path, errno.EBADF)
    if map_size is not None and map_size >= MAX_MAPSIZE:
        raise Error(path, errno.ENOMEM)
    try:
        env = Environment(path, map_size=map_size, subdir=not nosubdir, readonly=readonly,
                          create=False, mode=mode, max_dbs=max_dbs, max_readers=max_readers,
                          lock=True)
    except OSError as exc:
        raise from_oserror(path, exc) from None
    if env.info()["map_size"] >= MAX_MAPSIZE:
        # a file recording such a map size opens nowhere in C LMDB: its mmap fails
        env.close()
        raise Error(path, errno.ENOMEM)
    return env


def print_version(out: IO[bytes]) -> None:
    out.write(fs(VERSION_STRING + "\n"))
    out.flush()


def main_db_names(txn: Any) -> Iterator[bytes]:
    """Keys of the main database without a NUL byte, once each, in order: the candidates
    the tools try to open as named databases (``MDB_NEXT_NODUP`` over the main database)."""
    cursor = txn.cursor()
    for key in cursor.iternext_nodup(keys=True, values=False):
        key = bytes(key)
        if b"\0" not in key:
            yield key


def stdout_bytes() -> IO[bytes]:
    """sys.stdout as a byte stream (the tools print names and records as bytes)."""
    buf = getattr(sys.stdout, "buffer", None)
    return buf if buf is not None else _TextAsBytes(sys.stdout)  # type: ignore[return-value]


class _TextAsBytes:
    """A byte-stream face for a replaced, text-only sys.stdout."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(os.fsdecode(bytes(data)))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return int(self._stream.fileno())
