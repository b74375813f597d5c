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

import errno
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Tuple

from . import dups, tree
from .errors import IncompatibleError, InvalidParameterError, NotFoundError, closed_error, corrupted
from .layout import F_DUPDATA, F_SUBDATA, MAX_KEY_SIZE, MDB_DUPSORT
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
        txn._check("mdb_cursor_open")
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
        self._dupsort = bool(self._d.flags & MDB_DUPSORT)
        self._dp: Optional[_DupPos] = None  # DUPSORT: where among the key's values
        self._sval = b""                    # DUPSORT: sort-form value under the cursor
        self._dpast = False                 # DUPSORT: one past the key's last value
        # DUPSORT, on a single-value key: LMDB's sub-cursor still holds (index, count) from
        # the sub-page the cursor stepped off (see _step_onto); None when it was reset
        self._xi: Optional[Tuple[int, int]] = None
        self._xcount: Optional[int] = None  # count() as LMDB's stale sub-cursor reports it
        # the lmdb package's first_dup()/last_dup() leave key() showing the key of the move
        # before them; None when key() shows the current key
        self._key_hold: Any = None
        self._gen = txn._gen
        self._mut = txn._mutations
        # the token of the `_walk` iterator stepping inside a leaf; every other use of the
        # cursor clears it (`_check`), which tells the iterator to re-read the position
        self._walker: Optional[object] = None
        # a read transaction's iterator records its position only here: (the iterator it
        # counts records on, the leaf indices that iterator runs over, the leaf's keys)
        self._walk_at: Optional[Tuple[Any, range, List[bytes]]] = None
        txn._cursors.append(self)

    # -- state ------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._walker is not None:
            self._settle_walk()
        if self._closed:
            raise closed_error()
        self.txn._check("mdb_cursor_get")

    def _settle_walk(self) -> None:
        """Store the position an iterator stepping inside a leaf stands on, and clear its
        token: any call may move the cursor, so the iterator must look again."""
        self._walker = None
        walk = self._walk_at
        if walk is not None:
            self._walk_at = None
            at, steps, keys = walk
            done = len(steps) - at.__length_hint__()
            if done:
                i = self._idxs[-1] = steps[done - 1]
                self._skey = keys[i]

    def _txn_ended(self) -> None:
        self._closed = True
        self._pages = None
        self._walker = None

    def close(self) -> None:
        """Close the cursor; later use raises `Error`."""
        if not self._closed:
            self._closed = True
            self._pages = None
            self._walker = None
            try:
                self.txn._cursors.remove(self)
            except ValueError:
                pass

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _set(self, path: Optional[tree.Path], last: bool = False) -> bool:
        """Adopt a fresh path; positioned if it points at a record."""
        self._eof = self._deleted = self._dpast = False
        self._key_hold = None
        self._xi = None
        self._gen = self.txn._gen
        self._mut = self.txn._mutations
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
            if self._dupsort:
                self._load_dups(last)
            elif leaf.nfl[i] & F_DUPDATA:  # type: ignore[index]
                _refuse_dup_node(leaf)
            return True
        self._skey = None
        self._valid = False
        return False

    def _load_dups(self, last: bool = False) -> None:
        """Stand on the first (or last) value of the key under the path."""
        leaf, i = self._current()
        self._dp = _DupPos(self.txn, self._d, leaf, i, last)
        self._sval = self._dp.value()
        self._dpast = False
        self._xcount = None
        if self._dp.dups.kind:
            self._xi = None     # LMDB sets its sub-cursor up afresh on a duplicates node

    def _step_onto(self, last: bool) -> None:
        """`_load_dups` after a step to another key. LMDB's sub-cursor keeps its place when
        the cursor steps off a sub-page onto a single-value key, and is reset only when the
        cursor leaves that key; a delete there shows the next key at the kept index."""
        old = self._dp
        self._load_dups(last)
        if not self._dp.dups.kind:  # type: ignore[union-attr]
            self._xi = (old.i, len(old.dups.vals)) if old and old.dups.kind == 1 else None

    def _stale_dup_index(self, xi: Tuple[int, int]) -> None:
        """After deleting a single-value key: LMDB's sub-cursor, still holding index and
        count from an earlier sub-page, is re-pointed at the next key's sub-page only."""
        dp = self._dp
        if (self._pages is None or dp is None or dp.dups.kind != 1
                or self._idxs[-1] >= len(self._pages[-1].keys)):
            return
        i, count = xi
        n = len(dp.dups.vals)
        dp.i = min(i, n - 1)
        self._dpast = i >= n        # past that key's last value: unpositioned
        self._sval = dp.value()
        self._xcount = count

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
            # the tree was emptied under the cursor: LMDB leaves it unplaced, still marked
            # deleted, so that its next move fails instead of starting over (see _unplaced);
            # the positioned flag stays until an accessor re-reads it, as in the lmdb package
            self._pages = None
            self._deleted = True
            return
        self._pages, self._idxs = path
        leaf = self._pages[-1]
        i = self._idxs[-1]
        if i < len(leaf.keys) and leaf.keys[i] == self._skey:
            if not self._dupsort:
                return
            self._dp = _DupPos(txn, self._d, leaf, i, False)
            found = self._dp.seek(self._sval)
            if found:
                return
            self._eof = False
            if found is False:
                self._deleted = True
                self._sval = self._dp.value()
                return
            # every remaining value is smaller: like LMDB, stand one past the last one
            self._dp.edge(True)
            self._sval = self._dp.value()
            self._dpast = True
            return
        # the record is gone: stand on its successor, marked deleted
        self._deleted = True
        self._eof = False
        if i >= len(leaf.keys):
            self._idxs[-1] = len(leaf.keys) - 1
            if len(leaf.keys) and tree.step(txn, self._d, self._pages, self._idxs, True):
                self._skey = self._pages[-1].keys[self._idxs[-1]]
                if self._dupsort:
                    self._load_dups()
                return
            self._idxs[-1] = len(self._pages[-1].keys)
            self._skey = None
            self._valid = False
            return
        self._skey = leaf.keys[i]
        if self._dupsort:
            self._load_dups()

    def _fresh(self) -> None:
        """Before a move: follow any write in the transaction."""
        self._check()
        if self._gen != self.txn._gen:
            self._sync()
        self._mut = self.txn._mutations

    def _get_current(self) -> None:
        """Before reading the record: what MDB_GET_CURRENT does after a write."""
        self._check()
        if self._gen != self.txn._gen:
            self._sync()
        if self._mut != self.txn._mutations:
            self._mut = self.txn._mutations
            self._key_hold = None
            self._deleted = False
            self._valid = (self._pages is not None and not self._dpast
                           and self._idxs[-1] < len(self._pages[-1].keys))
        elif self._pages is None:
            self._valid = False   # emptied under it; a failed delete() left the flag set

    def _current(self) -> Tuple[Page, int]:
        return self._pages[-1], self._idxs[-1]  # type: ignore[index]

    # -- accessors --------------------------------------------------------------------------------

    def key(self) -> Any:
        """The current key (``b''`` when unpositioned)."""
        self._get_current()
        if not self._valid:
            return b""
        if self._key_hold is not None:
            return self._key_hold
        return self._out_key(self._skey)  # type: ignore[arg-type]

    def value(self) -> Any:
        """The current value (``b''`` when unpositioned)."""
        self._get_current()
        if not self._valid:
            return b""
        return self._cur_value()

    def _cur_value(self) -> Any:
        if self._dupsort:
            v = self._sval[::-1] if self._dp.dups.rev else self._sval  # type: ignore[union-attr]
            return memoryview(v) if self.txn._buffers else v
        leaf, i = self._current()
        if leaf.nfl[i] & F_DUPDATA:  # type: ignore[index]
            _refuse_dup_node(leaf)
        return self.txn._value(leaf.vals[i], leaf.sizes[i], leaf.nfl[i])  # type: ignore[index]

    def item(self) -> Tuple[Any, Any]:
        """``(key, value)`` of the current record, ``(b'', b'')`` when unpositioned."""
        self._get_current()
        if not self._valid:
            return b"", b""
        key = self._key_hold if self._key_hold is not None else self._out_key(self._skey)  # type: ignore[arg-type]
        return key, self._cur_value()

    def _out_key(self, skey: bytes) -> Any:
        k = skey[::-1] if self._d.rev else skey
        return memoryview(k) if self.txn._buffers else k

    def count(self) -> int:
        """Number of values of the current key (dupsort databases only)."""
        self._check()
        if self._gen != self.txn._gen:
            self._sync()
        if not self._dupsort:
            raise IncompatibleError("mdb_cursor_count", IncompatibleError.MDB_CODE)
        # like LMDB, it counts at the internal position, positioned or not
        if self._pages is None:
            raise InvalidParameterError("mdb_cursor_count", errno.EINVAL)
        if self._idxs[-1] >= len(self._pages[-1].keys) or self._dp is None:
            raise NotFoundError("mdb_cursor_count", NotFoundError.MDB_CODE)
        if self._xcount is not None and self._dp.dups.kind == 1:
            return self._xcount
        return self._dp.dups.count()

    # -- moves ------------------------------------------------------------------------------------

    def first(self) -> bool:
        """Move to the first record; False if the database is empty."""
        self._check()
        return self._set(tree.edge(self.txn, self._db_state(), False))

    def last(self) -> bool:
        """Move to the last record; False if the database is empty."""
        self._check()
        return self._set(tree.edge(self.txn, self._db_state(), True), last=True)

    def _db_state(self) -> tree.DbState:
        self._d = self.txn._dbs[self._dbi]
        return self._d

    def next(self) -> bool:
        """Move to the next record; False (unpositioned) past the last one."""
        self._fresh()
        self._key_hold = None
        if self._pages is None:
            return self._unplaced(self.first)
        leaf, i = self._current()
        if self._eof:
            if i >= len(leaf.keys) - 1:
                self._valid = False
                return False
            self._eof = False
        if self._deleted:
            self._deleted = False
            ok = i < len(leaf.keys)
        elif self._dupsort and i < len(leaf.keys) and not self._dpast and self._dup_step(True):
            ok = True
        else:
            ok = tree.step(self.txn, self._d, self._pages, self._idxs, True)
            if not ok:
                self._eof = True
            elif self._dupsort:
                self._skey = self._pages[-1].keys[self._idxs[-1]]
                self._step_onto(False)
        if ok:
            leaf = self._pages[-1]
            i = self._idxs[-1]
            self._skey = leaf.keys[i]
            if leaf.nfl[i] & F_DUPDATA and not self._dupsort:  # type: ignore[index]
                _refuse_dup_node(leaf)
        self._valid = ok
        return ok

    def _unplaced(self, edge: Any) -> bool:
        """A relative move of an unplaced cursor: from the first (last) record, except
        right after the tree was emptied under it, when the move fails once (patched
        LMDB: a re-inserted key must not be found as the "next" one)."""
        if self._deleted:
            self._deleted = False
            self._valid = False
            return False
        return bool(edge())

    def _dup_step(self, forward: bool) -> bool:
        dp = self._dp
        if dp is None or not dp.step(forward):
            return False
        self._sval = dp.value()
        return True

    def prev(self) -> bool:
        """Move to the previous record; False (unpositioned) before the first one."""
        self._fresh()
        self._key_hold = None
        if self._pages is None:
            return self._unplaced(self.last)
        self._eof = self._deleted = False
        leaf, i = self._current()
        if self._dpast:
            self._dpast = False      # back from one past the last value: the last value
            self._valid = True
            return True
        if self._dupsort and i < len(leaf.keys) and self._dup_step(False):
            self._valid = True
            return True
        if 0 < i <= len(leaf.keys):
            self._idxs[-1] = i - 1
            ok = True
        else:
            ok = tree.step(self.txn, self._d, self._pages, self._idxs, False)
        if ok:
            leaf = self._pages[-1]
            i = self._idxs[-1]
            self._skey = leaf.keys[i]
            if self._dupsort:
                self._step_onto(True)
            elif leaf.nfl[i] & F_DUPDATA:  # type: ignore[index]
                _refuse_dup_node(leaf)
        self._valid = ok
        return ok

    def next_nodup(self) -> bool:
        """Move to the first value of the next key."""
        if not self._dupsort:
            return self.next()
        return self._key_step(True)

    def prev_nodup(self) -> bool:
        """Move to the last value of the previous key."""
        if not self._dupsort:
            return self.prev()
        return self._key_step(False)

    def _key_step(self, forward: bool) -> bool:
        self._fresh()
        self._key_hold = None
        if self._pages is None:
            return self._unplaced(self.first if forward else self.last)
        self._eof = self._deleted = False
        leaf, i = self._current()
        if not forward and 0 < i <= len(leaf.keys):
            self._idxs[-1] = i - 1
            ok = True
        else:
            ok = tree.step(self.txn, self._d, self._pages, self._idxs, forward)
        if ok:
            self._skey = self._pages[-1].keys[self._idxs[-1]]
            self._step_onto(not forward)
        elif forward:
            self._eof = True
        self._valid = ok
        return ok

    def next_dup(self) -> bool:
        """Next value of the current key; on a database without duplicates, as LMDB: next()."""
        if not self._dupsort:
            return self.next()
        self._fresh()
        if self._pages is None:
            # as LMDB: an unplaced cursor starts at the first record
            return self._unplaced(self.first)
        if self._deleted or self._dpast:
            self._valid = False      # LMDB: no next duplicate of a deleted record
            self._deleted = False
            return False
        return self._within_key(lambda: self._dup_step(True))

    def prev_dup(self) -> bool:
        """Previous value of the current key; without duplicates, as LMDB: prev()."""
        if not self._dupsort:
            return self.prev()
        self._fresh()
        if self._pages is None:
            return self._unplaced(self.last)
        self._eof = False            # as LMDB, any backward move leaves the end
        if self._dpast:
            return self._within_key(lambda: True)
        return self._within_key(lambda: self._dup_step(False))

    def _within_key(self, move: Any) -> bool:
        self._fresh()
        self._key_hold = None
        if self._pages is None or self._idxs[-1] >= len(self._pages[-1].keys):
            self._valid = self._deleted = False
            return False
        self._deleted = False
        ok = bool(move())
        self._dpast = False
        self._valid = ok
        return ok

    def first_dup(self) -> bool:
        """Move to the first value of the current key (DUPSORT databases only)."""
        return self._dup_edge(False)

    def last_dup(self) -> bool:
        """Move to the last value of the current key (DUPSORT databases only)."""
        return self._dup_edge(True)

    def _dup_edge(self, last: bool) -> bool:
        self._fresh()
        if self._pages is None:      # LMDB checks this before the database's flags
            self._valid = self._deleted = False
            raise InvalidParameterError("mdb_cursor_get", errno.EINVAL)
        if not self._dupsort:
            self._valid = False      # a failed MDB_cursor_get unpositions, as any other
            raise IncompatibleError("mdb_cursor_get", IncompatibleError.MDB_CODE)
        if self._idxs[-1] >= len(self._pages[-1].keys):
            self._valid = False
            return False
        held = self._out_key(self._skey) if self._valid else b""  # type: ignore[arg-type]
        self._load_dups(last)
        self._key_hold = held
        self._deleted = self._eof = False
        self._valid = True
        return True

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
                if self._dupsort:
                    self._load_dups()
                elif pages[-1].nfl[idxs[-1]] & F_DUPDATA:  # type: ignore[index]
                    _refuse_dup_node(pages[-1])
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
        key = to_bytes(key)
        if len(key) > MAX_KEY_SIZE:    # as LMDB: no such key, not an error
            self._valid = False
            return False
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
        # an over-long key is no error here: LMDB just searches for it
        self._seek(key[::-1] if self._d.rev else key)
        return self._valid

    def set_key_dup(self, key: Any, value: Any) -> bool:
        """Move to exactly (key, value)."""
        return self._seek_pair(key, value, exact=True)

    def set_range_dup(self, key: Any, value: Any) -> bool:
        """Move to ``key``'s first value >= ``value``; unpositioned if there is none."""
        return self._seek_pair(key, value, exact=False)

    def _seek_pair(self, key: Any, value: Any, exact: bool) -> bool:
        self._check()
        if not self._dupsort:
            # LMDB refuses MDB_GET_BOTH(_RANGE) without DUPSORT before it moves
            self._valid = False
            raise IncompatibleError("mdb_cursor_get", IncompatibleError.MDB_CODE)
        if not self.set_key(key):
            return False
        value = to_bytes(value)
        dp = self._dp
        assert dp is not None
        found = dp.seek(value[::-1] if dp.dups.rev else value)
        ok = found is True or (found is False and not exact)
        if found is not None:
            self._sval = dp.value()
        self._valid = ok
        return ok

    # -- data methods -----------------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` (positioning the cursor there), or ``default``."""
        if self.set_key(key):
            return self.value()
        return default

    def put(self, key: Any, value: Any, dupdata: bool = True, overwrite: bool = True,
            append: bool = False) -> bool:
        """Store a record and stand on it; see `Transaction.put` for the return value."""
        self._check()
        txn = self.txn
        txn._check_write("mdb_put")
        key = check_key(key, "mdb_put")
        val = value if value.__class__ is bytes else to_bytes(value)
        d = self._db_state()
        skey = key[::-1] if d.rev else key
        txn._gen += 1
        txn._mutations += 1
        try:
            if self._dupsort:
                ok = txn._put_dup(d, skey, val, dupdata, overwrite, append)
            else:
                ok = txn._put(d, skey, val, overwrite, append)
        except BaseException as exc:
            txn._spoil(exc)
            raise
        # LMDB leaves its cursor on the record (the existing one when refused; the last one
        # when an append is refused); like the lmdb package, the positioned flag is only
        # re-read by the next accessor
        valid = self._valid
        if ok or not append or self._dupsort:
            self._set(tree.search(txn, d, skey))
            dp = self._dp
            if self._dupsort and dp is not None and (ok or overwrite):
                # on the value written; refused, on the key's last value (APPENDDUP) or on
                # the existing pair (NODUPDATA); NOOVERWRITE leaves the key's first value
                if not ok and append:
                    dp.edge(True)
                else:
                    dp.seek(val[::-1] if dp.dups.rev else val)
                self._sval = dp.value()
        else:
            self._set(tree.edge(txn, d, True), last=True)
        self._valid = valid
        self._mut = -1
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

    def getmulti(self, keys: Any, dupdata: bool = False, dupfixed_bytes: Optional[int] = None,
                 keyfixed: bool = False, values: bool = True) -> Any:
        """``(key, value)`` for each of ``keys`` found (every value with ``dupdata``); a
        flat list of the keys found with ``values=False``; with ``keyfixed`` one memoryview of
        concatenated key and ``dupfixed_bytes``-sized value records."""
        if dupfixed_bytes is not None and dupfixed_bytes < 0:
            raise OverflowError("Integer argument must be >= 0")
        if (dupfixed_bytes or keyfixed) and not dupdata:
            raise TypeError("dupdata is required for dupfixed_bytes/keyfixed.")
        if keyfixed and not dupfixed_bytes:
            raise TypeError("dupfixed_bytes is required for keyfixed.")
        if not values and dupdata:
            raise TypeError("values=False is incompatible with dupdata.")
        out: List[Any] = []
        flat = bytearray()
        width = None
        for key in keys:
            if not self.set_key(key):
                continue
            k = bytes(self.key())
            if not values:
                out.append(self.key())
                continue
            if keyfixed:
                if width is None:
                    width = len(k)
                elif len(k) != width:
                    raise ValueError("keyfixed=True requires all keys to be the same size")
            while self._valid:
                v = bytes(self.value())
                pieces = ([v[i:i + dupfixed_bytes] for i in range(0, len(v), dupfixed_bytes)]
                          if dupfixed_bytes else [v])
                for piece in pieces:
                    if keyfixed:
                        flat += k + piece
                    else:
                        out.append((self.key(), piece if dupfixed_bytes else self.value()))
                if not dupdata or not self.next_dup():
                    break
        return memoryview(bytes(flat)) if keyfixed else out

    def delete(self, dupdata: bool = False) -> bool:
        """Delete the current record and move to the one after it; False if unpositioned."""
        self._check()
        if not self._valid:   # the flag as it stands, as the lmdb package checks it
            return False
        self._fresh()
        if self._pages is None:
            # positioned, but the tree was emptied under it: LMDB's cursor is unplaced
            raise InvalidParameterError("mdb_cursor_del", errno.EINVAL)
        if self._idxs[-1] >= len(self._pages[-1].keys):
            return False
        txn = self.txn
        txn._check_write("mdb_cursor_del")
        txn._mutations += 1
        d = self._d
        path = tree.search(txn, d, self._skey)  # type: ignore[arg-type]
        assert path is not None
        nflags = path[0][-1].nfl[path[1][-1]]  # type: ignore[index]
        if nflags & F_DUPDATA and not self._dupsort:
            _refuse_dup_node(path[0][-1])
        if nflags & (F_SUBDATA | F_DUPDATA) == F_SUBDATA:
            raise IncompatibleError("mdb_cursor_del", IncompatibleError.MDB_CODE)
        xi = self._xi if not nflags & F_DUPDATA else None
        try:
            if self._dupsort and not dupdata:
                txn._gen += 1
                tree.touch_path(txn, d, path[0], path[1])
                d.changed = True
                dups.delete_value(txn, d, path[0], path[1], self._sval)
                txn._fix_cursors()
            else:
                txn._delete_at(d, path[0], path[1])
        except BaseException as exc:
            txn._spoil(exc)
            raise
        if xi is not None:
            self._stale_dup_index(xi)
        self._get_current()
        return True

    def replace(self, key: Any, value: Any) -> Any:
        """Store ``value`` under ``key`` and return the old value (bytes) or None; the cursor
        stands on the record."""
        self._check()
        key = check_key(key, "mdb_put")
        if not self._dupsort:
            old = self.txn._get_bytes(key, self.db)
            self.put(key, value)
            return old
        # a DUPSORT key's values are all replaced; the first old one is returned
        txn = self.txn
        if not self.set_key(key):
            mutations = txn._mutations
            self.put(key, value)
            txn._mutations = self._mut = mutations   # the lmdb package counts no write here
            return None
        old = bytes(self.value())
        self.delete(dupdata=True)
        self.put(key, value)
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
        path = tree.search(txn, d, self._skey)  # type: ignore[arg-type]
        assert path is not None
        txn._gen += 1
        txn._mutations += 1
        try:
            if self._dupsort:   # only the value under the cursor (the key's first) goes
                tree.touch_path(txn, d, path[0], path[1])
                d.changed = True
                dups.delete_value(txn, d, path[0], path[1], self._sval)
                txn._fix_cursors()
            else:
                txn._delete_at(d, path[0], path[1])
        except BaseException as exc:
            txn._spoil(exc)
            raise
        return old

    # -- iteration --------------------------------------------------------------------------------

    def _item_getter(self, keys: bool, values: bool) -> Any:
        if not values:
            return self.key
        if not keys:
            return self.value
        return self.item

    def _start(self, start: Any) -> None:
        """Like the lmdb package, an iterator positions an unpositioned cursor when it is
        made, not when it is first advanced."""
        self._check()
        if start is not None and not self._valid:
            start()

    def _steps(self, step: Any, keys: bool, values: bool) -> Iterator[Any]:
        """Yield the current record, then step; stop when the cursor is unpositioned."""
        get = self._item_getter(keys, values)
        started = False
        while True:
            self._check()
            if not self._valid:
                return
            if started and not step():
                return
            started = True
            yield get()

    def _walk(self, forward: bool, keys: bool, values: bool) -> Iterator[Any]:
        """`_steps` for plain records, faster: inside a leaf it steps without a method call
        per record, and falls back to `next()`/`prev()` at a leaf's end or whenever anything
        (a write in the transaction, a move of this cursor) changed the position."""
        get = self._item_getter(keys, values)
        txn = self.txn
        want_value = values
        want_key = keys or not values
        started = False
        while True:
            self._check()
            if not self._valid:
                return
            if started and not (self.next() if forward else self.prev()):
                return
            started = True
            yield get()
            pages = self._pages
            if pages is None:
                continue
            leaf = pages[-1]
            idxs = self._idxs
            i = idxs[-1]
            lkeys, lvals, lsizes, lnfl = leaf.keys, leaf.vals, leaf.sizes, leaf.nfl
            n = len(lkeys)
            gen = txn._gen
            mutations = txn._mutations
            if (self._closed or txn._done or self._pages is not pages or idxs[-1] != i
                    or not self._valid or self._deleted or self._eof or self._mut != mutations):
                continue
            m = txn._map
            plain = not (self._d.rev or txn._buffers)
            step = 1 if forward else -1
            # From here only a call on this cursor (it clears the token) or a write in the
            # transaction can change the position: three checks per record instead of the
            # whole state.
            token = self._walker = object()
            while self._walker is token and txn._gen == gen and txn._mutations == mutations:
                i += step
                if not 0 <= i < n:
                    break
                idxs[-1] = i
                k = self._skey = lkeys[i]
                if not plain and want_key:
                    k = self._out_key(k)
                if want_value:
                    v = lvals[i]
                    if v.__class__ is int and plain and not lnfl[i]:  # type: ignore[index]
                        v = m[v:v + lsizes[i]]  # type: ignore[index]
                    else:
                        if lnfl[i] & F_DUPDATA:  # type: ignore[index]
                            raise corrupted(leaf.pgno, "duplicates node in a database "
                                            "without DUPSORT")
                        v = txn._value(v, lsizes[i], lnfl[i])  # type: ignore[index]
                    yield (k, v) if want_key else v
                else:
                    yield k
            else:
                continue
            if 0 <= i < n:
                continue
            # at the leaf's end: step back onto its last record, the next() above moves on
            idxs[-1] = i - 1 if forward else i + 1

    def _walk_read(self, forward: bool, keys: bool, values: bool) -> Iterator[Any]:
        """`_walk` in a read transaction of a database with plain keys (no REVERSEKEY) and
        bytes values: leaf after leaf of inline values it hands out with no per-record
        bookkeeping. Nothing but a call on this cursor can move its position, and that call
        reads the position off the iterator the loop counts on (`_settle_walk`). A leaf
        with a duplicates node, and the ends, go through `next()`/`prev()`."""
        get = self._item_getter(keys, values)
        txn = self.txn
        d = self._d
        m = txn._map
        want_value = values
        want_key = keys or not values
        step = 1 if forward else -1
        step_first = False      # the position holds a record already yielded
        cache = txn._caches[False]
        raw: List[bytes] = []   # the values of the leaf just read past the cache
        read: List[Page] = []   # that leaf

        def load_leaf(pgno: int) -> Page:
            """A leaf the scan moves onto: the cached page, or one read past the cache
            (a scan would push out what lookups use) with all its values at once."""
            page = cache.get(pgno)
            if page is not None:
                return page
            page = txn._decode(pgno, False, raw if want_value else None)
            read[:] = [page]
            return page

        while True:
            self._check()
            if not self._valid:
                return
            if step_first and not (self.next() if forward else self.prev()):
                return
            step_first = True
            yield get()
            pages = self._pages
            if pages is None or self._closed or txn._done or not self._valid \
                    or self._deleted or self._eof:
                continue
            idxs = self._idxs
            i = idxs[-1] + step          # the first record to yield
            self._key_hold = None
            token = self._walker = object()
            del read[:]
            while True:
                leaf = pages[-1]
                lkeys = leaf.keys
                nfl = leaf.nfl
                assert nfl is not None
                flagged = any(nfl)
                if flagged and _has_dup_node(nfl):
                    break               # next() refuses it (cve-2019-16227)
                if forward:
                    steps = range(i, len(lkeys))
                    ks = lkeys[i:]
                    starts = leaf.vals[i:]
                    sizes = leaf.sizes[i:]  # type: ignore[index]
                else:
                    steps = range(i, -1, -1)
                    ks = lkeys[i::-1] if i >= 0 else []
                    starts = leaf.vals[i::-1] if i >= 0 else []
                    sizes = leaf.sizes[i::-1] if i >= 0 else []  # type: ignore[index]
                # the first iterator of each loop is what `_settle_walk` counts on
                if read and read[0] is leaf and len(raw) == len(lkeys) and want_value:
                    # read past the cache: its values came with it
                    vs = raw[i:] if forward else raw[i::-1] if i >= 0 else []
                    if want_key:
                        at = iter(ks)
                        self._walk_at = (at, steps, lkeys)
                        for record in zip(at, vs):
                            if self._walker is not token:
                                break
                            yield record
                    else:
                        at = iter(vs)
                        self._walk_at = (at, steps, lkeys)
                        for v in at:
                            if self._walker is not token:
                                break
                            yield v
                elif not want_value:
                    at = iter(ks)
                    self._walk_at = (at, steps, lkeys)
                    for k in at:
                        if self._walker is not token:
                            break
                        yield k
                elif flagged:
                    # overflow values or sub-database records among them: those through
                    # txn._value (which checks an overflow run before reading it)
                    value = txn._value
                    fls = nfl[i:] if forward else nfl[i::-1] if i >= 0 else []
                    at = iter(ks)
                    self._walk_at = (at, steps, lkeys)
                    for k, v, size, fl in zip(at, starts, sizes, fls):
                        if self._walker is not token:
                            break
                        v = value(v, size, fl) if fl else m[v:v + size]
                        yield (k, v) if want_key else v
                elif want_key:
                    at = iter(ks)
                    self._walk_at = (at, steps, lkeys)
                    for k, v, size in zip(at, starts, sizes):
                        if self._walker is not token:
                            break
                        yield (k, m[v:v + size])
                else:
                    at = iter(starts)
                    self._walk_at = (at, steps, lkeys)
                    for v, size in zip(at, sizes):
                        if self._walker is not token:
                            break
                        yield m[v:v + size]
                if self._walker is not token:
                    break               # the cursor was used: `_settle_walk` stored where
                self._walk_at = None
                if steps:
                    idxs[-1] = last = steps[-1]
                    self._skey = lkeys[last]
                del raw[:]
                if not tree.step(txn, d, pages, idxs, forward, load_leaf):
                    break               # on the last record: next() reports the end
                i = idxs[-1]
                leaf = pages[-1]
                self._skey = leaf.keys[i]
                if leaf.nfl[i] & F_DUPDATA:  # type: ignore[index]
                    _refuse_dup_node(leaf)
                if _has_dup_node(leaf.nfl):  # type: ignore[arg-type]
                    step_first = False  # on a record not yielded yet
                    break

    def _iterate(self, forward: bool, keys: bool, values: bool) -> Iterator[Any]:
        txn = self.txn
        if txn._write or txn._buffers or self._d.rev:
            return self._walk(forward, keys, values)
        return self._walk_read(forward, keys, values)

    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        """Records forward from the current one (from the first when unpositioned)."""
        self._start(self.first)
        if self._dupsort:
            return self._steps(self.next, keys, values)
        return self._iterate(True, keys, values)

    def iternext_nodup(self, keys: bool = True, values: bool = False) -> Iterator[Any]:
        """First records of each key forward (from the first when unpositioned)."""
        self._start(self.first)
        return self._steps(self.next_nodup, keys, values)

    def iternext_dup(self, keys: bool = False, values: bool = True) -> Iterator[Any]:
        """The current key's values forward from the current one."""
        self._start(None)
        return self._steps(self.next_dup, keys, values)

    def iterprev(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        """Records backward from the current one (from the last when unpositioned)."""
        self._start(self.last)
        if self._dupsort:
            return self._steps(self.prev, keys, values)
        return self._iterate(False, keys, values)

    def iterprev_nodup(self, keys: bool = True, values: bool = False) -> Iterator[Any]:
        """Last records of each key backward (from the last when unpositioned)."""
        self._start(self.last)
        return self._steps(self.prev_nodup, keys, values)

    def iterprev_dup(self, keys: bool = False, values: bool = True) -> Iterator[Any]:
        """The current key's values backward from the current one."""
        self._start(None)
        return self._steps(self.prev_dup, keys, values)

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



def _has_dup_node(nfl: List[int]) -> bool:
    return any(fl & F_DUPDATA for fl in nfl) if any(nfl) else False


def _refuse_dup_node(leaf: Page) -> None:
    """A duplicates node in a database without DUPSORT: LMDB (cve-2019-16227 patch) refuses
    to position on it."""
    raise corrupted(leaf.pgno, "duplicates node in a database without DUPSORT")


class _DupPos:
    """A cursor's place among the values of one key of a DUPSORT database."""

    __slots__ = ("txn", "dups", "i", "path")

    def __init__(self, txn: Transaction, d: tree.DbState, leaf: Page, i: int,
                 last: bool) -> None:
        self.txn = txn
        self.dups = dups.Dups(txn, d, leaf, i)
        self.i = 0
        self.path: Optional[tree.Path] = None
        self.edge(last)

    def edge(self, last: bool) -> None:
        if self.dups.kind == 2:
            self.path = dups._edge(self.txn, self.dups.sub, last)
        else:
            self.i = len(self.dups.vals) - 1 if last else 0

    def value(self) -> bytes:
        if self.dups.kind == 2:
            pages, idxs = self.path  # type: ignore[misc]
            return pages[-1].keys[idxs[-1]]
        return self.dups.vals[self.i]

    def step(self, forward: bool) -> bool:
        if self.dups.kind == 2:
            pages, idxs = self.path  # type: ignore[misc]
            return tree.step(self.txn, self.dups.sub, pages, idxs, forward)  # type: ignore[arg-type]
        j = self.i + (1 if forward else -1)
        if 0 <= j < len(self.dups.vals):
            self.i = j
            return True
        return False

    def seek(self, sv: bytes) -> Optional[bool]:
        """Stand on the first value >= ``sv``: True if equal, False if greater, None (and
        unmoved) if every value is smaller."""
        if self.dups.kind == 2:
            sub = self.dups.sub
            path = dups.sub_search(self.txn, sub, sv)
            if path is None:
                return None
            pages, idxs = path
            if idxs[-1] >= len(pages[-1].keys):
                idxs[-1] = len(pages[-1].keys) - 1
                if not tree.step(self.txn, sub, pages, idxs, True):  # type: ignore[arg-type]
                    return None
            self.path = path
            return pages[-1].keys[idxs[-1]] == sv
        vals = self.dups.vals
        j = bisect_left(vals, sv)
        if j >= len(vals):
            return None
        self.i = j
        return vals[j] == sv
