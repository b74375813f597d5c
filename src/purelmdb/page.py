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
from array import array
from itertools import accumulate, repeat
from operator import add, sub
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
    U16,
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
                 "index", "origin", "relinked", "inserted", "below", "hits")

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
        # dirty copies only: the clean page copied (its bytes are in the map until commit)
        # and the branch entries whose child was re-linked since, so that a branch page
        # whose only change is a child pointer is encoded by patching those bytes
        self.origin: Optional[Page] = None
        self.relinked: List[int] = []
        # dirty leaf copies only: where the last node was inserted (-1: none), so that a
        # leaf whose only change is one inserted node is encoded by patching in that node
        self.inserted = -1
        # clean branch pages whose children are leaves: point lookups through the page
        # (`hits`) and, once they were many, one index of every child's records (see
        # Transaction._index_below); False: its children hold records it does not index
        self.below: Any = None
        self.hits = 0

    @property
    def is_leaf(self) -> bool:
        return not self.flags & P_BRANCH

    def copy(self, pgno: int, token: int) -> Page:
        """A copy owned by the write transaction ``token`` (the copy-on-write step)."""
        leaf = self.sizes is not None
        new = Page(pgno, self.flags, self.keys[:], self.vals[:],
                   self.sizes[:] if leaf else None,  # type: ignore[index]
                   self.nfl[:] if leaf else None,    # type: ignore[index]
                   self.used, token, self.rev)
        if self.dirty:
            new.origin = self.origin
            new.relinked = self.relinked[:]
            new.inserted = self.inserted
        else:
            new.origin = self
        return new

    def set_child(self, i: int, pgno: int) -> None:
        """Point branch entry ``i`` at child ``pgno`` (a re-link after copy-on-write)."""
        self.vals[i] = pgno
        self.relinked.append(i)

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


def decode(m: Any, pgno: int, psize: int, rev: bool,
           values_out: Optional[List[bytes]] = None) -> Page:
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
    if n > 1:
        page = _decode_uniform_leaf(m, base, pgno, psize, flags, lower, ptrs, rev, values_out)
        if page is not None:
            return page
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


# (key size, node size, nodes, value size or -1) -> the struct that unpacks such a leaf
_uniform_structs: Dict[Tuple[int, int, int, int], struct.Struct] = {}


def _decode_uniform_leaf(m: Any, base: int, pgno: int, psize: int, flags: int, lower: int,
                         ptrs: Any, rev: bool, values_out: Optional[List[bytes]] = None
                         ) -> Optional[Page]:
    """The common leaf, decoded with one `struct` call: plain nodes of one key size and one
    value size, laid out back to back from the top of the page in key order reversed (how
    this encoder and LMDB's appends write them). None if the page is not like that. With
    ``values_out`` the same call also copies the values, in key order, into that list (a
    scan of leaves it does not cache wants them all)."""
    top = ptrs[0]
    if top + 8 > psize:
        return None
    lo, hi, fl, ks = NODE_HEADER.unpack_from(m, base + top)
    ds = lo | hi << 16
    size = (8 + ks + ds + 1) & ~1
    n = len(ptrs)
    bottom = top - (n - 1) * size
    if fl or top + size > psize or bottom < lower \
            or ptrs != tuple(range(top, bottom - 1, -size)):
        return None
    # every node header must be the first one's: then each node is plain, of these sizes
    # the layout's key: without the values, the value size only matters through the node
    # size; with them, it is a field of its own (sizes 14 and 15 share a node size)
    width = 2 if values_out is None else 3
    shape = (ks, size, n, -1 if values_out is None else ds)
    layout = _uniform_structs.get(shape)
    if layout is None:
        if len(_uniform_structs) > 4096:
            _uniform_structs.clear()
        node = "Q%ds%dx" % (ks, size - 8 - ks) if width == 2 \
            else "Q%ds%ds%dx" % (ks, ds, size - 8 - ks - ds)
        layout = _uniform_structs[shape] = struct.Struct("<" + node * n)
    fields = layout.unpack_from(m, base + bottom)
    if fields[0::width].count(lo | hi << 16 | ks << 48) != n:
        return None
    if values_out is not None:
        values_out[:] = fields[-1::-3]
        keys = list(fields[-2::-3])
    else:
        keys = list(fields[-1::-2])      # memory order is the reverse of key order
    if rev:
        keys = [k[::-1] for k in keys]
    start = base + top + 8 + ks
    vals = list(range(start, start - n * size, -size))
    return Page(pgno, flags, keys, vals, [ds] * n, [0] * n, n * (size + 2), 0, rev)


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


