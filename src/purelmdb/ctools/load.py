"""``mdb_load [-V] [-f input] [-n] [-s name] [-N] [-T] dbpath``: load databases from the
dump format of mdb_dump (or plain text lines with ``-T``), as LMDB 0.9's mdb_load does.

What the C tool does and this one repeats, because scripts and files depend on it:

* the header is read line by line; ``VERSION`` above 3, an unknown ``format`` or ``type``, an
  unparsable ``mapsize``/``maxreaders``/``mapaddr`` and a line without ``=`` stop the load; a
  flag line (``dupsort=``, ...) sets the flag whatever its value; any other ``key=`` line is
  reported as "unrecognized keyword ignored" -- ``duplicates`` and ``db_pagesize`` included,
  which LMDB 0.9's loader does not know either;
* the environment takes ``mapsize`` and ``maxreaders`` from the first header; a new one
  without ``mapsize`` gets LMDB's default of 1 MiB, as a hard limit;
* records are committed every 100 puts, and at each ``DATA=END``; a malformed key line ends
  the input after committing what came before it (exit status 0, as LMDB), a malformed or
  missing value line aborts the batch (exit status 1);
* ``-N`` skips keys that exist (in a DUPSORT database: every value of an existing key);
* in the ``print`` format ``\\\\`` stands for a backslash (LMDB 0.9.25+, ITS#9068).
"""

from __future__ import annotations

import binascii
import errno
import os
import re
import stat
import sys
from typing import IO, Any, List, Optional

from .. import Environment, Error
from ..layout import (
    MAIN_DBI,
    MDB_DUPFIXED,
    MDB_DUPSORT,
    MDB_INTEGERDUP,
    MDB_INTEGERKEY,
    MDB_REVERSEDUP,
    MDB_REVERSEKEY,
)
from ..storage import read_metas
from .common import (
    EXIT_FAILURE,
    EXIT_SUCCESS,
    ToolExit,
    err,
    err_bytes,
    failed,
    fs,
    getopt,
    open_env,
    print_version,
    stdout_bytes,
    strerror,
)
from .progress import Progress

#: LMDB's default map size for a new environment (mdb_env_create)
DEFAULT_MAPSIZE = 1 << 20
BATCH = 100

_FLAGS = ((b"reversekey", MDB_REVERSEKEY), (b"dupsort", MDB_DUPSORT),
          (b"integerkey", MDB_INTEGERKEY), (b"dupfixed", MDB_DUPFIXED),
          (b"integerdup", MDB_INTEGERDUP), (b"reversedup", MDB_REVERSEDUP))
_ESCAPE = re.compile(rb"\\(\\|[0-9a-fA-F]{2})?")
_HEX = re.compile(rb"[0-9a-fA-F]*")
# what sscanf("%u") / sscanf("%zu") accept: blanks, an optional sign, decimal digits
_SCAN_UINT = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_SCAN_PTR = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX])?([0-9a-fA-F]+)")


class _BadLine(Exception):
    pass


def _unescape(m: Any) -> bytes:
    code = m.group(1)
    if code is None:
        raise _BadLine()
    if code == b"\\":
        return b"\\"
    return bytes((int(code, 16),))


def _scan_uint(text: bytes, bits: int) -> Optional[int]:
    m = _SCAN_UINT.match(text)
    if m is None:
        return None
    value = int(m.group(2))
    if m.group(1) == b"-":
        value = -value
    return value % (1 << bits)


