"""purelmdb.aio, the asyncio wrappers.

Most tests run the same script through purelmdb.aio and the C binding's lmdb.aio (``lib``)
and compare what they record; the rest check what only purelmdb guarantees (the engine
refuses a write transaction used from a foreign thread, calls after a transaction ended raise
purelmdb's own errors, a cancelled write begin never keeps the writer's lock).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

import purelmdb
import purelmdb.aio


def aio_of(lib: ModuleType) -> ModuleType:
    return importlib.import_module(lib.__name__ + ".aio")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def error_of(exc: BaseException) -> tuple:
    """An exception as the same thing for both bindings: class name and message."""
    return type(exc).__name__, str(exc)


# -- reads and writes ---------------------------------------------------------------------------


async def _reads_and_writes(lib: ModuleType, path: str) -> List[Any]:
    env = lib.open(path, max_dbs=4)
    aenv = aio_of(lib).wrap(env)
    assert aenv.path() == path
    out: List[Any] = [aenv.max_key_size(), aenv.max_readers(), aenv.flags()]
    named = await aenv.open_db(b"named")
    async with aenv.begin(write=True) as txn:
        for i in range(50):
            assert await txn.put(b"k%03d" % i, b"v%d" % i)
        assert not await txn.put(b"k000", b"again", overwrite=False)
        out.append(await txn.put(b"n", b"in named", db=named))
        out.append(await txn.replace(b"k001", b"replaced"))
        out.append(await txn.pop(b"k002"))
        out.append(await txn.delete(b"k003"))
        out.append(await txn.delete(b"absent"))
        out.append(await txn.get(b"k001"))                       # its own writes
    async with aenv.begin() as txn:
        out.append(await txn.get(b"k001"))
        out.append(await txn.get(b"k002", b"default"))
        out.append(await txn.get(b"n", db=named))
        out.append(await txn.stat(named))
        out.append((await txn.stat())["entries"])
    out.append((await aenv.stat())["entries"])
    out.append(sorted((await aenv.info()).keys()))
    assert isinstance(await aenv.readers(), str)
    await aenv.sync(True)
    async with aenv:
        pass
    with pytest.raises(lib.Error) as closed:                       # the block closed it
        env.stat()
    out.append(error_of(closed.value))
    return out


def test_reads_and_writes_match_the_c_binding(tmp_path, clmdb):
    got = run(_reads_and_writes(purelmdb, str(tmp_path / "pure")))
    want = run(_reads_and_writes(clmdb, str(tmp_path / "c")))
    assert got == want
    assert b"replaced" in got and b"v2" in got and b"in named" in got


def test_await_without_async_with(lib, tmp_path):
    async def go():
        env = lib.open(str(tmp_path))
        aenv = aio_of(lib).wrap(env)
        txn = await aenv.begin(write=True)
        cur = await txn.cursor()
        await cur.put(b"a", b"1")
        await txn.commit()
        txn = await aenv.begin()
        assert isinstance(txn.id(), int)
        assert await txn.get(b"a") == b"1"
        await txn.abort()
        await aenv.close()

    run(go())


# -- a write transaction lives on one thread ----------------------------------------------------


def _recording(items: Iterable[Any], threads: List[int]) -> Iterator[Any]:
    """``items``, noting the thread that consumes each one (the engine's thread)."""
    for item in items:
        threads.append(threading.get_ident())
        yield item


def test_write_txn_calls_run_on_its_own_single_thread(lib, tmp_path):
    async def go():
        env = lib.open(str(tmp_path))
        pool = ThreadPoolExecutor(8)
        aenv = aio_of(lib).wrap(env, executor=pool)
        threads: List[int] = []
        pool_threads: List[int] = []
        async with aenv.begin(write=True) as txn:
            assert txn._executor is not pool and txn._executor._max_workers == 1
            async with txn.cursor() as cur:
                for i in range(30):
                    await cur.putmulti(_recording([(b"k%d" % i, b"v")], threads))
                    await cur.getmulti(_recording([b"k%d" % i], threads))
        async with aenv.begin() as txn:               # a reader uses the env's pool
            assert txn._executor is pool
            async with txn.cursor() as cur:
                got = await cur.getmulti(_recording([b"k%d" % i for i in range(30)],
                                                    pool_threads))
        pool.shutdown()
        env.close()
        return threads, pool_threads, got

    threads, pool_threads, got = run(go())
    assert len(threads) == 60 and len(set(threads)) == 1
    assert threads[0] != threading.get_ident() and len(pool_threads) == 30
    assert got == [(b"k%d" % i, b"v") for i in range(30)]


def test_write_txn_begin_ops_and_end_share_the_thread_the_engine_checks(tmp_path, monkeypatch):
    """purelmdb refuses a write transaction's writes from any thread but the one that began it;
    begin, commit and abort all reach the engine from that thread."""
    seen: List[tuple] = []

    def record(name: str) -> None:
        original = getattr(purelmdb.Environment, name)

        def hook(self: Any, txn: Any, *args: Any) -> Any:
            seen.append((name, txn, threading.get_ident()))
            return original(self, txn, *args)

        monkeypatch.setattr(purelmdb.Environment, name, hook)

    for name in ("_begin_write", "_commit", "_end_write"):
        record(name)

    async def go():
        env = purelmdb.open(str(tmp_path))
        pool = ThreadPoolExecutor(8)
        aenv = purelmdb.aio.wrap(env, executor=pool)
        for i in range(5):
            async with aenv.begin(write=True) as txn:
                for j in range(20):
                    await txn.put(b"%d-%d" % (i, j), b"v")
                    assert await txn.get(b"%d-%d" % (i, j)) == b"v"
        with pytest.raises(KeyError):
            async with aenv.begin(write=True) as txn:
                await txn.put(b"doomed", b"v")
                raise KeyError("abort me")
        # The control: the same engine call dispatched through the shared pool is refused.
        txn = await aenv.begin(write=True)
        loop = asyncio.get_running_loop()
        with pytest.raises(purelmdb.Error, match="thread that began it"):
            await loop.run_in_executor(pool, txn._txn.put, b"x", b"y")
        await txn.abort()
        async with aenv.begin() as txn:
            assert await txn.get(b"doomed") is None
            assert (await txn.stat())["entries"] == 100
        pool.shutdown()
        env.close()

    run(go())
    per_txn: List[List[tuple]] = []                  # write transactions run one after another
    for name, _, thread in seen:
        if name == "_begin_write":
            per_txn.append([])
        per_txn[-1].append((name, thread))
    assert len(per_txn) == 7
    for calls in per_txn:
        names = [name for name, _ in calls]
        assert names in (["_begin_write", "_commit", "_end_write"], ["_begin_write", "_end_write"])
        assert len({thread for _, thread in calls}) == 1
        assert calls[0][1] != threading.get_ident()


def test_writers_wait_their_turn(lib, tmp_path):
    async def writer(aenv, i):
        async with aenv.begin(write=True) as txn:
            before = await txn.get(b"count")
            await asyncio.sleep(0)                    # let the others try to begin
            await txn.put(b"count", b"%d" % (int(before or b"0") + 1))
            await txn.put(b"w%d" % i, b"")

    async def go():
        env = lib.open(str(tmp_path))
        aenv = aio_of(lib).wrap(env)
        await asyncio.wait_for(asyncio.gather(*(writer(aenv, i) for i in range(8))), 60)
        async with aenv:
            async with aenv.begin() as txn:
                return await txn.get(b"count"), (await txn.stat())["entries"]

    assert run(go()) == (b"8", 9)


# -- async with: commit and abort ---------------------------------------------------------------


async def _endings(lib: ModuleType, path: str) -> List[Any]:
    env = lib.open(path)
    aenv = aio_of(lib).wrap(env)
    out: List[Any] = []

    async def contents():
        async with aenv.begin() as txn:
            async with txn.cursor() as cur:
                return await cur.iternext()

    async with aenv.begin(write=True) as txn:          # a normal end commits
        await txn.put(b"committed", b"1")
    out.append(await contents())

    boom = ValueError("boom")
    with pytest.raises(ValueError) as raised:          # an exception aborts and goes on
        async with aenv.begin(write=True) as txn:
            await txn.put(b"aborted", b"1")
            raise boom
    out.append(raised.value is boom)
    out.append(txn._done)
    out.append(await contents())

    async with aenv.begin(write=True) as txn:          # an explicit commit, then a no-op exit
        await txn.put(b"explicit", b"1")
        await txn.commit()
        out.append(txn._done)
    out.append(await contents())

    async with aenv.begin(write=True) as txn:          # an explicit abort, then a no-op exit
        await txn.put(b"dropped", b"1")
        await txn.abort()
    out.append(await contents())

    put_done = asyncio.Event()

    async def cancelled_inside():                      # a cancelled task aborts
        async with aenv.begin(write=True) as txn:
            await txn.put(b"cancelled", b"1")
            put_done.set()
            await asyncio.sleep(3600)

    task = asyncio.ensure_future(cancelled_inside())
    await put_done.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out.append(await contents())

    async with aenv.begin() as txn:                    # a read block just ends
        out.append(await txn.get(b"committed"))
    out.append(txn._done)
    out.append(txn._owns_executor)
    env.close()
    return out


def test_async_with_commits_or_aborts_like_the_c_binding(tmp_path, clmdb):
    got = run(_endings(purelmdb, str(tmp_path / "pure")))
    want = run(_endings(clmdb, str(tmp_path / "c")))
    assert got == want
    assert got[-4] == [(b"committed", b"1"), (b"explicit", b"1")]


def test_private_thread_is_released_however_the_txn_ends(lib, tmp_path):
    async def go():
        env = lib.open(str(tmp_path))
        aenv = aio_of(lib).wrap(env)
        pools = []
        for end in ("exit", "raise", "commit", "abort"):
            try:
                async with aenv.begin(write=True) as txn:
                    pools.append(txn._executor)
                    assert txn._owns_executor
                    await txn.put(b"k", b"v")
                    if end == "raise":
                        raise RuntimeError(end)
                    if end == "commit":
                        await txn.commit()
                    elif end == "abort":
                        await txn.abort()
            except RuntimeError:
                pass
            assert not txn._owns_executor
        for pool in pools:
            with pytest.raises(RuntimeError):
                pool.submit(lambda: None)
        env.close()

    run(go())


# -- cursors: iterators come back as lists ------------------------------------------------------

ITERATORS = ["iternext", "iternext_dup", "iternext_nodup",
             "iterprev", "iterprev_dup", "iterprev_nodup"]
FLAGS = [{}, {"keys": False}, {"values": False}, {"keys": True, "values": True}]


async def _iterations(lib: ModuleType, path: str, records: List[tuple],
                      starts: List[bytes], flag_sets: List[dict] = FLAGS) -> List[Any]:
    """Every iterator, from every start, as a list through aio and from the sync cursor."""
    env = lib.open(path, max_dbs=2)
    aenv = aio_of(lib).wrap(env)
    db = await aenv.open_db(b"dups", dupsort=True)
    async with aenv.begin(write=True, db=db) as txn:
        async with txn.cursor() as cur:
            await cur.putmulti(records)
    out: List[Any] = []
    async with aenv.begin(db=db) as txn:
        sync_txn = env.begin(db=db)
        for name in ITERATORS:
            for flags in flag_sets:
                for start in [None, *starts]:
                    async with txn.cursor() as cur:
                        sync_cur = sync_txn.cursor()
                        if start is not None:
                            assert (await cur.set_range(start)) == sync_cur.set_range(start)
                        got = await getattr(cur, name)(**flags)
                        assert isinstance(got, list)
                        assert got == list(getattr(sync_cur, name)(**flags)), (name, flags)
                        assert cur.item() == sync_cur.item()
                        out.append(got)
        sync_txn.abort()
    env.close()
    return out


def test_cursor_iterators_return_lists(lib, tmp_path):
    records = [(b"a", b"1"), (b"a", b"2"), (b"b", b"1"), (b"c", b"1"), (b"c", b"2"),
               (b"c", b"3")]
    out = run(_iterations(lib, str(tmp_path), records, [b"a", b"b", b"bb", b"c", b"d"]))
    assert out[0] == records                                       # iternext from the start


@given(records=st.lists(st.tuples(st.binary(min_size=1, max_size=3),
                                  st.binary(min_size=1, max_size=3)), max_size=30),
       starts=st.lists(st.binary(min_size=1, max_size=3), max_size=3))
def test_cursor_iterators_match_the_c_binding(tmp_path_factory, clmdb, records, starts):
    base = tmp_path_factory.mktemp("iter")
    got = run(_iterations(purelmdb, str(base / "pure"), records, starts, FLAGS[:2]))
    want = run(_iterations(clmdb, str(base / "c"), records, starts, FLAGS[:2]))
    assert got == want


async def _navigation(lib: ModuleType, path: str) -> List[Any]:
    env = lib.open(path, max_dbs=2)
    aenv = aio_of(lib).wrap(env)
    db = await aenv.open_db(b"d", dupsort=True)
    out: List[Any] = []
    async with aenv.begin(write=True, db=db) as txn:
        async with txn.cursor() as cur:
            out.append(await cur.putmulti([(b"a", b"1"), (b"a", b"2"), (b"b", b"9")]))
            out.append(await cur.put(b"c", b"5"))
            for step in ("first", "next_dup", "count", "next_nodup", "last", "prev_nodup",
                         "first_dup", "last_dup", "prev_dup", "next", "prev"):
                out.append((step, await getattr(cur, step)(), cur.item()))
            out.append(await cur.set_key_dup(b"a", b"2"))
            out.append(await cur.set_range_dup(b"a", b"15"))
            out.append(cur.item())
            out.append(await cur.set_key(b"zz"))
            out.append(cur.key())
            out.append(await cur.get(b"b"))
            out.append(await cur.replace(b"c", b"6"))
            out.append(await cur.pop(b"b"))
            out.append(await cur.set_key(b"a"))
            out.append(await cur.delete(dupdata=True))
            out.append(cur.item())
            out.append(await cur.getmulti([b"a", b"c"], dupdata=True))
    env.close()
    return out


def test_cursor_methods_match_the_c_binding(tmp_path, clmdb):
    got = run(_navigation(purelmdb, str(tmp_path / "pure")))
    want = run(_navigation(clmdb, str(tmp_path / "c")))
    assert got == want
    assert got[:2] == [(3, 3), True] and got[-1] == [(b"c", b"6")]


# -- readers beside a writer --------------------------------------------------------------------


async def _readers_and_writer(lib: ModuleType, path: str) -> List[int]:
    """A writer rewrites every key per commit; readers, interleaved with it, must each see one
    commit throughout their transaction, and never an older one than before."""
    keys = [b"k%02d" % i for i in range(16)]
    env = lib.open(path)
    pool = ThreadPoolExecutor(4)
    aenv = aio_of(lib).wrap(env, executor=pool)
    async with aenv.begin(write=True) as txn:
        for k in keys:
            await txn.put(k, b"0")

    async def writer() -> List[int]:
        for gen in range(1, 21):
            async with aenv.begin(write=True) as txn:
                for k in keys:
                    await txn.put(k, b"%d" % gen)
                    await asyncio.sleep(0)
        return []

    async def reader() -> List[int]:
        seen: List[int] = []
        for _ in range(12):
            async with aenv.begin() as txn:
                values = [await txn.get(k) for k in keys]     # one await per key
                async with txn.cursor() as cur:
                    items = await cur.iternext()
            assert [k for k, _ in items] == keys
            assert {v for _, v in items} == set(values) and len(set(values)) == 1
            seen.append(int(values[0]))
            await asyncio.sleep(0)
        assert seen == sorted(seen)
        return seen

    results = await asyncio.wait_for(asyncio.gather(writer(), *(reader() for _ in range(6))),
                                     120)
    async with aenv.begin() as txn:
        final = {await txn.get(k) for k in keys}
    pool.shutdown()
    env.close()
    assert final == {b"20"}
    return [gen for seen in results for gen in seen]


def test_concurrent_readers_with_a_writer(lib, tmp_path):
    seen = run(_readers_and_writer(lib, str(tmp_path)))
    assert len(seen) == 72 and all(0 <= gen <= 20 for gen in seen)


# -- errors -------------------------------------------------------------------------------------


async def _errors(lib: ModuleType, path: str) -> List[Any]:
    out: List[Any] = []

    async def outcome(call: Callable[[], Any]) -> Any:
        try:
            return ("ok", await call())
        except Exception as exc:
            assert isinstance(exc, (lib.Error, TypeError)), exc
            return error_of(exc)

    env = lib.open(path, map_size=256 * 1024, max_dbs=2)
    aenv = aio_of(lib).wrap(env)
    async with aenv.begin(write=True) as txn:
        out.append(await outcome(lambda: txn.put(b"", b"v")))
        out.append(await outcome(lambda: txn.put(b"x" * 512, b"v")))
        out.append(await outcome(lambda: txn.put("str", b"v")))
        out.append(await outcome(lambda: txn.get("str")))
        out.append(await outcome(lambda: txn.put(b"k", b"v")))
    async with aenv.begin() as txn:
        out.append(await outcome(lambda: txn.put(b"k", b"w")))
        out.append(await outcome(lambda: txn.delete(b"k")))
        async with txn.cursor() as cur:
            out.append(await outcome(lambda: cur.set_key(b"")))
            out.append(await outcome(lambda: cur.put(b"k", b"w")))
    with pytest.raises(lib.MapFullError) as full:       # from a call on the writer's thread
        async with aenv.begin(write=True) as txn:
            for i in range(10000):
                await txn.put(b"%06d" % i, b"v" * 200)
    out.append(type(full.value).__name__)
    out.append(txn._done)
    async with aenv.begin(write=True) as txn:            # the failed writer is gone
        await txn.put(b"after", b"full")
    out.append(await outcome(lambda: aenv.open_db(b"missing", create=False)))
    env.close()

    ro = lib.open(path, readonly=True)
    aro = aio_of(lib).wrap(ro)
    out.append(await outcome(lambda: aro.begin(write=True)))
    async with aro.begin() as txn:                       # reads still work
        out.append(await txn.get(b"after"))
    await aro.close()
    out.append(await outcome(lambda: aro.stat()))
    out.append(await outcome(lambda: aro.begin()))
    return out


@pytest.mark.needs_c_extension  # compares error texts, which its CFFI variant words its own way
def test_errors_propagate_as_the_bindings_exceptions(tmp_path, clmdb):
    got = run(_errors(purelmdb, str(tmp_path / "pure")))
    want = run(_errors(clmdb, str(tmp_path / "c")))
    assert got == want
    assert got[0][0] == "BadValsizeError" and got[2][0] == "TypeError"
    assert got[9:11] == ["MapFullError", True]


def test_errors_are_purelmdb_classes(tmp_path):
    async def go():
        aenv = purelmdb.aio.wrap(purelmdb.open(str(tmp_path)))
        async with aenv.begin() as txn:
            with pytest.raises(purelmdb.ReadonlyError):
                await txn.put(b"k", b"v")
        async with aenv.begin(write=True) as txn:
            with pytest.raises(purelmdb.BadValsizeError):
                await txn.put(b"", b"v")
        await aenv.close()

    run(go())


def test_calls_after_a_write_txn_ended_raise_purelmdb_errors(tmp_path):
    """The writer's thread is gone; the calls still give purelmdb's answers (the C binding's
    aio raises the executor's RuntimeError here instead)."""

    async def go():
        aenv = purelmdb.aio.wrap(purelmdb.open(str(tmp_path)))
        txn = await aenv.begin(write=True)
        cur = await txn.cursor()
        await txn.put(b"k", b"v")
        await txn.commit()
        assert await txn.abort() is None                      # a no-op, as in the engine
        for call in (lambda: txn.get(b"k"), lambda: txn.commit(), lambda: cur.first(),
                     lambda: txn.cursor()):
            with pytest.raises(purelmdb.Error, match="closed/deleted/dropped"):
                await call()
        await cur.close()
        async with aenv.begin() as txn:
            assert await txn.get(b"k") == b"v"
        await aenv.close()

    run(go())


# -- cancellation -------------------------------------------------------------------------------


def test_cancelled_write_begin_does_not_keep_the_writers_lock(tmp_path):
    async def go():
        env = purelmdb.open(str(tmp_path))
        aenv = purelmdb.aio.wrap(env)
        holder = await aenv.begin(write=True)

        async def second_writer():
            async with aenv.begin(write=True) as txn:
                await txn.put(b"never", b"")

        for delay in (0, 0.01, 0.05):      # cancelled before or while it waits for the lock
            task = asyncio.ensure_future(second_writer())
            await asyncio.sleep(delay)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await holder.put(b"holder", b"")
        await holder.commit()

        async def later_writer():
            async with aenv.begin(write=True) as txn:
                await txn.put(b"later", b"")

        await asyncio.wait_for(later_writer(), 60)
        async with aenv.begin() as txn:
            async with txn.cursor() as cur:
                keys = await cur.iternext(values=False)
        await aenv.close()
        return keys

    assert run(go()) == [b"holder", b"later"]


def test_cancelled_call_holds_the_txn_until_its_worker_is_done(tmp_path):
    """A worker thread cannot be stopped: the transaction's next call waits for it (in the
    C binding's aio it would run beside it, on the same transaction)."""
    entered = threading.Event()
    gate = threading.Event()
    consumed: List[bytes] = []

    def gated_keys() -> Iterator[bytes]:
        entered.set()
        gate.wait(60)
        for key in (b"a", b"b"):
            consumed.append(key)
            yield key

    async def go():
        env = purelmdb.open(str(tmp_path))
        aenv = purelmdb.aio.wrap(env, ThreadPoolExecutor(4))
        async with aenv.begin(write=True) as txn:
            await txn.put(b"a", b"1")
            await txn.put(b"b", b"2")
        async with aenv.begin() as txn:
            cur = await txn.cursor()
            first = asyncio.ensure_future(cur.getmulti(gated_keys()))
            while not entered.is_set():
                await asyncio.sleep(0.001)
            first.cancel()
            second = asyncio.ensure_future(txn.get(b"b"))
            await asyncio.sleep(0.05)
            assert not first.done() and not second.done()   # both wait for the worker
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await first
            assert consumed == [b"a", b"b"]                 # it did run to the end
            assert await second == b"2"
            assert await cur.first() and cur.item() == (b"a", b"1")
        env.close()

    run(go())


# -- the wrappers' shape ------------------------------------------------------------------------


PAIRS = [("Environment", "AsyncEnvironment"), ("Transaction", "AsyncTransaction"),
         ("Cursor", "AsyncCursor")]


@pytest.mark.parametrize("sync_name, async_name", PAIRS)
def test_every_public_method_has_a_proxy_of_the_same_kind_as_the_c_binding(
        clmdb, sync_name, async_name):
    import lmdb.aio

    ours = vars(getattr(purelmdb.aio, async_name))
    theirs = vars(getattr(lmdb.aio, async_name))
    sync_cls = getattr(purelmdb, sync_name)
    public = {n for n in dir(sync_cls) if not n.startswith("_")
              and callable(getattr(sync_cls, n))}
    assert public <= set(ours)
    for name in public & set(theirs):
        assert (inspect.iscoroutinefunction(ours[name])
                == inspect.iscoroutinefunction(theirs[name])), name
        if name not in ("begin", "cursor"):
            assert ours[name].__wrapped__ is getattr(sync_cls, name)
            if not name.startswith("iter"):
                assert ours[name].__doc__ == getattr(sync_cls, name).__doc__


def test_attributes_pass_through_and_unproxied_callables_do_not(tmp_path):
    async def go():
        env = purelmdb.open(str(tmp_path))
        aenv = purelmdb.aio.wrap(env)
        async with aenv.begin() as txn:
            assert txn.env is env
            assert txn._psize == txn._txn._psize   # a plain attribute passes through
            with pytest.raises(AttributeError):
                txn.__enter__                 # noqa: B018 - a callable is not proxied
            with pytest.raises(AttributeError):
                txn.no_such_attribute         # noqa: B018
        await aenv.close()

    run(go())
    bare = purelmdb.aio.AsyncTransaction.__new__(purelmdb.aio.AsyncTransaction)
    with pytest.raises(AttributeError):
        bare.env                              # noqa: B018 - no recursion on an unset slot
