"""Damaged copies of sound files: each kind of damage must produce its specific problem.

Two base files are built once by the C binding: ``plain`` (a depth-2 main DB with deleted
keys, hence free-list records, and overflow values) and ``dbs`` (named DBs, a DUPSORT DB with
sub-pages and sub-databases, a DUPFIXED DB with LEAF2 sub-pages and sub-databases). Each test
edits a copy byte by byte through `Image` and checks the problem strings.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from purelmdb import verify as V
from purelmdb.layout import (
    F_DUPDATA,
    F_SUBDATA,
    P_BRANCH,
    P_DIRTY,
    P_INVALID,
    P_LEAF,
    P_LEAF2,
    P_META,
    P_OVERFLOW,
)


def _fill_plain(env) -> None:
    with env.begin(write=True) as txn:
        for i in range(2000):
            txn.put(b"k%06d" % i, b"v" * 20)
    with env.begin(write=True) as txn:
        for i in range(30):
            txn.put(b"big%03d" % i, bytes([i]) * 9000)
    with env.begin(write=True) as txn:
        for i in range(0, 2000, 3):
            txn.delete(b"k%06d" % i)
    with env.begin(write=True) as txn:
        for i in range(0, 30, 4):
            txn.delete(b"big%03d" % i)


def _fill_dbs(env) -> None:
    a, b = env.open_db(b"a"), env.open_db(b"b")
    dups = env.open_db(b"d", dupsort=True)
    fixed = env.open_db(b"f", dupsort=True, dupfixed=True)
    with env.begin(write=True) as txn:
        for i in range(400):
            txn.put(b"a%05d" % i, b"x" * 30, db=a)
            txn.put(b"b%05d" % i, b"y" * 30, db=b)
        for i in range(10):
            for j in range((3, 600)[i % 2]):
                txn.put(b"k%d" % i, b"val-%05d" % j, db=dups)
                txn.put(b"k%d" % i, struct.pack("<I", j), db=fixed)


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> Dict[str, Path]:
    import lmdb

    out = {}
    for name, fill in (("plain", _fill_plain), ("dbs", _fill_dbs)):
        path = tmp_path_factory.mktemp(name)
        env = lmdb.open(str(path), max_dbs=8, map_size=64 << 20)
        fill(env)
        env.close()
        assert V.verify(path) == [], name
        out[name] = path
    return out


@pytest.fixture
def damaged(bases, tmp_path, image) -> Callable:
    """``damaged(base, mutate)`` -> problems of a copy of ``base`` after ``mutate(img)``."""

    counter = iter(range(100))

    def run(base: str, mutate: Callable) -> List[str]:
        path = tmp_path / ("%s%d" % (base, next(counter)))
        shutil.copytree(bases[base], path)
        img = image(path)
        mutate(img)
        img.save()
        return V.verify(path)

    return run


def has(problems: List[str], needle: str) -> bool:
    return any(needle in p for p in problems)


def main_root(img) -> int:
    return img.rec(img.main_rec())["root"]


def first_leaf(img) -> int:
    return img.leaves(main_root(img))[0]


def free_pages(img) -> List[int]:
    """The page list of the first inline free-list record."""
    off = img.free_value()
    return [img.u64(off + 8 * (i + 1)) for i in range(img.u64(off))]


# -- page headers and nodes ------------------------------------------------------------------


def test_leaf_with_overflow_flag(damaged):
    problems = damaged("plain", lambda img: img.set_flags(first_leaf(img), P_LEAF | P_OVERFLOW))
    assert has(problems, "mixed or invalid page flags 0x6")


def test_branch_with_meta_flag(damaged):
    problems = damaged("plain", lambda img: img.set_flags(main_root(img), P_BRANCH | P_META))
    assert has(problems, "mixed or invalid page flags 0x9")


def test_dirty_flag_on_tree_page(damaged):
    seen = {}

    def mutate(img):
        seen["leaf"] = first_leaf(img)
        img.set_flags(seen["leaf"], P_LEAF | P_DIRTY)

    problems = damaged("plain", mutate)
    assert problems == ["page %d: in-memory flags 0x10 (P_DIRTY/P_LOOSE/P_KEEP) on a committed "
                        "page of main DB" % seen["leaf"]]


def test_wrong_pgno_in_header(damaged):
    def mutate(img):
        img.set64(img.page(first_leaf(img)), 12345)

    assert has(damaged("plain", mutate), "header says pgno 12345")


@pytest.mark.parametrize("lower, upper", [(16, 5000), (17, 3000), (3000, 2000), (10, 4000)])
def test_bad_lower_upper(damaged, lower, upper):
    def mutate(img):
        leaf = first_leaf(img)
        img.set16(img.page(leaf) + 12, lower)
        img.set16(img.page(leaf) + 14, upper)

    assert has(damaged("plain", mutate), "bad mp_lower/mp_upper (%d/%d" % (lower, upper))


def test_node_pointer_into_pointer_array(damaged):
    def mutate(img):
        img.set16(img.page(first_leaf(img)) + 16, 16)

    assert has(damaged("plain", mutate), "node 0 offset 16 outside the node area")


def test_overlapping_nodes(damaged):
    def mutate(img):
        page = img.page(first_leaf(img))
        img.set16(page + 18, img.u16(page + 16))

    assert has(damaged("plain", mutate), "overlaps node")


def test_empty_key(damaged):
    def mutate(img):
        img.set16(img.node(first_leaf(img), 3) + 6, 0)

    assert has(damaged("plain", mutate), "key 3: key of 0 bytes (must be 1..511)")


def test_branch_with_one_child(damaged):
    def mutate(img):
        img.set16(img.page(main_root(img)) + 12, 18)

    problems = damaged("plain", mutate)
    assert has(problems, "branch page with 1 child(ren), at least 2 required")
    assert has(problems, "neither reachable nor in the freeDB (leaked)")


# -- references, cycles, sharing --------------------------------------------------------------


def test_child_past_last_pg(damaged):
    def mutate(img):
        img.set_child(img.node(main_root(img), 2), img.last_pg() + 7)

    assert has(damaged("plain", mutate), ": child 2 points past last_pg")


def test_child_points_to_meta_page(damaged):
    def mutate(img):
        img.set_child(img.node(main_root(img), 1), 1)

    assert has(damaged("plain", mutate), "child 1 points to meta page 1")


def test_cycle(damaged):
    def mutate(img):
        root = main_root(img)
        img.set_child(img.node(root, 1), root)

    problems = damaged("plain", mutate)
    assert has(problems, "reached twice within main DB (cycle or shared subtree)")


def test_same_child_twice(damaged):
    def mutate(img):
        root = main_root(img)
        img.set_child(img.node(root, 2), img.child(img.node(root, 1)))

    problems = damaged("plain", mutate)
    assert has(problems, "reached twice within main DB")
    assert has(problems, "leaked")


def test_page_in_two_trees(damaged):
    def mutate(img):
        rec_a, rec_b = img.named(b"a"), img.named(b"b")
        img.set64(rec_b + 40, img.u64(rec_a + 40))

    problems = damaged("dbs", mutate)
    assert has(problems, "reachable twice (DB 'a' and DB 'b')")


def test_truncated_reachable_page(damaged):
    def mutate(img):
        del img.raw[img.page(first_leaf(img)):]

    assert has(damaged("plain", mutate), "beyond EOF")


def test_main_root_is_meta_page(damaged):
    problems = damaged("plain", lambda img: img.set64(img.main_rec() + 40, 0))
    assert has(problems, "main DB: root page 0 out of range")


def test_main_root_past_last_pg(damaged):
    problems = damaged("plain", lambda img: img.set64(img.main_rec() + 40, img.last_pg() + 1))
    assert has(problems, "out of range (2..last_pg")


# -- key order ----------------------------------------------------------------------------------


def test_leaf_keys_out_of_order(damaged):
    def mutate(img):
        off = img.node(first_leaf(img), 1)
        ksize = img.u16(off + 6)
        img.raw[off + 8:off + 8 + ksize] = b"\0" * ksize

    assert has(damaged("plain", mutate), "key 1 out of order")


def test_key_outside_separator_range(damaged):
    """In-page order intact, but the second leaf's first key is below its separator."""
    def mutate(img):
        leaf = img.leaves(main_root(img))[1]
        off = img.node(leaf, 0)
        img.raw[off + 8:off + 8 + 7] = b"a000000"

    assert has(damaged("plain", mutate), "key 0 'a000000' outside the range its parent's "
                                         "separator keys allow")


