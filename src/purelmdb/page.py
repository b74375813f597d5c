"""One branch or leaf page, decoded into Python lists, and its encoder.

Theory of operation. The B+tree code never edits page bytes. A page read from the map is
decoded once into a :class:`Page` whose ``keys`` list serves `bisect` directly; clean pages
are immutable and shared through a bounded cache (a committed page's bytes cannot change
while any snapshot can reach it). A write transaction copies a clean page into a dirty one
whose lists it edits freely, and encodes it back to bytes at commit. ``dirty`` holds the
token of the write transaction that owns the copy (0: clean); a nested transaction copies a
page its parent owns again, under the same page number, so that aborting it leaves the
parent's page untouched.

Keys are held in *sort form*: the bytes whose plain ordering is the database's ordering. For
the default comparator that is the key itself; for REVERSEKEY and INTEGERKEY databases it is
the key reversed (``k[::-1]``: comparing from the last byte, and little-endian integers of one
size, both order like the reversed bytes), and reversing again gives the key back.

A leaf value ``vals[i]`` is, by its node flag ``nfl[i]``:

* flag 0: ``bytes`` (written in this transaction) or an ``int``, the absolute file offset of
  the value in the map (``sizes[i]`` bytes) -- a copied page keeps pointing at the bytes of the
  page it came from, which stay intact until the transaction has committed;
* F_BIGDATA: the ``int`` first page of its overflow run, ``sizes[i]`` the value's length;
* F_SUBDATA / F_DUPDATA: ``bytes``, the database record or sub-page.

A branch page keeps child page numbers in ``vals``; ``keys[0]`` is always ``b''``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List, Optional

from .errors import corrupted
from .layout import (
    F_BIGDATA,
    NODE_HEADER,
    P_BRANCH,
    P_DIRTY,
    P_LEAF,
    P_LEAF2,
    PAGE_HEADER,
    PAGEHDRSZ,
    U64,
)

_ptr_structs: Dict[int, struct.Struct] = {}


def _ptr_struct(n: int) -> struct.Struct:
    s = _ptr_structs.get(n)
    if s is None:
        s = _ptr_structs[n] = struct.Struct("<%dH" % n)
    return s


class Page:
    """A decoded branch or leaf page (see the module docstring for the fields)."""

    __slots__ = ("pgno", "flags", "keys", "vals", "sizes", "nfl", "used", "dirty", "rev",
                 "index")

    def __init__(self, pgno: int, flags: int, keys: List[bytes], vals: List[Any],
                 sizes: Optional[List[int]], nfl: Optional[List[int]], used: int,
                 dirty: int, rev: bool) -> None:
        self.pgno = pgno
        self.flags = flags
        self.keys = keys
        self.vals = vals
        self.sizes = sizes      # leaf only: data size of each node
        self.nfl = nfl          # leaf only: node flags
        self.used = used        # bytes taken by nodes and their pointers
        self.dirty = dirty
        self.rev = rev
        # clean leaves only, built on first point lookup: key -> position (a dict probe
        # touches far less memory than a binary search over key objects)
        self.index: Optional[Dict[bytes, int]] = None

    @property
    def is_leaf(self) -> bool:
        return not self.flags & P_BRANCH

    def copy(self, pgno: int, token: int) -> Page:
        """A copy owned by the write transaction ``token`` (the copy-on-write step)."""
        leaf = self.sizes is not None
        return Page(pgno, self.flags, self.keys[:], self.vals[:],
                    self.sizes[:] if leaf else None,  # type: ignore[index]
                    self.nfl[:] if leaf else None,    # type: ignore[index]
                    self.used, token, self.rev)

    def __repr__(self) -> str:
        kind = "branch" if self.flags & P_BRANCH else "leaf"
        return "<Page %d %s n=%d used=%d%s>" % (
            self.pgno, kind, len(self.keys), self.used, " dirty" if self.dirty else "")


def leaf_node_size(ksize: int, dsize: int, nflags: int) -> int:
    """Bytes a leaf node takes in its page, pointer included."""
    if nflags & F_BIGDATA:
        dsize = 8
    return ((8 + ksize + dsize + 1) & ~1) + 2


def branch_node_size(ksize: int) -> int:
    return ((8 + ksize + 1) & ~1) + 2


def decode(m: Any, pgno: int, psize: int, rev: bool) -> Page:
    """Decode branch or leaf page ``pgno`` of buffer ``m``; `CorruptedError` if malformed.

    Every offset and length is checked against the page before use, so a hostile file can
    only produce a `CorruptedError`, never an IndexError or a read outside the page.
    """
    base = pgno * psize
    if base + psize > len(m):
        raise corrupted(pgno, "page lies beyond the end of the file")
    _p, _pad, flags, lower, upper = PAGE_HEADER.unpack_from(m, base)
    kind = flags & (P_BRANCH | P_LEAF | P_LEAF2)
    if flags & P_DIRTY:
        raise corrupted(pgno, "tree page carries the in-memory dirty flag 0x%x" % flags)
    if kind not in (P_BRANCH, P_LEAF, P_LEAF | P_LEAF2):
        raise corrupted(pgno, "expected a branch or leaf page, found flags 0x%x" % flags)
    if kind & P_LEAF2:
        return _decode_leaf2(m, base, pgno, psize, _pad, lower, flags, rev)
    if lower < PAGEHDRSZ or lower & 1 or lower > upper or upper > psize:
        raise corrupted(pgno, "bad mp_lower/mp_upper (%d/%d)" % (lower, upper))
    n = (lower - PAGEHDRSZ) >> 1
    ptrs = _ptr_struct(n).unpack_from(m, base + PAGEHDRSZ)
    keys: List[bytes] = []
    vals: List[Any] = []
    unpack_node = NODE_HEADER.unpack_from
    end = base + psize
    used = 2 * n
    if kind == P_BRANCH:
        if n == 0:
            raise corrupted(pgno, "branch page has no children")
        for off in ptrs:
            a = base + off
            if off < lower or a + 8 > end:
                raise corrupted(pgno, "node offset %d out of bounds" % off)
            lo, hi, fl, ks = unpack_node(m, a)
            if a + 8 + ks > end:
                raise corrupted(pgno, "node key runs past the page end")
            k = m[a + 8:a + 8 + ks]
            keys.append(k[::-1] if rev else k)
            vals.append(lo | hi << 16 | fl << 32)
            used += (8 + ks + 1) & ~1
        keys[0] = b""
        return Page(pgno, flags, keys, vals, None, None, used, 0, rev)
    sizes: List[int] = []
    nfl: List[int] = []
    for off in ptrs:
        a = base + off
        if off < lower or a + 8 > end:
            raise corrupted(pgno, "node offset %d out of bounds" % off)
        lo, hi, fl, ks = unpack_node(m, a)
        ds = lo | hi << 16
        d = a + 8 + ks
        if fl & F_BIGDATA:
            if d + 8 > end:
                raise corrupted(pgno, "overflow node runs past the page end")
            vals.append(U64.unpack_from(m, d)[0])
            used += (16 + ks + 1) & ~1
        else:
            if d + ds > end:
                raise corrupted(pgno, "node data runs past the page end")
            vals.append(m[d:d + ds] if fl else d)
            used += (8 + ks + ds + 1) & ~1
        k = m[a + 8:d]
        keys.append(k[::-1] if rev else k)
        sizes.append(ds)
        nfl.append(fl)
    return Page(pgno, flags, keys, vals, sizes, nfl, used, 0, rev)


def _decode_leaf2(m: Any, base: int, pgno: int, psize: int, size: int, lower: int,
                  flags: int, rev: bool) -> Page:
    """A LEAF2 page (leaves of a fixed-size duplicates tree): bare keys of ``size`` bytes."""
    n = (lower - PAGEHDRSZ) >> 1
    if size == 0 or lower < PAGEHDRSZ or lower & 1 or PAGEHDRSZ + n * size > psize:
        raise corrupted(pgno, "bad LEAF2 page (item size %d, lower %d)" % (size, lower))
    start = base + PAGEHDRSZ
    keys = [m[start + i * size:start + (i + 1) * size] for i in range(n)]
    if rev:
        keys = [k[::-1] for k in keys]
    return Page(pgno, flags, keys, [b""] * n, [0] * n, [0] * n, n * size, 0, rev)


def _encode_leaf2(page: Page, psize: int) -> bytes:
    keys = page.keys
    n = len(keys)
    size = len(keys[0]) if keys else 0
    body = b"".join(k[::-1] for k in keys) if page.rev else b"".join(keys)
    lower = PAGEHDRSZ + 2 * n
    upper = psize - n * (size - 2)
    head = PAGE_HEADER.pack(page.pgno, size, page.flags, lower, upper)
    return head + body + bytes(psize - PAGEHDRSZ - len(body))


def encode(page: Page, psize: int, read_map: Callable[[int, int], bytes]) -> bytes:
    """The page's bytes as LMDB lays them out; ``read_map(offset, size)`` resolves values
    that still live in the map."""
    if page.flags & P_LEAF2:
        return _encode_leaf2(page, psize)
    keys = page.keys
    vals = page.vals
    n = len(keys)
    pack_node = NODE_HEADER.pack
    rev = page.rev
    parts: List[bytes] = []
    ptrs: List[int] = []
    upper = psize
    if page.flags & P_BRANCH:
        for i in range(n):
            k = keys[i][::-1] if rev and i else keys[i]
            c = vals[i]
            node = pack_node(c & 0xFFFF, (c >> 16) & 0xFFFF, (c >> 32) & 0xFFFF, len(k)) + k
            if len(node) & 1:
                node += b"\0"
            upper -= len(node)
            ptrs.append(upper)
            parts.append(node)
    else:
        sizes = page.sizes
        nfl = page.nfl
        assert sizes is not None and nfl is not None
        for i in range(n):
            k = keys[i][::-1] if rev else keys[i]
            fl = nfl[i]
            v = vals[i]
            ds = sizes[i]
            if fl & F_BIGDATA:
                data = U64.pack(v)
            elif v.__class__ is int:
                data = read_map(v, ds)
            else:
                data = v
            node = pack_node(ds & 0xFFFF, ds >> 16, fl, len(k)) + k + data
            if len(node) & 1:
                node += b"\0"
            upper -= len(node)
            ptrs.append(upper)
            parts.append(node)
    lower = PAGEHDRSZ + 2 * n
    if upper < lower:
        raise corrupted(page.pgno, "page overfull while encoding (internal error)")
    parts.reverse()
    head = PAGE_HEADER.pack(page.pgno, 0, page.flags, lower, upper) + _ptr_struct(n).pack(*ptrs)
    return b"".join((head, bytes(upper - lower), *parts))


def new_leaf(pgno: int, rev: bool, token: int) -> Page:
    return Page(pgno, P_LEAF, [], [], [], [], 0, token, rev)


def new_branch(pgno: int, rev: bool, token: int) -> Page:
    return Page(pgno, P_BRANCH, [], [], None, None, 0, token, rev)
