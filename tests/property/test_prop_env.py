"""Stateful property test of Environment / Transaction / Cursor against a dict model.

One machine drives an environment through many transactions: puts with every flag mix,
deletes, pops, replaces, bulk loads and bulk deletes that split and merge pages, commits and
aborts, live read transactions that must keep their snapshot while writes commit, cursors
whose position is tracked through their own and other cursors' writes, iteration, and
close/reopen. The model and the cursor states are described in ``prop_model.py``.

Runs against purelmdb, or the C binding with PURELMDB_TEST_IMPL=lmdb.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import sys
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from prop_model import (
    CLOSED_MESSAGE,
    EOF,
    FRESH,
    UNKNOWN,
    GiB,
    Model,
    b,
    bulk_keys,
    bulk_value,
    expect_move,
    key_from,
    keys,
    make_value,
    pos,
    state_after_foreign_delete,
    state_after_foreign_insert,
    state_after_read,
    value_specs,
)

MAX_WRITE_CURSORS = 3
MAX_READERS = 4
MISSING = object()


class CursorModel:
    __slots__ = ("cur", "state")

    def __init__(self, cur) -> None:
        self.cur = cur
        self.state = FRESH


class Reader:
    """A live read transaction and the snapshot it must keep seeing."""

    __slots__ = ("txn", "snap", "txnid", "cursor", "buffers")

    def __init__(self, txn, snap: Model, txnid: int, buffers: bool) -> None:
        self.txn = txn
        self.snap = snap
        self.txnid = txnid
        self.cursor = CursorModel(txn.cursor())
        self.buffers = buffers


class EnvMachine(RuleBasedStateMachine):
    def __init__(self, lib, sound) -> None:
        super().__init__()
        self.lib = lib
        self.sound = sound
        self.tmp = tempfile.mkdtemp(prefix="purelmdb-prop-")
        self.env = None
        self.committed = Model()
        self.txnid = 0
        self.wtxn = None
        self.w: Model = None  # the write transaction's view
        self.wdirty = False
        self.wbuffers = False
        self.cursors: list = []
        self.readers: list = []

    # ---------------------------------------------------------------- setup / teardown

    @initialize(subdir=st.booleans(), sync=st.booleans())
    def open_env(self, subdir, sync):
        self.subdir = subdir
        self.path = self.tmp if subdir else os.path.join(self.tmp, "store.lmdb")
        self.kw = dict(map_size=GiB, subdir=subdir, sync=sync, metasync=sync)
        self.env = self.lib.open(self.path, **self.kw)
        assert self.env.stat()["entries"] == 0
        assert self.env.info()["last_txnid"] == 0

    def teardown(self):
        try:
            if self.env is not None:
                self.env.close()
                self.env = None
                self.sound(self.path, subdir=self.subdir)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---------------------------------------------------------------- helpers

    def _foreign_insert(self, except_cm=None):
        for cm in self.cursors:
            if cm is not except_cm:
                cm.state = state_after_foreign_insert(cm.state)

    def _foreign_delete(self, k, except_cm=None):
        for cm in self.cursors:
            if cm is not except_cm:
                cm.state = state_after_foreign_delete(self.w, cm.state, k)

    def _expect_put(self, model, k, overwrite, append):
        if append:
            return not (model.ks and k <= model.ks[-1])
        return overwrite or k not in model

    def _end_write(self):
        self.wtxn = None
        self.w = None
        self.cursors = []

    def _check_item(self, cm, model):
        expected = model.item(cm.state)
        item = b(cm.cur.item())
        if expected is not None:
            assert item == expected, cm.state
            assert b(cm.cur.key()) == item[0]
            assert b(cm.cur.value()) == item[1]
        cm.state = state_after_read(model, cm.state)

    def _move(self, cm, model, op, arg=None):
        expected = expect_move(model, cm.state, op, arg)
        assert expected is not None, (op, cm.state)
        fn = getattr(cm.cur, op)
        got = fn(arg) if arg is not None else fn()
        assert got is expected[0], (op, arg, cm.state, got)
        cm.state = expected[1]
        self._check_item(cm, model)

    def _assert_closed(self, fn):
        with pytest.raises(self.lib.Error) as ei:
            fn()
        assert str(ei.value) == CLOSED_MESSAGE

    # ---------------------------------------------------------------- write transactions

    @precondition(lambda self: self.wtxn is None)
    @rule(buffers=st.booleans())
    def begin_write(self, buffers):
        self.wtxn = self.env.begin(write=True, buffers=buffers)
        self.wbuffers = buffers
        assert self.wtxn.id() == self.txnid + 1
        self.w = self.committed.copy()
        self.wdirty = False
        self.cursors = []

    @precondition(lambda self: self.wtxn is not None)
    @rule()
    def commit(self):
        txn = self.wtxn
        txn.commit()
        self.committed = self.w
        if self.wdirty:
            self.txnid += 1
        self._end_write()
        assert self.env.info()["last_txnid"] == self.txnid
        self._assert_closed(lambda: txn.get(b"k"))

    @precondition(lambda self: self.wtxn is not None)
    @rule(twice=st.booleans())
    def abort(self, twice):
        txn = self.wtxn
        cursor = self.cursors[0].cur if self.cursors else None
        txn.abort()
        if twice:
            txn.abort()  # a no-op
        self._end_write()
        self._assert_closed(lambda: txn.put(b"k", b"v"))
        if cursor is not None:
            self._assert_closed(cursor.first)

    @precondition(lambda self: self.wtxn is None)
    @rule(items=st.lists(st.tuples(keys(), value_specs()), max_size=8), fail=st.booleans())
    def with_block(self, items, fail):
        """A `with` block commits on normal exit and aborts (leaving no trace) on an exception."""

        class Boom(Exception):
            pass

        model = self.committed.copy()
        try:
            with self.env.begin(write=True) as txn:
                for k, spec in items:
                    v = make_value(*spec)
                    assert txn.put(k, v) is True
                    model.put(k, v)
                if fail:
                    raise Boom()
        except Boom:
            pass
        self._assert_closed(lambda: txn.get(b"k"))
        if not fail:
            self.committed = model
            if items:
                self.txnid += 1
        assert self.env.info()["last_txnid"] == self.txnid

    # ---------------------------------------------------------------- transaction operations

    @precondition(lambda self: self.wtxn is not None)
    @rule(data=st.data(), vspec=value_specs(), overwrite=st.booleans(), append=st.booleans())
    def put(self, data, vspec, overwrite, append):
        value = make_value(*vspec)
        k = data.draw(key_from(self.w), label="key")
        if append and self.w.ks and data.draw(st.booleans(), label="greater"):
            k = (self.w.ks[-1] + b"\x00")[:511]  # often a valid append, sometimes not
        expected = self._expect_put(self.w, k, overwrite, append)
        assert self.wtxn.put(k, value, overwrite=overwrite, append=append) is expected
        if expected:
            self.w.put(k, value)
            self.wdirty = True
        self._foreign_insert()  # even a refused put makes cursors re-read their position

    @precondition(lambda self: self.wtxn is not None)
    @rule(data=st.data(), with_default=st.booleans())
    def get(self, data, with_default):
        k = data.draw(key_from(self.w), label="key")
        if with_default:
            assert b(self.wtxn.get(k, MISSING)) == self.w.d.get(k, MISSING)
        else:
            assert b(self.wtxn.get(k)) == self.w.d.get(k)

    @precondition(lambda self: self.wtxn is not None)
    @rule(data=st.data())
    def delete(self, data):
        k = data.draw(key_from(self.w), label="key")
        expected = k in self.w
        assert self.wtxn.delete(k) is expected
        if expected:
            self.w.delete(k)
            self.wdirty = True
            self._foreign_delete(k)
        else:
            self._foreign_insert()  # a failed delete too makes cursors re-read

    @precondition(lambda self: self.wtxn is not None)
    @rule(data=st.data())
    def pop(self, data):
        k = data.draw(key_from(self.w), label="key")
        got = self.wtxn.pop(k)
        assert got is None or type(got) is bytes
        assert got == self.w.d.get(k)
        if got is not None:
            self.w.delete(k)
            self.wdirty = True
            self._foreign_delete(k)

    @precondition(lambda self: self.wtxn is not None)
    @rule(data=st.data(), vspec=value_specs())
    def replace(self, data, vspec):
        value = make_value(*vspec)
        k = data.draw(key_from(self.w), label="key")
        got = self.wtxn.replace(k, value)
        assert got is None or type(got) is bytes
        assert got == self.w.d.get(k)
        self.w.put(k, value)
        self.wdirty = True
        self._foreign_insert()

    @precondition(lambda self: self.wtxn is not None)
    @rule(seed=st.integers(0, 1 << 32), n=st.integers(1, 400))
    def bulk_put(self, seed, n):
        rng = random.Random(seed)
        txn, w = self.wtxn, self.w
        for k in bulk_keys(rng, n):
            v = bulk_value(rng)
            overwrite = rng.random() < 0.8
            expected = overwrite or k not in w
            assert txn.put(k, v, overwrite=overwrite) is expected
            if expected:
                w.put(k, v)
                self.wdirty = True
        self._foreign_insert()

    @precondition(lambda self: self.wtxn is not None)
    @rule(seed=st.integers(0, 1 << 32), n=st.integers(1, 300), via_cursor=st.booleans())
    def bulk_append(self, seed, n, via_cursor):
        """Sorted keys above the last key with append=True all succeed; a repeat is refused."""
        rng = random.Random(seed)
        w = self.w
        last = w.last() or b""
        new = sorted({k for k in bulk_keys(rng, n) if k > last})
        target = self.wtxn.cursor() if via_cursor else self.wtxn
        for k in new:
            v = bulk_value(rng)
            assert target.put(k, v, append=True) is True
            w.put(k, v)
            self.wdirty = True
        if w.ks:
            old = w.d[w.ks[-1]]
            assert target.put(w.ks[-1], b"x", append=True) is False
            assert b(self.wtxn.get(w.ks[-1])) == old
            if via_cursor:
                assert b(target.key()) == w.ks[-1]
        if via_cursor:
            target.close()
        self._foreign_insert()

    @precondition(lambda self: self.wtxn is not None and len(self.w) > 0)
    @rule(seed=st.integers(0, 1 << 32), mode=st.sampled_from(["range", "stride", "random"]),
          fraction=st.floats(0.05, 1.0))
    def bulk_delete(self, seed, mode, fraction):
        rng = random.Random(seed)
        ks = self.w.ks
        n = max(1, int(len(ks) * fraction))
        if mode == "range":
            start = rng.randrange(len(ks))
            victims = ks[start:start + n]
        elif mode == "stride":
            victims = ks[rng.randrange(2)::2][:n]
        else:
            victims = rng.sample(ks, n)
        for k in victims:
            assert self.wtxn.delete(k) is True
            self.w.delete(k)
            self.wdirty = True
            self._foreign_delete(k)

    @precondition(lambda self: self.wtxn is not None and len(self.w) > 0)
    @rule(data=st.data(), n=st.integers(1, 200))
    def cursor_delete_run(self, data, n):
        """set_range + n x delete(): after each delete the cursor sits on the following record,
        and is unpositioned after deleting the last one."""
        start = data.draw(key_from(self.w), label="start")
        cm = CursorModel(self.wtxn.cursor())
        self._move(cm, self.w, "set_range", start)
        for _ in range(n):
            if cm.state[0] != "pos":
                break
            k = cm.state[1]
            assert cm.cur.delete() is True
            self.w.delete(k)
            self.wdirty = True
            self._foreign_delete(k, except_cm=cm)
            nxt = self.w.succ(k)
            cm.state = pos(nxt) if nxt is not None else EOF
            self._check_item(cm, self.w)
        if cm.state == EOF:
            assert cm.cur.delete() is False  # unpositioned: nothing to delete
        cm.cur.close()

    # ---------------------------------------------------------------- write cursors

    @precondition(lambda self: self.wtxn is not None and len(self.cursors) < MAX_WRITE_CURSORS)
    @rule()
    def open_cursor(self):
        cm = CursorModel(self.wtxn.cursor())
        self._check_item(cm, self.w)
        self.cursors.append(cm)

    @precondition(lambda self: self.cursors)
    @rule(data=st.data())
    def close_cursor(self, data):
        cm = self.cursors.pop(data.draw(st.integers(0, len(self.cursors) - 1)))
        cm.cur.close()
        cm.cur.close()  # a no-op
        self._assert_closed(cm.cur.first)
        self._assert_closed(cm.cur.key)

    def _pick(self, data):
        return self.cursors[data.draw(st.integers(0, len(self.cursors) - 1), label="cursor")]

    @precondition(lambda self: self.cursors)
    @rule(data=st.data(), op=st.sampled_from(["first", "last", "next", "prev", "item"]))
    def cursor_move(self, data, op):
        cm = self._pick(data)
        if op == "item":
            self._check_item(cm, self.w)
        elif expect_move(self.w, cm.state, op) is not None:
            self._move(cm, self.w, op)

    @precondition(lambda self: self.cursors)
    @rule(data=st.data(), exact=st.booleans())
    def cursor_seek(self, data, exact):
        cm = self._pick(data)
        k = data.draw(key_from(self.w), label="key")
        self._move(cm, self.w, "set_key" if exact else "set_range", k)

    @precondition(lambda self: self.cursors)
    @rule(data=st.data(), vspec=value_specs(), overwrite=st.booleans(), append=st.booleans())
    def cursor_put(self, data, vspec, overwrite, append):
        value = make_value(*vspec)
        cm = self._pick(data)
        k = data.draw(key_from(self.w), label="key")
        if append and self.w.ks and data.draw(st.booleans(), label="greater"):
            k = (self.w.ks[-1] + b"\x01")[:511]
        expected = self._expect_put(self.w, k, overwrite, append)
        assert cm.cur.put(k, value, overwrite=overwrite, append=append) is expected
        self._foreign_insert(except_cm=cm)  # refused or not
        if expected:
            self.w.put(k, value)
            self.wdirty = True
            cm.state = pos(k)
        elif append:
            cm.state = pos(self.w.last())  # a refused append leaves it on the last record
        else:
            cm.state = pos(k)  # refused (overwrite=False): on the existing record
        self._check_item(cm, self.w)

    @precondition(lambda self: self.cursors)
    @rule(data=st.data())
    def cursor_delete(self, data):
        cm = self._pick(data)
        if cm.state[0] in ("del", "lost"):
            return  # depends on LMDB internals; see test_interop_cursor_semantics
        if cm.state[0] != "pos":
            assert cm.cur.delete() is False
            self._check_item(cm, self.w)
            return
        k = cm.state[1]
        assert cm.cur.delete() is True
        self.w.delete(k)
        self.wdirty = True
        self._foreign_delete(k, except_cm=cm)
        nxt = self.w.succ(k)
        cm.state = pos(nxt) if nxt is not None else EOF
        self._check_item(cm, self.w)

    @precondition(lambda self: any(cm.state[0] == "pos" for cm in self.cursors))
    @rule(data=st.data(), how=st.sampled_from(["txn", "cursor", "pop"]))
    def delete_under_cursor(self, data, how):
        """Delete the record a cursor stands on through the txn or another cursor: the
        cursor then shows the following record and next() lands on it."""
        victims = [cm for cm in self.cursors if cm.state[0] == "pos"]
        k = data.draw(st.sampled_from(victims), label="cursor").state[1]
        if how == "txn":
            assert self.wtxn.delete(k) is True
        elif how == "pop":
            assert b(self.wtxn.pop(k)) == self.w.d[k]
        else:
            other = self.wtxn.cursor()
            assert other.set_key(k) is True
            assert other.delete() is True
            other.close()
        self.w.delete(k)
        self.wdirty = True
        self._foreign_delete(k)

    @precondition(lambda self: self.cursors)
    @rule(data=st.data(), vspec=value_specs(), op=st.sampled_from(["replace", "pop", "get"]))
    def cursor_keyed(self, data, vspec, op):
        value = make_value(*vspec)
        cm = self._pick(data)
        k = data.draw(key_from(self.w), label="key")
        old = self.w.d.get(k)
        if op == "get":
            assert b(cm.cur.get(k, MISSING)) == self.w.d.get(k, MISSING)
            cm.state = pos(k) if old is not None else UNKNOWN
        elif op == "replace":
            got = cm.cur.replace(k, value)
            assert got is None or type(got) is bytes
            assert got == old
            self.w.put(k, value)
            self.wdirty = True
            cm.state = pos(k)
            self._foreign_insert(except_cm=cm)
        else:
            got = cm.cur.pop(k)
            assert got is None or type(got) is bytes
            assert got == old
            if old is None:
                cm.state = UNKNOWN
            else:
                self.w.delete(k)
                self.wdirty = True
                self._foreign_delete(k, except_cm=cm)
                nxt = self.w.succ(k)
                cm.state = pos(nxt) if nxt is not None else EOF
        self._check_item(cm, self.w)

    @precondition(lambda self: self.cursors)
    @rule(data=st.data(), reverse=st.booleans(), limit=st.integers(1, 30),
          shape=st.sampled_from(["items", "keys", "values", "iter"]))
    def cursor_iterate(self, data, reverse, limit, shape):
        cm = self._pick(data)
        self._iterate(cm, self.w, reverse, limit, shape)

    def _iterate(self, cm, model, reverse, limit, shape):
        if cm.state[0] in ("del", "lost"):
            return
        start = cm.state[1] if cm.state[0] == "pos" else None
        expected = model.items(start, reverse=reverse)
        if shape == "iter" and not reverse:
            it = iter(cm.cur)
        else:
            method = cm.cur.iterprev if reverse else cm.cur.iternext
            kw = {"items": {}, "keys": {"values": False}, "values": {"keys": False}, "iter": {}}
            it = method(**kw[shape])
        got = []
        exhausted = True
        for x in it:
            got.append(b(x))
            if len(got) == limit:
                exhausted = False
                break
        expected = expected[:limit]
        if exhausted:
            cm.state = UNKNOWN  # the last step ran off the end
        else:
            cm.state = pos(expected[-1][0])
        if shape == "keys":
            expected = [k for k, _ in expected]
        elif shape == "values":
            expected = [v for _, v in expected]
        assert got == expected
        self._check_item(cm, model)

    @precondition(lambda self: self.wtxn is not None)
    @rule()
    def full_walks(self):
        """first/next to the end is the sorted model, last/prev the reverse; stat counts."""
        items = self.w.items()
        c = self.wtxn.cursor()
        got = []
        ok = c.first()
        while ok:
            got.append(b(c.item()))
            ok = c.next()
        assert got == items
        got = []
        ok = c.last()
        while ok:
            got.append(b(c.item()))
            ok = c.prev()
        assert got == items[::-1]
        assert [b(x) for x in self.wtxn.cursor()] == items
        c.close()
        st_ = self.wtxn.stat()
        assert st_["entries"] == len(items)
        if items:
            assert st_["depth"] >= 1 and st_["leaf_pages"] >= 1
        else:
            assert st_["depth"] == 0 and st_["leaf_pages"] == 0

    @rule()
    def check_committed(self):
        """A new read transaction sees exactly the committed state: aborted and uncommitted
        work leaves no trace."""
        with self.env.begin() as txn:
            assert txn.id() == self.txnid
            assert [b(x) for x in txn.cursor()] == self.committed.items()

    # ---------------------------------------------------------------- readers

    @precondition(lambda self: len(self.readers) < MAX_READERS)
    @rule(buffers=st.booleans())
    def begin_read(self, buffers):
        txn = self.env.begin(buffers=buffers)
        assert txn.id() == self.txnid
        self.readers.append(Reader(txn, self.committed, self.txnid, buffers))

    def _reader(self, data) -> Reader:
        return self.readers[data.draw(st.integers(0, len(self.readers) - 1), label="reader")]

    @precondition(lambda self: self.readers)
    @rule(data=st.data())
    def reader_get(self, data):
        r = self._reader(data)
        # keys of the reader's snapshot and of the newest state, present or not
        src = Model(dict.fromkeys(r.snap.ks + (self.w or self.committed).ks[:50], b""))
        for _ in range(data.draw(st.integers(1, 5))):
            k = data.draw(key_from(src), label="key")
            assert b(r.txn.get(k)) == r.snap.d.get(k)
        assert r.txn.id() == r.txnid
        assert r.txn.stat()["entries"] == len(r.snap)

    @precondition(lambda self: self.readers)
    @rule(data=st.data(), op=st.sampled_from(
        ["first", "last", "next", "prev", "set_key", "set_range", "iter", "walk"]))
    def reader_cursor(self, data, op):
        r = self._reader(data)
        cm = r.cursor
        if op in ("set_key", "set_range"):
            self._move(cm, r.snap, op, data.draw(key_from(r.snap), label="key"))
        elif op == "iter":
            self._iterate(cm, r.snap, data.draw(st.booleans()), data.draw(st.integers(1, 20)),
                          data.draw(st.sampled_from(["items", "keys", "values", "iter"])))
        elif op == "walk":
            assert [b(x) for x in r.txn.cursor().iternext()] == r.snap.items()
        elif expect_move(r.snap, cm.state, op) is not None:
            self._move(cm, r.snap, op)

    @precondition(lambda self: self.readers)
    @rule(data=st.data(), how=st.sampled_from(["abort", "commit", "with"]))
    def end_read(self, data, how):
        r = self.readers.pop(data.draw(st.integers(0, len(self.readers) - 1)))
        if how == "abort":
            r.txn.abort()
        elif how == "commit":
            r.txn.commit()
        else:
            with r.txn as t:
                assert t is r.txn
        self._assert_closed(lambda: r.txn.get(b"k"))
        self._assert_closed(r.cursor.cur.first)
        r.txn.abort()  # a no-op

    # ---------------------------------------------------------------- environment

    @rule(readonly_look=st.booleans())
    def reopen(self, readonly_look):
        """Close (aborting everything), reopen: the committed state is all there."""
        txns = [r.txn for r in self.readers] + ([self.wtxn] if self.wtxn else [])
        self.env.close()
        self.env.close()  # a no-op
        for txn in txns:
            self._assert_closed(functools.partial(txn.get, b"k"))
        self._assert_closed(self.env.stat)
        self.readers = []
        self._end_write()
        self.sound(self.path, subdir=self.subdir)
        if readonly_look:
            env = self.lib.open(self.path, readonly=True, **self.kw)
            with pytest.raises(self.lib.ReadonlyError):
                env.begin(write=True)
            with env.begin() as txn:
                assert [b(x) for x in txn.cursor()] == self.committed.items()
            env.close()
        self.env = self.lib.open(self.path, **self.kw)
        assert self.env.info()["last_txnid"] == self.txnid
        with self.env.begin() as txn:
            assert [b(x) for x in txn.cursor()] == self.committed.items()

    # ---------------------------------------------------------------- invariants

    @invariant()
    def counts_agree(self):
        if self.env is None:
            return
        if self.wtxn is not None:
            assert self.wtxn.stat()["entries"] == len(self.w)
        assert self.env.stat()["entries"] == len(self.committed)
        assert self.env.info()["last_txnid"] == self.txnid


def test_env_state_machine(impl, sound):
    run_state_machine_as_test(lambda: EnvMachine(impl, sound), settings=settings())


def test_default_map_grows(impl, impl_is_c, tmp_path, sound):
    """purelmdb without map_size grows the map by itself (the C binding stops at 10 MiB)."""
    if impl_is_c:
        pytest.skip("purelmdb-only: the C binding's default map is a fixed 10 MiB")
    env = impl.open(str(tmp_path))
    rng = random.Random(7)
    model = {}
    for t in range(6):
        with env.begin(write=True) as txn:
            for i in range(60):
                k = b"%02d-%04d" % (t, i)
                v = rng.randbytes(rng.choice([100, 3000, 60_000]))
                txn.put(k, v)
                model[k] = v
    with env.begin() as txn:
        assert list(txn.cursor()) == sorted(model.items())
    assert env.info()["map_size"] >= os.path.getsize(tmp_path / "data.mdb")
    env.close()
    sound(str(tmp_path))


def test_env_state_machine_with_eager_branch_indexes(impl, impl_is_c, sound, monkeypatch):
    """The same machine with purelmdb's branch indexes built on a branch page's first lookup
    (normally after 32 per leaf below it, which these small trees rarely reach), so readers'
    gets go through them across commits, foreign writes and reopens whenever a tree has a
    branch over plain leaves. How many examples get there depends on the data hypothesis
    draws; tests/unit/test_fast_paths.py exercises the index deterministically."""
    if impl_is_c:
        pytest.skip("purelmdb's own lookup index")
    from purelmdb import txn as txnmod
    monkeypatch.setattr(txnmod, "_INDEX_AFTER", 0)
    # bulk values that stay inline: a leaf with an overflow value is never indexed
    monkeypatch.setattr(sys.modules[__name__], "bulk_value",
                        lambda rng: rng.randbytes(rng.randint(0, 100)))
    run_state_machine_as_test(lambda: EnvMachine(impl, sound),
                              settings=settings(max_examples=max(settings().max_examples, 60),
                                                stateful_step_count=80))