def test_separator_keys_out_of_order(damaged):
    def mutate(img):
        off = img.node(main_root(img), 3)
        img.raw[off + 8:off + 8 + 7] = b"a000000"

    assert has(damaged("plain", mutate), "separator key 3 out of order")


# -- counters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("field, offset, needle", [
    ("entries", 32, "main DB: walked %d entries, record says %d"),
    ("leaf", 16, "main DB: walked %d leaf pages, record says %d"),
    ("branch", 8, "main DB: walked %d branch pages, record says %d"),
    ("overflow", 24, "main DB: walked %d overflow pages, record says %d"),
])
def test_wrong_counters(damaged, field, offset, needle):
    seen = {}

    def mutate(img):
        rec = img.main_rec()
        seen["value"] = img.rec(rec)[field]
        img.set64(rec + offset, seen["value"] + 1)

    problems = damaged("plain", mutate)
    assert problems == [needle % (seen["value"], seen["value"] + 1)]


def test_wrong_depth(damaged):
    problems = damaged("plain", lambda img: img.set16(img.main_rec() + 6, 3))
    assert problems == ["main DB: walked depth 2, record says 3"]


def test_wrong_free_db_counter(damaged):
    def mutate(img):
        img.set64(img.free_rec() + 16, img.rec(img.free_rec())["leaf"] + 2)

    assert has(damaged("plain", mutate), "free DB: walked 1 leaf pages, record says 3")