# encoder tables, by key length: a branch node's struct format and size (header, key, pad)
_BRANCH_FMT = ["Q%ds" % (k + (k & 1)) for k in range(1024)]
_BRANCH_SIZE = [8 + k + (k & 1) for k in range(1024)]
_NODE_HEAD = struct.Struct("<Q")   # a node header as one integer: lo | hi << 16 | fl << 32 | ks << 48
_CHILD = struct.Struct("<HHH")     # a branch node's child page number (lo, hi, flags)
_PGNO = struct.Struct("<Q")
_KSIZE = struct.Struct("<6xH")   # a node's key size


def encode(page: Page, psize: int, m: Any) -> bytes:
    """The page's bytes as LMDB lays them out; ``m`` is the map of the transaction's
    snapshot, which holds the bytes of the values the page still points at."""
    flags = page.flags
    if flags & P_LEAF2:
        return _encode_leaf2(page, psize)
    origin = page.origin
    if flags & P_BRANCH:
        if origin is not None:
            image = _patch_branch(page, origin, psize, m)
            if image is not None:
                return image
        return _encode_branch(page, psize)
    if origin is not None and page.inserted >= 0:
        patched = _patch_leaf(page, origin, psize, m)
        if patched is not None:
            return patched[0]
    return _encode_leaf(page, psize, m)


def _patch_branch(page: Page, origin: Page, psize: int, m: Any) -> Optional[bytes]:
    """The bytes of a branch copy that differs from its origin only in re-linked children:
    the origin's bytes with those pointers rewritten (a small transaction rewrites every
    branch on its path this way), or None when anything else changed."""
    vals = page.vals
    if len(vals) != len(origin.vals) or page.keys != origin.keys \
            or page.flags != origin.flags:
        return None
    expected = origin.vals[:]
    for i in page.relinked:
        expected[i] = vals[i]
    if expected != vals:
        return None
    base = origin.pgno * psize
    image = bytearray(m[base:base + psize])
    _PGNO.pack_into(image, 0, page.pgno)
    for i in set(page.relinked):
        off = U16.unpack_from(image, PAGEHDRSZ + 2 * i)[0]   # decode checked it lies inside
        c = vals[i]
        _CHILD.pack_into(image, off, c & 0xFFFF, (c >> 16) & 0xFFFF, (c >> 32) & 0xFFFF)
    return bytes(image)


