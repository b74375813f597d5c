"""A persistent dict: `PersistentDict`, a `MutableMapping` over one database of an environment.

::

    from purelmdb.mapping import PersistentDict

    with PersistentDict("/tmp/scores", keys="str", values="json") as d:
        d["alice"] = {"score": 3}
        with d.batch():                     # one write transaction, committed at the end
            d["bob"] = {"score": 5}
            d["carol"] = {"score": 4}
        print(list(d))                      # ['alice', 'bob', 'carol'], in key order

Theory of operation
-------------------
Outside a batch every operation is its own transaction: a read (``d[k]``, ``k in d``,
``len(d)``) begins and ends a read snapshot, a write (``d[k] = v``, ``del d[k]``, ``pop``,
``setdefault``, ``update``, ``clear``) begins, commits and so makes durable one write
transaction. Operations that look at the data and then change it (``pop``, ``setdefault``,
``popitem``, ``update``) do both in that one write transaction, so no other writer can come
in between.

``with d.batch():`` opens one write transaction; until the block ends every operation of the
*same thread* on any `PersistentDict` over the *same environment* goes through it, reads
included (they see the batch's writes). The block commits when it ends normally and aborts
when it raises, so either all of its writes land or none. Batches nest: an inner batch is a
nested transaction, rolled back alone if its block raises. Other threads do not see a batch:
their reads see the last commit, their writes wait for it to end (LMDB has one writer).

Iteration (``iter(d)``, ``keys()``, ``values()``, ``items()``, ``reversed(d)``) walks a
cursor in key order inside one read snapshot, taken when the iteration starts and kept until
it ends: changes made meanwhile, by this or another thread, do not show, and nothing goes
wrong if the dict is changed while iterating. Inside a batch, iteration uses the batch's
transaction and sees its writes as the cursor reaches them. An unfinished iterator holds its
snapshot (and the pages it needs, which cannot be reused) until it is exhausted, closed or
garbage collected.

Each thread's batch stack lives in a thread-local dict keyed by the environment's id; an
entry exists only while a batch is open, and its transaction keeps the environment alive, so
an id cannot be reused under it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import ItemsView, KeysView, ValuesView
from contextlib import contextmanager
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
    cast,
    overload,
)

from .codecs import Codec, get_codec
from .environment import Environment, _Database
from .errors import Error, IncompatibleError
from .txn import Transaction

__all__ = ["PersistentDict", "Codec"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

class _Missing:
    """The "no value given / no such key" marker (its repr keeps signatures readable)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
_threads = threading.local()


def _batch_stack(env: Environment, create: bool = False) -> Optional[List[Transaction]]:
    """This thread's open batch transactions on ``env``, innermost last."""
    stacks: Optional[Dict[int, List[Transaction]]] = getattr(_threads, "stacks", None)
    if stacks is None:
        if not create:
            return None
        stacks = _threads.stacks = {}
    stack = stacks.get(id(env))
    if stack is None and create:
        stack = stacks[id(env)] = []
    return stack


def _drop_batch_stack(env: Environment) -> None:
    stacks: Dict[int, List[Transaction]] = _threads.stacks
    if not stacks.get(id(env)):
        stacks.pop(id(env), None)


