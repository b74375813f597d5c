"""purelmdb: a pure-Python LMDB.

Byte-compatible with LMDB 0.9 data files and a drop-in for the `lmdb` package::

    import purelmdb as lmdb

    with lmdb.open("/tmp/db") as env:
        with env.begin(write=True) as txn:
            txn.put(b"key", b"value")
        with env.begin() as txn:
            assert txn.get(b"key") == b"value"
"""

from __future__ import annotations

from typing import Optional, Tuple

from .cursor import Cursor
from .environment import Environment, _Database
from .errors import (
    BadChecksumError,
    BadDbiError,
    BadRslotError,
    BadTxnError,
    BadValsizeError,
    CorruptedError,
    CryptoFailError,
    CursorFullError,
    DbsFullError,
    DiskError,
    EnvEncryptionError,
    Error,
    IncompatibleError,
    InvalidError,
    InvalidParameterError,
    KeyExistsError,
    LockError,
    MapFullError,
    MapResizedError,
    MemoryError,
    NotFoundError,
    PageFullError,
    PageNotFoundError,
    PanicError,
    ProblemError,
    ReadersFullError,
    ReadonlyError,
    TlsFullError,
    TxnFullError,
    VersionMismatchError,
)
from .txn import Transaction

__version__ = "0.1.0"

#: the LMDB release whose file format and behaviour purelmdb follows
LMDB_VERSION = (0, 9, 36)

open = Environment


def version(subpatch: bool = False, lib_version: Optional[int] = None) -> Tuple[int, ...]:
    """The LMDB version purelmdb follows, ``(0, 9, 36)``; with ``subpatch=True`` a 4-tuple
    whose last item is 1, as the lmdb package reports its patched engine (purelmdb has what
    those patches add that callers can see: ``copy(..., compact=True, txn=...)``)."""
    if lib_version is not None:
        if lib_version < 0:
            raise OverflowError("Integer argument must be >= 0")
        if lib_version != 0:
            raise Error("lib_version=%d: purelmdb implements the LMDB 0.9 format only"
                        % lib_version)
    if subpatch:
        return LMDB_VERSION + (1,)
    return LMDB_VERSION


def enable_drop_gil() -> None:
    """Deprecated no-op, kept for compatibility with the `lmdb` package."""


__all__ = [
    "Cursor", "Environment", "Transaction", "_Database", "enable_drop_gil", "version",
    "Error", "KeyExistsError", "NotFoundError", "PageNotFoundError", "CorruptedError",
    "PanicError", "VersionMismatchError", "InvalidError", "MapFullError", "DbsFullError",
    "ReadersFullError", "TlsFullError", "TxnFullError", "CursorFullError", "PageFullError",
    "MapResizedError", "IncompatibleError", "BadRslotError", "BadDbiError", "BadTxnError",
    "BadValsizeError", "ReadonlyError", "InvalidParameterError", "LockError", "MemoryError",
    "DiskError", "ProblemError", "BadChecksumError", "CryptoFailError", "EnvEncryptionError",
]