def test_empty_record_with_counters(damaged):
    problems = damaged("dbs", lambda img: img.set64(img.named(b"a") + 40, P_INVALID))
    assert has(problems, "DB 'a': empty (root P_INVALID) but record says depth 2")
    assert has(problems, "leaked")


def test_dupsort_counters_either_convention(damaged):
    """Outer-tree-only (0.9.24) and with sub-DBs (0.9.36) are both accepted; more is not."""
    def outer_only(img):
        rec = img.named(b"d")
        img.set64(rec + 8, 0)       # branch pages
        img.set64(rec + 16, 1)      # leaf pages

    assert damaged("dbs", outer_only) == []

    def too_many(img):
        rec = img.named(b"d")
        img.set64(rec + 16, img.rec(rec)["leaf"] + 1)

    assert has(damaged("dbs", too_many), "leaf pages (")


def test_dupsort_entries_excess(damaged):
    def by_one(img):
        rec = img.named(b"d")
        img.set64(rec + 32, img.rec(rec)["entries"] + 1)

    problems = damaged("dbs", by_one)
    assert len(problems) == 1 and problems[0].startswith("warning: DB 'd': walked")

    def by_many(img):
        rec = img.named(b"d")
        img.set64(rec + 32, img.rec(rec)["entries"] + 100)

    problems = damaged("dbs", by_many)
    assert len(problems) == 1 and problems[0].startswith("DB 'd': walked")
    assert "entries, record says" in problems[0]


# -- database records ---------------------------------------------------------------------------


def test_main_flags_dupfixed_without_dupsort(damaged):
    assert has(damaged("plain", lambda img: img.set16(img.main_rec() + 4, 0x10)),
               "main DB: invalid flag combination 0x10")


def test_unknown_db_flags(damaged):
    assert has(damaged("dbs", lambda img: img.set16(img.named(b"a") + 4, 0x100)),
               "DB 'a': unknown flag bits 0x100")


def test_main_md_pad(damaged):
    assert has(damaged("plain", lambda img: img.set32(img.main_rec(), 0xFFFF)), "md_pad 65535")


def test_named_record_wrong_size(damaged):
    def mutate(img):
        for _pgno, _i, off in img.leaf_nodes(main_root(img)):
            if img.node_key(off) == b"a":
                img.set16(off, 40)

    assert has(damaged("dbs", mutate), "named-DB record of 40 bytes (must be 48)")


def test_dupdata_in_plain_db(damaged):
    def mutate(img):
        _pgno, _i, off = img.find_node(main_root(img), 0)
        img.set16(off + 4, F_DUPDATA)

    assert has(damaged("plain", mutate), "F_DUPDATA node in main DB, which is not DUPSORT")


def test_reversedup_flag_breaks_dup_order(damaged):
    """Flipping REVERSEDUP onto a DB sorted bytewise: its duplicates are now out of order."""
    def mutate(img):
        rec = img.named(b"d")
        img.set16(rec + 4, img.u16(rec + 4) | 0x40)

    problems = damaged("dbs", mutate)
    assert has(problems, "dup data out of order at item")
    assert has(problems, "outside the range its parent's separator keys allow")


def test_dup_sub_db_flags(damaged):
    def mutate(img):
        _pgno, _i, off = img.find_node(img.rec(img.named(b"f"))["root"], F_DUPDATA | F_SUBDATA)
        img.set16(img.node_data(off) + 4, 0)

    assert has(damaged("dbs", mutate), "record flags 0x0, expected 0x10")


def test_dup_sub_db_value_order(damaged):
    def mutate(img):
        _pgno, _i, off = img.find_node(img.rec(img.named(b"d"))["root"], F_DUPDATA | F_SUBDATA)
        sub = img.rec(img.node_data(off))
        leaf = img.leaves(sub["root"])[1]
        node = img.node(leaf, 1)
        img.raw[node + 8:node + 17] = b"val-00000"

    assert has(damaged("dbs", mutate), "dup data out of order at item 1")