def _patch_leaf(page: Page, origin: Page, psize: int, m: Any
                ) -> Optional[Tuple[bytes, List[int]]]:
    """The bytes of a leaf copy that differs from its origin by one inserted node (the
    leaf of a small write transaction): the origin's bytes with that node added below the
    others and its pointer put in place, as LMDB itself inserts; and where its values lie
    in them (`value_offsets`: the old nodes did not move). None when anything else
    changed or the node is of a kind this does not write."""
    i = page.inserted
    keys = page.keys
    okeys = origin.keys
    n = len(okeys)
    if len(keys) != n + 1 or not 0 <= i <= n or page.flags != origin.flags:
        return None
    vals = page.vals
    sizes = page.sizes
    nfl = page.nfl
    ovals = origin.vals
    osizes = origin.sizes
    onfl = origin.nfl
    assert sizes is not None and nfl is not None and osizes is not None and onfl is not None
    # the copy less its new node must equal the origin (same objects: identity compares)
    key, v, size, fl = keys.pop(i), vals.pop(i), sizes.pop(i), nfl.pop(i)
    same = keys == okeys and vals == ovals and sizes == osizes and nfl == onfl
    keys.insert(i, key)
    vals.insert(i, v)
    sizes.insert(i, size)
    nfl.insert(i, fl)
    if not same:
        return None
    if page.rev:
        key = key[::-1]
    if fl == 0 and v.__class__ is bytes:
        node = _NODE_HEAD.pack(len(v) | len(key) << 48) + key + v
    elif fl == F_BIGDATA and v.__class__ is int:
        node = _NODE_HEAD.pack(size | fl << 32 | len(key) << 48) + key + U64.pack(v)
    else:
        return None
    if len(node) & 1:
        node += b"\0"
    base = origin.pgno * psize
    _p, _pad, _flags, lower, upper = PAGE_HEADER.unpack_from(m, base)  # decode checked them
    top = upper - len(node)
    if top < lower + 2:
        return None
    # the origin's values are offsets into its own page (decode and adopt_image make them
    # so); the patched page keeps every old node where it was
    if any(onfl):
        starts = [o - base if not f else 0 for o, f in zip(ovals, onfl)]
    else:
        starts = list(map(sub, ovals, repeat(base)))
    starts.insert(i, top + 8 + len(key))
    image = bytearray(m[base:base + psize])
    image[top:upper] = node
    at = PAGEHDRSZ + 2 * i
    image[at + 2:lower + 2] = image[at:lower]
    U16.pack_into(image, at, top)
    PAGE_HEADER.pack_into(image, 0, page.pgno, 0, page.flags, lower + 2, top)
    return bytes(image), starts


def _encode_branch(page: Page, psize: int) -> bytes:
    """A branch page, with one C-level call per step instead of Python work per node (a
    branch page holds a hundred or more nodes): node = child page number in the header's
    low 48 bits and the key size in its top 16, then the key, padded to even length."""
    keys = page.keys
    if page.rev:
        keys = [k[::-1] for k in keys]
    n = len(keys)
    lens = array("H", list(map(len, keys)))   # (an array fills faster from a list)
    lens[0] = 0                          # the first node has no key, whatever it says
    heads = array("H", array("Q", page.vals).tobytes())
    if len(heads) != 4 * n:
        raise corrupted(page.pgno, "branch keys and children differ in number")
    heads[3::4] = lens                   # the top u16 of each header is its key size
    heads = array("Q", heads.tobytes())
    # memory order is the reverse of key order: node 0 sits at the end of the page
    heads.reverse()
    lens.reverse()
    args: List[Any] = [None] * (2 * n)
    args[0::2] = heads
    args[1::2] = keys[::-1]
    body = struct.pack("<" + "".join(map(_BRANCH_FMT.__getitem__, lens)), *args)
    # node i starts where node i-1 does, less its size
    ptrs = list(accumulate(map(_BRANCH_SIZE.__getitem__, reversed(lens)), sub, initial=psize))
    return _assemble(page, psize, n, ptrs, body)


def encode_for_commit(page: Page, psize: int, m: Any) -> Tuple[bytes, Optional[Sequence[int]]]:
    """`encode`, and where the page's inline values lie in its bytes (`value_offsets`),
    which a uniform leaf knows from its layout."""
    if page.nfl is None or page.flags & P_LEAF2:
        return encode(page, psize, m), None
    origin = page.origin
    if origin is not None and page.inserted >= 0:
        patched = _patch_leaf(page, origin, psize, m)
        if patched is not None:
            return patched
    uniform = _uniform_sizes(page)
    if uniform is not None:
        ks, ds = uniform
        keys = [k[::-1] for k in page.keys] if page.rev else page.keys
        image = _encode_uniform_leaf(page, psize, keys, m, ks, ds)
        if image is not None:
            node_size = 8 + ks + ds + ((ks + ds) & 1)
            first = psize - node_size + 8 + ks
            return image, range(first, first - len(keys) * node_size, -node_size)
    image = _encode_leaf(page, psize, m)
    return image, value_offsets(page, image)


def _uniform_sizes(page: Page) -> Optional[Tuple[int, int]]:
    """(key size, value size) of a leaf of two or more plain nodes all of those sizes."""
    keys = page.keys
    sizes = page.sizes
    nfl = page.nfl
    assert sizes is not None and nfl is not None
    n = len(keys)
    if n > 1 and not any(nfl):
        ks = len(keys[0])
        ds = sizes[0]
        if sizes.count(ds) == n and list(map(len, keys)).count(ks) == n:
            return ks, ds
    return None


