"""``mdb_stat [-V] [-n] [-e] [-r[r]] [-f[f[f]]] [-a|-s subdb] dbpath``: environment, reader
table, free list and database statistics, printed as LMDB's mdb_stat prints them."""

from __future__ import annotations

from typing import IO, Any, Dict, List, Optional

from .. import Error
from . import freeinfo
from .common import (
    EXIT_FAILURE,
    EXIT_SUCCESS,
    MANY_DBS,
    ToolExit,
    err,
    failed,
    fs,
    getopt,
    main_db_names,
    open_env,
    print_version,
    stdout_bytes,
)


def _usage(prog: str) -> ToolExit:
    err("usage: %s [-V] [-n] [-e] [-r[r]] [-f[f[f]]] [-a|-s subdb] dbpath\n" % prog)
    return ToolExit(EXIT_FAILURE)


def _prstat(out: IO[bytes], st: Dict[str, int]) -> None:
    out.write(b"  Tree depth: %d\n  Branch pages: %d\n  Leaf pages: %d\n"
              b"  Overflow pages: %d\n  Entries: %d\n"
              % (st["depth"], st["branch_pages"], st["leaf_pages"], st["overflow_pages"],
                 st["entries"]))


def main(prog: str, argv: List[str]) -> int:
    out = stdout_bytes()
    if not argv:
        raise _usage(prog)
    alldbs = envinfo = freinfo = rdrinfo = 0
    nosubdir = False
    subname: Optional[str] = None
    operands = list(argv)
    for opt, arg in getopt(prog, operands, "Vaefnrs:"):
        if opt == "V":
            print_version(out)
            raise ToolExit(EXIT_SUCCESS)
        if opt == "a":
            if subname is not None:
                raise _usage(prog)
            alldbs += 1
        elif opt == "e":
            envinfo += 1
        elif opt == "f":
            freinfo += 1
        elif opt == "n":
            nosubdir = True
        elif opt == "r":
            rdrinfo += 1
        elif opt == "s":
            if alldbs:
                raise _usage(prog)
            subname = arg
        else:
            raise _usage(prog)
    if len(operands) != 1:
        raise _usage(prog)
    try:
        env = open_env(operands[0], nosubdir=nosubdir, readonly=True,
                       max_dbs=MANY_DBS if (alldbs or subname is not None) else 0)
    except Error as exc:
        failed("mdb_env_open", exc)
        return EXIT_FAILURE
    try:
        return _report(env, out, envinfo, rdrinfo, freinfo, alldbs, subname)
    finally:
        out.flush()
        env.close()


def _report(env: Any, out: IO[bytes], envinfo: int, rdrinfo: int, freinfo: int,
            alldbs: int, subname: Optional[str]) -> int:
    if envinfo:
        psize = env.stat()["psize"]
        info = env.info()
        addr = info["map_addr"]
        out.write(b"Environment Info\n")
        out.write(b"  Map address: %s\n" % (b"0x%x" % addr if addr else b"(nil)"))
        out.write(b"  Map size: %d\n" % info["map_size"])
        out.write(b"  Page size: %d\n" % psize)
        out.write(b"  Max pages: %d\n" % (info["map_size"] // psize))
        out.write(b"  Number of pages used: %d\n" % (info["last_pgno"] + 1))
        out.write(b"  Last transaction ID: %d\n" % info["last_txnid"])
        out.write(b"  Max readers: %d\n" % info["max_readers"])
        out.write(b"  Number of readers used: %d\n" % info["num_readers"])
    if rdrinfo:
        out.write(b"Reader Table Status\n")
        out.write(fs(env.readers()))
        if rdrinfo > 1:
            dead = env.reader_check()
            out.write(b"  %d stale readers cleared.\n" % dead)
            out.write(fs(env.readers()))
        if not (subname is not None or alldbs or freinfo):
            # mdb_stat exits with the status of mdb_reader_list, which passes on what its
            # callback, fputs, returned: a positive number, so the exit status is 1
            return EXIT_FAILURE
    try:
        txn = env.begin()
    except Error as exc:
        failed("mdb_txn_begin", exc)
        return EXIT_FAILURE
    try:
        if freinfo:
            out.write(b"Freelist Status\n")
            _prstat(out, freeinfo.free_db_stat(txn))
            total = 0
            try:
                for txnid, count, pages in freeinfo.free_records(txn):
                    total += count
                    if freinfo > 1:
                        span, bad = freeinfo.max_span(pages)
                        out.write(b"    Transaction %d, %d pages, maxspan %d%s\n"
                                  % (txnid, count, span, b" [bad sequence]" if bad else b""))
                        if freinfo > 2:
                            for pg, n in freeinfo.runs(pages):
                                out.write(b"     %9d[%d]\n" % (pg, n) if n > 1
                                          else b"     %9d\n" % pg)
            except Error:
                pass        # mdb_stat stops walking a damaged free list without a word
            out.write(b"  Free pages: %d\n" % total)
        try:
            db = env.open_db(None) if subname is None else \
                env.open_db(fs(subname), txn=txn, create=False)
            st = txn.stat(db)
        except Error as exc:
            out.flush()
            failed("mdb_open", exc)
            return EXIT_FAILURE
        out.write(b"Status of %s\n" % (fs(subname) if subname is not None else b"Main DB"))
        _prstat(out, st)
        if alldbs:
            return _stat_all(env, txn, out)
        return EXIT_SUCCESS
    finally:
        txn.abort()


def _stat_all(env: Any, txn: Any, out: IO[bytes]) -> int:
    """``-a``: every named database, in the main database's key order."""
    try:
        for name in main_db_names(txn):
            try:
                db2 = env.open_db(name, txn=txn, create=False)
            except Error:
                continue        # a plain key, not a database: skipped as mdb_stat does
            out.write(b"Status of %s\n" % name)
            try:
                _prstat(out, txn.stat(db2))
            except Error as exc:
                out.flush()
                failed("mdb_stat", exc)
                return EXIT_FAILURE
    except Error:
        # mdb_stat ends the walk on a read error and exits with status 1, without a message
        return EXIT_FAILURE
    return EXIT_SUCCESS
