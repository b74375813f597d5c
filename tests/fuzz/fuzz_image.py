"""A map of a sound LMDB data file (which bytes are what) and the mutations that damage it.

`FileMap` walks a *sound* source file with its own bounds-checked reader (layout constants
only, no engine): every tree reachable from the current meta page (free list, main database,
named databases, DUPSORT sub-databases), and records where the interesting fields live:
page headers, node pointers, node headers, branch child pointers, overflow headers, database
records. `MUTATIONS` maps a name to a function ``(raw, fmap, rng) -> description`` that
damages ``raw`` (a bytearray copy of the file) at one of those places; the description says
exactly what was done, so a failure can be reproduced by hand.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from purelmdb.layout import (
    DB_RECORD_SIZE,
    F_BIGDATA,
    F_DUPDATA,
    F_SUBDATA,
    MAGIC,
    P_BRANCH,
    P_DIRTY,
    P_INVALID,
    P_LEAF,
    P_LEAF2,
    P_META,
    P_OVERFLOW,
    P_SUBP,
    PAGEHDRSZ,
)

META_FREE_REC = 40          # offsets inside a meta page
META_MAIN_REC = 88
META_LAST_PG = 136
META_TXNID = 144
REC_DEPTH = 6               # offsets inside a database record
REC_ENTRIES = 32
REC_ROOT = 40


def u16(raw, off: int) -> int:
    return struct.unpack_from("<H", raw, off)[0]


def u32(raw, off: int) -> int:
    return struct.unpack_from("<I", raw, off)[0]


def u64(raw, off: int) -> int:
    return struct.unpack_from("<Q", raw, off)[0]


def put16(raw: bytearray, off: int, v: int) -> None:
    struct.pack_into("<H", raw, off, v & 0xFFFF)


def put32(raw: bytearray, off: int, v: int) -> None:
    struct.pack_into("<I", raw, off, v & 0xFFFFFFFF)


def put64(raw: bytearray, off: int, v: int) -> None:
    struct.pack_into("<Q", raw, off, v & 0xFFFFFFFFFFFFFFFF)


@dataclass
class FileMap:
    """Where things are in a sound data file (absolute offsets). Mutations read the
    sound bytes ``src`` (so stacked mutations find their targets) and write the copy."""

    src: bytes                                                 # the sound file
    lmdb: bool = False                                         # False: not a file we can map
    psize: int = 4096
    current_meta: int = 0                                      # 0 or 1
    last_pg: int = 0
    records: List[int] = field(default_factory=list)           # DB records (meta + nodes)
    pages: Dict[int, str] = field(default_factory=dict)        # pgno -> branch/leaf/leaf2
    parent: Dict[int, int] = field(default_factory=dict)       # pgno -> parent pgno
    roots: List[int] = field(default_factory=list)
    branch_nodes: List[Tuple[int, int]] = field(default_factory=list)  # (pgno, node offset)
    leaf_nodes: List[Tuple[int, int]] = field(default_factory=list)    # (pgno, node offset)
    big_nodes: List[int] = field(default_factory=list)          # offsets of F_BIGDATA nodes
    overflow: List[int] = field(default_factory=list)           # first pages of runs
    subpages: List[Tuple[int, int]] = field(default_factory=list)  # DUPSORT sub-pages (off, size)

    @property
    def size(self) -> int:
        return len(self.src)

    @property
    def meta_off(self) -> int:
        return self.current_meta * self.psize

    def tree_pages(self, kinds: Tuple[str, ...] = ("branch", "leaf", "leaf2")) -> List[int]:
        return sorted(p for p, k in self.pages.items() if k in kinds)


def map_file(raw: bytes) -> Optional[FileMap]:
    """Map a sound file; None if it is not an LMDB file this module understands."""
    if len(raw) < 152 or u32(raw, 16) != MAGIC:
        return None
    psize = u32(raw, 40)
    if psize < 256 or psize & (psize - 1) or len(raw) < 2 * psize:
        return None
    fm = FileMap(src=raw, lmdb=True, psize=psize)
    fm.current_meta = 1 if u64(raw, psize + META_TXNID) > u64(raw, META_TXNID) else 0
    meta = fm.meta_off
    fm.last_pg = u64(raw, meta + META_LAST_PG)
    for rec in (meta + META_FREE_REC, meta + META_MAIN_REC):
        fm.records.append(rec)
        _walk(raw, fm, rec, named=rec == meta + META_MAIN_REC)
    return fm


def _walk(raw: bytes, fm: FileMap, rec: int, named: bool) -> None:
    """Record every page of the tree whose database record is at ``rec``."""
    root = u64(raw, rec + REC_ROOT)
    if root == P_INVALID:
        return
    fm.roots.append(root)
    psize = fm.psize
    stack = [root]
    while stack:
        pgno = stack.pop()
        base = pgno * psize
        if pgno in fm.pages or pgno < 2 or base + psize > len(raw):
            continue
        flags = u16(raw, base + 10)
        lower = u16(raw, base + 12)
        n = max(0, (lower - PAGEHDRSZ) // 2)
        if flags & P_LEAF2:
            fm.pages[pgno] = "leaf2"
            continue
        if flags & P_BRANCH:
            fm.pages[pgno] = "branch"
            for i in range(n):
                node = base + u16(raw, base + PAGEHDRSZ + 2 * i)
                child = u16(raw, node) | u16(raw, node + 2) << 16 | u16(raw, node + 4) << 32
                fm.branch_nodes.append((pgno, node))
                fm.parent.setdefault(child, pgno)
                stack.append(child)
            continue
        if not flags & P_LEAF:
            continue
        fm.pages[pgno] = "leaf"
        for i in range(n):
            node = base + u16(raw, base + PAGEHDRSZ + 2 * i)
            fm.leaf_nodes.append((pgno, node))
            nflags = u16(raw, node + 4)
            data = node + 8 + u16(raw, node + 6)
            if nflags & F_BIGDATA:
                fm.big_nodes.append(node)
                first = u64(raw, data)
                fm.overflow.append(first)
                fm.pages.setdefault(first, "overflow")
            elif nflags & F_DUPDATA and not nflags & F_SUBDATA:
                fm.subpages.append((data, u16(raw, node) | u16(raw, node + 2) << 16))
            elif nflags & F_SUBDATA and (named or nflags & F_DUPDATA):
                # a named database's record, or a DUPSORT sub-database's
                fm.records.append(data)
                _walk(raw, fm, data, named=False)


# -- mutations ---------------------------------------------------------------------------------

Mutation = Callable[[bytearray, FileMap, random.Random], Optional[str]]

PAGE_FLAG_VALUES = (0, P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2, P_LEAF | P_BRANCH,
                    P_LEAF | P_LEAF2, P_LEAF | P_SUBP, P_LEAF | P_DIRTY, P_BRANCH | P_OVERFLOW,
                    0xFFFF)
NODE_FLAG_VALUES = (F_BIGDATA, F_DUPDATA, F_BIGDATA | F_DUPDATA, 0x8, 0x10, 0)
# F_SUBDATA set on a node that does not hold a 48-byte database record
SUBDATA_FLAG_VALUES = (F_SUBDATA, F_SUBDATA | F_DUPDATA, F_BIGDATA | F_SUBDATA, 0xFFFF)


def _huge_pgnos(fm: FileMap) -> List[int]:
    pages = fm.size // fm.psize
    return [fm.last_pg + 1, pages, pages + 7, fm.last_pg + 1000, (1 << 48) - 1, 1 << 40, 0, 1]


def _pick_page(fm: FileMap, rng: random.Random, kinds=("branch", "leaf", "leaf2")) -> Optional[int]:
    pages = fm.tree_pages(kinds)
    return rng.choice(pages) if pages else None


def bitflip_anywhere(raw, fm, rng):
    offs = sorted(rng.randrange(len(raw)) for _ in range(rng.randint(1, 4)))
    for off in offs:
        raw[off] ^= 1 << rng.randrange(8)
    return "flip one bit at offsets %s" % offs


def bitflip_tree_page(raw, fm, rng):
    pgno = _pick_page(fm, rng)
    if pgno is None:
        return None
    base = pgno * fm.psize
    span = PAGEHDRSZ + 64 if rng.random() < 0.5 else fm.psize
    offs = sorted(base + rng.randrange(span) for _ in range(rng.randint(1, 6)))
    for off in offs:
        raw[off] ^= 1 << rng.randrange(8)
    return "page %d (%s): flip bits at offsets %s" % (pgno, fm.pages[pgno], offs)


def garbage_page_header(raw, fm, rng):
    pgno = _pick_page(fm, rng)
    if pgno is None:
        return None
    base = pgno * fm.psize
    raw[base:base + PAGEHDRSZ] = rng.randbytes(PAGEHDRSZ)
    return "page %d (%s): random header %s" % (pgno, fm.pages[pgno],
                                               bytes(raw[base:base + PAGEHDRSZ]).hex())


def page_flags(raw, fm, rng):
    pgno = _pick_page(fm, rng, ("branch", "leaf", "leaf2", "overflow"))
    if pgno is None:
        return None
    v = rng.choice(PAGE_FLAG_VALUES)
    put16(raw, pgno * fm.psize + 10, v)
    return "page %d (%s): flags = 0x%x" % (pgno, fm.pages[pgno], v)


def lower_upper(raw, fm, rng):
    pgno = _pick_page(fm, rng)
    if pgno is None:
        return None
    base = pgno * fm.psize
    lower, upper = u16(fm.src, base + 12), u16(fm.src, base + 14)
    how = rng.choice(("swap", "lower huge", "upper huge", "lower odd", "lower past upper",
                      "lower tiny", "upper tiny", "both max"))
    new = {"swap": (upper, lower), "lower huge": (0xFFFE, upper), "upper huge": (lower, 0xFFFF),
           "lower odd": (lower | 1, upper), "lower past upper": (upper + 2, upper),
           "lower tiny": (rng.randrange(16), upper), "upper tiny": (lower, rng.randrange(16)),
           "both max": (0xFFFF, 0xFFFF)}[how]
    put16(raw, base + 12, new[0])
    put16(raw, base + 14, new[1])
    return "page %d (%s): %s: lower/upper %d/%d -> %d/%d" % (
        pgno, fm.pages[pgno], how, lower, upper, new[0], new[1])


def node_pointer(raw, fm, rng):
    pgno = _pick_page(fm, rng, ("branch", "leaf"))
    if pgno is None:
        return None
    base = pgno * fm.psize
    n = (u16(fm.src, base + 12) - PAGEHDRSZ) // 2
    if n <= 0:
        return None
    i = rng.randrange(n)
    v = rng.choice((0, 1, 8, PAGEHDRSZ, fm.psize - 1, fm.psize - 4, fm.psize, 0xFFFF,
                    u16(fm.src, base + PAGEHDRSZ + 2 * i) + 1, rng.randrange(0x10000)))
    put16(raw, base + PAGEHDRSZ + 2 * i, v)
    return "page %d (%s): node pointer %d = %d" % (pgno, fm.pages[pgno], i, v)


def _pick_node(fm: FileMap, rng: random.Random, leaf: Optional[bool] = None):
    nodes = (fm.leaf_nodes if leaf else fm.branch_nodes if leaf is False
             else fm.leaf_nodes + fm.branch_nodes)
    return rng.choice(nodes) if nodes else None


def garbage_node_header(raw, fm, rng):
    picked = _pick_node(fm, rng)
    if picked is None:
        return None
    pgno, node = picked
    raw[node:node + 8] = rng.randbytes(8)
    return "page %d: node at +%d: random header %s" % (
        pgno, node - pgno * fm.psize, bytes(raw[node:node + 8]).hex())


def node_key_size(raw, fm, rng):
    picked = _pick_node(fm, rng)
    if picked is None:
        return None
    pgno, node = picked
    v = rng.choice((0, 1, 511, 512, fm.psize, 0xFFFF))
    put16(raw, node + 6, v)
    return "page %d: node at +%d: ksize = %d" % (pgno, node - pgno * fm.psize, v)


def node_data_size(raw, fm, rng):
    picked = _pick_node(fm, rng, leaf=True)
    if picked is None:
        return None
    pgno, node = picked
    v = rng.choice((fm.psize, fm.psize * 3, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 31))
    put16(raw, node, v & 0xFFFF)
    put16(raw, node + 2, v >> 16)
    return "page %d: leaf node at +%d: data size = %d" % (pgno, node - pgno * fm.psize, v)


def _node_flags(raw, fm, rng, values):
    picked = _pick_node(fm, rng, leaf=True)
    if picked is None:
        return None
    pgno, node = picked
    v = rng.choice(values)
    put16(raw, node + 4, v)
    return "page %d: leaf node at +%d: flags = 0x%x" % (pgno, node - pgno * fm.psize, v)


def node_flags(raw, fm, rng):
    return _node_flags(raw, fm, rng, NODE_FLAG_VALUES)


def node_flags_subdata(raw, fm, rng):
    return _node_flags(raw, fm, rng, SUBDATA_FLAG_VALUES)


def _set_child(raw: bytearray, node: int, child: int) -> None:
    put16(raw, node, child)
    put16(raw, node + 2, child >> 16)
    put16(raw, node + 4, child >> 32)


def child_past_end(raw, fm, rng):
    picked = _pick_node(fm, rng, leaf=False)
    if picked is None:
        return None
    pgno, node = picked
    v = rng.choice(_huge_pgnos(fm))
    _set_child(raw, node, v)
    return "branch page %d: child pointer at +%d = %d" % (pgno, node - pgno * fm.psize, v)


def child_cycle(raw, fm, rng):
    picked = _pick_node(fm, rng, leaf=False)
    if picked is None:
        return None
    pgno, node = picked
    targets = {"itself": pgno, "its parent": fm.parent.get(pgno, pgno),
               "a root": rng.choice(fm.roots)}
    what = rng.choice(sorted(targets))
    _set_child(raw, node, targets[what])
    return "branch page %d: child pointer at +%d -> %s (page %d)" % (
        pgno, node - pgno * fm.psize, what, targets[what])


def child_elsewhere(raw, fm, rng):
    picked = _pick_node(fm, rng, leaf=False)
    if picked is None:
        return None
    pgno, node = picked
    others = [p for p in range(2, fm.size // fm.psize) if p != pgno]
    if not others:
        return None
    v = rng.choice(others)
    _set_child(raw, node, v)
    return "branch page %d: child pointer at +%d -> page %d (%s)" % (
        pgno, node - pgno * fm.psize, v, fm.pages.get(v, "not in a tree"))


def children_all_same(raw, fm, rng):
    branches = fm.tree_pages(("branch",))
    if not branches:
        return None
    pgno = rng.choice(branches)
    nodes = [node for p, node in fm.branch_nodes if p == pgno]
    target = u16(fm.src, nodes[0]) | u16(fm.src, nodes[0] + 2) << 16 | u16(fm.src, nodes[0] + 4) << 32
    for node in nodes:
        _set_child(raw, node, target)
    return "branch page %d: all %d child pointers -> page %d" % (pgno, len(nodes), target)


def subpage(raw, fm, rng):
    if not fm.subpages:
        return None
    off, size = rng.choice(fm.subpages)
    if size < PAGEHDRSZ:
        return None
    how = rng.choice(("bit flips", "lower huge", "upper huge", "lower/upper swapped", "flags",
                      "pointer huge"))
    if how == "bit flips":
        for _ in range(rng.randint(1, 4)):
            raw[off + rng.randrange(size)] ^= 1 << rng.randrange(8)
    elif how == "lower huge":
        put16(raw, off + 12, rng.choice((0xFFFE, size + 2, size * 4)))
    elif how == "upper huge":
        put16(raw, off + 14, rng.choice((0xFFFF, size + 1, size * 4)))
    elif how == "lower/upper swapped":
        lo, up = u16(fm.src, off + 12), u16(fm.src, off + 14)
        put16(raw, off + 12, up)
        put16(raw, off + 14, lo)
    elif how == "flags":
        put16(raw, off + 10, rng.choice((0, P_BRANCH, P_LEAF, P_LEAF2 | P_SUBP, 0xFFFF)))
    elif size >= PAGEHDRSZ + 2:
        put16(raw, off + PAGEHDRSZ, rng.choice((0, size, size + 100, 0xFFFF)))
    return "DUPSORT sub-page at offset %d (%d bytes): %s" % (off, size, how)


def overflow_header(raw, fm, rng):
    if not fm.overflow:
        return None
    first = rng.choice(fm.overflow)
    base = first * fm.psize
    if base + fm.psize > len(raw):
        return None
    how = rng.choice(("pages huge", "pages zero", "pages one", "pages past end", "flags leaf",
                      "flags zero"))
    if how.startswith("pages"):
        v = {"pages huge": 0xFFFFFFFF, "pages zero": 0, "pages one": 1,
             "pages past end": fm.size // fm.psize - first + 5}[how]
        put32(raw, base + 12, v)
    else:
        put16(raw, base + 10, P_LEAF if how == "flags leaf" else 0)
    return "overflow run at page %d: %s" % (first, how)


def big_pointer(raw, fm, rng):
    if not fm.big_nodes:
        return None
    node = rng.choice(fm.big_nodes)
    data = node + 8 + u16(fm.src, node + 6)
    choices = _huge_pgnos(fm) + fm.tree_pages()[:3]
    v = rng.choice(choices)
    put64(raw, data, v)
    return "F_BIGDATA node at offset %d: overflow page = %d" % (node, v)


def big_size(raw, fm, rng):
    if not fm.big_nodes:
        return None
    node = rng.choice(fm.big_nodes)
    v = rng.choice((0, 1, 0xFFFFFFFF, fm.size, fm.size * 2))
    put16(raw, node, v & 0xFFFF)
    put16(raw, node + 2, v >> 16)
    return "F_BIGDATA node at offset %d: data size = %d" % (node, v)


def truncate(raw, fm, rng):
    psize = fm.psize
    choices = [0, rng.randrange(1, 152), 152, psize, psize + 100, 2 * psize, 2 * psize + 1,
               rng.randrange(len(raw)), len(raw) - 1, len(raw) - psize,
               (rng.randrange(len(raw)) // psize) * psize]
    n = max(0, min(len(raw) - 1, rng.choice(choices)))
    del raw[n:]
    return "truncate to %d bytes (of %d)" % (n, fm.size)


def _meta_damage(raw: bytearray, fm: FileMap, meta: int, rng: random.Random) -> str:
    base = meta * fm.psize
    how = rng.choice(("magic", "version", "random body", "page size", "root huge",
                      "root is meta", "depth huge", "depth zero", "last_pg zero",
                      "last_pg huge", "entries huge", "free root = main root", "flags"))
    main = base + META_MAIN_REC
    if how == "magic":
        put32(raw, base + 16, 0xDEADBEEF)
    elif how == "version":
        put32(raw, base + 20, 7)
    elif how == "random body":
        raw[base + 16:base + 152] = rng.randbytes(136)
    elif how == "page size":
        put32(raw, base + META_FREE_REC, rng.choice((0, 3, 100, 1 << 20, 0xFFFFFFFF)))
    elif how == "root huge":
        put64(raw, main + REC_ROOT, rng.choice(_huge_pgnos(fm)[:-2]))
    elif how == "root is meta":
        put64(raw, main + REC_ROOT, rng.choice((0, 1)))
    elif how == "depth huge":
        put16(raw, main + REC_DEPTH, rng.choice((33, 100, 0xFFFF)))
    elif how == "depth zero":
        put16(raw, main + REC_DEPTH, 0)
    elif how == "last_pg zero":
        put64(raw, base + META_LAST_PG, rng.choice((0, 1, 2)))
    elif how == "last_pg huge":
        put64(raw, base + META_LAST_PG, rng.choice((1 << 40, (1 << 64) - 1)))
    elif how == "entries huge":
        put64(raw, main + REC_ENTRIES, (1 << 64) - 1)
    elif how == "free root = main root":
        put64(raw, base + META_FREE_REC + REC_ROOT, u64(fm.src, main + REC_ROOT))
    else:
        put16(raw, base + 10, rng.choice((0, P_LEAF, 0xFFFF)))
    return "meta %d: %s" % (meta, how)


def current_meta(raw, fm, rng):
    return _meta_damage(raw, fm, fm.current_meta, rng)


def both_metas(raw, fm, rng):
    a = _meta_damage(raw, fm, 0, rng)
    b = _meta_damage(raw, fm, 1, rng)
    if rng.random() < 0.3:
        put64(raw, fm.psize + META_TXNID, u64(fm.src, META_TXNID))
        b += " (and both metas carry the same txnid)"
    return a + "; " + b


def db_record(raw, fm, rng):
    if not fm.records:
        return None
    rec = rng.choice(fm.records)
    how = rng.choice(("random", "root huge", "root is meta", "depth huge", "depth 1 over branch",
                      "entries huge", "root P_INVALID with depth"))
    if how == "random":
        raw[rec:rec + DB_RECORD_SIZE] = rng.randbytes(DB_RECORD_SIZE)
    elif how == "root huge":
        put64(raw, rec + REC_ROOT, rng.choice(_huge_pgnos(fm)[:-2]))
    elif how == "root is meta":
        put64(raw, rec + REC_ROOT, rng.choice((0, 1)))
    elif how == "depth huge":
        put16(raw, rec + REC_DEPTH, rng.choice((33, 1000, 0xFFFF)))
    elif how == "depth 1 over branch":
        put16(raw, rec + REC_DEPTH, 1)
    elif how == "entries huge":
        put64(raw, rec + REC_ENTRIES, (1 << 63) + 5)
    else:
        put64(raw, rec + REC_ROOT, P_INVALID)
    return "database record at offset %d: %s" % (rec, how)


def swap_nodes(raw, fm, rng):
    pgno = _pick_page(fm, rng, ("branch", "leaf"))
    if pgno is None:
        return None
    base = pgno * fm.psize
    n = (u16(fm.src, base + 12) - PAGEHDRSZ) // 2
    if n < 2:
        return None
    i, j = rng.sample(range(n), 2)
    pi, pj = base + PAGEHDRSZ + 2 * i, base + PAGEHDRSZ + 2 * j
    a, b = u16(fm.src, pi), u16(fm.src, pj)
    put16(raw, pi, b)
    put16(raw, pj, a)
    return "page %d (%s): node pointers %d and %d swapped (keys out of order)" % (
        pgno, fm.pages[pgno], i, j)


def zero_page(raw, fm, rng):
    pgno = _pick_page(fm, rng, ("branch", "leaf", "leaf2", "overflow"))
    if pgno is None:
        return None
    base = pgno * fm.psize
    raw[base:base + fm.psize] = bytes(len(raw[base:base + fm.psize]))
    return "page %d (%s): zeroed" % (pgno, fm.pages[pgno])


def copy_page(raw, fm, rng):
    pages = fm.tree_pages(("branch", "leaf"))
    if len(pages) < 2:
        return None
    src, dst = rng.sample(pages, 2)
    ps = fm.psize
    raw[dst * ps:(dst + 1) * ps] = fm.src[src * ps:(src + 1) * ps]
    return "page %d (%s) overwritten with a copy of page %d (%s)" % (
        dst, fm.pages[dst], src, fm.pages[src])


def random_block(raw, fm, rng):
    n = rng.randint(1, 64)
    off = rng.randrange(max(1, len(raw) - n))
    raw[off:off + n] = rng.randbytes(n)
    return "random bytes at %d..%d" % (off, off + n)


MUTATIONS: Dict[str, Mutation] = {
    "bitflip_anywhere": bitflip_anywhere,
    "bitflip_tree_page": bitflip_tree_page,
    "garbage_page_header": garbage_page_header,
    "page_flags": page_flags,
    "lower_upper": lower_upper,
    "node_pointer": node_pointer,
    "garbage_node_header": garbage_node_header,
    "node_key_size": node_key_size,
    "node_data_size": node_data_size,
    "node_flags": node_flags,
    "child_past_end": child_past_end,
    "child_cycle": child_cycle,
    "child_elsewhere": child_elsewhere,
    "children_all_same": children_all_same,
    "subpage": subpage,
    "overflow_header": overflow_header,
    "big_pointer": big_pointer,
    "big_size": big_size,
    "truncate": truncate,
    "current_meta": current_meta,
    "both_metas": both_metas,
    "db_record": db_record,
    "swap_nodes": swap_nodes,
    "zero_page": zero_page,
    "copy_page": copy_page,
    "random_block": random_block,
}


# mutations whose tests fail on the current engine (kept out of MUTATIONS; see the report)
PENDING_MUTATIONS: Dict[str, Mutation] = {
    "node_flags_subdata": node_flags_subdata,
}

GENERIC = ("bitflip_anywhere", "random_block", "truncate")   # need no map of the file


def mutate(raw: bytes, fm: FileMap, names: List[str],
           rng: random.Random) -> Tuple[bytes, List[str]]:
    """Apply the named mutations in turn (skipping those with no target in this file);
    returns the damaged bytes and what was done."""
    out = bytearray(raw)
    done = []
    # truncation last: the other mutations write at offsets mapped in the whole file
    for name in sorted(names, key=lambda n: n == "truncate"):
        if not fm.lmdb and name not in GENERIC:
            continue
        what = (MUTATIONS.get(name) or PENDING_MUTATIONS[name])(out, fm, rng)
        if what is not None:
            done.append("%s: %s" % (name, what))
    return bytes(out), done
