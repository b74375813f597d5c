"""Random damage: whatever the bytes, the checker returns a list of strings or raises
`VerifyError` -- never another exception -- and finishes quickly.

Mutations are aimed at the pages the sound file actually uses (free pages are never read)
and at the meta pages; values are drawn from the ones that hit bounds: 0, 1, page numbers
around last_pg, the page size, all-ones. Each case is reproducible from its seed.
"""

from __future__ import annotations

import io
import random
import struct
import time
from typing import List, Tuple

import pytest

from purelmdb import verify as V

CASES = 400
SLOWEST_CASE = 2.0      # seconds; a clean verify of these files takes a few milliseconds


def _fill(env) -> None:
    dups = env.open_db(b"dups", dupsort=True)
    fixed = env.open_db(b"fixed", dupsort=True, dupfixed=True, integerdup=True)
    ints = env.open_db(b"ints", integerkey=True)
    with env.begin(write=True) as txn:
        for i in range(400):
            txn.put(b"key%04d" % i, b"v" * (i % 40))
        txn.put(b"big1", b"x" * 9000)
        txn.put(b"big2", b"y" * 3000)
        for i in range(6):
            for j in range((2, 5, 450)[i % 3]):
                txn.put(b"d%d" % i, b"dv%04d" % j, db=dups)
                txn.put(b"f%d" % i, struct.pack("<I", j * 7), db=fixed)
        for i in range(300):
            txn.put(struct.pack("<Q", i * 977), b"i", db=ints)
    with env.begin(write=True) as txn:
        for i in range(0, 400, 3):
            txn.delete(b"key%04d" % i)


@pytest.fixture(scope="module")
def sound_file(tmp_path_factory) -> Tuple[bytes, List[int], int]:
    """(file bytes, pages worth mutating, page size) of a small sound file."""
    import lmdb

    path = tmp_path_factory.mktemp("fuzzbase")
    env = lmdb.open(str(path), max_dbs=8, map_size=16 << 20)
    _fill(env)
    env.close()
    data = (path / "data.mdb").read_bytes()
    checker = V._Verifier(io.BytesIO(data), len(data))
    assert checker.verify() == []
    used = sorted(checker.live) + [0, 1]
    return data, used, checker.psize


