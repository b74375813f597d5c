"""The LMDB 0.9 on-disk format: constants and `struct` codecs, no I/O.

All integers are little-endian (the format is native-endian; purelmdb supports the 64-bit
little-endian platforms LMDB files come from). ``P`` is the page size, 4096 by default and
always read from the file for an existing environment. Page ``n`` lives at offset ``n * P``.

Page header (every page, 16 bytes)::

    offset size field  meaning
    0      8    pgno   page number (ignored by readers of sub-pages)
    8      2    pad    LEAF2 pages: the fixed item size; otherwise meaningless
    10     2    flags  P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2, P_SUBP (P_DIRTY on sub-pages)
    12     2    lower  end of the pointer array: n = (lower - 16) / 2 entries
    14     2    upper  start of the node area
    12     4    pages  overflow pages only: length of the run (overlays lower/upper)
    16     2n   ptrs   offsets of the n nodes, in key order

Meta page (pages 0 and 1; header then 136 bytes)::

    16     4    magic    0xBEEFC0DE
    20     4    version  1
    24     8    address  fixed map address, normally 0
    32     8    mapsize  size of the map in bytes
    40     48   dbs[0]   the free-list database (its pad is the page size)
    88     48   dbs[1]   the main database
    136    8    last_pg  highest page number in use
    144    8    txnid    the transaction that wrote this meta

Database record (`MDB_db`, 48 bytes; may start at an odd address inside a node)::

    0      4    pad       FREE_DBI in a meta: the page size; DUPFIXED sub-db: the item size
    4      2    flags     persistent database flags
    6      2    depth     0 = empty, 1 = the root is a leaf
    8      8    branch_pages
    16     8    leaf_pages
    24     8    overflow_pages
    32     8    entries
    40     8    root      root page, or P_INVALID when empty

Node (leaf and branch pages, 8-byte header, nodes start at even offsets)::

    0      2    lo     leaf: data size bits 0-15;  branch: child pgno bits 0-15
    2      2    hi     leaf: data size bits 16-31; branch: child pgno bits 16-31
    4      2    flags  leaf: F_BIGDATA, F_SUBDATA, F_DUPDATA; branch: child pgno bits 32-47
    6      2    ksize  key length
    8      ksize key, then the data (leaf) or nothing (branch)
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# -- constants ----------------------------------------------------------------------------------

MAGIC = 0xBEEFC0DE
DATA_VERSION = 1
LOCK_FORMAT = 0x00010001
DEFAULT_PAGE_SIZE = 4096
MIN_PAGE_SIZE = 256
MAX_PAGE_SIZE = 32768
PAGEHDRSZ = 16
NODESIZE = 8
MAX_KEY_SIZE = 511
MAX_DATA_SIZE = 0xFFFFFFFF
MAX_DEPTH = 32
P_INVALID = 0xFFFFFFFFFFFFFFFF
IDLE_TXNID = 0xFFFFFFFFFFFFFFFF
FREE_DBI = 0
MAIN_DBI = 1
FILL_THRESHOLD = 250  # tenths of a percent: a leaf under 25 % full is rebalanced

# page flags
P_BRANCH = 0x01
P_LEAF = 0x02
P_OVERFLOW = 0x04
P_META = 0x08
P_DIRTY = 0x10
P_LEAF2 = 0x20
P_SUBP = 0x40

# leaf node flags
F_BIGDATA = 0x01
F_SUBDATA = 0x02
F_DUPDATA = 0x04

# database flags (stored in MDB_db.flags)
MDB_REVERSEKEY = 0x02
MDB_DUPSORT = 0x04
MDB_INTEGERKEY = 0x08
MDB_DUPFIXED = 0x10
MDB_INTEGERDUP = 0x20
MDB_REVERSEDUP = 0x40
PERSISTENT_DB_FLAGS = 0x7E

# environment flags that LMDB ORs into the free database's flags at creation
MDB_FIXEDMAP = 0x01
MDB_NOSUBDIR = 0x4000


def node_max(psize: int) -> int:
    """Largest leaf node kept inline; a bigger one moves its data to overflow pages."""
    return (((psize - PAGEHDRSZ) // 2) & ~1) - 2


def overflow_pages(dsize: int, psize: int) -> int:
    """Length of the overflow run that holds a value of ``dsize`` bytes."""
    return (dsize + PAGEHDRSZ - 1) // psize + 1


def valid_page_size(psize: int) -> bool:
    return MIN_PAGE_SIZE <= psize <= MAX_PAGE_SIZE and psize & (psize - 1) == 0


# -- codecs -------------------------------------------------------------------------------------

PAGE_HEADER = struct.Struct("<QHHHH")        # pgno, pad, flags, lower, upper
OVERFLOW_HEADER = struct.Struct("<QHHI")     # pgno, pad, flags, pages
NODE_HEADER = struct.Struct("<HHHH")         # lo, hi, flags, ksize
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

DB_RECORD = struct.Struct("<IHHQQQQQ")       # pad, flags, depth, branch, leaf, overflow, entries, root
DB_RECORD_SIZE = DB_RECORD.size              # 48

# meta body from offset 16: magic, version, address, mapsize, dbs[0], dbs[1], last_pg, txnid
META = struct.Struct("<IIQQ48s48sQQ")
META_OFFSET = PAGEHDRSZ
META_SIZE = PAGEHDRSZ + META.size            # 152
# what a commit rewrites: mapsize through txnid, bytes 32..151 of the meta page
META_TAIL = struct.Struct("<Q48s48sQQ")
META_TAIL_OFFSET = 32


class DbRecord(NamedTuple):
    """An `MDB_db` record."""

    pad: int = 0
    flags: int = 0
    depth: int = 0
    branch_pages: int = 0
    leaf_pages: int = 0
    overflow_pages: int = 0
    entries: int = 0
    root: int = P_INVALID

    def pack(self) -> bytes:
        return DB_RECORD.pack(*self)

    @classmethod
    def unpack(cls, buf: object, offset: int = 0) -> DbRecord:
        return cls._make(DB_RECORD.unpack_from(buf, offset))  # type: ignore[arg-type]


EMPTY_DB = DbRecord()


class Meta(NamedTuple):
    """The body of a meta page."""

    magic: int
    version: int
    address: int
    mapsize: int
    free_db: DbRecord
    main_db: DbRecord
    last_pg: int
    txnid: int

    @property
    def page_size(self) -> int:
        return self.free_db.pad

    def pack_page(self, pgno: int, psize: int) -> bytes:
        """The whole meta page, as written when an environment is created."""
        head = PAGE_HEADER.pack(pgno, 0, P_META, 0, 0)
        body = META.pack(self.magic, self.version, self.address, self.mapsize,
                         self.free_db.pack(), self.main_db.pack(), self.last_pg, self.txnid)
        return head + body + bytes(psize - PAGEHDRSZ - META.size)

    def pack_tail(self) -> bytes:
        """Bytes 32..151 of the meta page: what a commit rewrites."""
        return META_TAIL.pack(self.mapsize, self.free_db.pack(), self.main_db.pack(),
                              self.last_pg, self.txnid)


def unpack_meta(buf: object, offset: int = 0) -> tuple[int, Meta]:
    """Decode the meta page at ``offset``; returns (page flags, meta). No validation."""
    _pgno, _pad, flags, _lower, _upper = PAGE_HEADER.unpack_from(buf, offset)  # type: ignore[arg-type]
    (magic, version, address, mapsize, free_raw, main_raw, last_pg,
     txnid) = META.unpack_from(buf, offset + META_OFFSET)  # type: ignore[arg-type]
    return flags, Meta(magic, version, address, mapsize, DbRecord.unpack(free_raw),
                       DbRecord.unpack(main_raw), last_pg, txnid)


def new_meta(psize: int, mapsize: int, env_flags: int = 0) -> Meta:
    """The meta of a freshly created environment (both pages hold it, txnid 0)."""
    free_db = DbRecord(pad=psize, flags=MDB_INTEGERKEY | (env_flags & 0xFFFF))
    return Meta(MAGIC, DATA_VERSION, 0, mapsize, free_db, EMPTY_DB, 1, 0)


def even(n: int) -> int:
    return (n + 1) & ~1
