"""``mdb_copy [-V] [-c] [-n] srcpath [dstpath]``: a consistent copy of an environment, as
LMDB's mdb_copy makes it: into ``dstpath/data.mdb`` (``dstpath`` itself with ``-n``), which
must not exist yet, or to stdout without ``dstpath``. ``-c`` compacts: the copy has no free
pages and its pages are numbered as ``mdb_copy -c`` numbers them.

As the C tool, options are read only before the paths and each must be alone in its word.

``-v`` copies the previous snapshot (the older meta page) instead of the latest, as
``mdb_copy -v`` of LMDB 1.0 (MDB_PREVSNAPSHOT); LMDB 0.9's tool has no ``-v`` and its usage
line, which this one prints, does not name it.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional

from .. import Error
from ..copying import compact_copy, plain_copy
from ..errors import InvalidError
from ..layout import MAGIC, unpack_meta
from . import freeinfo
from .common import (
    EXIT_FAILURE,
    EXIT_SUCCESS,
    ToolExit,
    err,
    error_code,
    open_env,
    print_version,
    stdout_bytes,
    strerror,
)
from .progress import Progress, Watch, file_offset


def _usage(prog: str) -> ToolExit:
    err("usage: %s [-V] [-c] [-n] srcpath [dstpath]\n" % prog)
    return ToolExit(EXIT_FAILURE)


def main(prog: str, argv: List[str]) -> int:
    nosubdir = False
    compact = False
    previous = False
    args = list(argv)
    while args and args[0].startswith("-"):
        word = args.pop(0)
        if word == "-n":
            nosubdir = True
        elif word == "-c":
            compact = True
        elif word == "-v":
            previous = True
        elif word == "-V":
            print_version(stdout_bytes())
            raise ToolExit(EXIT_SUCCESS)
        else:
            raise _usage(prog)
    if not 1 <= len(args) <= 2:
        raise _usage(prog)
    act = "opening environment"
    try:
        env = open_env(args[0], nosubdir=nosubdir, readonly=True, max_dbs=0, mode=0o600)
    except Error as exc:
        _report(prog, act, exc)
        return EXIT_FAILURE
    act = "copying"
    try:
        target = args[1] if len(args) == 2 else None
        _copy(env, target, nosubdir, compact, previous)
    except (Error, OSError) as exc:
        _report(prog, act, exc)
        return EXIT_FAILURE
    finally:
        env.close()
    return EXIT_SUCCESS


def _report(prog: str, act: str, exc: BaseException) -> None:
    code = error_code(exc)
    err("%s: %s failed, error %d (%s)\n" % (prog, act, code, strerror(code)))


def _copy(env: Any, target: Optional[str], nosubdir: bool, compact: bool,
          previous: bool) -> None:
    if target is None:
        sys.stdout.flush()
        _copy_to_fd(env, stdout_bytes().fileno(), compact, previous)
        return
    path = target if nosubdir else os.path.join(target, "data.mdb")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        _copy_to_fd(env, fd, compact, previous)
    finally:
        os.close(fd)


def _previous_snapshot(env: Any) -> Any:
    """A read transaction on the snapshot of the older meta page. Its pages are intact:
    pages the latest commit freed are reused only by the commit after it."""
    txn = env.begin()
    psize = txn._psize
    metas = [unpack_meta(txn._map, pgno * psize)[1] for pgno in (0, 1)]
    older = min(metas, key=lambda meta: meta.txnid)
    if older.txnid != txn._meta.txnid:
        if older.magic != MAGIC or older.last_pg > txn._meta.last_pg:
            txn.abort()
            raise InvalidError("mdb_env_open", InvalidError.MDB_CODE)
        # the engine's snapshot set-up, on the older meta (the reader slot stays the same)
        txn._init_snapshot((older, txn._map, txn._mv), txn._txnid)
    return txn


def _copy_to_fd(env: Any, fd: int, compact: bool, previous: bool = False) -> None:
    with Progress(total=_expected_size(env, compact), unit="B", desc="copy",
                  scale=True) as bar:
        try:
            start = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            start = -1              # a pipe: no way to watch, no bar
        if start < 0:
            bar.close()
        with Watch(bar, lambda: file_offset(fd)() - start):
            if not previous:
                env.copyfd(fd, compact=compact)
                return
            snap = _previous_snapshot(env)
            try:
                (compact_copy if compact else plain_copy)(env, snap, fd)
            finally:
                snap.abort()


def _expected_size(env: Any, compact: bool) -> Optional[int]:
    info = env.info()
    psize = env.stat()["psize"]
    pages = info["last_pgno"] + 1
    if compact:
        try:
            with env.begin() as txn:
                st = freeinfo.free_db_stat(txn)
                pages -= st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]
                pages -= sum(count for _t, count, _p in freeinfo.free_records(txn))
        except Error:
            return None
    return max(pages, 2) * psize
