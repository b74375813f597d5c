"""asyncio wrappers: every engine call runs in an executor, off the event loop.

Usage::

    import purelmdb as lmdb
    import purelmdb.aio

    aenv = lmdb.aio.wrap(lmdb.open("/tmp/example"))
    async with aenv.begin(write=True) as txn:     # commits when the block ends normally
        await txn.put(b"key", b"value")
    async with aenv.begin() as txn:
        value = await txn.get(b"key")

The same API as the `lmdb` package's ``lmdb.aio``: `wrap`, `AsyncEnvironment`,
`AsyncTransaction`, `AsyncCursor`.

Theory of operation.

* Threads. A call goes to ``loop.run_in_executor`` with the executor given to `wrap` (None:
  the loop's default one), except for a write transaction: purelmdb ties it to the thread that
  began it (its writes check the thread), so `AsyncEnvironment.begin` gives each write
  transaction a private one-thread executor. Its begin, every call on it and on its cursors, and
  its commit or abort all run on that one thread, in the order they were awaited. The thread is
  shut down when the transaction ends.
* Order. An `asyncio.Lock` per transaction, shared with its cursors, lets one call at a time
  reach the engine, so `asyncio.gather` over one transaction is safe; different transactions
  run in parallel (readers never wait for the writer; writers wait their turn in the engine).
* Cancellation. A thread cannot be interrupted: a cancelled call keeps the transaction's lock
  until its worker is done (so nothing overlaps it), then raises `CancelledError`; it may have
  taken effect. A cancelled write `begin` queues an abort behind itself on the private thread,
  so a transaction nobody will ever see does not keep the writer's lock.
* After the end. Once a write transaction has ended its thread is gone; later calls on it or
  its cursors only report the closed object (or, for `abort`, do nothing), so they run inline
  and raise purelmdb's own error rather than the executor's ``RuntimeError``.

Each proxy is a real class attribute made with `functools.wraps`, so ``__wrapped__``, ``__doc__``
and the signature are the synchronous method's, and `dir()` lists it. Attributes that are not
callable (``txn.env``) pass through ``__getattr__``.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Awaitable, Callable, Generator, Generic, Optional, Type, TypeVar

from .cursor import Cursor
from .environment import Environment
from .txn import Transaction

__all__ = ["wrap", "AsyncEnvironment", "AsyncTransaction", "AsyncCursor"]

_T = TypeVar("_T")


def wrap(env: Environment, executor: Optional[Executor] = None) -> AsyncEnvironment:
    """An `AsyncEnvironment` over ``env``. ``executor`` is handed to
    ``loop.run_in_executor`` (None: the loop's default executor); write transactions run on
    a private thread of their own instead."""
    return AsyncEnvironment(env, executor)


# -- threads ------------------------------------------------------------------------------------


class _WriterThread(ThreadPoolExecutor):
    """The one thread of a write transaction; ``ended`` once the transaction has ended."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="purelmdb-aio-writer")
        self.ended = False

    def end(self) -> None:
        self.ended = True
        self.shutdown(wait=False)     # work already queued (an abort) still runs


async def _run(executor: Optional[Executor], call: Callable[[], _T]) -> _T:
    """``call()`` in ``executor``; see the module docstring for cancellation."""
    if isinstance(executor, _WriterThread) and executor.ended:
        return call()                 # the transaction has ended: this only raises or no-ops
    future = asyncio.get_running_loop().run_in_executor(executor, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait((future,))
        raise


def _abort_begun(begun: Future[Any]) -> None:
    """Queued behind a write begin whose caller was cancelled: end what it began."""
    if not begun.cancelled() and begun.exception() is None:
        begun.result().abort()


# -- proxy factories: each returns a method for the class body ----------------------------------


def _direct(sync: Callable[..., _T]) -> Callable[..., _T]:
    """A method calling ``sync`` on the loop's thread: cheap accessors with no I/O."""

    @functools.wraps(sync)
    def method(self: Any, *args: Any, **kwargs: Any) -> _T:
        return sync(getattr(self, self._TARGET), *args, **kwargs)

    return method


def _in_executor(sync: Callable[..., _T]) -> Callable[..., Awaitable[_T]]:
    """A coroutine method calling ``sync`` in the executor."""

    @functools.wraps(sync)
    async def method(self: Any, *args: Any, **kwargs: Any) -> _T:
        target = getattr(self, self._TARGET)
        return await _run(self._executor, functools.partial(sync, target, *args, **kwargs))

    return method


def _serialised(sync: Callable[..., _T]) -> Callable[..., Awaitable[_T]]:
    """Like `_in_executor`, holding the transaction's lock for the whole call."""

    @functools.wraps(sync)
    async def method(self: Any, *args: Any, **kwargs: Any) -> _T:
        target = getattr(self, self._TARGET)
        async with self._lock:
            return await _run(self._executor, functools.partial(sync, target, *args, **kwargs))

    return method


def _collected(sync: Callable[..., Any]) -> Callable[..., Awaitable[list]]:
    """Like `_serialised` for a method returning an iterator: the iterator is consumed in
    the executor (each step touches the engine) and its items come back as a list."""

    @functools.wraps(sync)
    async def method(self: Any, *args: Any, **kwargs: Any) -> list:
        target = getattr(self, self._TARGET)
        async with self._lock:
            return await _run(self._executor, lambda: list(sync(target, *args, **kwargs)))

    method.__doc__ = ("Coroutine: like :py:meth:`Cursor.%s`, but the iterator is consumed in "
                      "the executor and its items are returned as a list." % sync.__name__)
    return method


class _AwaitableContext(Generic[_T]):
    """What `begin` and `cursor` return: ``await`` it for the object, or use it in
    ``async with`` to also end the object when the block ends."""

    __slots__ = ("_start", "_result")

    def __init__(self, start: Callable[[], Awaitable[_T]]) -> None:
        self._start = start           # called on first use, so an unused one leaves no coroutine
        self._result: Optional[_T] = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._start().__await__()

    async def __aenter__(self) -> _T:
        self._result = await self._start()
        return self._result

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> Any:
        return await self._result.__aexit__(exc_type, exc, tb)  # type: ignore[union-attr]


class _Proxy:
    """``__getattr__`` for the wrappers: non-callable attributes of the wrapped object pass
    through; a callable the wrapper does not proxy is refused rather than run on the loop."""

    __slots__ = ()
    _TARGET = ""

    def __getattr__(self, name: str) -> Any:
        if name == self._TARGET:      # a slot not yet set (an object made without __init__)
            raise AttributeError(name)
        value = getattr(getattr(self, self._TARGET), name)
        if callable(value):
            raise AttributeError(name)
        return value


# -- the wrappers -------------------------------------------------------------------------------


class AsyncEnvironment(_Proxy):
    """Async wrapper of an `Environment`, made by `wrap`.

    ``path``, ``lib_version``, ``max_key_size``, ``max_readers`` and ``flags`` are called
    directly; every other method is a coroutine run in the executor. ``async with aenv:``
    closes the environment when the block ends.
    """

    __slots__ = ("_env", "_executor")
    _TARGET = "_env"

    def __init__(self, env: Environment, executor: Optional[Executor] = None) -> None:
        self._env = env
        self._executor = executor

    async def __aenter__(self) -> AsyncEnvironment:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await _run(self._executor, self._env.close)

    def begin(self, db: Any = None, parent: Any = None, write: bool = False,
              buffers: bool = False) -> _AwaitableContext[AsyncTransaction]:
        """Start a transaction: ``await aenv.begin(...)`` or ``async with aenv.begin(...) as
        txn``; the block commits on a normal end and aborts on an exception.

        The arguments of `Environment.begin`. A write transaction runs on a thread of its own
        (see the module docstring). Nested transactions (``parent=``) are not supported: a
        parent's calls run on another thread, which the engine refuses.
        """
        begin = functools.partial(self._env.begin, db, parent, write, buffers)

        async def start() -> AsyncTransaction:
            if not write:
                return AsyncTransaction(await _run(self._executor, begin), self._executor)
            thread = _WriterThread()
            begun = thread.submit(begin)
            try:
                txn = await asyncio.wrap_future(begun)
            except asyncio.CancelledError:
                thread.submit(_abort_begun, begun)
                thread.end()
                raise
            except BaseException:
                thread.end()
                raise
            return AsyncTransaction(txn, thread, owns_executor=True)

        return _AwaitableContext(start)

    path = _direct(Environment.path)
    lib_version = _direct(Environment.lib_version)
    max_key_size = _direct(Environment.max_key_size)
    max_readers = _direct(Environment.max_readers)
    flags = _direct(Environment.flags)

    stat = _in_executor(Environment.stat)
    info = _in_executor(Environment.info)
    close = _in_executor(Environment.close)
    copy = _in_executor(Environment.copy)
    copyfd = _in_executor(Environment.copyfd)
    sync = _in_executor(Environment.sync)
    readers = _in_executor(Environment.readers)
    reader_check = _in_executor(Environment.reader_check)
    set_mapsize = _in_executor(Environment.set_mapsize)
    open_db = _in_executor(Environment.open_db)
    dbs = _in_executor(Environment.dbs)


class AsyncTransaction(_Proxy):
    """Async wrapper of a `Transaction`.

    ``id`` is called directly; every other method is a coroutine run in the executor, one at
    a time (an `asyncio.Lock` shared with the transaction's cursors). ``async with`` commits
    on a normal end, aborts on an exception, and does nothing if the transaction has already
    ended. An executor the transaction owns (a write transaction's thread) is shut down when
    it ends.
    """

    __slots__ = ("_txn", "_executor", "_lock", "_owns_executor", "_done")
    _TARGET = "_txn"

    def __init__(self, txn: Transaction, executor: Optional[Executor] = None,
                 owns_executor: bool = False) -> None:
        self._txn = txn
        self._executor = executor
        self._owns_executor = owns_executor
        self._done = False
        self._lock = asyncio.Lock()

    def _release_executor(self) -> None:
        if self._owns_executor:
            self._owns_executor = False
            if isinstance(self._executor, _WriterThread):
                self._executor.end()
            elif self._executor is not None:
                self._executor.shutdown(wait=False)

    async def _end(self, finish: Callable[[], None]) -> None:
        """Commit or abort (``finish``), then let go of an owned executor, even on failure."""
        self._done = True
        try:
            await _run(self._executor, finish)
        finally:
            self._release_executor()

    async def __aenter__(self) -> AsyncTransaction:
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        async with self._lock:
            if not self._done:
                await self._end(self._txn.abort if exc_type is not None else self._txn.commit)

    @functools.wraps(Transaction.commit)
    async def commit(self) -> None:
        async with self._lock:
            await self._end(self._txn.commit)

    @functools.wraps(Transaction.abort)
    async def abort(self) -> None:
        async with self._lock:
            await self._end(self._txn.abort)

    def cursor(self, db: Any = None) -> _AwaitableContext[AsyncCursor]:
        """A new `AsyncCursor` on ``db`` (default: the transaction's database):
        ``await txn.cursor()`` or ``async with txn.cursor() as cur`` (closed at the end). It
        shares the transaction's executor and lock."""

        async def start() -> AsyncCursor:
            async with self._lock:
                cursor = await _run(self._executor, functools.partial(self._txn.cursor, db))
            return AsyncCursor(cursor, self._executor, self._lock)

        return _AwaitableContext(start)

    id = _direct(Transaction.id)

    stat = _serialised(Transaction.stat)
    drop = _serialised(Transaction.drop)
    get = _serialised(Transaction.get)
    put = _serialised(Transaction.put)
    replace = _serialised(Transaction.replace)
    pop = _serialised(Transaction.pop)
    delete = _serialised(Transaction.delete)


class AsyncCursor(_Proxy):
    """Async wrapper of a `Cursor`, made by `AsyncTransaction.cursor`.

    ``key``, ``value`` and ``item`` are called directly; every other method is a coroutine
    run in the transaction's executor under its lock, and the ``iter*`` methods return lists.
    ``async with`` closes the cursor when the block ends.
    """

    __slots__ = ("_cursor", "_executor", "_lock")
    _TARGET = "_cursor"

    def __init__(self, cursor: Cursor, executor: Optional[Executor] = None,
                 lock: Optional[asyncio.Lock] = None) -> None:
        self._cursor = cursor
        self._executor = executor
        self._lock = lock if lock is not None else asyncio.Lock()

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        async with self._lock:        # never while another call is using the transaction
            await _run(self._executor, self._cursor.close)

    key = _direct(Cursor.key)
    value = _direct(Cursor.value)
    item = _direct(Cursor.item)

    close = _serialised(Cursor.close)
    first = _serialised(Cursor.first)
    first_dup = _serialised(Cursor.first_dup)
    last = _serialised(Cursor.last)
    last_dup = _serialised(Cursor.last_dup)
    prev = _serialised(Cursor.prev)
    prev_dup = _serialised(Cursor.prev_dup)
    prev_nodup = _serialised(Cursor.prev_nodup)
    next = _serialised(Cursor.next)
    next_dup = _serialised(Cursor.next_dup)
    next_nodup = _serialised(Cursor.next_nodup)
    set_key = _serialised(Cursor.set_key)
    set_key_dup = _serialised(Cursor.set_key_dup)
    set_range = _serialised(Cursor.set_range)
    set_range_dup = _serialised(Cursor.set_range_dup)
    count = _serialised(Cursor.count)
    get = _serialised(Cursor.get)
    getmulti = _serialised(Cursor.getmulti)
    put = _serialised(Cursor.put)
    putmulti = _serialised(Cursor.putmulti)
    replace = _serialised(Cursor.replace)
    pop = _serialised(Cursor.pop)
    delete = _serialised(Cursor.delete)

    iternext = _collected(Cursor.iternext)
    iternext_dup = _collected(Cursor.iternext_dup)
    iternext_nodup = _collected(Cursor.iternext_nodup)
    iterprev = _collected(Cursor.iterprev)
    iterprev_dup = _collected(Cursor.iterprev_dup)
    iterprev_nodup = _collected(Cursor.iterprev_nodup)