# -- DUPSORT sub-pages and LEAF2 ------------------------------------------------------------------


def test_subpage_without_dirty_flag(damaged):
    def mutate(img):
        sub = img.subpage(img.rec(img.named(b"d"))["root"])
        img.set16(sub + 10, 0x42)

    assert has(damaged("dbs", mutate), "sub-page: flags 0x42, expected 0x52")


def test_subpage_values_out_of_order(damaged):
    def mutate(img):
        sub = img.subpage(img.rec(img.named(b"d"))["root"])
        ptr0, ptr1 = img.u16(sub + 16), img.u16(sub + 18)
        img.set16(sub + 16, ptr1)
        img.set16(sub + 18, ptr0)

    assert has(damaged("dbs", mutate), "sub-page: dup data out of order at item 1")


def test_leaf2_subpage_upper(damaged):
    def mutate(img):
        sub = img.subpage(img.rec(img.named(b"f"))["root"])
        img.set16(sub + 14, img.u16(sub + 14) + 2)

    assert has(damaged("dbs", mutate), "bad mp_lower/mp_upper")


def test_leaf2_page_item_size(damaged):
    def mutate(img):
        _pgno, _i, off = img.find_node(img.rec(img.named(b"f"))["root"], F_DUPDATA | F_SUBDATA)
        leaf = img.leaves(img.rec(img.node_data(off))["root"])[0]
        assert img.flags(leaf) == P_LEAF | P_LEAF2
        img.set16(img.page(leaf) + 8, 8)

    assert has(damaged("dbs", mutate), "LEAF2 item size 8, but")


def test_leaf2_page_outside_dupfixed(damaged):
    problems = damaged("plain", lambda img: img.set_flags(first_leaf(img), P_LEAF | P_LEAF2))
    assert has(problems, "LEAF2 page in main DB, which is not a DUPFIXED duplicate tree")


# -- overflow runs ----------------------------------------------------------------------------------


def test_overflow_page_with_leaf_flag(damaged):
    def mutate(img):
        _off, run = img.bigdata(main_root(img))
        img.set_flags(run, P_OVERFLOW | P_LEAF)

    assert has(damaged("plain", mutate), "which is not a pure overflow page (flags 0x6)")


def test_overflow_pointer_at_tree_page(damaged):
    def mutate(img):
        off, _run = img.bigdata(main_root(img))
        img.set64(img.node_data(off), main_root(img))

    assert has(damaged("plain", mutate), "not a pure overflow page")


def test_overflow_header_too_short(damaged):
    def mutate(img):
        _off, run = img.bigdata(main_root(img))
        img.set32(img.page(run) + 12, 2)

    assert has(damaged("plain", mutate), "overflow header mp_pages 2, but the 9000-byte value")


def test_overflow_header_too_long(damaged):
    """A longer run is legal (in-place overwrite), but not over pages owned by others."""
    def mutate(img):
        _off, run = img.bigdata(main_root(img))
        img.set32(img.page(run) + 12, 4)

    problems = damaged("plain", mutate)
    assert has(problems, "header mp_pages 4, value needs 3")


def test_overflow_run_past_last_pg(damaged):
    def mutate(img):
        off, _run = img.bigdata(main_root(img))
        img.set64(img.node_data(off), img.last_pg())

    problems = damaged("plain", mutate)
    assert has(problems, "not a pure overflow page") or has(problems, "runs past last_pg")


# -- the free list -------------------------------------------------------------------------------------


def test_free_page_removed_from_list(damaged):
    """Drop the last (smallest) page of a record: the value is then longer than the count
    needs, which is legal, but the page is leaked."""
    seen = {}

    def mutate(img):
        off = img.free_value()
        seen["page"] = free_pages(img)[-1]
        img.set64(off, img.u64(off) - 1)

    problems = damaged("plain", mutate)
    assert problems == ["page %d: neither reachable nor in the freeDB (leaked)" % seen["page"]]


def test_free_list_names_live_page(damaged):
    def mutate(img):
        img.set64(img.free_value() + 8 * len(free_pages(img)), main_root(img))

    problems = damaged("plain", mutate)
    assert has(problems, "both reachable and in the freeDB (main DB; free-list record")


def test_free_list_not_descending(damaged):
    def mutate(img):
        off = img.free_value()
        img.set64(off + 16, img.u64(off + 8))

    assert has(damaged("plain", mutate), "not strictly descending at entry 1")


