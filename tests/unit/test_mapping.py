"""purelmdb.mapping (PersistentDict) and purelmdb.codecs.

* codecs: every codec round-trips; the ordered ones keep order (``sorted(encode(x)) ==
  encode(sorted(x))``), the int codec over its whole range, negatives and big values included;
  the int encoding is canonical (any bytes either fail to decode or re-encode to themselves).
* a stateful machine drives a PersistentDict against a plain dict: sets, deletes, pops,
  setdefault, popitem, update, clear, batched blocks that commit or raise and roll back
  (nested ones too), iteration, and close/reopen; after each step the stored items, in key
  order, must equal the sorted model.
* plain tests of the API, the batch semantics across threads and databases, and that the
  stored bytes are the documented ones (read back with the C binding).
"""

from __future__ import annotations

import collections.abc
import os
import shutil
import tempfile
import threading
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import purelmdb
from purelmdb import codecs
from purelmdb.codecs import INT_MAX, INT_MIN, Codec, decode_int, encode_int
from purelmdb.mapping import PersistentDict
from purelmdb.verify import verify

# ---------------------------------------------------------------------------------------------
# codecs

ints = st.one_of(
    st.integers(-300, 300),
    st.integers(-(2**80), 2**80),
    st.integers(INT_MIN, INT_MAX),
    st.sampled_from([INT_MIN, INT_MIN + 1, INT_MAX, INT_MAX - 1, -1, 0, 1, -256, -257, 255,
                     256, -(2**64), 2**64 - 1, 2**64]),
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))  # no lone surrogates
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
pickle_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary()
    | st.floats(allow_nan=False) | st.complex_numbers(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.frozensets(st.integers(), max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(st.lists(ints))
def test_int_codec_round_trips_and_keeps_order(xs):
    assert [decode_int(encode_int(x)) for x in xs] == xs
    assert sorted(encode_int(x) for x in xs) == [encode_int(x) for x in sorted(xs)]


@given(ints, ints)
def test_int_codec_compares_like_the_numbers(a, b):
    ea, eb = encode_int(a), encode_int(b)
    assert (ea < eb) == (a < b) and (ea == eb) == (a == b)
    assert 1 <= len(ea) <= 128


@given(st.binary(max_size=20))
def test_int_codec_is_canonical(data):
    """Any bytes decode to nothing (ValueError) or to the one int that encodes to them."""
    try:
        n = decode_int(data)
    except ValueError:
        return
    assert encode_int(n) == data


def test_int_codec_range_and_types():
    assert encode_int(0) == b"\x80" and encode_int(-1) == b"\x7f"
    assert encode_int(1) == b"\x81\x01" and encode_int(-2) == b"\x7e\xfe"
    assert len(encode_int(INT_MAX)) == len(encode_int(INT_MIN)) == 128
    with pytest.raises(OverflowError):
        encode_int(INT_MAX + 1)
    with pytest.raises(OverflowError):
        encode_int(INT_MIN - 1)
    for bad in (True, 1.0, "1", None):
        with pytest.raises(TypeError):
            encode_int(bad)
    for bad in (b"", b"\x81", b"\x81\x00", b"\x7e\xff", b"\x80\x00"):
        with pytest.raises(ValueError):
            decode_int(bad)


@given(st.lists(texts))
def test_str_codec_round_trips_and_keeps_order(xs):
    enc = codecs.STR.encode
    assert [codecs.STR.decode(enc(x)) for x in xs] == xs
    assert sorted(enc(x) for x in xs) == [enc(x) for x in sorted(xs)]


@given(st.lists(st.binary()))
def test_bytes_codec_round_trips_and_keeps_order(xs):
    c = codecs.BYTES
    assert [c.decode(c.encode(x)) for x in xs] == xs
    assert c.encode(bytearray(b"ab")) == b"ab" and c.encode(memoryview(b"cd")) == b"cd"
    assert sorted(map(c.encode, xs)) == [c.encode(x) for x in sorted(xs)]


@given(json_values)
def test_json_codec_round_trips(x):
    assert codecs.JSON.decode(codecs.JSON.encode(x)) == x


@given(pickle_values)
def test_pickle_codec_round_trips(x):
    assert codecs.PICKLE.decode(codecs.PICKLE.encode(x)) == x


def test_codec_lookup_and_type_errors():
    assert codecs.get_codec("int") is codecs.INT
    assert codecs.get_codec(codecs.JSON) is codecs.JSON
    with pytest.raises(ValueError, match="unknown codec"):
        codecs.get_codec("yaml")
    with pytest.raises(TypeError):
        codecs.BYTES.encode("text")
    with pytest.raises(TypeError):
        codecs.BYTES.encode(5)          # bytes(5) would be five zero bytes
    with pytest.raises(TypeError):
        codecs.STR.encode(b"bytes")
    with pytest.raises(UnicodeEncodeError):
        codecs.STR.encode("\ud800")
    assert [c.ordered for c in (codecs.BYTES, codecs.STR, codecs.INT, codecs.JSON,
                                codecs.PICKLE)] == [True, True, True, False, False]


# ---------------------------------------------------------------------------------------------
# stateful test against a dict model

class Rollback(Exception):
    """Raised inside a batch to make it roll back."""


class MappingMachine(RuleBasedStateMachine):
    """Drives a PersistentDict; ``model`` is what must be committed, ``work`` what the open
    batches see."""

    key_codec = "str"
    value_codec = "json"
    keys_st: st.SearchStrategy = st.text(alphabet="ab\x00é€😀", min_size=1, max_size=3)
    values_st: st.SearchStrategy = st.none() | st.integers() | st.text(max_size=4) \
        | st.lists(st.integers(), max_size=3)

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="purelmdb-mapping-")
        self.model: dict = {}
        self.d: PersistentDict = None  # type: ignore[assignment]

    @initialize(named=st.booleans())
    def open_dict(self, named):
        self.name = "things" if named else None
        self.d = self._open()

    def _open(self) -> PersistentDict:
        return PersistentDict(self.tmp, self.name, keys=self.key_codec, values=self.value_codec,
                              sync=False)

    def teardown(self):
        try:
            if self.d is not None:
                self.d.close()
                assert verify(self.tmp) == []
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- operations, each applied to the dict and to a model ----------------------------------

    def _apply(self, d: PersistentDict, model: dict, op: tuple) -> None:
        kind, key, value = op
        if kind == "set":
            d[key] = value
            model[key] = value
        elif kind == "del":
            if key in model:
                del d[key]
                del model[key]
            else:
                with pytest.raises(KeyError):
                    del d[key]
        elif kind == "pop":
            assert d.pop(key, "absent") == model.pop(key, "absent")
        elif kind == "setdefault":
            assert d.setdefault(key, value) == model.setdefault(key, value)
        elif kind == "get":
            assert d.get(key, "absent") == model.get(key, "absent")
            assert (key in d) == (key in model)
        elif kind == "popitem":
            if model:
                k = min(model)
                assert d.popitem() == (k, model.pop(k))
            else:
                with pytest.raises(KeyError):
                    d.popitem()

    def ops(self):
        kinds = st.sampled_from(["set", "set", "del", "pop", "setdefault", "get", "popitem"])
        return st.tuples(kinds, self.keys_st, self.values_st)

    @rule(data=st.data())
    def one_op(self, data):
        self._apply(self.d, self.model, data.draw(self.ops()))

    @rule(data=st.data())
    def update(self, data):
        items = data.draw(st.dictionaries(self.keys_st, self.values_st, max_size=6))
        self.d.update(items)
        self.model.update(items)

    @rule(data=st.data(), fail=st.booleans(), nested=st.booleans(), inner_fail=st.booleans())
    def batch(self, data, fail, nested, inner_fail):
        """A batch of operations that commits, or raises and leaves nothing; optionally a
        nested batch that commits into it or rolls back alone."""
        work = dict(self.model)
        try:
            with self.d.batch() as b:
                assert b is self.d and self.d.in_batch
                for op in data.draw(st.lists(self.ops(), max_size=8)):
                    self._apply(self.d, work, op)
                if nested:
                    inner = dict(work)
                    try:
                        with self.d.batch():
                            for op in data.draw(st.lists(self.ops(), max_size=5)):
                                self._apply(self.d, inner, op)
                            assert list(self.d.items()) == sorted(inner.items())
                            if inner_fail:
                                raise Rollback
                        work = inner
                    except Rollback:
                        pass
                # reads in the batch see its writes, the committed state does not
                assert list(self.d.items()) == sorted(work.items())
                assert len(self.d) == len(work)
                if fail:
                    raise Rollback
        except Rollback:
            assert fail
        else:
            self.model = work
        assert not self.d.in_batch

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def clear(self):
        self.d.clear()
        self.model.clear()

    @rule()
    def reopen(self):
        self.d.close()
        self.d = self._open()

    @invariant()
    def same_items_in_key_order(self):
        if self.d is None:
            return
        assert list(self.d.items()) == sorted(self.model.items())
        assert list(self.d) == sorted(self.model)
        assert list(reversed(self.d)) == sorted(self.model, reverse=True)
        assert len(self.d) == len(self.model)


class IntKeysMachine(MappingMachine):
    key_codec = "int"
    value_codec = "pickle"
    keys_st = st.integers(-3, 3) | st.integers(-(2**70), 2**70)
    values_st = st.binary(max_size=3000) | st.tuples(st.integers(), st.text(max_size=3)) \
        | st.frozensets(st.integers(0, 9), max_size=3)


TestMappingStrJson = MappingMachine.TestCase
TestMappingIntPickle = IntKeysMachine.TestCase


# ---------------------------------------------------------------------------------------------
# plain API tests


@pytest.fixture
def d(tmp_path):
    with PersistentDict(str(tmp_path / "env"), keys="str", values="json", sync=False) as m:
        yield m


def test_is_a_mutable_mapping_with_dict_behaviour(d):
    assert isinstance(d, collections.abc.MutableMapping)
    d["b"] = [1, 2]
    d["a"] = {"x": None}
    assert d["b"] == [1, 2] and d.get("a") == {"x": None}
    assert d.get("zz") is None and d.get("zz", 5) == 5
    with pytest.raises(KeyError):
        d["zz"]
    with pytest.raises(KeyError):
        del d["zz"]
    assert d == {"a": {"x": None}, "b": [1, 2]}
    assert d != {"a": 1}
    assert "a" in d and "zz" not in d
    assert 5 not in d and b"a" not in d       # keys the codec cannot encode are absent
    assert "" not in d and "x" * 600 not in d  # keys LMDB cannot store are absent
    assert d.get("") is None
    with pytest.raises(purelmdb.BadValsizeError):
        d[""] = 1
    with pytest.raises(purelmdb.BadValsizeError):
        d["x" * 512] = 1
    d["x" * 511] = 1                           # the limit is on the encoded bytes
    with pytest.raises(purelmdb.BadValsizeError):
        d["é" * 256] = 1                       # 512 bytes in UTF-8
    with pytest.raises(TypeError):
        d[5] = 1


def test_views_are_in_key_order(d):
    d.update({"pear": 3, "apple": 1, "fig": 2, "Zebra": 0, "éclair": 4})
    order = ["Zebra", "apple", "fig", "pear", "éclair"]   # code-point order
    assert list(d) == list(d.keys()) == order
    assert list(d.values()) == [0, 1, 2, 3, 4]
    assert list(d.items()) == [(k, d[k]) for k in order]
    assert list(reversed(d)) == list(reversed(d.keys())) == order[::-1]
    assert list(reversed(d.values())) == [4, 3, 2, 1, 0]
    assert list(reversed(d.items()))[0] == ("éclair", 4)
    assert len(d.keys()) == len(d.values()) == len(d.items()) == 5
    assert "fig" in d.keys() and 2 in d.values() and ("fig", 2) in d.items()
    assert 9 not in d.values() and ("fig", 3) not in d.items()
    assert d.keys() & {"fig", "kiwi"} == {"fig"}


def test_int_keys_iterate_numerically(tmp_path):
    with PersistentDict(str(tmp_path), keys="int", values="int", sync=False) as d:
        xs = [10**30, -5, 0, 7, -(10**30), 255, 256, -256, -257]
        d.update((x, -x) for x in xs)
        assert list(d) == sorted(xs)
        assert d[-(10**30)] == 10**30


def test_pop_popitem_setdefault_update(d):
    d.update([("a", 1), ("b", 2)], c=3)
    d.update({"d": 4})
    assert d.pop("a") == 1 and d.pop("a", None) is None
    with pytest.raises(KeyError):
        d.pop("a")
    assert d.setdefault("b", 99) == 2 and d.setdefault("e", [5]) == [5] and d["e"] == [5]
    assert d.setdefault("n") is None and d["n"] is None
    assert d.popitem() == ("b", 2)
    assert d.popitem(last=True) == ("n", None)
    assert list(d) == ["c", "d", "e"]
    d.clear()
    assert len(d) == 0 and list(d) == []
    with pytest.raises(KeyError):
        d.popitem()


def test_update_is_all_or_nothing(d):
    d["a"] = 1
    with pytest.raises(TypeError):
        d.update([("b", 2), (3, 3)])            # the second key is not a str
    with pytest.raises(purelmdb.BadValsizeError):
        d.update({"c": 1, "": 2})
    assert dict(d) == {"a": 1}


def test_len_is_the_database_entry_count(d):
    d.update({str(i): i for i in range(300)})
    assert len(d) == 300 == d.env.stat()["entries"]


def test_batch_commits_or_rolls_back(d):
    d["keep"] = 0
    with d.batch():
        d["a"] = 1
        assert d["a"] == 1 and len(d) == 2 and list(d) == ["a", "keep"]
        del d["keep"]
    assert dict(d) == {"a": 1}
    with pytest.raises(Rollback):
        with d.batch():
            d["b"] = 2
            d.clear()
            assert len(d) == 0
            raise Rollback
    assert dict(d) == {"a": 1}


def test_nested_batch_rolls_back_alone(d):
    with d.batch():
        d["outer"] = 1
        with pytest.raises(Rollback):
            with d.batch():
                d["inner"] = 2
                del d["outer"]
                raise Rollback
        assert dict(d) == {"outer": 1}
        with d.batch():
            d["inner2"] = 3
    assert dict(d) == {"outer": 1, "inner2": 3}


def test_a_batch_is_one_commit(d):
    before = d.env.info()["last_txnid"]
    with d.batch():
        for i in range(50):
            d[str(i)] = i
    assert d.env.info()["last_txnid"] == before + 1
    d["x"] = 1
    d["y"] = 2
    assert d.env.info()["last_txnid"] == before + 3


def test_batch_spans_databases_of_one_environment(tmp_path):
    with purelmdb.open(str(tmp_path), max_dbs=4, sync=False) as env:
        users = PersistentDict(env, "users", keys="str", values="json")
        index = PersistentDict(env, b"index", keys="int", values="str")
        with pytest.raises(Rollback):
            with users.batch():
                users["ann"] = {"id": 1}
                index[1] = "ann"
                assert index[1] == "ann"   # the same transaction
                raise Rollback
        assert len(users) == 0 and len(index) == 0
        with users.batch():
            users["ann"] = {"id": 1}
            index[1] = "ann"
        assert dict(users) == {"ann": {"id": 1}} and dict(index) == {1: "ann"}
        assert sorted(env.dbs()) == [b"index", b"users"]
        users.close()
        index.close()
        assert env.stat()["entries"] == 2     # closing the dicts left the environment open


def test_a_dict_opened_inside_a_batch_joins_it(tmp_path):
    with purelmdb.open(str(tmp_path), max_dbs=2, sync=False) as env:
        a = PersistentDict(env, "a")
        with pytest.raises(Rollback):
            with a.batch():
                a[b"k"] = b"1"
                b = PersistentDict(env, "b")
                b[b"k"] = b"2"
                assert b[b"k"] == b"2"
                raise Rollback
        assert env.dbs() == [b"a"] and len(a) == 0
        with a.batch():
            b = PersistentDict(env, "b")
            b[b"k"] = b"2"
        assert env.dbs() == [b"a", b"b"] and dict(b) == {b"k": b"2"}


def test_other_threads_do_not_see_a_batch(d):
    d["a"] = 1
    seen = {}
    with d.batch():
        d["a"] = 2
        t = threading.Thread(target=lambda: seen.update(a=d["a"], inb=d.in_batch))
        t.start()
        t.join()
        assert seen == {"a": 1, "inb": False}
    t = threading.Thread(target=lambda: seen.update(a=d["a"]))
    t.start()
    t.join()
    assert seen["a"] == 2


def test_iteration_is_a_snapshot_outside_a_batch(d):
    d.update({"a": 1, "b": 2, "c": 3})
    it = iter(d.items())
    assert next(it) == ("a", 1)
    del d["b"]
    d["d"] = 4
    assert list(it) == [("b", 2), ("c", 3)]
    assert list(d) == ["a", "c", "d"]


def test_iteration_in_a_batch_sees_its_writes(d):
    d.update({"a": 1, "c": 3})
    with d.batch():
        seen = []
        for k in d:
            seen.append(k)
            if k == "a":
                d["b"] = 2
        assert seen == ["a", "b", "c"]


def test_clear_on_the_main_database_keeps_named_databases(tmp_path):
    with purelmdb.open(str(tmp_path), max_dbs=2, sync=False) as env:
        named = PersistentDict(env, "named")
        named[b"x"] = b"1"
        main = PersistentDict(env)
        main[b"a"] = b"1"
        main[b"zz"] = b"2"
        assert set(main) == {b"a", b"named", b"zz"}   # LMDB keeps the record in main
        main.clear()
        assert list(main) == [b"named"] and dict(named) == {b"x": b"1"}
        named.clear()
        assert len(named) == 0 and env.dbs() == [b"named"]


def test_persists_and_reopens(tmp_path):
    path = str(tmp_path / "db")
    with PersistentDict(path, "t", keys="str", values="pickle") as d:
        d["when"] = (2026, {1, 2})
    with PersistentDict(path, "t", keys="str", values="pickle", readonly=True) as d:
        assert d["when"] == (2026, {1, 2})
        with pytest.raises(purelmdb.ReadonlyError):
            d["x"] = 1
    with pytest.raises(purelmdb.NotFoundError):
        PersistentDict(path, "missing", create=False)


def test_close_and_ownership(tmp_path):
    env = purelmdb.open(str(tmp_path), sync=False)
    d = PersistentDict(env)
    d[b"k"] = b"v"
    d.close()
    d.close()
    assert d.closed and "closed" in repr(d)
    with pytest.raises(purelmdb.Error):
        d[b"k"]
    with pytest.raises(purelmdb.Error):
        iter(d)
    with env.begin() as txn:                   # the environment it was given stays open
        assert txn.get(b"k") == b"v"
    with pytest.raises(TypeError):
        PersistentDict(env, map_size=1 << 20)
    env.close()
    with PersistentDict(str(tmp_path)) as own:
        assert own[b"k"] == b"v"
    with pytest.raises(purelmdb.Error):
        own.env.stat()                         # the one it opened is closed with it


def test_refuses_dupsort_databases(tmp_path):
    with purelmdb.open(str(tmp_path), max_dbs=1) as env:
        env.open_db(b"dups", dupsort=True)
        with pytest.raises(purelmdb.IncompatibleError):
            PersistentDict(env, "dups")


def test_custom_codec(tmp_path):
    uuids = Codec("uuid", lambda u: u.bytes, lambda b: uuid.UUID(bytes=b), ordered=True)
    ids = sorted(uuid.uuid4() for _ in range(20))
    with PersistentDict(str(tmp_path), keys=uuids, values="str", sync=False) as d:
        d.update((u, str(u)) for u in reversed(ids))
        assert list(d) == ids and d[ids[3]] == str(ids[3])
        assert "keys=uuid" in repr(d)


def test_stored_bytes_are_the_codec_bytes_in_lmdb_order(tmp_path, clmdb):
    """The C binding reads the file: keys are plain UTF-8 / the int encoding, in order."""
    path = str(tmp_path)
    words = ["b", "a", "é", "Z", "ab", "€uro"]
    nums = [3, -2, 10**20, 0, -(10**20)]
    with purelmdb.open(path, max_dbs=2) as env:
        PersistentDict(env, "words", keys="str", values="json").update(
            (w, len(w)) for w in words)
        PersistentDict(env, "nums", keys="int", values="bytes").update(
            (n, b"%d" % n) for n in nums)
    env = clmdb.open(path, max_dbs=2, readonly=True)
    try:
        with env.begin() as txn:
            got = list(txn.cursor(db=env.open_db(b"words", txn=txn)))
            assert got == [(w.encode(), b"%d" % len(w)) for w in sorted(words)]
            got = list(txn.cursor(db=env.open_db(b"nums", txn=txn)))
            assert got == [(encode_int(n), b"%d" % n) for n in sorted(nums)]
    finally:
        env.close()


def test_module_is_importable_as_package_attribute():
    import purelmdb.mapping as m
    assert m.PersistentDict is PersistentDict and os.path.basename(m.__file__) == "mapping.py"
