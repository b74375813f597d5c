"""``mdb_drop [-V] [-n] [-d] [-s subdb] dbpath``: empty a database (the main one unless
``-s``), or with ``-d`` delete a named database altogether, as LMDB's mdb_drop does."""

from __future__ import annotations

from typing import List, Optional

from .. import Error
from .common import (
    EXIT_FAILURE,
    EXIT_SUCCESS,
    ToolExit,
    err,
    failed,
    fs,
    getopt,
    open_env,
    print_version,
    stdout_bytes,
)


def _usage(prog: str) -> ToolExit:
    err("usage: %s [-V] [-n] [-d] [-s subdb] dbpath\n" % prog)
    return ToolExit(EXIT_FAILURE)


def main(prog: str, argv: List[str]) -> int:
    if not argv:
        raise _usage(prog)
    delete = False
    nosubdir = False
    subname: Optional[str] = None
    operands = list(argv)
    for opt, arg in getopt(prog, operands, "dns:V"):
        if opt == "V":
            print_version(stdout_bytes())
            raise ToolExit(EXIT_SUCCESS)
        if opt == "d":
            delete = True
        elif opt == "n":
            nosubdir = True
        elif opt == "s":
            subname = arg
        else:
            raise _usage(prog)
    if len(operands) != 1:
        raise _usage(prog)
    try:
        env = open_env(operands[0], nosubdir=nosubdir, readonly=False)
    except Error as exc:
        failed("mdb_env_open", exc)
        return EXIT_FAILURE
    try:
        try:
            txn = env.begin(write=True)
        except Error as exc:
            failed("mdb_txn_begin", exc)
            return EXIT_FAILURE
        try:
            try:
                db = env.open_db(None) if subname is None else \
                    env.open_db(fs(subname), txn=txn, create=False)
            except Error as exc:
                failed("mdb_open", exc)
                return EXIT_FAILURE
            try:
                txn.drop(db, delete=delete)
            except Error as exc:
                failed("mdb_drop", exc)
                return EXIT_FAILURE
            try:
                txn.commit()
            except Error as exc:
                failed("mdb_txn_commit", exc)
                return EXIT_FAILURE
            return EXIT_SUCCESS
        finally:
            txn.abort()
    finally:
        env.close()
