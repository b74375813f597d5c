"""The engine's fast paths give the same results as the plain ones.

Each speed-up of page.py, txn.py and cursor.py has a slow twin it must agree with: the
uniform-leaf and patched-branch encoders with a node-by-node reference encoder (and with
`decode`), the raw leaf search with a lookup in the decoded page, a lookup with a full page
cache with one that has room, an iterator that shares its cursor with the caller with the C
binding, and a bulk append with the C binding too.
"""

from __future__ import annotations

import random
import struct
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

purelmdb = pytest.importorskip("purelmdb")
from purelmdb import page as pagemod  # noqa: E402
from purelmdb.layout import F_BIGDATA, F_SUBDATA, P_BRANCH, P_LEAF  # noqa: E402

PSIZE = 4096
NODE = struct.Struct("<HHHH")


def reference_encode(page: Any, read: Any) -> bytes:
    """LMDB's layout, node by node, in the most obvious way."""
    n = len(page.keys)
    nodes: List[bytes] = []
    for i in range(n):
        k = page.keys[i][::-1] if page.rev else page.keys[i]
        if page.flags & P_BRANCH:
            c = page.vals[i]
            k = b"" if i == 0 else k
            node = NODE.pack(c & 0xFFFF, (c >> 16) & 0xFFFF, c >> 32, len(k)) + k
        else:
            v, ds, fl = page.vals[i], page.sizes[i], page.nfl[i]
            data = struct.pack("<Q", v) if fl & F_BIGDATA else (read(v, ds) if isinstance(v, int) else v)
            node = NODE.pack(ds & 0xFFFF, ds >> 16, fl, len(k)) + k + data
        nodes.append(node + b"\0" * (len(node) & 1))
    ptrs, upper = [], PSIZE
    for node in nodes:
        upper -= len(node)
        ptrs.append(upper)
    lower = 16 + 2 * n
    head = struct.pack("<QHHHH", page.pgno, 0, page.flags, lower, upper)
    return head + struct.pack("<%dH" % n, *ptrs) + bytes(upper - lower) + b"".join(reversed(nodes))


keys_st = st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=25, unique=True)


@settings(max_examples=60)
@given(keys=keys_st, rev=st.booleans(), uniform=st.booleans(), data=st.data())
def test_leaf_encoders_match_the_reference(keys: List[bytes], rev: bool, uniform: bool,
                                           data: Any) -> None:
    if uniform:
        width = len(keys[0])
        keys = sorted({(k * width)[:width] for k in keys})
    else:
        keys = sorted(keys)
    n = len(keys)
    size = data.draw(st.integers(0, 60))
    vals: List[Any] = []
    sizes: List[int] = []
    nfl: List[int] = []
    for i in range(n):
        kind = data.draw(st.sampled_from(["bytes", "map"] if uniform else
                                         ["bytes", "map", "big", "sub"]))
        ds = size if uniform else data.draw(st.integers(0, 60))
        if kind == "big":
            vals.append(data.draw(st.integers(2, 1 << 40)))
            sizes.append(5000)
            nfl.append(F_BIGDATA)
        elif kind == "sub":
            vals.append(bytes(48))
            sizes.append(48)
            nfl.append(F_SUBDATA)
        else:
            vals.append(bytes([i % 256]) * ds)
            sizes.append(ds)
            nfl.append(0)
    page = pagemod.Page(7, P_LEAF, keys, vals, sizes, nfl, 0, 1, rev)
    expected = reference_encode(page, None)
    # the same page, written once and copied: values that stay in the map are taken from it
    image = pagemod.encode(page, PSIZE, None)
    assert image == expected
    m = bytes(7 * PSIZE) + image
    clean = pagemod.decode(m, 7, PSIZE, rev)
    assert clean.keys == keys and clean.sizes == sizes and clean.nfl == nfl
    assert clean.used == sum(pagemod.leaf_node_size(len(k), ds, fl)
                             for k, ds, fl in zip(keys, sizes, nfl))
    for i in range(n):
        if not nfl[i]:
            assert m[clean.vals[i]:clean.vals[i] + sizes[i]] == vals[i]
    copy = clean.copy(9, 2)
    for i in range(n):
        if data.draw(st.booleans()) and not copy.nfl[i]:
            copy.vals[i] = vals[i]          # rewritten in the transaction
    read = lambda off, ds: m[off:off + ds]  # noqa: E731
    image = pagemod.encode(copy, PSIZE, m)
    assert image == reference_encode(copy, read)
    # the commit's encoder gives the same bytes, and value offsets a uniform leaf knows
    # from its layout agree with those read back from the bytes
    again, starts = pagemod.encode_for_commit(copy, PSIZE, m)
    assert again == image
    assert list(starts) == list(pagemod.value_offsets(copy, image))
    # after the commit the cached page points at the image it was written as
    pagemod.adopt_image(copy, pagemod.value_offsets(copy, image), 9 * PSIZE)
    m2 = m + bytes(PSIZE) + image
    for i in range(n):
        if not copy.nfl[i]:
            assert m2[copy.vals[i]:copy.vals[i] + copy.sizes[i]] == vals[i]


