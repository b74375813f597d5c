"""Error behaviour, checked on the implementation under test and on the C binding.

Every test runs twice (``lib`` = impl, then the C binding): the expectations are measured
behaviour of py-lmdb 3.0.0, including the exception class, ``what`` and ``code``.
"""

from __future__ import annotations

import pytest

from c_variant import is_buffer

pytestmark = pytest.mark.interop

GiB = 1 << 30
CLOSED = "Attempt to operate on closed/deleted/dropped object."
UNICODE_MSG = "Won't implicitly convert Unicode to bytes; use .encode()"
K512 = b"k" * 512
K511 = b"k" * 511


@pytest.fixture
def env(lib, tmp_path):
    env = lib.open(str(tmp_path / "env"), map_size=GiB)
    with env.begin(write=True) as txn:
        txn.put(b"a", b"A")
        txn.put(b"b", b"B")
    yield env
    env.close()


def raises(lib, cls_name, fn, what=None, code=None):
    cls = getattr(lib, cls_name)
    with pytest.raises(lib.Error) as ei:
        fn()
    assert type(ei.value) is cls, f"{type(ei.value).__name__} raised, {cls_name} expected"
    if what is not None:
        assert ei.value.what == what
    if code is not None:
        assert ei.value.code == code
    return ei.value


# ------------------------------------------------------------------------ key sizes


@pytest.mark.needs_c_extension
def test_empty_key(lib, env):
    txn = env.begin(write=True)
    c = txn.cursor()
    bv = "BadValsizeError"
    raises(lib, bv, lambda: txn.get(b""), "mdb_get", -30781)
    raises(lib, bv, lambda: txn.get(b"", b"default"), "mdb_get")
    raises(lib, bv, lambda: txn.put(b"", b"v"), "mdb_put", -30781)
    raises(lib, bv, lambda: txn.delete(b""), "mdb_del")
    raises(lib, bv, lambda: txn.pop(b""), "mdb_cursor_get")
    raises(lib, bv, lambda: txn.replace(b"", b"v"), "mdb_put")
    raises(lib, bv, lambda: c.set_key(b""), "mdb_cursor_get")
    raises(lib, bv, lambda: c.get(b""), "mdb_cursor_get")
    raises(lib, bv, lambda: c.put(b"", b"v"), "mdb_put")
    raises(lib, bv, lambda: c.replace(b"", b"v"), "mdb_put")
    raises(lib, bv, lambda: c.pop(b""), "mdb_cursor_get")
    assert c.set_range(b"") is True and c.key() == b"a"  # b'' is the smallest key
    # argument errors do not spoil the transaction
    assert txn.put(b"c", b"C") is True
    txn.commit()
    with env.begin() as r:
        raises(lib, bv, lambda: r.get(b""), "mdb_get")
        assert r.get(b"c") == b"C"


@pytest.mark.needs_c_extension
def test_overlong_key(lib, env):
    txn = env.begin(write=True)
    c = txn.cursor()
    bv = "BadValsizeError"
    raises(lib, bv, lambda: txn.put(K512, b"v"), "mdb_put", -30781)
    raises(lib, bv, lambda: txn.replace(K512, b"v"), "mdb_put")
    raises(lib, bv, lambda: c.put(K512, b"v"), "mdb_put")
    raises(lib, bv, lambda: c.replace(K512, b"v"), "mdb_put")
    # reads and deletes of an over-long key just find nothing
    assert txn.get(K512) is None
    assert txn.get(K512, b"dflt") == b"dflt"
    assert txn.delete(K512) is False
    assert txn.pop(K512) is None
    assert c.set_key(K512) is False
    assert c.set_range(K512) is False
    assert c.get(K512) is None
    assert c.pop(K512) is None
    assert txn.put(b"c", b"C") is True  # not spoiled
    txn.commit()


def test_max_key_size_511(lib, env):
    assert env.max_key_size() == 511
    big = bytes(range(256)) * 40
    with env.begin(write=True) as txn:
        assert txn.put(K511, big) is True
        assert txn.put(b"\xff" * 511, b"") is True
    with env.begin() as txn:
        assert txn.get(K511) == big
        c = txn.cursor()
        assert c.set_key(K511) is True and c.value() == big
        assert c.last() is True and c.item() == (b"\xff" * 511, b"")


# ------------------------------------------------------------------------ argument types


