"""Cursors: positioned walks over one database of a transaction.

Theory of operation. A cursor holds an internal position like LMDB's: a tree path (pages
and indices, root first) whose leaf index may stand one past the last record (after deleting
it, or a search past the end), plus LMDB's C_EOF and C_DEL marks. Separately it holds
``_valid``, the `lmdb` package's *positioned* flag: every move that fails clears it while the
internal position stays, e.g. on the last record after `next()` ran off the end.

Every write attempt in the transaction bumps its generation. A write may split, merge or copy
the pages under a path, so a cursor that finds its generation stale searches its key again;
if the key is gone (another cursor deleted it) the cursor stands on the record that followed
it, marked deleted, so that `next()` returns that record instead of skipping it. The accessors
`key()`, `value()` and `item()` of a stale cursor re-read the position as the `lmdb` package
does with MDB_GET_CURRENT: positioned again if the internal position is on a record, and the
deleted mark cleared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Tuple

from . import tree
from .errors import IncompatibleError, closed_error
from .layout import F_SUBDATA
from .page import Page
from .txn import check_key, to_bytes

if TYPE_CHECKING:
    from .environment import _Database
    from .txn import Transaction


class Cursor:
    """``Cursor(db, txn)``: a cursor on database ``db`` of transaction ``txn``."""

    def __init__(self, db: _Database, txn: Transaction) -> None:
        if db is None or txn is None:
            raise TypeError("Cursor() requires db and txn")
        txn._check()
        self.db = db
        self.txn = txn
        self._d = txn._dbstate(db)
        self._dbi = db._dbi(txn)
        self._closed = False
        self._pages: Optional[List[Page]] = None   # None: never positioned (C: uninitialised)
        self._idxs: List[int] = []
        self._valid = False       # positioned in the user's sense
        self._eof = False         # ran off the end; the path is on the last record
        self._deleted = False     # the record under the path replaced a deleted one
        self._skey: Optional[bytes] = b""   # sort-form key of the path's record; None: past the end
        self._gen = txn._gen
        txn._cursors.append(self)

    # -- state ------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise closed_error()
        self.txn._check()

    def _txn_ended(self) -> None:
        self._closed = True
        self._pages = None

    def close(self) -> None:
        """Close the cursor; later use raises `Error`."""
        if not self._closed:
            self._closed = True
            self._pages = None
            try:
                self.txn._cursors.remove(self)
            except ValueError:
                pass

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _set(self, path: Optional[tree.Path]) -> bool:
        """Adopt a fresh path; positioned if it points at a record."""
        self._eof = self._deleted = False
        self._gen = self.txn._gen
        if path is None:
            self._pages = None
            self._valid = False
            return False
        self._pages, self._idxs = path
        leaf = self._pages[-1]
        i = self._idxs[-1]
        if i < len(leaf.keys):
            self._skey = leaf.keys[i]
            self._valid = True
            return True
        self._skey = None
        self._valid = False
        return False

    def _sync(self) -> None:
        """Re-find the record after writes in the transaction moved pages under the path."""
        txn = self.txn
        self._d = txn._dbs[self._dbi]
        self._gen = txn._gen
        if self._pages is None:
            return
        if self._skey is None:
            # one past the last record: stays there whatever was written
            path = tree.edge(txn, self._d, True)
            if path is None:
                self._pages = None
            else:
                self._pages, self._idxs = path
                self._idxs[-1] += 1
            return
        path = tree.search(txn, self._d, self._skey)
        if path is None:
            self._pages = None
            self._valid = False
            return
        self._pages, self._idxs = path
        leaf = self._pages[-1]
        i = self._idxs[-1]
        if i < len(leaf.keys) and leaf.keys[i] == self._skey:
            return
        # the record is gone: stand on its successor, marked deleted
        self._deleted = True
        self._eof = False
        if i >= len(leaf.keys):
            self._idxs[-1] = len(leaf.keys) - 1
            if len(leaf.keys) and tree.step(txn, self._d, self._pages, self._idxs, True):
                self._skey = self._pages[-1].keys[self._idxs[-1]]
                return
            self._idxs[-1] = len(self._pages[-1].keys)
            self._skey = None
            self._valid = False
            return
        self._skey = leaf.keys[i]

    def _fresh(self) -> None:
        """Before a move: follow any write in the transaction."""
        self._check()
        if self._gen != self.txn._gen:
            self._sync()

    def _get_current(self) -> None:
        """Before reading the record: what MDB_GET_CURRENT does after a write."""
        self._check()
        if self._gen != self.txn._gen:
            self._sync()
            self._deleted = False
            self._valid = self._pages is not None and self._idxs[-1] < len(self._pages[-1].keys)

    def _current(self) -> Tuple[Page, int]:
        return self._pages[-1], self._idxs[-1]  # type: ignore[index]

    # -- accessors --------------------------------------------------------------------------------

    def key(self) -> Any:
        """The current key (``b''`` when unpositioned)."""
        self._get_current()
        if not self._valid:
            return b""
        return self._out_key(self._skey)

    def value(self) -> Any:
        """The current value (``b''`` when unpositioned)."""
        self._get_current()
        if not self._valid:
            return b""
        leaf, i = self._current()
        return self.txn._value(leaf.vals[i], leaf.sizes[i], leaf.nfl[i])  # type: ignore[index]

    def item(self) -> Tuple[Any, Any]:
        """``(key, value)`` of the current record, ``(b'', b'')`` when unpositioned."""
        self._get_current()
        if not self._valid:
            return b"", b""
        leaf, i = self._current()
        return (self._out_key(self._skey),
                self.txn._value(leaf.vals[i], leaf.sizes[i], leaf.nfl[i]))  # type: ignore[index]

    def _out_key(self, skey: bytes) -> Any:
        k = skey[::-1] if self._d.rev else skey
        return memoryview(k) if self.txn._buffers else k

    def count(self) -> int:
        """Number of values of the current key (dupsort databases only)."""
        self._check()
        raise IncompatibleError("mdb_cursor_count", IncompatibleError.MDB_CODE)

    # -- moves ------------------------------------------------------------------------------------

    def first(self) -> bool:
        """Move to the first record; False if the database is empty."""
        self._check()
        return self._set(tree.edge(self.txn, self._db_state(), False))

    def last(self) -> bool:
        """Move to the last record; False if the database is empty."""
        self._check()
        return self._set(tree.edge(self.txn, self._db_state(), True))

    def _db_state(self) -> tree.DbState:
        self._d = self.txn._dbs[self._dbi]
        return self._d

    def next(self) -> bool:
        """Move to the next record; False (unpositioned) past the last one."""
        self._fresh()
        if self._pages is None:
            return self.first()
        leaf, i = self._current()
        if self._eof:
            if i >= len(leaf.keys) - 1:
                self._valid = False
                return False
            self._eof = False
        if self._deleted:
            self._deleted = False
            ok = i < len(leaf.keys)
        else:
            ok = tree.step(self.txn, self._d, self._pages, self._idxs, True)
            if not ok:
                self._eof = True
        if ok:
            self._skey = self._pages[-1].keys[self._idxs[-1]]
        self._valid = ok
        return ok

    def prev(self) -> bool:
        """Move to the previous record; False (unpositioned) before the first one."""
        self._fresh()
        if self._pages is None:
            return self.last()
        self._eof = self._deleted = False
        leaf, i = self._current()
        if 0 < i <= len(leaf.keys):
            self._idxs[-1] = i - 1
            ok = True
        else:
            ok = tree.step(self.txn, self._d, self._pages, self._idxs, False)
        if ok:
            self._skey = self._pages[-1].keys[self._idxs[-1]]
        self._valid = ok
        return ok

    def next_nodup(self) -> bool:
        """Move to the first value of the next key (the next record here)."""
        return self.next()

    def prev_nodup(self) -> bool:
        """Move to the last value of the previous key (the previous record here)."""
        return self.prev()

    def next_dup(self) -> bool:
        """Next value of the current key; on a database without duplicates, as LMDB: next()."""
        return self.next()

    def prev_dup(self) -> bool:
        return self.prev()

    def first_dup(self) -> bool:
        self._check()
        raise IncompatibleError("mdb_cursor_get", IncompatibleError.MDB_CODE)

    def last_dup(self) -> bool:
        self._check()
        raise IncompatibleError("mdb_cursor_get", IncompatibleError.MDB_CODE)

    def _seek(self, skey: bytes) -> bool:
        """Internal position on the first record >= ``skey``; True if that is ``skey``.
        Positioned in the user's sense only if such a record exists."""
        d = self._db_state()
        path = tree.search(self.txn, d, skey)
        self._set(path)
        if path is None:
            return False
        pages, idxs = path
        if idxs[-1] >= len(pages[-1].keys):
            # the successor is the first record of the next leaf, if there is one
            idxs[-1] = len(pages[-1].keys) - 1
            if pages[-1].keys and tree.step(self.txn, d, pages, idxs, True):
                self._skey = pages[-1].keys[idxs[-1]]
                self._valid = True
                return False
            idxs[-1] = len(pages[-1].keys)
            self._skey = None
            self._eof = True
            self._valid = False
            return False
        return self._skey == skey

    def set_key(self, key: Any, /) -> bool:
        """Move to exactly ``key``; False (unpositioned) if absent."""
        self._check()
        key = check_key(key, "mdb_cursor_get")
        found = self._seek(key[::-1] if self._d.rev else key)
        self._valid = found
        return found

    def set_range(self, key: Any, /) -> bool:
        """Move to the first key >= ``key`` (``b''``: the first record)."""
        self._check()
        if key.__class__ is not bytes:
            key = to_bytes(key)
        if not key:
            return self.first()
        key = check_key(key, "mdb_cursor_get")
        self._seek(key[::-1] if self._d.rev else key)
        return self._valid

    def set_key_dup(self, key: Any, value: Any) -> bool:
        """Move to exactly (key, value): on this database, the key if its value matches."""
        if not self.set_key(key):
            return False
        if bytes(self.value()) == to_bytes(value):
            return True
        self._valid = False
        return False

    def set_range_dup(self, key: Any, value: Any) -> bool:
        return self.set_key_dup(key, value)

    # -- data methods -----------------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` (positioning the cursor there), or ``default``."""
        if self.set_key(key):
            return self.value()
        return default

    def put(self, key: Any, val: Any, dupdata: bool = True, overwrite: bool = True,
            append: bool = False) -> bool:
        """Store a record and stand on it; see `Transaction.put` for the return value."""
        self._check()
        txn = self.txn
        txn._check_write("mdb_put")
        key = check_key(key, "mdb_put")
        if val.__class__ is not bytes:
            val = to_bytes(val)
        d = self._db_state()
        skey = key[::-1] if d.rev else key
        txn._gen += 1
        try:
            ok = txn._put(d, skey, val, overwrite, append)
        except BaseException as exc:
            txn._spoil(exc)
            raise
        # LMDB leaves its cursor on the record (the existing one when refused; the last one
        # when an append is refused); like the lmdb package, the positioned flag is only
        # re-read by the next accessor
        valid = self._valid
        if ok or not append:
            self._set(tree.search(txn, d, skey))
        else:
            self._set(tree.edge(txn, d, True))
        self._valid = valid
        self._gen = -1
        return ok

    def putmulti(self, items: Any, dupdata: bool = True, overwrite: bool = True,
                 append: bool = False) -> Tuple[int, int]:
        """Put each ``(key, value)`` tuple; returns ``(consumed, added)``."""
        consumed = added = 0
        for item in items:
            if item.__class__ is not tuple or len(item) != 2:
                raise TypeError("putmulti() items must be (key, value) 2-tuples")
            if self.put(item[0], item[1], dupdata, overwrite, append):
                added += 1
            consumed += 1
        return consumed, added

    def delete(self, dupdata: bool = False) -> bool:
        """Delete the current record and move to the one after it; False if unpositioned."""
        self._check()
        if not self._valid:   # the flag as it stands, as the lmdb package checks it
            return False
        self._fresh()
        if self._pages is None or self._idxs[-1] >= len(self._pages[-1].keys):
            return False
        txn = self.txn
        txn._check_write("mdb_cursor_del")
        d = self._d
        path = tree.search(txn, d, self._skey)  # type: ignore[arg-type]
        assert path is not None
        if path[0][-1].nfl[path[1][-1]] & F_SUBDATA:  # type: ignore[index]
            raise IncompatibleError("mdb_cursor_del", IncompatibleError.MDB_CODE)
        try:
            txn._delete_at(d, path[0], path[1])
        except BaseException as exc:
            txn._spoil(exc)
            raise
        self._get_current()
        return True

    def replace(self, key: Any, val: Any) -> Any:
        """Store ``val`` under ``key`` and return the old value (bytes) or None; the cursor
        stands on the record."""
        self._check()
        key = check_key(key, "mdb_put")
        old = self.txn._get_bytes(key, self.db)
        self.put(key, val)
        return old

    def pop(self, key: Any) -> Any:
        """Delete ``key`` and return its value (bytes), or None."""
        self._check()
        if not self.set_key(key):
            return None
        old = self.value()
        if old.__class__ is not bytes:
            old = bytes(old)
        txn = self.txn
        txn._check_write("mdb_cursor_del")
        d = self._d
        path = tree.search(txn, d, self._skey)
        assert path is not None
        txn._gen += 1
        try:
            txn._delete_at(d, path[0], path[1])
        except BaseException as exc:
            txn._spoil(exc)
            raise
        self._sync()
        return old

    # -- iteration --------------------------------------------------------------------------------

    def _item_getter(self, keys: bool, values: bool) -> Any:
        if not values:
            return self.key
        if not keys:
            return self.value
        return self.item

    def _iterate(self, start: Any, step: Any, keys: bool, values: bool) -> Iterator[Any]:
        get = self._item_getter(keys, values)
        self._fresh()
        if not self._valid and not start():
            return
        while True:
            yield get()
            if not step():
                return

    def _walk(self, forward: bool, keys: bool, values: bool) -> Iterator[Any]:
        """`iternext`/`iterprev` over plain records: steps inside a leaf without a method call
        per record, and falls back to `next()`/`prev()` at a leaf's end or whenever anything
        (a write in the transaction, a move of this cursor) changed the position."""
        self._fresh()
        if not self._valid and not (self.first() if forward else self.last()):
            return
        txn = self.txn
        want_value = values or not keys
        want_key = keys or not values
        while True:
            pages = self._pages
            leaf = pages[-1]  # type: ignore[index]
            idxs = self._idxs
            i = idxs[-1]
            lkeys, lvals, lsizes, lnfl = leaf.keys, leaf.vals, leaf.sizes, leaf.nfl
            n = len(lkeys)
            gen = txn._gen
            m = txn._map
            plain = not (self._d.rev or txn._buffers)
            while True:
                if want_key:
                    k = lkeys[i] if plain else self._out_key(lkeys[i])
                if want_value:
                    v = lvals[i]
                    if plain and v.__class__ is int and not lnfl[i]:  # type: ignore[index]
                        v = m[v:v + lsizes[i]]  # type: ignore[index]
                    else:
                        v = txn._value(v, lsizes[i], lnfl[i])  # type: ignore[index]
                    yield (k, v) if want_key else v
                else:
                    yield k
                if (self._closed or txn._done or txn._gen != gen or self._pages is not pages
                        or idxs[-1] != i or not self._valid or self._deleted or self._eof):
                    break
                i = i + 1 if forward else i - 1
                if not 0 <= i < n:
                    break
                idxs[-1] = i
                self._skey = lkeys[i]
            if not (self.next() if forward else self.prev()):
                return

    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        """Records forward from the current one (from the first when unpositioned)."""
        return self._walk(True, keys, values)

    def iternext_nodup(self, keys: bool = True, values: bool = False) -> Iterator[Any]:
        return self._iterate(self.first, self.next_nodup, keys, values)

    def iternext_dup(self, keys: bool = False, values: bool = True) -> Iterator[Any]:
        return self._iterate(lambda: False, self.next_dup, keys, values)

    def iterprev(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        """Records backward from the current one (from the last when unpositioned)."""
        return self._walk(False, keys, values)

    def iterprev_nodup(self, keys: bool = True, values: bool = False) -> Iterator[Any]:
        return self._iterate(self.last, self.prev_nodup, keys, values)

    def iterprev_dup(self, keys: bool = False, values: bool = True) -> Iterator[Any]:
        return self._iterate(lambda: False, self.prev_dup, keys, values)

    def __iter__(self) -> Iterator[Any]:
        return self.iternext()

    def _iter_from(self, k: Any, reverse: bool) -> Iterator[Any]:
        """Forward from ``set_range(k)``, or backward from it (from the last when past the end)."""
        if not k and not reverse:
            found = self.first()
        else:
            found = self.set_range(k)
        if reverse:
            if not found:
                self.last()
            return self.iterprev()
        return self.iternext()