def _encode_leaf(page: Page, psize: int, m: Any) -> bytes:
    keys = page.keys
    if page.rev:
        keys = [k[::-1] for k in keys]
    sizes = page.sizes
    nfl = page.nfl
    assert sizes is not None and nfl is not None
    uniform = _uniform_sizes(page)
    if uniform is not None:
        image = _encode_uniform_leaf(page, psize, keys, m, *uniform)
        if image is not None:
            return image
    pack_head = _NODE_HEAD.pack
    pack_u64 = U64.pack
    nodes: List[bytes] = []
    for k, v, ds, fl in zip(keys, page.vals, sizes, nfl):
        if v.__class__ is int:
            if not fl:
                # a value still in the map, in the node it came from (same key, size and
                # flags): copy that whole node
                node = m[v - 8 - len(k):v + ds]
            else:
                # F_BIGDATA: the first page of the overflow run
                node = pack_head(ds | fl << 32 | len(k) << 48) + k + pack_u64(v)
        else:
            node = pack_head(ds | fl << 32 | len(k) << 48) + k + v
        if len(node) & 1:
            node += b"\0"
        nodes.append(node)
    ptrs = list(accumulate(map(len, nodes), sub, initial=psize))
    nodes.reverse()   # memory order is the reverse of key order
    return _assemble(page, psize, len(keys), ptrs, b"".join(nodes))


def _encode_uniform_leaf(page: Page, psize: int, keys: List[bytes], m: Any, ks: int,
                         ds: int) -> Optional[bytes]:
    """A leaf whose nodes are all plain, with keys of one size and values of one size (a
    bulk load, a table of records): every node has the same header and size, so there is
    no per-node arithmetic left; a value still in the map brings its whole node from
    there. None if the map ends early (only a damaged file can make it)."""
    n = len(keys)
    pad = (ks + ds) & 1
    node_size = 8 + ks + ds + pad
    vals = page.vals
    if list(map(type, vals)).count(bytes) != n:
        # values still in the map: their bytes from there (same key, size, flags)
        vals = [v if v.__class__ is bytes else m[v:v + ds] for v in vals]
    # one join of (header, key, value[, pad]) per node: no per-node concatenation
    width = 3 + pad
    parts = [_NODE_HEAD.pack(ds | ks << 48)] * (width * n)
    parts[1::width] = keys[::-1]        # memory order is the reverse of key order
    parts[2::width] = vals[::-1]
    if pad:
        parts[3::width] = [b"\0"] * n
    body = b"".join(parts)
    if len(body) != n * node_size:
        return None
    return _assemble(page, psize, n, list(range(psize, psize - (n + 1) * node_size, -node_size)),
                     body)


def _assemble(page: Page, psize: int, n: int, ptrs: List[int], body: bytes) -> bytes:
    """Header, pointer array, free gap, nodes; ``ptrs`` starts with ``psize``."""
    upper = ptrs[-1]
    lower = PAGEHDRSZ + 2 * n
    if upper < lower:
        raise corrupted(page.pgno, "page overfull while encoding (internal error)")
    head = PAGE_HEADER.pack(page.pgno, 0, page.flags, lower, upper)
    return b"".join((head, _ptr_struct(n).pack(*ptrs[1:]), bytes(upper - lower), body))