def test_uniform_decode_with_values_tells_value_sizes_of_one_node_size_apart() -> None:
    """Values of 14 and 15 bytes under 9-byte keys make nodes of one size (32 bytes, the
    14-byte ones padded): decoding with the values must not reuse one's layout for the
    other (it once did, and cut every 15-byte value read past the cache by a byte)."""
    for ds in (14, 15, 14):
        keys = [b"key%06d" % i for i in range(20)]
        vals = [bytes([65 + i]) * ds for i in range(20)]
        page = pagemod.Page(3, P_LEAF, keys, vals, [ds] * 20, [0] * 20, 0, 1, False)
        m = bytes(3 * PSIZE) + pagemod.encode(page, PSIZE, None)
        values: List[bytes] = []
        clean = pagemod.decode(m, 3, PSIZE, False, values)
        assert clean.keys == keys and values == vals


@settings(max_examples=40)
@given(keys=keys_st, rev=st.booleans(), data=st.data())
def test_branch_encoders_match_the_reference(keys: List[bytes], rev: bool, data: Any) -> None:
    keys = [b""] + sorted(keys)
    n = len(keys)
    children = [data.draw(st.integers(2, (1 << 48) - 1)) for _ in range(n)]
    page = pagemod.Page(5, P_BRANCH, keys, children, None, None, 0, 1, rev)
    image = pagemod.encode(page, PSIZE, None)
    assert image == reference_encode(page, None)
    m = bytes(5 * PSIZE) + image
    clean = pagemod.decode(m, 5, PSIZE, rev)
    copy = clean.copy(11, 3)
    for _ in range(data.draw(st.integers(0, 3))):
        copy.set_child(data.draw(st.integers(0, n - 1)), data.draw(st.integers(2, 1 << 40)))
    if data.draw(st.booleans()):
        # a structural change after the re-links: the patch must not be used
        copy.keys.append(b"\xff" * 50)
        copy.vals.append(12345)
    out = pagemod.encode(copy, PSIZE, m)
    back = pagemod.decode(bytes(11 * PSIZE) + out, 11, PSIZE, rev)
    assert back.keys == copy.keys
    assert back.vals == copy.vals