class Loader:
    """The state of one mdb_load run: input, line number, format and header values."""

    def __init__(self, prog: str, src: IO[bytes], plaintext: bool) -> None:
        self.prog = prog
        self.src = src
        self.lineno = 0
        self.printable = plaintext
        self.noheader = plaintext
        self.eof = False
        self.flags = 0
        self.subname: Optional[bytes] = None
        self.mapsize = 0
        self.maxreaders = 0
        self.mapaddr = 0

    def _fatal(self, text: str) -> ToolExit:
        err("%s: line %d: %s\n" % (self.prog, self.lineno, text))
        return ToolExit(EXIT_FAILURE)

    def _message(self, head: str, rest: bytes) -> ToolExit:
        # the C tool prints the rest of the line as it is, newline included
        err_bytes(fs("%s: line %d: %s" % (self.prog, self.lineno, head)) + rest + b"\n")
        return ToolExit(EXIT_FAILURE)

    def read_header(self) -> None:
        """One header, up to ``HEADER=END`` or the end of the input."""
        self.flags = 0
        while True:
            line = self.src.readline()
            if not line:
                return
            self.lineno += 1
            if line.startswith(b"VERSION="):
                m = re.match(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)", line[8:])
                version = int(m.group(1)) if m else 0
                if version > 3:
                    raise self._fatal("unsupported VERSION %d" % version)
            elif line.startswith(b"HEADER=END"):
                return
            elif line.startswith(b"format="):
                value = line[7:]
                if value.startswith(b"print"):
                    self.printable = True
                elif not value.startswith(b"bytevalue"):
                    raise self._message("unsupported FORMAT ", value)
            elif line.startswith(b"database="):
                self.subname = line[9:].split(b"\n", 1)[0].split(b"\0", 1)[0]
            elif line.startswith(b"type="):
                if not line[5:].startswith(b"btree"):
                    raise self._message("unsupported type ", line[5:])
            elif line.startswith(b"mapaddr="):
                value = line[8:].split(b"\n", 1)[0]
                m = _SCAN_PTR.match(value)
                if m is None:
                    raise self._message("invalid mapaddr ", value)
                self.mapaddr = int(m.group(2), 16)
            elif line.startswith(b"mapsize="):
                value = line[8:].split(b"\n", 1)[0]
                size = _scan_uint(value, 64)
                if size is None:
                    raise self._message("invalid mapsize ", value)
                self.mapsize = size
            elif line.startswith(b"maxreaders="):
                value = line[11:].split(b"\n", 1)[0]
                readers = _scan_uint(value, 32)
                if readers is None:
                    raise self._message("invalid maxreaders ", value)
                self.maxreaders = readers
            else:
                for name, bit in _FLAGS:
                    if line.startswith(name) and line[len(name):len(name) + 1] == b"=":
                        self.flags |= bit
                        break
                else:
                    if b"=" not in line:
                        raise self._fatal("unexpected format")
                    keyword = line.split(b"=", 1)[0]
                    err_bytes(fs("%s: line %d: unrecognized keyword ignored: "
                                 % (self.prog, self.lineno)) + keyword + b"\n")

    def _badend(self) -> None:
        self.eof = True
        err("%s: line %d: unexpected end of input\n" % (self.prog, self.lineno))

    def read_record_line(self) -> Optional[bytes]:
        """The next key or value, None at the end of the data (``DATA=END``, the end of the
        input, or a malformed line, which is reported)."""
        src = self.src
        if not self.noheader:
            c = src.read(1)
            if not c:
                self.eof = True
                return None
            if c != b" ":
                self.lineno += 1
                rest = src.readline()
                if rest and c == b"D" and rest.startswith(b"ATA=END"):
                    return None
                self._badend()
                return None
        line = src.readline()
        if not line:
            self.eof = True
            return None
        self.lineno += 1
        if not line.endswith(b"\n"):
            self._badend()
            return None
        body = line[:-1]
        if self.printable:
            if b"\\" not in body:
                return body
            try:
                return _ESCAPE.sub(_unescape, body)
            except _BadLine:
                self._badend()
                return None
        if len(body) & 1 or not _HEX.fullmatch(body):
            self._badend()
            return None
        return binascii.unhexlify(body)


def _usage(prog: str) -> ToolExit:
    err("usage: %s [-V] [-f input] [-n] [-s name] [-N] [-T] dbpath\n" % prog)
    return ToolExit(EXIT_FAILURE)


def main(prog: str, argv: List[str]) -> int:
    if not argv:
        raise _usage(prog)
    src: IO[bytes] = sys.stdin.buffer
    nosubdir = False
    nooverwrite = False
    plaintext = False
    subname: Optional[bytes] = None
    operands = list(argv)
    for opt, arg in getopt(prog, operands, "f:ns:NTV"):
        if opt == "V":
            print_version(stdout_bytes())
            raise ToolExit(EXIT_SUCCESS)
        if opt == "f":
            assert arg is not None
            try:
                src = open(arg, "rb")    # noqa: SIM115 - it replaces stdin, as freopen
            except OSError as exc:
                err("%s: %s: reopen: %s\n" % (prog, arg, strerror(exc.errno or errno.EIO)))
                raise ToolExit(EXIT_FAILURE) from None
        elif opt == "n":
            nosubdir = True
        elif opt == "s":
            subname = fs(arg or "")
        elif opt == "N":
            nooverwrite = True
        elif opt == "T":
            plaintext = True
        else:
            raise _usage(prog)
    if len(operands) != 1:
        raise _usage(prog)
    try:
        return _run(prog, operands[0], src, nosubdir, nooverwrite, plaintext, subname)
    finally:
        if src is not sys.stdin.buffer:
            src.close()


def _run(prog: str, envname: str, src: IO[bytes], nosubdir: bool, nooverwrite: bool,
         plaintext: bool, subname: Optional[bytes]) -> int:
    loader = Loader(prog, src, plaintext)
    loader.subname = subname
    if not loader.noheader:
        loader.read_header()
    data_file = envname if nosubdir else os.path.join(envname, "data.mdb")
    map_size: Optional[int] = loader.mapsize or None
    if map_size is None:
        # as LMDB: a new environment gets the default map size, an existing one keeps the
        # size it records; either is a hard limit (purelmdb alone would grow the map)
        map_size = _recorded_mapsize(data_file) if os.path.exists(data_file) \
            else DEFAULT_MAPSIZE
    try:
        env = open_env(envname, nosubdir=nosubdir, readonly=False, map_size=map_size,
                       max_readers=loader.maxreaders or 126)
    except Error as exc:
        failed("mdb_env_open", exc)
        return EXIT_FAILURE
    try:
        with Progress(total=_input_size(src), unit="B", desc="load", scale=True) as bar:
            return _load(loader, env, nooverwrite, bar)
    finally:
        env.close()