def find_in_leaf(m: Any, pgno: int, psize: int, skey: bytes, rev: bool,
                 last_pg: int) -> Any:
    """Look ``skey`` up in clean leaf ``pgno`` by a binary search over its bytes, without
    decoding the page: the slice of ``m`` holding its value if it is a plain node, None
    if the key is absent, `DECODE` for anything else (another kind of node or page, or a
    malformed one), which the caller handles by decoding the page.

    Every offset read is checked against the page before use, as `decode` does."""
    base = pgno * psize
    if pgno < 2 or pgno > last_pg or base + psize > len(m):
        return DECODE
    _p, _pad, flags, lower, upper = PAGE_HEADER.unpack_from(m, base)
    if flags & (P_BRANCH | P_LEAF | P_LEAF2 | P_DIRTY) != P_LEAF or lower < PAGEHDRSZ \
            or lower & 1 or lower > upper or upper > psize:
        return DECODE
    n = (lower - PAGEHDRSZ) >> 1
    ptrs = _ptr_struct(n).unpack_from(m, base + PAGEHDRSZ)
    unpack_ksize = _KSIZE.unpack_from
    limit = psize - 8
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        off = ptrs[mid]
        if off < lower or off > limit:
            return DECODE
        a = base + off
        ks = unpack_ksize(m, a)[0]
        if off + 8 + ks > psize:
            return DECODE
        k = m[a + 8:a + 8 + ks]
        if rev:
            k = k[::-1]
        if k < skey:
            lo = mid + 1
        elif k > skey:
            hi = mid
        else:
            dlo, dhi, fl, _ks = NODE_HEADER.unpack_from(m, a)
            d = a + 8 + ks
            size = dlo | dhi << 16
            if fl or d + size > base + psize:
                return DECODE
            return slice(d, d + size)
    return None


DECODE = object()   # find_in_leaf: decode the page instead


def leaf_index(page: Page) -> Dict[bytes, Any]:
    """The point-lookup index of a clean leaf: key -> the slice of the map that holds its
    value (a plain value) or the entry's position (anything else). A dictionary probe and
    one slice touch far less memory than a binary search over key objects followed by
    three list lookups."""
    keys = page.keys
    vals = page.vals
    if any(page.nfl) or page.flags & P_LEAF2:  # type: ignore[arg-type]
        return dict(zip(keys, range(len(keys))))
    # every node is plain, so every value is a map offset (clean pages hold no bytes)
    return dict(zip(keys, map(slice, vals, map(add, vals, page.sizes))))  # type: ignore[arg-type]


def value_offsets(page: Page, image: bytes) -> Optional[Sequence[int]]:
    """Where the inline values of a leaf page lie in ``image``, the bytes it was just encoded
    as (what `adopt_image` needs once they are written); None for other pages. Called
    right after encoding, while the page's keys are still in the CPU's caches; nodes of
    one size, back to back, give a `range`."""
    nfl = page.nfl
    if nfl is None or page.flags & P_LEAF2:
        return None
    keys = page.keys
    n = len(keys)
    ptrs = _ptr_struct(n).unpack_from(image, PAGEHDRSZ)
    if n > 1:
        ks = len(keys[0])
        step = ptrs[0] - ptrs[1]
        if step > 0 and list(map(len, keys)).count(ks) == n \
                and ptrs == tuple(range(ptrs[0], ptrs[0] - n * step, -step)):
            return range(ptrs[0] + 8 + ks, ptrs[0] + 8 + ks - n * step, -step)
    # value offset = node offset + header + key
    return list(map(add, ptrs, map(add, repeat(8), map(len, keys))))


def adopt_image(page: Page, starts: Optional[Sequence[int]], base: int) -> None:
    """Turn a page just written at file offset ``base``, its inline values at ``starts``
    within it (from `value_offsets`), into a clean page for the cache: its inline values
    point at their bytes there (the map shows them from the commit on, and they stay there
    while any snapshot reaches the page), which keeps no copy of them in memory and lets
    the next copy of the page take its nodes from the map whole."""
    page.dirty = 0
    page.index = None
    page.origin = None
    page.relinked = []
    page.inserted = -1
    nfl = page.nfl
    if starts is None or nfl is None:
        return
    if isinstance(starts, range):
        absolute = list(range(starts.start + base, starts.stop + base, starts.step))
    else:
        absolute = list(map(add, starts, repeat(base)))
    if any(nfl):
        page.vals = [s if not f else v for s, f, v in zip(absolute, nfl, page.vals)]
    else:
        page.vals = absolute


def new_leaf(pgno: int, rev: bool, token: int) -> Page:
    return Page(pgno, P_LEAF, [], [], [], [], 0, token, rev)


def new_branch(pgno: int, rev: bool, token: int) -> Page:
    return Page(pgno, P_BRANCH, [], [], None, None, 0, token, rev)