def test_free_list_out_of_range(damaged):
    assert has(damaged("plain", lambda img: img.set64(img.free_value() + 8, 10 ** 7)),
               "lists out-of-range page 10000000")


def test_free_list_count_too_big(damaged):
    assert has(damaged("plain", lambda img: img.set64(img.free_value(), 999999)),
               "count 999999 does not match value size")


def test_free_list_key_size(damaged):
    def mutate(img):
        leaf = img.leaves(img.rec(img.free_rec())["root"])[0]
        img.set16(img.node(leaf, 0) + 6, 4)

    assert has(damaged("plain", mutate), "free-list key of 4 bytes (must be 8)")


@pytest.mark.parametrize("flags", [0x0000, 0x000C, 0x1008])
def test_free_db_flags(damaged, flags):
    assert has(damaged("plain", lambda img: img.set16(img.free_rec() + 4, flags)),
               "free DB: invalid flag combination 0x%x" % flags)


def test_integer_width_reported_once_per_set(build):
    """The C binding accepts 2-byte INTEGERDUP values and 1-byte INTEGERKEY keys (its
    comparators then read past them); each set of such keys is reported once."""
    def fill(env):
        dups = env.open_db(b"w", dupsort=True, dupfixed=True, integerdup=True)
        keys = env.open_db(b"ik", integerkey=True)
        with env.begin(write=True) as txn:
            for j in range(50):
                txn.put(b"k", struct.pack("<H", j), db=dups)
            for i in range(5):
                txn.put(b"%d" % i, b"x", db=keys)

    problems = V.verify(build(fill))
    assert len(problems) == 2
    assert has(problems, "key 0: integer key of 1 bytes (must be 4 or 8)")
    assert has(problems, "sub-page: item 0: integer value of 2 bytes (must be 4 or 8)")


# -- meta pages --------------------------------------------------------------------------------------


def test_bad_magic_in_one_meta(damaged):
    def mutate(img):
        other = 1 - img.meta_index()
        img.set32(other * img.psize + 16, 0xDEADBEEF)

    problems = damaged("plain", mutate)
    assert len(problems) == 1
    assert "meta page has bad magic 0xdeadbeef (C LMDB refuses to open the file)" in problems[0]


def test_bad_magic_in_meta_0_falls_back_to_meta_1(damaged):
    problems = damaged("plain", lambda img: img.set32(16, 0xDEADBEEF))
    assert has(problems, "page 0: meta page has bad magic 0xdeadbeef")


def test_bad_version_in_current_meta_falls_back(damaged):
    problems = damaged("plain", lambda img: img.set32(img.meta() + 20, 2))
    assert has(problems, "meta page has data version 2, not 1")


def test_txnid_parity(damaged):
    def mutate(img):
        meta = img.meta()
        img.set64(meta + 144, img.u64(meta + 144) + 2 * img.psize + 1)

    assert has(damaged("plain", mutate), "but transaction N writes meta page N & 1")


@pytest.mark.parametrize("edit, match", [
    (lambda img: img.set32(40, 4097), "bad page size 4097"),
    (lambda img: img.set32(40, 65536), "bad page size 65536"),
    (lambda img: [img.set32(16, 1), img.set32(img.psize + 16, 1)], "not an LMDB data file"),
    (lambda img: [img.set32(20, 3), img.set32(img.psize + 20, 3)], "no usable meta page"),
    (lambda img: img.set32(16, 0xDEC0EFBE), "other byte order"),
    (lambda img: img.set32(24, 0xBEEFC0DE) or img.set32(16, 0), "LMDB 1.0"),
    (lambda img: img.set32(12, 0xBEEFC0DE) or img.set32(16, 0), "32-bit"),
    (lambda img: img.raw.__delitem__(slice(img.psize + 100, None)), "too short"),
    (lambda img: img.raw.__delitem__(slice(100, None)), "too short"),
])
def test_unverifiable_files(damaged, edit, match):
    with pytest.raises(V.VerifyError, match=match):
        damaged("plain", edit)


def test_missing_file_is_verify_error(tmp_path):
    with pytest.raises(V.VerifyError, match="cannot read"):
        V.verify(tmp_path)


def test_format_report():
    assert V.format_report([]) == "verify: OK"
    assert V.format_report(["a", "b"]) == "a\nb"


def test_resolve_data_path(tmp_path):
    assert V.resolve_data_path(tmp_path) == str(tmp_path / "data.mdb")
    assert V.resolve_data_path(tmp_path / "x.mdb") == str(tmp_path / "x.mdb")
    assert V.resolve_data_path(tmp_path, subdir=False) == str(tmp_path)
    assert V.resolve_data_path("nope", subdir=True) == "nope/data.mdb"