def _recorded_mapsize(data_file: str) -> Optional[int]:
    """The map size an existing data file records (None if it cannot be read: opening it
    then reports why)."""
    try:
        fd = os.open(data_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        return read_metas(fd, data_file)[1].mapsize or None
    except (Error, OSError):
        return None
    finally:
        os.close(fd)


def _input_size(src: IO[bytes]) -> Optional[int]:
    try:
        st = os.fstat(src.fileno())
        return st.st_size if st.st_size and stat.S_ISREG(st.st_mode) else None
    except (OSError, ValueError, AttributeError):
        return None


def _position(src: IO[bytes]) -> int:
    try:
        return src.tell()
    except (OSError, ValueError):
        return 0


def _load(loader: Loader, env: Environment, nooverwrite: bool, bar: Progress) -> int:
    prog = loader.prog
    first = True
    while not loader.eof:
        if first:
            first = False
        elif not loader.noheader:
            loader.read_header()
        try:
            txn = env.begin(write=True)
        except Error as exc:
            failed("mdb_txn_begin", exc)
            return EXIT_FAILURE
        try:
            try:
                db = _open_db(env, txn, loader.subname, loader.flags)
            except Error as exc:
                failed("mdb_open", exc)
                return EXIT_FAILURE
            batch = 0
            while True:
                key = loader.read_record_line()
                if key is None:
                    break
                value = loader.read_record_line()
                if value is None:
                    err("%s: line %d: failed to read key value\n" % (prog, loader.lineno))
                    return EXIT_FAILURE
                try:
                    if nooverwrite:
                        if not txn.put(key, value, dupdata=False, overwrite=False, db=db):
                            continue
                    else:
                        txn.put(key, value, db=db)
                except Error as exc:
                    failed("mdb_cursor_put", exc)
                    return EXIT_FAILURE
                batch += 1
                if batch == BATCH:
                    if not _commit(loader, txn):
                        return EXIT_FAILURE
                    bar.update_to(_position(loader.src))
                    try:
                        txn = env.begin(write=True)
                    except Error as exc:
                        failed("mdb_txn_begin", exc)
                        return EXIT_FAILURE
                    batch = 0
            if not _commit(loader, txn):
                return EXIT_FAILURE
            bar.update_to(_position(loader.src))
        finally:
            txn.abort()
    return EXIT_SUCCESS


def _commit(loader: Loader, txn: Any) -> bool:
    try:
        txn.commit()
    except Error as exc:
        err("%s: line %d: txn_commit: %s\n" % (loader.prog, loader.lineno,
                                                strerror(exc.code or errno.EIO)))
        return False
    return True


def _open_db(env: Environment, txn: Any, name: Optional[bytes], flags: int) -> Any:
    """``mdb_dbi_open(txn, name, flags | MDB_CREATE)``: an existing database keeps its
    flags; a new one (or an empty main database) takes the header's."""
    if name is None:
        if flags:
            _set_main_flags(env, txn, flags)
        return env.open_db(None)
    db = env.open_db(name, txn=txn, create=True, reverse_key=bool(flags & MDB_REVERSEKEY),
                     dupsort=bool(flags & MDB_DUPSORT),
                     integerkey=bool(flags & MDB_INTEGERKEY),
                     integerdup=bool(flags & MDB_INTEGERDUP),
                     dupfixed=bool(flags & MDB_DUPFIXED))
    if flags & MDB_REVERSEDUP and flags & MDB_DUPSORT and not db._flags & MDB_REVERSEDUP:
        # the lmdb package's open_db has no reversedup; a database created here (still
        # empty) takes it from the header as LMDB's mdb_dbi_open would
        d = txn._dbstate(db)
        if d.entries == 0:
            db._flags |= MDB_REVERSEDUP
            d.flags |= MDB_REVERSEDUP
            d.changed = True
    return db


def _set_main_flags(env: Environment, txn: Any, flags: int) -> None:
    """LMDB ORs a header's flags into the main database's; purelmdb's API refuses flags on
    the main database, so they are set here, while it is still empty."""
    d = txn._dbs[MAIN_DBI]
    new = d.flags | flags
    if new == d.flags or d.entries:
        return
    d.flags = new
    d.rev = bool(new & (MDB_REVERSEKEY | MDB_INTEGERKEY))
    d.changed = True
    env._main_db._flags = new
