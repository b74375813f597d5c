"""File exchange with the C binding and the mdb_* tools (LMDB 0.9.24, Debian lmdb-utils).

* a large file written by the implementation under test is read by the C binding, by
  ``mdb_dump`` (text compared with what it must print) and ``mdb_stat`` (figures compared with
  ``stat()``/``info()`` of both bindings), and reloaded by ``mdb_load``;
* a file the C binding churned (so it has a free list) is read by the implementation, written
  further by it, read back and written by the C binding, and read again by the implementation;
* both naming modes (``subdir=True``: a directory with data.mdb/lock.mdb, ``subdir=False``:
  the file itself plus ``<file>-lock``).
"""

from __future__ import annotations

import os
import random

import pytest
from interop_util import (
    GiB,
    churn,
    contents,
    data_file,
    dump_body,
    first_difference,
    rand_key,
    rand_value,
    read_meta,
    split_dump,
)

pytestmark = pytest.mark.interop

STAT_KEYS = ("psize", "depth", "branch_pages", "leaf_pages", "overflow_pages", "entries")


def store_path(tmp_path, name: str, subdir: bool) -> str:
    if subdir:
        os.makedirs(tmp_path / name, exist_ok=True)
        return str(tmp_path / name)
    return str(tmp_path / (name + ".mdb"))


def env_figures(mod, path: str, subdir: bool):
    env = mod.open(path, map_size=GiB, subdir=subdir, readonly=True)
    try:
        stat = env.stat()
        info = env.info()
        items = contents(env)
    finally:
        env.close()
    return stat, info, items


def check_tools(mdb_tools, path: str, subdir: bool, items, stat, info) -> None:
    """mdb_stat and mdb_dump agree with the expected records and figures."""
    figures = mdb_tools.stat(path, subdir)
    main, envinfo = figures["main"], figures["env"]
    assert main["Tree depth"] == stat["depth"]
    assert main["Branch pages"] == stat["branch_pages"]
    assert main["Leaf pages"] == stat["leaf_pages"]
    assert main["Overflow pages"] == stat["overflow_pages"]
    assert main["Entries"] == stat["entries"] == len(items)
    assert envinfo["Page size"] == stat["psize"]
    assert envinfo["Number of pages used"] == info["last_pgno"] + 1
    assert envinfo["Last transaction ID"] == info["last_txnid"]

    header, body = split_dump(mdb_tools.dump(path, subdir))
    assert header["VERSION"] == "3"
    assert header["format"] == "bytevalue"
    assert header["type"] == "btree"
    assert int(header["db_pagesize"]) == stat["psize"]
    assert int(header["mapsize"]) >= (info["last_pgno"] + 1) * stat["psize"]
    assert "duplicates" not in header
    expected = dump_body(items)
    if body != expected:
        pytest.fail("mdb_dump output differs: " + first_difference(body, expected))


# ------------------------------------------------------------------------ (b) a big file


def big_history(seed: int):
    """Transactions of a 100,000+ key history: batches of puts in random order, overflow
    values up to 1 MiB, then deletes (scattered and a contiguous run) and overwrites."""
    rng = random.Random(seed)
    keys = set()
    keys.update(bytes([i]) for i in range(256))  # every 1-byte key
    keys.update(rng.randbytes(511) for _ in range(50))
    keys.update(b"\xff" * 8 + rng.randbytes(503) for _ in range(50))
    while len(keys) < 115_000:
        keys.add(rand_key(rng))
    keys = list(keys)
    rng.shuffle(keys)
    values = {k: rand_value(rng, big=0.001) for k in keys}
    for k in rng.sample(keys, 5):
        values[k] = rng.randbytes(rng.randint(256 * 1024, 1 << 20))
    values[keys[0]] = rng.randbytes(1 << 20)
    txns = [[("put", k, values[k]) for k in keys[i:i + 11_500]]
            for i in range(0, len(keys), 11_500)]
    order = sorted(keys)
    start = rng.randrange(len(order) - 3000)
    doomed = set(rng.sample(keys, 10_000)) | set(order[start:start + 2000])
    txns.append([("delete", k, None) for k in sorted(doomed)])
    survivors = [k for k in keys if k not in doomed]
    final = []
    for k in rng.sample(survivors, 300):
        v = rng.randbytes(rng.choice([0, 5, 3000, 70_000]))
        final.append(("put", k, v))
    txns.append(final)
    model = {}
    for txn in txns:
        for op, k, v in txn:
            if op == "put":
                model[k] = v
            else:
                del model[k]
    return txns, model