@settings(max_examples=60)
@given(keys=keys_st, rev=st.booleans(), data=st.data())
def test_patched_leaf_matches_the_page_it_encodes(keys: List[bytes], rev: bool,
                                                  data: Any) -> None:
    """One node inserted into a clean leaf's copy is patched into the old bytes; the result
    decodes to the copy's records wherever the node goes, and any other change on top of
    the insert (or a node kind the patch does not write) takes the full encoder."""
    keys = sorted(keys)
    new_key = data.draw(st.binary(min_size=1, max_size=40).filter(lambda k: k not in keys))
    n = len(keys)
    sizes = [data.draw(st.integers(0, 60)) for _ in range(n)]
    vals = [bytes([i % 256]) * ds for i, ds in enumerate(sizes)]
    page = pagemod.Page(7, P_LEAF, keys, vals, sizes, [0] * n, 0, 1, rev)
    m = bytes(7 * PSIZE) + pagemod.encode(page, PSIZE, None)
    clean = pagemod.decode(m, 7, PSIZE, rev)
    copy = clean.copy(9, 2)
    i = sum(k < new_key for k in keys)
    kind = data.draw(st.sampled_from(["inline", "big", "sub"]))
    value: Any = {"inline": b"v" * data.draw(st.integers(0, 200)), "big": 77,
                  "sub": bytes(48)}[kind]
    size = 9000 if kind == "big" else len(value)
    flag = {"inline": 0, "big": F_BIGDATA, "sub": F_SUBDATA}[kind]
    copy.inserted = i
    copy.keys.insert(i, new_key)
    copy.vals.insert(i, value)
    copy.sizes.insert(i, size)
    copy.nfl.insert(i, flag)
    expected = vals[:]
    expected.insert(i, value)
    other_change = n > 1 and data.draw(st.booleans())
    if other_change:
        j = data.draw(st.sampled_from([j for j in range(n + 1) if j != i]))
        copy.vals[j] = expected[j] = b"changed"
        copy.sizes[j] = 7
    patched = pagemod._patch_leaf(copy, clean, PSIZE, m)
    assert (patched is not None) == (kind != "sub" and not other_change)
    out = pagemod.encode(copy, PSIZE, m)
    again, starts = pagemod.encode_for_commit(copy, PSIZE, m)
    assert again == out
    if patched is not None:
        assert out == patched[0] and starts == patched[1]
    assert [s for s, f in zip(starts, copy.nfl) if not f] == \
        [s for s, f in zip(pagemod.value_offsets(copy, out), copy.nfl) if not f]
    m2 = bytes(9 * PSIZE) + out
    back = pagemod.decode(m2, 9, PSIZE, rev)
    assert back.keys == copy.keys and back.nfl == copy.nfl and back.sizes == copy.sizes
    got = [m2[v:v + ds] if not fl else v for v, ds, fl in zip(back.vals, back.sizes, back.nfl)]
    assert got == expected




@settings(max_examples=60)
@given(keys=keys_st, rev=st.booleans(), probes=st.lists(st.binary(min_size=1, max_size=40)))
def test_raw_leaf_search_agrees_with_the_decoded_page(keys: List[bytes], rev: bool,
                                                      probes: List[bytes]) -> None:
    keys = sorted(keys)
    vals = [k * 2 for k in keys]
    nfl = [F_SUBDATA if len(k) == 7 else 0 for k in keys]
    page = pagemod.Page(3, P_LEAF, keys, vals, [len(v) for v in vals], nfl, 0, 1, rev)
    m = bytes(3 * PSIZE) + pagemod.encode(page, PSIZE, None)
    for probe in keys + probes:
        found = pagemod.find_in_leaf(m, 3, PSIZE, probe, rev, 3)
        if probe not in keys:
            assert found is None
        elif len(probe) == 7:
            assert found is pagemod.DECODE
        else:
            assert m[found] == probe * 2
    # a page that is not a plain leaf is left to decode
    assert pagemod.find_in_leaf(m, 3, PSIZE, keys[0], rev, 2) is pagemod.DECODE


def _fill(env: Any, db: Any, n: int) -> List[bytes]:
    keys = [b"%07d" % (i * 7919 % 100003) for i in range(n)]
    with env.begin(write=True, db=db) as txn:
        for k in keys:
            txn.put(k, k[::-1] * 3)
    return keys


@pytest.mark.parametrize("flags", [{}, {"reverse_key": True}])
@pytest.mark.parametrize("buffers", [False, True])
def test_get_with_a_full_cache_searches_raw_leaves(tmp_path: Any, flags: Any,
                                                   buffers: bool) -> None:
    env = purelmdb.open(str(tmp_path), max_dbs=2, map_size=64 << 20)
    db = env.open_db(b"d", **flags)
    keys = _fill(env, db, 3000)
    env._caches = [{}, {}]
    env._cache_pages = 3            # root, a branch or two: every leaf is looked up raw
    with env.begin(db=db, buffers=buffers) as txn:
        for k in keys:
            assert bytes(txn.get(k)) == k[::-1] * 3
        assert txn.get(b"missing") is None
        assert txn.get(b"0000000a") is None
    assert max(len(c) for c in env._caches) <= 3
    env.close()


