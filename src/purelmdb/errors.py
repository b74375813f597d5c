"""The exception hierarchy, with the names, codes and messages of the `lmdb` package.

Every class derives from :class:`Error`. A raised error carries ``what`` (the operation, such
as ``'mdb_put'``, or a message), ``code`` (the LMDB or errno code, 0 when none) and ``reason``
(the engine's text for ``code``); ``str(e)`` is ``"what: reason"``, plus a hint for the classes
that have one, or just ``what`` when ``code`` is 0.
"""

from __future__ import annotations

import errno as _errno
import os as _os
from typing import Dict, Optional, Type

__all__ = [
    "Error", "KeyExistsError", "NotFoundError", "PageNotFoundError", "CorruptedError",
    "PanicError", "VersionMismatchError", "InvalidError", "MapFullError", "DbsFullError",
    "ReadersFullError", "TlsFullError", "TxnFullError", "CursorFullError", "PageFullError",
    "MapResizedError", "IncompatibleError", "BadRslotError", "BadTxnError", "BadValsizeError",
    "BadDbiError", "ProblemError", "BadChecksumError", "CryptoFailError", "EnvEncryptionError",
    "ReadonlyError", "InvalidParameterError", "LockError", "MemoryError", "DiskError",
]

CLOSED_MESSAGE = "Attempt to operate on closed/deleted/dropped object."


class Error(Exception):
    """Base of every purelmdb error. ``Error(what, code=0)``."""

    MDB_NAME = ""
    MDB_CODE = 0
    MDB_REASON = ""
    HINT = ""

    def __init__(self, what: object = "", code: int = 0) -> None:
        self.what = str(what)
        self.code = code
        self.reason = _reason_for(code)
        if code:
            msg = "%s: %s" % (self.what, self.reason)
            if self.HINT:
                msg += " (%s)" % self.HINT
        else:
            msg = self.what
        super().__init__(msg)


def _lmdb_error(name: str, code: int, text: str, hint: str = "") -> Type[Error]:
    cls = type(name, (Error,), {
        "MDB_NAME": text.split(":")[0],
        "MDB_CODE": code,
        "MDB_REASON": text,
        "HINT": hint,
        "__doc__": text,
        "__module__": __name__,
    })
    return cls


KeyExistsError = _lmdb_error(
    "KeyExistsError", -30799, "MDB_KEYEXIST: Key/data pair already exists")
NotFoundError = _lmdb_error(
    "NotFoundError", -30798, "MDB_NOTFOUND: No matching key/data pair found")
PageNotFoundError = _lmdb_error(
    "PageNotFoundError", -30797, "MDB_PAGE_NOTFOUND: Requested page not found")
CorruptedError = _lmdb_error(
    "CorruptedError", -30796, "MDB_CORRUPTED: Located page was wrong type")
PanicError = _lmdb_error(
    "PanicError", -30795,
    "MDB_PANIC: Update of meta page failed or environment had fatal error")
VersionMismatchError = _lmdb_error(
    "VersionMismatchError", -30794,
    "MDB_VERSION_MISMATCH: Database environment version mismatch")
InvalidError = _lmdb_error(
    "InvalidError", -30793, "MDB_INVALID: File is not an LMDB file")
MapFullError = _lmdb_error(
    "MapFullError", -30792, "MDB_MAP_FULL: Environment mapsize limit reached",
    "Please use a larger Environment(map_size=) parameter")
DbsFullError = _lmdb_error(
    "DbsFullError", -30791, "MDB_DBS_FULL: Environment maxdbs limit reached",
    "Please use a larger Environment(max_dbs=) parameter")
ReadersFullError = _lmdb_error(
    "ReadersFullError", -30790, "MDB_READERS_FULL: Environment maxreaders limit reached",
    "Please use a larger Environment(max_readers=) parameter")
TlsFullError = _lmdb_error(
    "TlsFullError", -30789,
    "MDB_TLS_FULL: Thread-local storage keys full - too many environments open")
TxnFullError = _lmdb_error(
    "TxnFullError", -30788,
    "MDB_TXN_FULL: Transaction has too many dirty pages - transaction too big",
    "Please do less work within your transaction")
CursorFullError = _lmdb_error(
    "CursorFullError", -30787, "MDB_CURSOR_FULL: Internal error - cursor stack limit reached")