@pytest.mark.needs_c_extension
def test_str_keys_and_values_are_refused(lib, env):
    txn = env.begin(write=True)
    c = txn.cursor()
    calls = [
        lambda: txn.get("a"), lambda: txn.put("a", b"v"), lambda: txn.put(b"a", "v"),
        lambda: txn.delete("a"), lambda: txn.pop("a"), lambda: txn.replace("a", b"v"),
        lambda: txn.replace(b"a", "v"), lambda: c.set_key("a"), lambda: c.set_range("a"),
        lambda: c.get("a"), lambda: c.put("a", b"v"), lambda: c.put(b"a", "v"),
        lambda: c.replace("a", b"v"), lambda: c.pop("a"),
    ]
    for call in calls:
        with pytest.raises(TypeError) as ei:
            call()
        assert str(ei.value) == UNICODE_MSG
    with pytest.raises(TypeError):
        txn.put(1, b"v")
    assert txn.get(b"a") == b"A"
    txn.abort()


@pytest.mark.needs_c_extension
def test_buffer_arguments_are_accepted(env):
    with env.begin(write=True) as txn:
        assert txn.put(bytearray(b"ba"), bytearray(b"BA")) is True
        assert txn.put(memoryview(b"xmv")[1:], memoryview(b"MV")) is True
        assert txn.get(bytearray(b"ba")) == b"BA"
        assert txn.get(memoryview(b"mv")) == b"MV"
        assert txn.put(b"none", None) is True  # None is stored as an empty value
        assert txn.get(b"none") == b""
        assert txn.put(b"empty", b"") is True
        assert txn.get(b"empty") == b""
        c = txn.cursor()
        assert c.set_key(bytearray(b"mv")) is True and c.value() == b"MV"


def test_buffers_true_returns_memoryviews_but_replace_pop_return_bytes(env):
    with env.begin(write=True, buffers=True) as txn:
        assert is_buffer(txn.get(b"a"))
        c = txn.cursor()
        c.first()
        assert is_buffer(c.key()) and is_buffer(c.value())
        assert bytes(c.key()) == b"a"
        assert type(txn.replace(b"a", b"A2")) is bytes
        assert type(txn.pop(b"a")) is bytes
    with env.begin(buffers=False) as txn:
        assert type(txn.get(b"b")) is bytes


# ------------------------------------------------------------------------ read-only


@pytest.mark.needs_c_extension
def test_writes_in_a_read_transaction(lib, env):
    txn = env.begin()
    c = txn.cursor()
    ro = "ReadonlyError"
    raises(lib, ro, lambda: txn.put(b"a", b"x"), "mdb_put", 13)
    raises(lib, ro, lambda: txn.put(b"zz", b"x", overwrite=False), "mdb_put", 13)
    raises(lib, ro, lambda: txn.delete(b"a"), "mdb_del", 13)
    raises(lib, ro, lambda: txn.delete(b"zz"), "mdb_del", 13)
    raises(lib, ro, lambda: txn.replace(b"a", b"x"), "mdb_put", 13)
    raises(lib, ro, lambda: txn.pop(b"a"), "mdb_cursor_del", 13)
    raises(lib, ro, lambda: c.put(b"a", b"x"), "mdb_put", 13)
    raises(lib, ro, lambda: c.replace(b"a", b"x"), "mdb_put", 13)
    raises(lib, ro, lambda: c.pop(b"a"), "mdb_cursor_del", 13)
    c.first()
    raises(lib, ro, c.delete, "mdb_cursor_del", 13)
    # pop of a missing key finds nothing to delete, so it does not fail
    assert txn.pop(b"zz") is None
    e = raises(lib, ro, lambda: txn.put(b"a", b"x"))
    assert str(e) == "mdb_put: Permission denied"
    # still usable
    assert txn.get(b"a") == b"A"
    assert [k for k, _ in txn.cursor()] == [b"a", b"b"]
    txn.abort()


def test_readonly_environment(lib, env, tmp_path):
    env.close()
    path = str(tmp_path / "env")
    ro = lib.open(path, map_size=GiB, readonly=True)
    raises(lib, "ReadonlyError", lambda: ro.begin(write=True), code=13)
    with ro.begin() as txn:
        assert txn.get(b"a") == b"A"
    assert ro.flags()["readonly"] is True
    ro.close()
    missing = str(tmp_path / "missing")
    with pytest.raises(lib.Error):
        lib.open(missing, map_size=GiB, readonly=True)
    assert not (tmp_path / "missing").exists()


# ------------------------------------------------------------------------ closed objects


def assert_closed(lib, fn):
    with pytest.raises(lib.Error) as ei:
        fn()
    assert type(ei.value) is lib.Error
    assert str(ei.value) == CLOSED
    assert ei.value.what == CLOSED
    assert ei.value.code == 0