class PersistentDict(MutableMapping[K, V]):
    """A dict stored in one database of an LMDB environment.

    ``PersistentDict(path_or_env, name=None, *, keys="bytes", values="bytes", create=True,
    **env_options)``

    * ``path_or_env``: a path, opened as ``purelmdb.Environment(path, **env_options)`` and
      closed by `close`; or an open `Environment`, which `close` leaves open.
    * ``name``: a named database (str or bytes; created if missing and ``create``), or None
      for the main database. When opening from a path with a name, ``max_dbs`` defaults to 1;
      an `Environment` you pass must have been opened with ``max_dbs`` large enough. The main
      database also holds the records of the named databases (as keys), so do not keep a
      mapping over the main database of an environment that has named databases.
    * ``keys``, ``values``: codecs, by name (``"bytes"``, ``"str"``, ``"int"``, ``"json"``,
      ``"pickle"``) or as `purelmdb.codecs.Codec` objects. With ``bytes``, ``str`` and
      ``int`` keys, iteration follows the keys' natural order. See `purelmdb.codecs`.

    Keys are 1 to 511 bytes once encoded: storing another raises `BadValsizeError`, while
    looking one up simply finds nothing. A database with sorted duplicates (``dupsort``) is
    refused with `IncompatibleError`: a dict has one value per key.

    Costs: a read is O(log n) page visits in a fresh read snapshot; a write outside a batch
    is a whole commit (two syncs by default), so group writes with `batch` or `update`.
    ``len`` is O(1) (the database's entry count).
    """

    def __init__(self, path_or_env: Union[str, bytes, "os.PathLike[str]", Environment],
                 name: Union[str, bytes, None] = None, *,
                 keys: Union[str, Codec[Any]] = "bytes",
                 values: Union[str, Codec[Any]] = "bytes",
                 create: bool = True, **env_options: Any) -> None:
        self._key_codec = get_codec(keys)
        self._value_codec = get_codec(values)
        self._closed = True
        if isinstance(path_or_env, Environment):
            if env_options:
                raise TypeError("environment options (%s) need a path, not an Environment"
                                % ", ".join(sorted(env_options)))
            env = path_or_env
            self._owns_env = False
        else:
            if name is not None:
                env_options.setdefault("max_dbs", 1)
            if "create" not in env_options:
                env_options["create"] = create
            env = Environment(path_or_env, **env_options)
            self._owns_env = True
        self._env = env
        try:
            self._name = name.encode("utf-8") if isinstance(name, str) else name
            if self._name is None:
                db = env.open_db()
            else:
                # inside a batch of this thread, open (or create) it in the batch's
                # transaction: a second write transaction could never start
                stack = _batch_stack(env)
                db = env.open_db(self._name, txn=stack[-1] if stack else None, create=create)
            if db.flags()["dupsort"]:
                raise IncompatibleError(
                    "PersistentDict: database %r has sorted duplicates (dupsort); a mapping "
                    "holds one value per key" % (self._name,))
        except BaseException:
            if self._owns_env:
                env.close()
            raise
        self._db: _Database = db
        self._closed = False

    # -- transactions -------------------------------------------------------------------------

    def _batch_txn(self) -> Optional[Transaction]:
        stack = _batch_stack(self._env)
        return stack[-1] if stack else None

    @contextmanager
    def _reading(self) -> Iterator[Transaction]:
        """The batch transaction, or a fresh read snapshot ended afterwards."""
        self._check_open()
        txn = self._batch_txn()
        if txn is not None:
            yield txn
            return
        with self._env.begin(db=self._db) as txn:
            yield txn

    @contextmanager
    def _writing(self) -> Iterator[Transaction]:
        """The batch transaction, or a write transaction committed afterwards (aborted if
        the block raises)."""
        self._check_open()
        txn = self._batch_txn()
        if txn is not None:
            yield txn
            return
        with self._env.begin(db=self._db, write=True) as txn:
            yield txn

    @contextmanager
    def batch(self) -> Iterator[PersistentDict[K, V]]:
        """``with d.batch():`` -- run the block's operations in one write transaction.

        Commits when the block ends, aborts if it raises (the exception goes on). Reads in
        the block see its writes. Covers every `PersistentDict` over the same environment in
        this thread, so one batch can change several databases atomically. Nested batches
        are nested transactions: an inner one that raises is rolled back alone. Yields the
        dict itself.
        """
        self._check_open()
        env = self._env
        stack = cast(List[Transaction], _batch_stack(env, create=True))
        parent = stack[-1] if stack else None
        try:
            txn = env.begin(db=self._db, write=True, parent=parent)
        except BaseException:
            _drop_batch_stack(env)
            raise
        stack.append(txn)
        try:
            yield self
        except BaseException:
            txn.abort()
            raise
        else:
            txn.commit()
        finally:
            stack.pop()
            _drop_batch_stack(env)

    @property
    def in_batch(self) -> bool:
        """True while this thread has a `batch` open on this dict's environment."""
        return self._batch_txn() is not None

    # -- reading ------------------------------------------------------------------------------

    def _encode_key(self, key: Any) -> bytes:
        return self._key_codec.encode(key)

    def _lookup(self, txn: Transaction, key: Any) -> Any:
        """The encoded value of ``key`` as bytes, or _MISSING (also for unstorable keys)."""
        k = self._key_codec.encode(key)
        if not 0 < len(k) <= 511:
            return _MISSING
        return txn.get(k, _MISSING, db=self._db)

    def __getitem__(self, key: K) -> V:
        with self._reading() as txn:
            raw = self._lookup(txn, key)
        if raw is _MISSING:
            raise KeyError(key)
        return cast(V, self._value_codec.decode(raw))

    def __contains__(self, key: object) -> bool:
        try:
            k = self._key_codec.encode(key)
        except (TypeError, ValueError, OverflowError):
            return False          # a key the codec cannot encode is not in the dict
        if not 0 < len(k) <= 511:
            return False
        with self._reading() as txn:
            return txn.get(k, _MISSING, db=self._db) is not _MISSING

    @overload
    def get(self, key: K) -> Optional[V]: ...

    @overload
    def get(self, key: K, default: Union[V, D]) -> Union[V, D]: ...

    def get(self, key: K, default: Any = None) -> Any:
        """``d[key]`` if present, else ``default``. One read snapshot."""
        with self._reading() as txn:
            raw = self._lookup(txn, key)
        if raw is _MISSING:
            return default
        return self._value_codec.decode(raw)

    def __len__(self) -> int:
        """The database's entry count (O(1), from its statistics)."""
        with self._reading() as txn:
            return txn.stat(self._db)["entries"]

    def _walk(self, keys: bool, values: bool, reverse: bool = False) -> Iterator[Any]:
        """Keys, values or (key, value) pairs in key order, in the batch's transaction or a
        read snapshot taken now (see the module docstring)."""
        self._check_open()
        txn = self._batch_txn()
        own = txn is None
        if txn is None:
            txn = self._env.begin(db=self._db)
        return self._walk_in(txn, own, keys, values, reverse)

    def _walk_in(self, txn: Transaction, own: bool, keys: bool, values: bool,
                 reverse: bool) -> Iterator[Any]:
        kdec = self._key_codec.decode
        vdec = self._value_codec.decode
        try:
            cur = txn.cursor(self._db)
            walk = cur.iterprev if reverse else cur.iternext
            if keys and values:
                for k, v in walk(True, True):
                    yield kdec(k), vdec(v)
            elif keys:
                for k in walk(True, False):
                    yield kdec(k)
            else:
                for v in walk(False, True):
                    yield vdec(v)
        finally:
            if own:
                txn.abort()

    def __iter__(self) -> Iterator[K]:
        """Keys in key order, within one read snapshot."""
        return self._walk(True, False)

    def __reversed__(self) -> Iterator[K]:
        """Keys in reverse key order, within one read snapshot."""
        return self._walk(True, False, reverse=True)

    def keys(self) -> KeysView[K]:
        """A view of the keys, iterated in key order."""
        return _KeysView(self)

    def values(self) -> ValuesView[V]:
        """A view of the values, iterated in key order."""
        return _ValuesView(self)

    def items(self) -> ItemsView[K, V]:
        """A view of the (key, value) pairs, iterated in key order."""
        return _ItemsView(self)

    # -- writing ------------------------------------------------------------------------------

    def __setitem__(self, key: K, value: V) -> None:
        k = self._key_codec.encode(key)
        v = self._value_codec.encode(value)
        with self._writing() as txn:
            txn.put(k, v, db=self._db)

    def __delitem__(self, key: K) -> None:
        k = self._key_codec.encode(key)
        if not 0 < len(k) <= 511:
            raise KeyError(key)
        with self._writing() as txn:
            found = txn.delete(k, db=self._db)
        if not found:
            raise KeyError(key)

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: Union[V, D]) -> Union[V, D]: ...

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; ``default`` (or `KeyError`) if absent. One
        write transaction."""
        k = self._key_codec.encode(key)
        raw = None
        if 0 < len(k) <= 511:
            with self._writing() as txn:
                raw = txn.pop(k, db=self._db)
        if raw is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return self._value_codec.decode(raw)

    def popitem(self, last: bool = False) -> Tuple[K, V]:
        """Remove and return the (key, value) pair with the smallest key (the largest with
        ``last=True``); `KeyError` when empty. One write transaction."""
        with self._writing() as txn:
            cur = txn.cursor(self._db)
            if not (cur.last() if last else cur.first()):
                raise KeyError("popitem(): PersistentDict is empty")
            k, v = cur.item()
            cur.delete()
        return self._key_codec.decode(k), self._value_codec.decode(v)

    def setdefault(self, key: K, default: V = None) -> V:  # type: ignore[assignment]
        """``d[key]`` if present, else store ``default`` and return it. One write
        transaction."""
        k = self._key_codec.encode(key)
        with self._writing() as txn:
            raw = txn.get(k, _MISSING, db=self._db) if 0 < len(k) <= 511 else _MISSING
            if raw is _MISSING:
                txn.put(k, self._value_codec.encode(default), db=self._db)
                return default
        return cast(V, self._value_codec.decode(raw))

    def update(self, other: Any = (), /, **kwds: V) -> None:
        """Like `dict.update`, in one write transaction (all items or none)."""
        if isinstance(other, Mapping):
            pairs: Iterable[Tuple[Any, Any]] = other.items()
        elif hasattr(other, "keys"):
            pairs = ((k, other[k]) for k in other.keys())
        else:
            pairs = other
        kenc = self._key_codec.encode
        venc = self._value_codec.encode
        with self._writing() as txn:
            db = self._db
            for pair in pairs:
                k, v = pair
                txn.put(kenc(k), venc(v), db=db)
            for k, v in kwds.items():
                txn.put(kenc(k), venc(v), db=db)

    def clear(self) -> None:
        """Remove every key, in one write transaction. On the main database the records of
        named databases stay (they are databases, not items)."""
        with self._writing() as txn:
            if not self._db._is_main:
                txn.drop(self._db, delete=False)
                return
            names = set(txn._db_names())
            if not names:
                txn.drop(self._db, delete=False)
                return
            cur = txn.cursor(self._db)
            more = cur.first()
            while more:
                if cur.key() in names:
                    more = cur.next()
                else:
                    cur.delete()              # moves to the next record, if any
                    more = cur.key() != b""

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def env(self) -> Environment:
        """The environment holding the database."""
        return self._env

    @property
    def name(self) -> Optional[bytes]:
        """The database's name, or None for the main database."""
        return self._name

    @property
    def closed(self) -> bool:
        """True once `close` has run; every other operation then raises `Error`."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise Error("PersistentDict is closed")

    def close(self) -> None:
        """Close the dict, and the environment if the dict opened it (which also aborts
        transactions still open on it). Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._owns_env:
            self._env.close()

    def __enter__(self) -> PersistentDict[K, V]:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "closed" if self._closed else repr(self._env.path())
        return "<PersistentDict %s db=%r keys=%s values=%s>" % (
            where, self._name, self._key_codec.name, self._value_codec.name)


class _KeysView(KeysView):
    _mapping: PersistentDict[Any, Any]

    def __iter__(self) -> Iterator[Any]:
        return self._mapping._walk(True, False)

    def __reversed__(self) -> Iterator[Any]:
        return self._mapping._walk(True, False, reverse=True)


class _ValuesView(ValuesView):
    _mapping: PersistentDict[Any, Any]

    def __iter__(self) -> Iterator[Any]:
        return self._mapping._walk(False, True)

    def __reversed__(self) -> Iterator[Any]:
        return self._mapping._walk(False, True, reverse=True)

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self)


class _ItemsView(ItemsView):
    _mapping: PersistentDict[Any, Any]

    def __iter__(self) -> Iterator[Any]:
        return self._mapping._walk(True, True)

    def __reversed__(self) -> Iterator[Any]:
        return self._mapping._walk(True, True, reverse=True)
