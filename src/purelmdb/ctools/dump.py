"""``mdb_dump [-V] [-f output] [-l] [-n] [-p] [-a|-s subdb] dbpath``: databases in the
Berkeley DB dump format, as LMDB's mdb_dump writes it.

A dump is a header (``VERSION=3``, ``format=bytevalue|print``, ``database=NAME``,
``type=btree``, ``mapsize=``, ``maxreaders=``, the database's flags, ``db_pagesize=``,
``HEADER=END``), then one line per key and one per value, each starting with a space, then
``DATA=END``. ``bytevalue`` lines are lowercase hex; ``print`` lines keep printable ASCII and
write other bytes as ``\\xx``, and a backslash as two (as LMDB since 0.9.25, ITS#9068).
"""

from __future__ import annotations

import errno
import re
from typing import IO, Any, List, Optional

from .. import Error
from ..layout import (
    MDB_DUPFIXED,
    MDB_DUPSORT,
    MDB_INTEGERDUP,
    MDB_INTEGERKEY,
    MDB_REVERSEDUP,
    MDB_REVERSEKEY,
)
from .common import (
    EXIT_FAILURE,
    EXIT_SUCCESS,
    MANY_DBS,
    MDB_NOTFOUND,
    ToolExit,
    err,
    error_code,
    failed,
    fs,
    getopt,
    main_db_names,
    open_env,
    print_version,
    stdout_bytes,
    strerror,
)
from .progress import Progress

#: header flag lines, in mdb_dump's order
FLAG_NAMES = ((MDB_REVERSEKEY, b"reversekey"), (MDB_DUPSORT, b"dupsort"),
              (MDB_INTEGERKEY, b"integerkey"), (MDB_DUPFIXED, b"dupfixed"),
              (MDB_INTEGERDUP, b"integerdup"), (MDB_REVERSEDUP, b"reversedup"))

_ESCAPES = [b"\\%02x" % c if not 0x20 <= c < 0x7F else bytes([c]) for c in range(256)]
_ESCAPES[0x5C] = b"\\\\"
_NEEDS_ESCAPE = re.compile(rb"[^\x20-\x5b\x5d-\x7e]")
_BATCH = 512        # records per write


def text_line(value: bytes) -> bytes:
    """A record line in the ``print`` format (without the leading space and newline)."""
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()[0]], value)


def _usage(prog: str) -> ToolExit:
    err("usage: %s [-V] [-f output] [-l] [-n] [-p] [-a|-s subdb] dbpath\n" % prog)
    return ToolExit(EXIT_FAILURE)


def _db_flags(db: Any) -> int:
    # the stored flags, REVERSEDUP included (flags() reports the lmdb package's five only)
    return int(db._flags)


def dump_db(env: Any, txn: Any, db: Any, name: Optional[bytes], out: IO[bytes],
            printable: bool) -> None:
    """Write one database: header, records, ``DATA=END``."""
    flags = _db_flags(db)
    st = txn.stat(db)
    info = env.info()
    head = [b"VERSION=3\n", b"format=%s\n" % (b"print" if printable else b"bytevalue")]
    if name is not None:
        head.append(b"database=%s\n" % name)
    head.append(b"type=btree\n")
    head.append(b"mapsize=%d\n" % info["map_size"])
    if info["map_addr"]:
        head.append(b"mapaddr=0x%x\n" % info["map_addr"])
    head.append(b"maxreaders=%d\n" % info["max_readers"])
    if flags & MDB_DUPSORT:
        head.append(b"duplicates=1\n")
    for bit, flag_name in FLAG_NAMES:
        if flags & bit:
            head.append(b"%s=1\n" % flag_name)
    head.append(b"db_pagesize=%d\n" % st["psize"])
    head.append(b"HEADER=END\n")
    out.write(b"".join(head))

    lines: List[bytes] = []
    done = 0
    with Progress(total=st["entries"], unit="rec", desc=name.decode("utf-8", "replace")
                  if name else "dump") as bar:
        cursor = txn.cursor(db)
        for key, value in cursor.iternext(keys=True, values=True):
            if printable:
                lines.append(b" %s\n %s\n" % (text_line(bytes(key)), text_line(bytes(value))))
            else:
                lines.append(b" %s\n %s\n" % (bytes(key).hex().encode(),
                                              bytes(value).hex().encode()))
            if len(lines) >= _BATCH:
                out.write(b"".join(lines))
                lines.clear()
                done += _BATCH
                bar.update_to(done)
        out.write(b"".join(lines))
    out.write(b"DATA=END\n")