@pytest.mark.needs_c_extension
def test_use_after_env_close(lib, env):
    w = env.begin(write=True)
    wc = w.cursor()
    wc.first()
    r = env.begin()
    rc = r.cursor()
    it = r.cursor().iternext()
    next(it)
    env.close()
    for fn in [
        env.stat, env.info, env.flags, env.begin, lambda: env.begin(write=True), env.sync,
        env.path, env.max_key_size, lambda: env.set_mapsize(2 * GiB),
        lambda: w.get(b"a"), lambda: w.put(b"a", b"b"), lambda: w.delete(b"a"), w.commit,
        w.id, w.stat, w.cursor, lambda: r.get(b"a"), r.cursor, r.commit,
        wc.first, wc.key, wc.item, wc.next, rc.first, rc.last, lambda: rc.set_key(b"a"),
        lambda: next(it),
    ]:
        assert_closed(lib, fn)
    env.close()  # no-ops
    w.abort()
    r.abort()


def calls_on_ended_txn(txn, c, it):
    return [
        lambda: txn.get(b"a"), lambda: txn.put(b"a", b"b"), lambda: txn.delete(b"a"),
        lambda: txn.pop(b"a"), lambda: txn.replace(b"a", b"b"), txn.cursor, txn.commit,
        txn.id, txn.stat, c.first, c.next, c.key, c.item, c.value, c.delete,
        lambda: c.put(b"a", b"b"), lambda: next(it), lambda: list(c.iternext()),
    ]


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_use_after_commit_and_abort(lib, env, end):
    txn = env.begin(write=True)
    c = txn.cursor()
    c.first()
    it = txn.cursor().iternext()
    next(it)
    getattr(txn, end)()
    for fn in calls_on_ended_txn(txn, c, it):
        assert_closed(lib, fn)
    txn.abort()  # a no-op
    txn.abort()
    with env.begin() as r:
        assert r.get(b"a") == b"A"


def test_use_after_cursor_close(lib, env):
    with env.begin(write=True) as txn:
        c = txn.cursor()
        c.first()
        c.close()
        for fn in [c.first, c.key, c.item, c.next, lambda: c.set_range(b"a"), c.delete,
                   lambda: c.put(b"x", b"y"), lambda: list(c.iternext())]:
            assert_closed(lib, fn)
        c.close()  # a no-op
        assert txn.get(b"a") == b"A"  # the transaction is fine
    with env.begin() as txn:
        with txn.cursor() as c:
            assert c.first() is True
        assert_closed(lib, c.first)


def test_read_txn_commit_twice(lib, env):
    r = env.begin()
    r.commit()
    assert_closed(lib, r.commit)
    r.abort()


# ------------------------------------------------------------------------ map full


def fill_until_full(lib, txn, limit=20000, size=1000):
    for n in range(limit):
        try:
            txn.put(b"fill-%06d" % n, bytes([n % 251]) * size)
        except lib.MapFullError as e:
            return e
    raise AssertionError("the map never filled up")


@pytest.mark.needs_c_extension
def test_map_full_spoils_the_transaction(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=256 * 1024)
    with env.begin(write=True) as txn:
        txn.put(b"keep", b"K")
    last = env.info()["last_txnid"]

    txn = env.begin(write=True)
    c = txn.cursor()
    c.first()
    e = fill_until_full(lib, txn)
    assert e.what == "mdb_put" and e.code == -30792
    assert "Please use a larger Environment(map_size=) parameter" in str(e)
    bt = "BadTxnError"
    raises(lib, bt, lambda: txn.get(b"keep"), "mdb_get", -30782)
    raises(lib, bt, lambda: txn.put(b"a", b"b"), "mdb_put")
    raises(lib, bt, lambda: txn.delete(b"keep"), "mdb_del")
    raises(lib, bt, txn.cursor, "mdb_cursor_open")
    raises(lib, bt, txn.stat, "mdb_stat")
    raises(lib, bt, c.first, "mdb_cursor_get")
    raises(lib, bt, txn.commit, "mdb_txn_commit")
    # the failed commit ended the transaction
    assert_closed(lib, lambda: txn.get(b"keep"))
    txn.abort()

    assert env.info()["last_txnid"] == last
    with env.begin() as r:
        assert list(r.cursor()) == [(b"keep", b"K")]
    with env.begin(write=True) as txn:  # the next transaction works
        assert txn.put(b"next", b"N") is True
    with env.begin() as r:
        assert list(r.cursor()) == [(b"keep", b"K"), (b"next", b"N")]
    env.close()