@pytest.mark.slow
def test_big_file_written_by_impl(impl, clmdb, mdb_tools, tmp_path, sound, sound_c):
    subdir = True  # the other naming mode is covered by the smaller tests below
    txns, model = big_history(seed=4242)
    assert len(model) >= 100_000
    path = store_path(tmp_path, "big", subdir)
    env = impl.open(path, map_size=GiB, subdir=subdir)
    for ops in txns:
        with env.begin(write=True) as txn:
            put, delete = txn.put, txn.delete
            for op, k, v in ops:
                if op == "put":
                    put(k, v)
                else:
                    assert delete(k) is True
    impl_stat, impl_info = env.stat(), env.info()
    env.close()
    assert impl_info["last_txnid"] == len(txns)
    items = sorted(model.items())
    sound(path, subdir=subdir)
    sound_c(path, subdir=subdir)

    c_stat, c_info, c_items = env_figures(clmdb, path, subdir)
    assert c_items == items
    assert c_stat == impl_stat
    assert c_info["last_pgno"] == impl_info["last_pgno"]
    assert c_info["last_txnid"] == impl_info["last_txnid"]
    assert c_stat["overflow_pages"] > 256 and c_stat["depth"] >= 3

    meta = read_meta(path, subdir)
    assert meta["version"] == 1
    assert meta["txnid"] == impl_info["last_txnid"]
    assert meta["last_pg"] == impl_info["last_pgno"]
    assert meta["main_entries"] == len(items)

    check_tools(mdb_tools, path, subdir, items, c_stat, c_info)

    # mdb_load rebuilds it from the dump; the implementation reads the result
    dump = tmp_path / "big.dump"
    dump.write_text(mdb_tools.dump(path, subdir), encoding="latin-1")
    loaded = store_path(tmp_path, "loaded", True)
    mdb_tools.run("mdb_load", "-f", str(dump), loaded)
    stat2, info2, items2 = env_figures(impl, loaded, True)
    assert items2 == items
    assert stat2["entries"] == len(items)


# ------------------------------------------------------------------------ (c) churn round trip


@pytest.mark.parametrize("subdir", [True, False], ids=["subdir", "file"])
def test_churned_file_round_trip(impl, clmdb, mdb_tools, tmp_path, sound, sound_c, subdir):
    rng = random.Random(77 + subdir)
    keyspace = sorted({rand_key(rng) for _ in range(5000)})
    model: dict = {}
    path = store_path(tmp_path, "churn", subdir)

    # 1. the C binding writes with churn: a free list appears
    env = clmdb.open(path, map_size=GiB, subdir=subdir)
    churn(env, rng, model, keyspace, n_txns=40, ops_per_txn=300)
    c_stat, c_info = env.stat(), env.info()
    env.close()
    meta = read_meta(path, subdir)
    assert meta["free_entries"] > 0, "the C binding's history left no free pages"
    assert meta["txnid"] == c_info["last_txnid"]

    # 2. the implementation reads it identically
    env = impl.open(path, map_size=GiB, subdir=subdir)
    assert contents(env) == sorted(model.items())
    assert env.stat() == c_stat
    info = env.info()
    assert (info["last_pgno"], info["last_txnid"]) == (c_info["last_pgno"], c_info["last_txnid"])
    with env.begin() as txn:
        c = txn.cursor()
        ordered = sorted(model)
        for probe in rng.sample(keyspace, 300) + [b"\x00", b"\xff" * 511]:
            assert txn.get(probe) == model.get(probe)
            ceil = next((k for k in ordered if k >= probe), None)
            assert c.set_range(probe) is (ceil is not None)
            if ceil is not None:
                assert c.key() == ceil and c.value() == model[ceil]

    # 3. ... then writes further: puts, deletes, overflow values grown and shrunk
    before = read_meta(path, subdir)["last_pg"]
    churn(env, rng, model, keyspace, n_txns=15, ops_per_txn=300)
    impl_stat, impl_info = env.stat(), env.info()
    env.close()
    assert impl_info["last_txnid"] > c_info["last_txnid"]
    sound(path, subdir=subdir)
    sound_c(path, subdir=subdir)
    assert read_meta(path, subdir)["last_pg"] >= before

    # 4. the C binding reads the result, then writes again
    env = clmdb.open(path, map_size=GiB, subdir=subdir)
    assert contents(env) == sorted(model.items())
    assert env.stat() == impl_stat
    assert env.info()["last_pgno"] == impl_info["last_pgno"]
    assert env.info()["last_txnid"] == impl_info["last_txnid"]
    churn(env, rng, model, keyspace, n_txns=10, ops_per_txn=300)
    c_stat, c_info = env.stat(), env.info()
    env.close()

    # 5. the implementation reads that
    stat, info, items = env_figures(impl, path, subdir)
    assert items == sorted(model.items())
    assert stat == c_stat
    assert info["last_txnid"] == c_info["last_txnid"]
    sound(path, subdir=subdir)

    check_tools(mdb_tools, path, subdir, items, stat, info)