def main(prog: str, argv: List[str]) -> int:
    out = stdout_bytes()
    if not argv:
        raise _usage(prog)
    alldbs = 0
    listing = False
    printable = False
    nosubdir = False
    subname: Optional[str] = None
    operands = list(argv)
    own_out: Optional[IO[bytes]] = None
    for opt, arg in getopt(prog, operands, "af:lnps:V"):
        if opt == "V":
            print_version(out)
            raise ToolExit(EXIT_SUCCESS)
        if opt in ("a", "l"):
            listing = listing or opt == "l"
            if subname is not None:
                raise _usage(prog)
            alldbs += 1
        elif opt == "f":
            assert arg is not None
            try:
                new = open(arg, "wb")    # noqa: SIM115 - it replaces stdout, as freopen
            except OSError as exc:
                err("%s: %s: reopen: %s\n" % (prog, arg, strerror(exc.errno or errno.EIO)))
                raise ToolExit(EXIT_FAILURE) from None
            if own_out is not None:
                own_out.close()
            own_out = out = new
        elif opt == "n":
            nosubdir = True
        elif opt == "p":
            printable = True
        elif opt == "s":
            if alldbs:
                raise _usage(prog)
            subname = arg
        else:
            raise _usage(prog)
    try:
        if len(operands) != 1:
            raise _usage(prog)
        return _dump(prog, operands[0], out, nosubdir, alldbs, listing, printable, subname)
    finally:
        if own_out is not None:
            own_out.close()


def _dump(prog: str, envname: str, out: IO[bytes], nosubdir: bool, alldbs: int,
          listing: bool, printable: bool, subname: Optional[str]) -> int:
    try:
        env = open_env(envname, nosubdir=nosubdir, readonly=True,
                       max_dbs=MANY_DBS if (alldbs or subname is not None) else 0)
    except Error as exc:
        failed("mdb_env_open", exc)
        return EXIT_FAILURE
    try:
        try:
            txn = env.begin()
        except Error as exc:
            failed("mdb_txn_begin", exc)
            return EXIT_FAILURE
        try:
            name = fs(subname) if subname is not None else None
            try:
                db = env.open_db(None) if name is None else \
                    env.open_db(name, txn=txn, create=False)
            except Error as exc:
                failed("mdb_open", exc)
                return EXIT_FAILURE
            rc = 0
            try:
                if alldbs:
                    rc = _dump_all(prog, envname, env, txn, out, listing, printable)
                else:
                    dump_db(env, txn, db, name, out, printable)
                out.flush()
            except (BrokenPipeError, KeyboardInterrupt):
                rc = errno.EINTR     # mdb_dump's signal handler ends the dump with EINTR
            except Error as exc:
                rc = error_code(exc)
            if rc and rc != MDB_NOTFOUND:
                err("%s: %s: %s\n" % (prog, envname, strerror(rc)))
            return EXIT_FAILURE if rc else EXIT_SUCCESS
        finally:
            txn.abort()
    finally:
        env.close()


def _dump_all(prog: str, envname: str, env: Any, txn: Any, out: IO[bytes], listing: bool,
              printable: bool) -> int:
    count = 0
    for name in main_db_names(txn):
        count += 1
        try:
            db = env.open_db(name, txn=txn, create=False)
        except Error:
            continue        # a plain key, not a database
        if listing:
            out.write(name + b"\n")
        else:
            dump_db(env, txn, db, name, out, printable)
    if not count:
        err("%s: %s does not contain multiple databases\n" % (prog, envname))
        return MDB_NOTFOUND
    return 0