PageFullError = _lmdb_error(
    "PageFullError", -30786, "MDB_PAGE_FULL: Internal error - page has no more space")
MapResizedError = _lmdb_error(
    "MapResizedError", -30785,
    "MDB_MAP_RESIZED: Database contents grew beyond environment mapsize")
IncompatibleError = _lmdb_error(
    "IncompatibleError", -30784,
    "MDB_INCOMPATIBLE: Operation and DB incompatible, or DB flags changed")
BadRslotError = _lmdb_error(
    "BadRslotError", -30783, "MDB_BAD_RSLOT: Invalid reuse of reader locktable slot")
BadTxnError = _lmdb_error(
    "BadTxnError", -30782,
    "MDB_BAD_TXN: Transaction must abort, has a child, or is invalid")
BadValsizeError = _lmdb_error(
    "BadValsizeError", -30781,
    "MDB_BAD_VALSIZE: Unsupported size of key/DB name/data, or wrong DUPFIXED size")
BadDbiError = _lmdb_error(
    "BadDbiError", -30780,
    "MDB_BAD_DBI: The specified DBI handle was closed/changed unexpectedly")
ProblemError = _lmdb_error(
    "ProblemError", -30779, "MDB_PROBLEM: Unexpected problem - txn should abort")
BadChecksumError = _lmdb_error(
    "BadChecksumError", -30778, "MDB_BAD_CHECKSUM: Page checksum mismatch")
CryptoFailError = _lmdb_error(
    "CryptoFailError", -30777, "MDB_CRYPTO_FAIL: Page encryption or decryption failed")
EnvEncryptionError = _lmdb_error(
    "EnvEncryptionError", -30776, "MDB_ENV_ENCRYPTION: Environment encryption mismatch")


def _errno_error(name: str, code: int) -> Type[Error]:
    return type(name, (Error,), {
        "MDB_NAME": _errno.errorcode.get(code, str(code)),
        "MDB_CODE": code,
        "MDB_REASON": _os.strerror(code),
        "__doc__": _os.strerror(code),
        "__module__": __name__,
    })


ReadonlyError = _errno_error("ReadonlyError", _errno.EACCES)
InvalidParameterError = _errno_error("InvalidParameterError", _errno.EINVAL)
LockError = _errno_error("LockError", _errno.EAGAIN)
MemoryError = _errno_error("MemoryError", _errno.ENOMEM)  # noqa: A001 - the lmdb package's name
DiskError = _errno_error("DiskError", _errno.ENOSPC)

_BY_CODE: Dict[int, Type[Error]] = {
    cls.MDB_CODE: cls
    for cls in (
        KeyExistsError, NotFoundError, PageNotFoundError, CorruptedError, PanicError,
        VersionMismatchError, InvalidError, MapFullError, DbsFullError, ReadersFullError,
        TlsFullError, TxnFullError, CursorFullError, PageFullError, MapResizedError,
        IncompatibleError, BadRslotError, BadTxnError, BadValsizeError, BadDbiError,
        ProblemError, BadChecksumError, CryptoFailError, EnvEncryptionError,
        ReadonlyError, InvalidParameterError, LockError, MemoryError, DiskError,
    )
}


def _reason_for(code: int) -> str:
    if code == 0:
        return "Successful return: 0"
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls.MDB_REASON
    try:
        return _os.strerror(code)
    except ValueError:
        return "Unknown error %d" % code


def error_for(what: object, code: int) -> Error:
    """The error of the class that matches ``code`` (plain `Error` for any other)."""
    return _BY_CODE.get(code, Error)(what, code)


def from_oserror(what: object, exc: OSError) -> Error:
    """Translate an `OSError` into the purelmdb class for its errno (plain `Error` if none)."""
    code = exc.errno or 0
    if code in (_errno.EDQUOT, _errno.EFBIG):
        code = _errno.ENOSPC
    if not code:
        return Error("%s: %s" % (what, exc))
    return error_for(what, code)


def closed_error() -> Error:
    """The error the `lmdb` package raises for any use of a closed or finished object."""
    return Error(CLOSED_MESSAGE)


def corrupted(pgno: Optional[int], rule: str) -> Error:
    """A `CorruptedError` that says where it was found and which rule broke."""
    where = "page %d: " % pgno if pgno is not None else ""
    return CorruptedError("%s%s" % (where, rule), CorruptedError.MDB_CODE)