def _mutate(rnd: random.Random, data: bytearray, used: List[int], psize: int) -> None:
    used = [pgno for pgno in used if (pgno + 1) * psize <= len(data)]   # after a cut
    if len(used) < 3:
        return
    last_pg = len(data) // psize - 1
    pgnos = [0, 1, 2, last_pg, last_pg + 1, rnd.randrange(2, last_pg + 1), (1 << 48) - 1,
             (1 << 64) - 1, 1 << 40]
    u16s = [0, 1, 2, 8, 16, 17, 18, psize - 2, psize, psize + 1, 0xFFFF, rnd.randrange(65536)]
    page = rnd.choice(used) * psize
    kind = rnd.randrange(7)
    if kind == 0:       # a random byte of a used page
        data[page + rnd.randrange(psize)] ^= 1 << rnd.randrange(8)
    elif kind == 1:     # a page header field (or the overflow page count)
        struct.pack_into("<H", data, page + rnd.choice((8, 10, 12, 14)), rnd.choice(u16s))
    elif kind == 2:     # a u16 inside the pointer array or a node header
        off = page + 16 + 2 * rnd.randrange((psize - 16) // 2)
        struct.pack_into("<H", data, off, rnd.choice(u16s))
    elif kind == 3:     # a u64 somewhere: page numbers, counts, record fields
        off = page + 8 * rnd.randrange(psize // 8) + rnd.choice((0, 0, 2, 4, 6))
        struct.pack_into("<Q", data, min(off, len(data) - 8), rnd.choice(pgnos))
    elif kind == 4:     # a meta field: records, last_pg, txnid, page size
        off = rnd.choice((0, psize)) + rnd.choice((40, 44, 46, 48, 56, 64, 72, 80, 88, 92, 94,
                                                   96, 104, 112, 120, 128, 136, 144))
        size = 2 if off % psize in (44, 46, 92, 94) else 8
        value = rnd.choice(pgnos + u16s) & ((1 << (8 * size)) - 1)
        struct.pack_into("<H" if size == 2 else "<Q", data, off, value)
    elif kind == 5:     # a used page copied over another: cycles, shared pages
        src = rnd.choice(used) * psize
        data[page:page + psize] = data[src:src + psize]
    else:               # the file cut short
        del data[rnd.randrange(len(data) // psize) * psize + rnd.choice((0, 100)):]


@pytest.mark.timeout(120)
def test_random_damage_never_crashes(sound_file):
    clean, used, psize = sound_file
    slowest = 0.0
    outcomes = {"problems": 0, "clean": 0, "refused": 0}
    for seed in range(CASES):
        rnd = random.Random(seed)
        data = bytearray(clean)
        for _ in range(rnd.choice((1, 1, 2, 4))):
            _mutate(rnd, data, used, psize)
        started = time.perf_counter()
        try:
            problems = V._Verifier(io.BytesIO(bytes(data)), len(data)).verify()
        except V.VerifyError:
            outcomes["refused"] += 1
        except Exception as exc:    # noqa: BLE001 - the point of the test
            pytest.fail("seed %d: %s: %s" % (seed, type(exc).__name__, exc))
        else:
            assert isinstance(problems, list), seed
            assert all(isinstance(p, str) and p for p in problems), seed
            assert len(problems) <= V.MAX_PROBLEMS + 1, seed
            outcomes["problems" if problems else "clean"] += 1
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < SLOWEST_CASE, slowest
    # the mutations must mostly be noticed (a flip in a value's bytes legitimately is not)
    assert outcomes["problems"] + outcomes["refused"] > CASES * 0.6, outcomes


@pytest.mark.parametrize("edit", ["last_pg", "overflow_pages", "branch_fanout", "self_loop"])
def test_hostile_values_finish_quickly(sound_file, edit):
    """Values chosen to make a naive walker allocate, loop or recurse without end."""
    clean, used, psize = sound_file
    data = bytearray(clean)
    current = psize if struct.unpack_from("<Q", data, psize + 144)[0] > \
        struct.unpack_from("<Q", data, 144)[0] else 0
    main_root = struct.unpack_from("<Q", data, current + 128)[0]
    root = main_root * psize
    if edit == "last_pg":
        struct.pack_into("<Q", data, current + 136, (1 << 64) - 2)
    elif edit == "overflow_pages":     # every page claims to start a 4-billion-page run
        for pgno in used[:-2]:
            struct.pack_into("<HI", data, pgno * psize + 10, 0x04, 0xFFFFFFFF)
    elif edit == "branch_fanout":      # every child of the root is the root's first child
        lower = struct.unpack_from("<H", data, root + 12)[0]
        first = struct.unpack_from("<H", data, root + 16)[0]
        for i in range((lower - 16) // 2):
            struct.pack_into("<H", data, root + 16 + 2 * i, first)
    else:                              # the root's only child is itself, at every level
        struct.pack_into("<HHHH", data, root + 12, 18, psize - 8, psize - 8, 0)
        struct.pack_into("<HHHH", data, root + psize - 8, main_root & 0xFFFF,
                         main_root >> 16 & 0xFFFF, main_root >> 32, 0)
    started = time.perf_counter()
    problems = V._Verifier(io.BytesIO(bytes(data)), len(data)).verify()
    assert problems
    assert time.perf_counter() - started < SLOWEST_CASE


def test_problem_list_is_capped(sound_file):
    clean, used, psize = sound_file
    data = bytearray(clean)
    struct.pack_into("<Q", data, 136, 10 ** 6)      # both metas: a million missing pages
    struct.pack_into("<Q", data, psize + 136, 10 ** 6)
    for pgno in used[:-2]:                             # and every used page broken
        struct.pack_into("<H", data, pgno * psize + 10, 0x99)
    problems = V._Verifier(io.BytesIO(bytes(data)), len(data)).verify()
    assert 1 < len(problems) <= V.MAX_PROBLEMS + 1


def test_verify_on_disk_matches_file_object(sound_file, tmp_path):
    clean, used, psize = sound_file
    data = bytearray(clean)
    rnd = random.Random(7)
    for _ in range(3):
        _mutate(rnd, data, used, psize)
    (tmp_path / "data.mdb").write_bytes(bytes(data))
    try:
        on_disk = V.verify(tmp_path)
    except V.VerifyError:
        return
    assert on_disk == V._Verifier(io.BytesIO(bytes(data)), len(data)).verify()
