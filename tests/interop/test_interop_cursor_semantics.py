"""Where exactly a cursor stands: explicit sequences, checked on purelmdb and the C binding.

Every test runs twice (``lib`` = the implementation under test, then the C binding), so each
expectation below is a measured fact about py-lmdb 3.0.0 / LMDB 0.9.36. Several of them are
LMDB internals showing through (marked QUIRK): the binding reports a cursor as unpositioned
after a failed move, but LMDB keeps an internal position that the next relative move, or a
re-read after any write in the transaction, starts from. A drop-in has to reproduce them.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.interop

GiB = 1 << 30
KEYS = [b"b", b"d", b"f", b"h", b"m"]
NONE = (b"", b"")


def it(k: bytes):
    return (k, k.upper())


@pytest.fixture
def env(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=GiB)
    with env.begin(write=True) as txn:
        for k in KEYS:
            txn.put(k, k.upper())
    yield env
    env.close()


@pytest.fixture
def txn(env):
    txn = env.begin(write=True)
    yield txn
    txn.abort()


# ------------------------------------------------------------------------ basics


def test_fresh_cursor_is_unpositioned_and_next_prev_start_at_the_ends(txn):
    c = txn.cursor()
    assert c.item() == NONE and c.key() == b"" and c.value() == b""
    assert c.next() is True and c.item() == it(b"b")
    c2 = txn.cursor()
    assert c2.prev() is True and c2.item() == it(b"m")


def test_empty_database_every_move_fails(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=GiB)
    with env.begin() as txn:
        c = txn.cursor()
        for move in (c.first, c.last, c.next, c.prev):
            assert move() is False
            assert c.item() == NONE
        assert c.set_range(b"a") is False
        assert c.set_key(b"a") is False
        assert list(c) == [] and list(c.iterprev()) == []
    env.close()


def test_set_range_and_set_key(txn):
    c = txn.cursor()
    assert c.set_range(b"c") is True and c.item() == it(b"d")
    assert c.set_range(b"d") is True and c.item() == it(b"d")
    assert c.set_range(b"") is True and c.item() == it(b"b")  # b'' behaves like first()
    assert c.set_range(b"z") is False and c.item() == NONE
    assert c.set_key(b"f") is True and c.item() == it(b"f")
    assert c.set_key(b"e") is False and c.item() == NONE
    assert c.get(b"h") == b"H" and c.item() == it(b"h")
    assert c.get(b"g") is None and c.item() == NONE
    assert c.get(b"g", b"dflt") == b"dflt"


def test_walks(txn):
    c = txn.cursor()
    got = []
    ok = c.first()
    while ok:
        got.append(c.key())
        ok = c.next()
    assert got == KEYS
    assert c.item() == NONE
    got = []
    ok = c.last()
    while ok:
        got.append(c.key())
        ok = c.prev()
    assert got == KEYS[::-1]


# ------------------------------------------------------------------------ failed moves (QUIRKS)


@pytest.mark.parametrize("prior", [None, b"b", b"m"])
@pytest.mark.parametrize("probe,after_next,after_prev", [
    (b"a", b"d", None),   # insertion point b: next skips b, prev finds nothing
    (b"c", b"f", b"b"),   # insertion point d: next skips d
    (b"e", b"h", b"d"),
    (b"z", None, b"m"),   # past the end: next fails, prev gives the last record
])
def test_failed_set_key_leaves_an_internal_position(txn, prior, probe, after_next, after_prev):
    """QUIRK: after set_key(k) fails, key()/item() are empty, but LMDB sits on the first key
    > k (the insertion point): next() moves on from there (skipping it), prev() goes to the
    record before it. Same for Cursor.get() of a missing key. Independent of the earlier
    position. (On a multi-page tree this holds when the insertion point is on the leaf the
    search reached; when k is above every key of that leaf, next() lands ON the first key
    of the next leaf instead, without skipping it.)"""
    for op in ("next", "prev"):
        c = txn.cursor()
        if prior is not None:
            c.set_key(prior)
        assert c.set_key(probe) is False
        assert c.item() == NONE
        expected = after_next if op == "next" else after_prev
        assert getattr(c, op)() is (expected is not None)
        assert c.item() == (it(expected) if expected is not None else NONE)
    c = txn.cursor()
    assert c.get(probe) is None
    assert c.next() is (after_next is not None)


def test_set_range_past_end_then_next_and_prev(txn):
    c = txn.cursor()
    c.set_key(b"d")
    assert c.set_range(b"z") is False
    assert c.next() is False and c.item() == NONE
    assert c.prev() is True and c.item() == it(b"m")


def test_next_off_the_end_then_prev_skips_the_last_record(txn):
    """QUIRK: next() past the last record leaves LMDB on the last record (flagged EOF), so a
    following prev() lands on the second-to-last record, not the last."""
    c = txn.cursor()
    c.last()
    assert c.next() is False and c.item() == NONE
    assert c.next() is False
    assert c.prev() is True and c.item() == it(b"h")


def test_prev_off_the_start_then_next_skips_the_first_record(txn):
    """QUIRK: the mirror image: prev() before the first record, then next() gives the second."""
    c = txn.cursor()
    c.first()
    assert c.prev() is False and c.item() == NONE
    assert c.prev() is False
    assert c.next() is True and c.item() == it(b"d")


@pytest.mark.parametrize("how,shows", [
    ("set_key_miss", b"d"),       # set_key(b'c'): insertion point d
    ("get_miss", b"f"),           # Cursor.get(b'e'): insertion point f
    ("next_off_end", b"m"),       # stays on the last record internally
    ("prev_off_start", b"b"),     # stays on the first record internally
    ("iterated_to_end", b"m"),
    ("set_range_past_end", None),
    ("own_delete_last", None),
    ("fresh", None),
])
def test_unpositioned_cursor_is_revived_by_any_write(txn, how, shows):
    """QUIRK: key()/item() re-read LMDB's position after any write in the transaction, even
    for a cursor the binding reports as unpositioned; the cursor then counts as positioned
    again, so delete() deletes that record."""
    c = txn.cursor()
    if how == "set_key_miss":
        c.set_key(b"d")
        c.set_key(b"c")
    elif how == "get_miss":
        c.set_key(b"d")
        c.get(b"e")
    elif how == "next_off_end":
        c.last()
        c.next()
    elif how == "prev_off_start":
        c.first()
        c.prev()
    elif how == "iterated_to_end":
        list(c)
    elif how == "set_range_past_end":
        c.set_range(b"z")
    elif how == "own_delete_last":
        c.last()
        c.delete()
    assert c.item() == NONE
    txn.put(b"zz" if how != "next_off_end" else b"a", b"new")  # any write, elsewhere
    if shows is None:
        assert c.item() == NONE
        assert c.delete() is False
    else:
        assert c.item() == it(shows)
        assert c.delete() is True
        assert txn.get(shows) is None


# ------------------------------------------------------------------------ deletes


def test_delete_moves_to_the_following_record(txn):
    c = txn.cursor()
    c.set_key(b"d")
    assert c.delete() is True
    assert c.item() == it(b"f")
    assert c.next() is True and c.item() == it(b"h")  # next() moves past the shown record
    c.set_key(b"f")
    c.delete()
    assert c.prev() is True and c.item() == it(b"b")


def test_delete_of_the_last_record_unpositions(txn):
    c = txn.cursor()
    c.last()
    assert c.delete() is True
    assert c.item() == NONE
    assert c.delete() is False  # unpositioned: nothing happens
    assert c.next() is False
    assert c.prev() is True and c.item() == it(b"h")  # the new last record
    assert [k for k, _ in txn.cursor()] == [b"b", b"d", b"f", b"h"]


def test_delete_on_unpositioned_cursor_returns_false(txn):
    c = txn.cursor()
    assert c.delete() is False
    c.set_key(b"zz")
    assert c.delete() is False
    assert txn.stat()["entries"] == len(KEYS)


@pytest.mark.parametrize("how", ["other_cursor", "txn_delete", "txn_pop"])
def test_record_deleted_under_a_cursor(txn, how):
    """A cursor whose record another cursor (or the txn) deletes shows the following record;
    if nothing is read in between, next() lands ON that following record (LMDB's C_DEL)."""

    def kill(k):
        if how == "other_cursor":
            o = txn.cursor()
            o.set_key(k)
            o.delete()
        elif how == "txn_delete":
            txn.delete(k)
        else:
            txn.pop(k)

    c = txn.cursor()
    c.set_key(b"d")
    kill(b"d")
    assert c.next() is True and c.item() == it(b"f")

    c.set_key(b"f")
    kill(b"f")
    assert c.prev() is True and c.item() == it(b"b")


@pytest.mark.parametrize("how", ["other_cursor", "txn_delete"])
def test_reading_a_cursor_after_its_record_was_deleted_changes_next(txn, how):
    """QUIRK: key()/item() after the delete re-read the position and clear LMDB's C_DEL flag,
    so next() then skips the record that key() showed."""
    c = txn.cursor()
    c.set_key(b"d")
    if how == "other_cursor":
        o = txn.cursor()
        o.set_key(b"d")
        o.delete()
    else:
        txn.delete(b"d")
    assert c.key() == b"f"
    assert c.next() is True and c.item() == it(b"h")


@pytest.mark.parametrize("insert", [b"e", b"d", b"c", b"g"])
def test_deleted_under_cursor_sticks_to_the_following_record(txn, insert):
    """QUIRK: once its record is deleted by someone else, a cursor stays on the record that
    followed (f) even when a key is then inserted into the gap (e) or the deleted key is put
    back (d): item() shows f, and next() without a read lands on f, skipping e."""
    c = txn.cursor()
    c.set_key(b"d")
    txn.delete(b"d")
    txn.put(insert, b"new")
    assert c.next() is True and c.item() == it(b"f")
    c.set_key(b"f")
    txn.delete(b"f")
    txn.put(b"f", b"again")  # the deleted key put back
    assert c.item() == ((b"g", b"new") if insert == b"g" else it(b"h"))


def test_last_record_deleted_under_a_cursor(txn):
    c = txn.cursor()
    c.last()
    txn.delete(b"m")
    assert c.item() == NONE
    assert c.next() is False
    c.last()
    txn.delete(b"h")
    assert c.prev() is True and c.item() == it(b"f")


def test_two_deletes_by_another_cursor(txn):
    c1 = txn.cursor()
    c1.set_key(b"d")
    c2 = txn.cursor()
    c2.set_key(b"d")
    c2.delete()
    c2.delete()  # deletes f
    assert c1.item() == it(b"h")
    assert c1.next() is True and c1.item() == it(b"m")


def test_writes_elsewhere_keep_the_cursor_on_its_record(txn):
    c = txn.cursor()
    c.set_key(b"f")
    txn.put(b"e", b"E")  # before it
    assert c.item() == it(b"f")
    txn.put(b"g", b"G")  # after it
    assert c.next() is True and c.item() == it(b"g")
    c.set_key(b"f")
    txn.put(b"f", b"x" * 5000)  # overwritten (now on overflow pages)
    assert c.item() == (b"f", b"x" * 5000)
    for i in range(2000):  # many page splits
        txn.put(b"e%05d" % i, b"v" * 50)
    assert c.key() == b"f"
    assert c.next() is True and c.key() == b"g"


# ------------------------------------------------------------------------ cursor writes


def test_put_positions_on_the_written_record(txn):
    c = txn.cursor()
    c.set_key(b"b")
    assert c.put(b"e", b"E") is True
    assert c.item() == it(b"e")
    assert c.next() is True and c.key() == b"f"


def test_refused_put_overwrite_false_positions_on_the_existing_record(txn):
    c = txn.cursor()
    c.set_key(b"b")
    assert c.put(b"f", b"X", overwrite=False) is False
    assert c.item() == it(b"f")


@pytest.mark.parametrize("key", [b"c", b"m", b"a"])
def test_refused_append_positions_on_the_last_record(txn, key):
    """Contrary to api-surface.md section 6 ("it stays where it was"): a refused append
    leaves the cursor on the LAST record."""
    c = txn.cursor()
    c.set_key(b"d")
    assert c.put(key, b"X", append=True) is False
    assert c.item() == it(b"m")
    assert c.next() is False
    assert txn.get(key) == (key.upper() if key in KEYS else None)


def test_append(txn):
    assert txn.put(b"m", b"x", append=True) is False  # equal to the last key
    assert txn.put(b"l", b"x", append=True) is False
    assert txn.get(b"m") == b"M"
    assert txn.put(b"n", b"N", append=True) is True
    assert txn.put(b"o", b"O", append=True, overwrite=False) is True
    assert txn.put(b"o", b"O", append=True, overwrite=False) is False
    c = txn.cursor()
    assert c.put(b"p", b"P", append=True) is True and c.item() == it(b"p")


def test_append_into_empty_database(lib, tmp_path):
    env = lib.open(str(tmp_path), map_size=GiB)
    with env.begin(write=True) as txn:
        assert txn.put(b"\x00", b"", append=True) is True
        assert txn.put(b"\x00", b"", append=True) is False
    env.close()


def test_replace_and_pop_through_a_cursor(txn):
    c = txn.cursor()
    c.set_key(b"d")
    assert c.replace(b"c", b"C") is None and c.item() == it(b"c")
    assert c.replace(b"f", b"F2") == b"F" and c.item() == (b"f", b"F2")
    c.set_key(b"b")
    assert c.pop(b"h") == b"H"  # pop moves the cursor: onto the record after h
    assert c.item() == it(b"m")
    assert c.pop(b"m") == b"M" and c.item() == NONE
    assert c.pop(b"x") is None and c.item() == NONE
    c.set_key(b"b")
    assert c.pop(b"b") == b"B" and c.item() == it(b"c")
    assert type(c.replace(b"c", b"x")) is bytes


# ------------------------------------------------------------------------ iteration


def test_iteration_start_points(txn):
    c = txn.cursor()
    c.set_key(b"f")
    assert list(c.iternext(values=False)) == [b"f", b"h", b"m"]
    assert c.item() == NONE
    # unpositioned: iternext restarts from first(), iterprev from last()
    assert list(c.iternext(values=False)) == KEYS
    assert list(c.iterprev(values=False)) == KEYS[::-1]
    c.set_key(b"f")
    assert list(c.iterprev(values=False)) == [b"f", b"d", b"b"]
    c.set_key(b"f")
    assert list(c.iternext(keys=False)) == [b"F", b"H", b"M"]
    c.set_key(b"f")
    assert list(c.iternext(keys=False, values=False)) == [b"f", b"h", b"m"]  # keys win
    c.set_key(b"c")  # failed: unpositioned, so iteration starts from first()
    assert list(c.iternext(values=False)) == KEYS
    assert list(iter(txn.cursor())) == [it(k) for k in KEYS]


def test_iterator_follows_the_cursor(txn):
    c = txn.cursor()
    out = []
    for k in c.iternext(values=False):
        out.append(k)
        if k == b"b":
            c.set_key(b"f")  # the iterator steps on from wherever the cursor is
    assert out == [b"b", b"h", b"m"]
    out = []
    for k in txn.cursor().iternext(values=False):
        out.append(k)
        if k == b"d":
            txn.put(b"e", b"E")  # a record put ahead of the iterator is seen
    assert out == [b"b", b"d", b"e", b"f", b"h", b"m"]


def test_deleting_with_the_iterating_cursor_skips_every_other_record(txn):
    """delete() moves to the following record, and the iterator then steps past it; after
    deleting the last record the cursor is unpositioned and iteration stops."""
    c = txn.cursor()
    seen = []
    for k, _ in c:
        seen.append(k)
        c.delete()
    assert seen == [b"b", b"f", b"m"]
    assert [k for k, _ in txn.cursor()] == [b"d", b"h"]


def test_deleting_through_the_txn_while_iterating_visits_everything(txn):
    seen = []
    for k in txn.cursor().iternext(values=False):
        seen.append(k)
        txn.delete(k)
    assert seen == KEYS
    assert txn.stat()["entries"] == 0


@pytest.mark.needs_c_extension
def test_iterprev_deleting_the_last_record_stops(txn):
    c = txn.cursor()
    seen = []
    for k in c.iterprev(values=False):
        seen.append(k)
        c.delete()
    assert seen == [b"m"]
    assert txn.stat()["entries"] == 4