def test_map_full_in_a_with_block_aborts(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=256 * 1024)
    with env.begin(write=True) as txn:
        txn.put(b"keep", b"K")
    with pytest.raises(lib.MapFullError):
        with env.begin(write=True) as txn:
            for n in range(20000):
                txn.put(b"fill-%06d" % n, b"x" * 1000)
    with env.begin() as r:
        assert list(r.cursor()) == [(b"keep", b"K")]
    env.close()


def test_map_full_with_one_huge_value(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=256 * 1024)
    txn = env.begin(write=True)
    raises(lib, "MapFullError", lambda: txn.put(b"huge", b"x" * (1 << 20)), "mdb_put")
    raises(lib, "BadTxnError", lambda: txn.get(b"huge"))
    txn.abort()
    with env.begin(write=True) as txn:
        assert txn.put(b"small", b"x" * 10000) is True
    env.close()


def test_tiny_map_size(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=10)
    txn = env.begin(write=True)
    raises(lib, "MapFullError", lambda: txn.put(b"a", b"b"))
    raises(lib, "BadTxnError", txn.commit)
    txn.abort()
    assert env.info()["last_txnid"] == 0
    env.close()


def test_set_mapsize_after_map_full(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=256 * 1024)
    txn = env.begin(write=True)
    fill_until_full(lib, txn)
    txn.abort()
    env.set_mapsize(8 << 20)
    with env.begin(write=True) as txn:
        for n in range(1000):
            txn.put(b"fill-%06d" % n, b"x" * 1000)
    assert env.stat()["entries"] == 1000
    assert env.info()["map_size"] == 8 << 20
    env.close()


# ------------------------------------------------------------------------ transaction ids


def test_transaction_ids(lib, env):
    base = env.info()["last_txnid"]
    assert base == 1
    with env.begin() as r:
        assert r.id() == base
    w = env.begin(write=True)
    assert w.id() == base + 1
    w.commit()
    assert env.info()["last_txnid"] == base  # nothing written: no new transaction id
    for op in [lambda t: t.put(b"a", b"x", overwrite=False), lambda t: t.delete(b"zz"),
               lambda t: t.pop(b"zz"), lambda t: t.put(b"a", b"x", append=True),
               lambda t: t.get(b"a"), lambda t: t.cursor().first()]:
        with env.begin(write=True) as t:
            op(t)
        assert env.info()["last_txnid"] == base
    with env.begin(write=True) as t:
        t.put(b"q", b"x")
        t.delete(b"q")  # a no-op in effect, but pages were written
    assert env.info()["last_txnid"] == base + 1
    with env.begin(write=True) as t:
        t.put(b"a", b"A")  # the same value again still writes
    assert env.info()["last_txnid"] == base + 2
    r = env.begin()
    with env.begin(write=True) as t:
        t.put(b"c", b"C")
    assert r.id() == base + 2 and r.get(b"c") is None
    r.abort()


@pytest.mark.needs_c_extension
def test_a_database_handle_from_another_environment(lib, tmp_path):
    """Refused with the lmdb package's plain Error, in every call that takes db=, and nothing
    is written."""
    first = lib.open(str(tmp_path / "a"), max_dbs=2)
    other = lib.open(str(tmp_path / "b"), max_dbs=2)
    db = first.open_db(b"x")
    calls = [
        lambda: other.begin(db=db),
        lambda: other.begin().get(b"k", db=db),
        lambda: other.begin(write=True).put(b"k", b"v", db=db),
        lambda: other.begin().cursor(db=db),
    ]
    for call in calls:
        with pytest.raises(lib.Error) as info:
            call()
        assert type(info.value) is lib.Error
        assert str(info.value) == "Database handle belongs to another environment."
    with other.begin() as txn:
        assert list(txn.cursor()) == []
    first.close()
    other.close()


def test_an_overlarge_duplicate_value(lib, tmp_path):
    """In a dupsort database a value is a key of the duplicates' tree: at most 511 bytes."""
    env = lib.open(str(tmp_path), max_dbs=1)
    db = env.open_db(b"d", dupsort=True)
    with env.begin(write=True, db=db) as txn:
        txn.put(b"k", b"v" * 511)
        with pytest.raises(lib.BadValsizeError):
            txn.put(b"k", b"w" * 512)
    with env.begin(db=db) as txn:
        assert [v for _, v in txn.cursor()] == [b"v" * 511]
    env.close()