@pytest.mark.parametrize("reverse_key", [False, True])
def test_puts_into_owned_leaves_match_c(tmp_path: Any, clmdb: Any, reverse_key: bool) -> None:
    """put() inserts into, and updates same-size values in, leaves the transaction owns
    itself; everything else goes through _put. Both against the C binding, with cursors
    looking on, refused overwrites, size changes, deletes and overflow values."""
    results = []
    for mod, path in ((purelmdb, tmp_path / "p"), (clmdb, tmp_path / "c")):
        path.mkdir()
        env = mod.open(str(path), map_size=64 << 20, max_dbs=2)
        db = env.open_db(b"t", reverse_key=reverse_key)
        rnd = random.Random(7)
        out: List[Any] = []
        with env.begin(write=True, db=db) as txn:
            cur = txn.cursor()
            for _step in range(6000):
                k = b"%05d" % rnd.randrange(3000)
                r = rnd.random()
                if r < 0.6:
                    v = k * rnd.choice([1, 1, 1, 2, 3]) if rnd.random() < 0.95 else b"z" * 3000
                    out.append(txn.put(k, v, overwrite=rnd.random() < 0.9))
                elif r < 0.8:
                    out.append(txn.delete(k))
                elif r < 0.9:
                    out.append((cur.set_range(k), bytes(cur.key()), bytes(cur.value())))
                else:
                    out.append((cur.next(), bytes(cur.key()), bytes(cur.value())))
        with env.begin(db=db) as txn:
            out.append([(bytes(k), bytes(v)) for k, v in txn.cursor()])
        results.append(out)
        env.close()
    assert results[0] == results[1]


def _indexes(env: Any) -> List[Any]:
    return [p for cache in env._caches for p in cache.values()
            if p.flags & P_BRANCH and p.below]


@pytest.mark.parametrize("records,cache_pages", [(600, 8192), (30000, 8192), (30000, 1024)])
@pytest.mark.parametrize("flags", [{}, {"reverse_key": True}])
@pytest.mark.parametrize("buffers", [False, True])
def test_gets_through_a_branch_index(tmp_path: Any, monkeypatch: Any, records: int,
                                     cache_pages: int, flags: Any, buffers: bool) -> None:
    """A branch page's index of the records below it (the root's when the tree is small
    enough, else the branches above the leaves) answers as the tree does, and a commit
    leaves older snapshots on their own index and newer ones on the new tree."""
    from purelmdb import txn as txnmod
    monkeypatch.setattr(txnmod, "_INDEX_AFTER", 1)
    env = purelmdb.open(str(tmp_path), max_dbs=2, map_size=256 << 20)
    env._cache_pages = cache_pages
    db = env.open_db(b"d", **flags)
    keys = _fill(env, db, records)
    old = env.begin(db=db, buffers=buffers)
    for _ in range(3):      # enough lookups for every branch to build its index
        for k in keys:
            assert bytes(old.get(k)) == k[::-1] * 3
    built = _indexes(env)
    assert built, "no branch page built an index"
    depth = old.stat()["depth"]
    root_indexed = any(len(p.below) == records for p in built)
    assert root_indexed == (depth > 2 and records <= cache_pages * 16 or depth == 2)
    assert old.get(b"missing", b"dflt") == b"dflt" and old.get(b"0000000a") is None
    with env.begin(write=True, db=db) as w:
        for k in keys[::7]:
            w.put(k, b"new")
        w.delete(keys[1])
    new = env.begin(db=db, buffers=buffers)
    for _ in range(3):
        for i, k in enumerate(keys):
            want = None if i == 1 else b"new" if i % 7 == 0 else k[::-1] * 3
            got = new.get(k)
            assert (None if got is None else bytes(got)) == want
            assert bytes(old.get(k)) == k[::-1] * 3       # the old snapshot is intact
    old.abort()
    new.abort()
    env.close()