# ------------------------------------------------------------------------ (d) naming modes


def listing(root) -> list:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


@pytest.mark.parametrize("lock", [True, False], ids=["lock", "nolock"])
@pytest.mark.parametrize("subdir", [True, False], ids=["subdir", "file"])
def test_naming_modes(impl, clmdb, tmp_path, subdir, lock):
    """Both bindings create the same files, and each reads the other's store."""
    stores = {}
    for name, mod in (("impl", impl), ("c", clmdb)):
        root = tmp_path / name
        root.mkdir()
        path = str(root / "env") if subdir else str(root / "store.mdb")
        env = mod.open(path, map_size=GiB, subdir=subdir, lock=lock)
        assert env.path() == path
        flags = env.flags()
        assert flags["subdir"] is subdir and flags["lock"] is lock
        with env.begin(write=True) as txn:
            txn.put(b"written-by", name.encode())
            txn.put(b"big", b"x" * 10_000)
        env.close()
        stores[name] = (root, path)
    assert listing(stores["impl"][0]) == listing(stores["c"][0])
    expected = {(True, True): ["env/data.mdb", "env/lock.mdb"],
                (True, False): ["env/data.mdb"],
                (False, True): ["store.mdb", "store.mdb-lock"],
                (False, False): ["store.mdb"]}[(subdir, lock)]
    assert listing(stores["c"][0]) == expected

    for reader, writer in ((impl, "c"), (clmdb, "impl")):
        path = stores[writer][1]
        env = reader.open(path, map_size=GiB, subdir=subdir, lock=lock, readonly=True)
        with env.begin() as txn:
            assert txn.get(b"written-by") == writer.encode()
            assert txn.get(b"big") == b"x" * 10_000
        env.close()
    assert os.path.getsize(data_file(stores["impl"][1], subdir)) >= 4 * 4096


@pytest.mark.parametrize("subdir", [True, False], ids=["subdir", "file"])
def test_wrong_naming_mode_is_refused(impl, clmdb, tmp_path, subdir):
    """A directory opened with subdir=False, or a file opened with subdir=True, fails."""
    path = store_path(tmp_path, "s", subdir)
    env = clmdb.open(path, map_size=GiB, subdir=subdir)
    env.close()
    for mod in (clmdb, impl):
        with pytest.raises(mod.Error):
            mod.open(path, map_size=GiB, subdir=not subdir, create=False)


def test_fresh_store_meta_and_figures(impl, clmdb, tmp_path):
    """A new, empty store: same meta fields and figures from both bindings."""
    for name, mod in (("impl", impl), ("c", clmdb)):
        path = store_path(tmp_path, name, True)
        env = mod.open(path, map_size=GiB)
        assert env.stat() == dict(psize=4096, depth=0, branch_pages=0, leaf_pages=0,
                                  overflow_pages=0, entries=0)
        info = env.info()
        assert (info["last_pgno"], info["last_txnid"], info["map_size"]) == (1, 0, GiB)
        env.close()
        meta = read_meta(path, True)
        assert (meta["version"], meta["txnid"], meta["last_pg"], meta["mapsize"]) == (1, 0, 1, GiB)
        assert meta["main_root"] == meta["free_root"] == 2 ** 64 - 1  # P_INVALID
    env = clmdb.open(store_path(tmp_path, "impl", True), map_size=GiB)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v")
    env.close()
    env = impl.open(store_path(tmp_path, "impl", True), map_size=GiB)
    assert contents(env) == [(b"k", b"v")]
    env.close()