def test_no_branch_index_over_overflow_values(tmp_path: Any, monkeypatch: Any) -> None:
    from purelmdb import txn as txnmod
    monkeypatch.setattr(txnmod, "_INDEX_AFTER", 1)
    env = purelmdb.open(str(tmp_path), map_size=256 << 20)
    with env.begin(write=True) as txn:
        for i in range(3000):
            txn.put(b"%08d" % i, b"v" * (5000 if i == 1500 else 20))
    with env.begin() as txn:
        for _ in range(3):
            for i in range(3000):
                assert len(txn.get(b"%08d" % i)) == (5000 if i == 1500 else 20)
    refused = [p for p in env._caches[0].values() if p.flags & P_BRANCH and p.below is False]
    assert refused and all(p.below is False or len(p.below) < 3000 for p in refused + _indexes(env))
    env.close()


def test_cache_eviction_keeps_branch_pages(tmp_path: Any) -> None:
    env = purelmdb.open(str(tmp_path), map_size=64 << 20)
    keys = _fill(env, None, 5000)
    env._caches = [{}, {}]
    env._cache_pages = 40
    with env.begin() as txn:
        assert sum(1 for _ in txn.cursor()) == len(keys)
        branches = [p for p in env._caches[0].values() if p.flags & P_BRANCH]
        assert branches and len(env._caches[0]) <= 40
        assert txn.stat()["branch_pages"] == len(branches)
    env.close()


def test_iterator_shares_its_cursor(tmp_path: Any, clmdb: Any) -> None:
    """Cursor calls between the steps of an iterator move it, as in the C binding."""
    results = []
    for mod, path in ((purelmdb, tmp_path / "p"), (clmdb, tmp_path / "c")):
        path.mkdir()
        env = mod.open(str(path), map_size=64 << 20)
        with env.begin(write=True) as txn:
            for i in range(400):
                txn.put(b"%04d" % i, b"v" * (i % 300 + 900))   # few records a leaf
        seen = []
        with env.begin(write=True) as txn:
            cur = txn.cursor()
            for n, (k, v) in enumerate(cur.iternext()):
                seen.append((bytes(k), len(v)))
                if n % 7 == 3:
                    cur.next()
                    seen.append(bytes(cur.key()))
                if n % 11 == 5:
                    txn.put(b"%04da" % n, b"new")
                if n % 13 == 6:
                    cur.delete()
                if len(seen) > 1000:
                    break
        results.append(seen)
        env.close()
    assert results[0] == results[1]


@pytest.mark.parametrize("reverse_key", [False, True])
def test_appends_mixed_with_other_writes(tmp_path: Any, clmdb: Any, reverse_key: bool) -> None:
    """Appends (inlined in put() while the last leaf has room) among inserts, deletes,
    refused appends, overflow values and a cursor that watches the tree's end."""
    results = []
    for mod, path in ((purelmdb, tmp_path / "p"), (clmdb, tmp_path / "c")):
        path.mkdir()
        env = mod.open(str(path), map_size=64 << 20, max_dbs=2)
        db = env.open_db(b"t", reverse_key=reverse_key)
        key = (lambda n: (b"%06d" % n)[::-1]) if reverse_key else (lambda n: b"%06d" % n)
        out: List[Any] = []
        with env.begin(write=True, db=db) as txn:
            cur = txn.cursor()
            for i in range(3000):
                value = b"y" * 3000 if i % 211 == 0 else b"x" * (i % 90)
                out.append(txn.put(key(2 * i), value, append=True))
                if i % 97 == 0:
                    out.append(txn.put(key(2 * i - 1), b"between"))
                    out.append(txn.put(key(i), b"late", append=True))
                if i % 301 == 0:
                    txn.delete(key(2 * i))
                if i % 53 == 0:
                    out.append((cur.last(), bytes(cur.key()), cur.prev(), bytes(cur.key())))
                if i % 59 == 0:
                    out.append((cur.next(), bytes(cur.key())))
        with env.begin(db=db) as txn:
            out.append([(bytes(k), bytes(v)) for k, v in txn.cursor()])
        results.append(out)
        env.close()
    assert results[0] == results[1]


def test_eviction_stays_bounded_when_the_cache_holds_only_branches() -> None:
    from purelmdb.txn import _evict
    cache = {pgno: pagemod.Page(pgno, P_BRANCH, [b""], [2], None, None, 10, 0, False)
             for pgno in range(2, 30)}
    for _ in range(5):
        _evict(cache)
    assert len(cache) == 23
