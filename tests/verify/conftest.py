"""Fixtures for the verifier tests: files built by the C binding and by Debian's mdb_load
(LMDB 0.9.24), and `Image`, a byte-level editor that finds things to damage in a data file.

The verifier is imported as ``purelmdb.verify``; the engine is never used here, so these
tests only need the C binding and the mdb_* tools.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import pytest

from purelmdb.layout import (
    DB_RECORD,
    F_BIGDATA,
    F_DUPDATA,
    F_SUBDATA,
    NODE_HEADER,
    P_BRANCH,
    P_INVALID,
    P_LEAF,
    P_LEAF2,
)

# -- building files ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def c_binding():
    """The C binding (required: CI installs it)."""
    import lmdb

    return lmdb


@pytest.fixture
def build(tmp_path, c_binding) -> Callable[..., Path]:
    """``build(fill, **open_kwargs)`` -> env directory written by the C binding (0.9.36)."""
    counter = iter(range(1000))

    def make(fill: Callable, **kwargs) -> Path:
        path = tmp_path / ("env%d" % next(counter))
        path.mkdir()
        kwargs.setdefault("max_dbs", 16)
        kwargs.setdefault("map_size", 64 << 20)
        env = c_binding.open(str(path), **kwargs)
        try:
            fill(env)
            env.sync(True)
        finally:
            env.close()
        return path

    return make


Items = Sequence[Tuple[bytes, bytes]]


@pytest.fixture
def mdb_load(tmp_path) -> Callable[..., Path]:
    """``mdb_load([(name, [flag, ...], items), ...])`` -> env written by LMDB 0.9.24."""
    exe = shutil.which("mdb_load")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("mdb_load (lmdb-utils) is required under CI")
        pytest.skip("mdb_load (lmdb-utils) is not installed")
    counter = iter(range(1000))

    def make(dbs: Sequence[Tuple[Optional[str], List[str], Items]]) -> Path:
        path = tmp_path / ("loaded%d" % next(counter))
        path.mkdir()
        text = []
        for name, flags, items in dbs:
            text.append("VERSION=3\nformat=bytevalue\n")
            if name:
                text.append("database=%s\n" % name)
            text.append("type=btree\nmapsize=67108864\n")
            text.extend("%s=1\n" % flag for flag in flags)
            text.append("HEADER=END\n")
            text.extend(" %s\n %s\n" % (k.hex(), v.hex()) for k, v in items)
            text.append("DATA=END\n")
        subprocess.run([exe, "-f", "/dev/stdin", str(path)], input="".join(text).encode(),
                       check=True, timeout=60)
        return path

    return make


# -- editing files ---------------------------------------------------------------------------


class Image:
    """A data file in memory, with helpers to find pages, nodes and records to damage.

    Offsets are absolute file offsets; ``save()`` writes the bytes back.
    """

    def __init__(self, path: Path) -> None:
        self.path = path / "data.mdb" if path.is_dir() else path
        self.raw = bytearray(self.path.read_bytes())
        self.psize = self.u32(40)

    def save(self) -> None:
        self.path.write_bytes(bytes(self.raw))

    # integers
    def u16(self, off: int) -> int:
        return struct.unpack_from("<H", self.raw, off)[0]

    def u32(self, off: int) -> int:
        return struct.unpack_from("<I", self.raw, off)[0]

    def u64(self, off: int) -> int:
        return struct.unpack_from("<Q", self.raw, off)[0]

    def set16(self, off: int, value: int) -> None:
        struct.pack_into("<H", self.raw, off, value)

    def set32(self, off: int, value: int) -> None:
        struct.pack_into("<I", self.raw, off, value)

    def set64(self, off: int, value: int) -> None:
        struct.pack_into("<Q", self.raw, off, value)

    # metas and records
    def meta_index(self) -> int:
        t0, t1 = self.u64(144), self.u64(self.psize + 144)
        return 1 if t1 > t0 else 0

    def meta(self) -> int:
        """Offset of the current meta page."""
        return self.meta_index() * self.psize

    def free_rec(self) -> int:
        return self.meta() + 40

    def main_rec(self) -> int:
        return self.meta() + 88

    def last_pg(self) -> int:
        return self.u64(self.meta() + 136)

    def rec(self, off: int) -> dict:
        names = ("pad", "flags", "depth", "branch", "leaf", "overflow", "entries", "root")
        return dict(zip(names, DB_RECORD.unpack_from(self.raw, off)))

    # pages
    def page(self, pgno: int) -> int:
        return pgno * self.psize

    def flags(self, pgno: int) -> int:
        return self.u16(self.page(pgno) + 10)

    def set_flags(self, pgno: int, value: int) -> None:
        self.set16(self.page(pgno) + 10, value)

    def nkeys(self, pgno: int) -> int:
        return (self.u16(self.page(pgno) + 12) - 16) // 2

    def node(self, pgno: int, i: int) -> int:
        """Absolute offset of node i of page pgno."""
        return self.page(pgno) + self.u16(self.page(pgno) + 16 + 2 * i)

    def node_key(self, off: int) -> bytes:
        ksize = self.u16(off + 6)
        return bytes(self.raw[off + 8:off + 8 + ksize])

    def node_flags(self, off: int) -> int:
        return self.u16(off + 4)

    def node_data(self, off: int) -> int:
        """Offset of a leaf node's data."""
        return off + 8 + self.u16(off + 6)

    def child(self, off: int) -> int:
        lo, hi, top, _ = NODE_HEADER.unpack_from(self.raw, off)
        return lo | hi << 16 | top << 32

    def set_child(self, off: int, pgno: int) -> None:
        NODE_HEADER.pack_into(self.raw, off, pgno & 0xFFFF, pgno >> 16 & 0xFFFF,
                              pgno >> 32 & 0xFFFF, self.u16(off + 6))

    def tree_pages(self, root: int) -> Iterator[Tuple[int, int]]:
        """(pgno, depth) of every page of a tree, in key order (depth-first)."""
        if root == P_INVALID:
            return
        stack = [(root, 1)]
        while stack:
            pgno, depth = stack.pop()
            yield pgno, depth
            if self.flags(pgno) & P_BRANCH:
                kids = [self.child(self.node(pgno, i)) for i in range(self.nkeys(pgno))]
                stack.extend((kid, depth + 1) for kid in reversed(kids))

    def leaves(self, root: int) -> List[int]:
        return [p for p, _ in self.tree_pages(root) if self.flags(p) & P_LEAF]

    def branches(self, root: int) -> List[int]:
        return [p for p, _ in self.tree_pages(root) if self.flags(p) & P_BRANCH]

    def leaf_nodes(self, root: int) -> Iterator[Tuple[int, int, int]]:
        """(pgno, index, node offset) of every leaf node of a tree (not LEAF2 pages)."""
        for pgno in self.leaves(root):
            if self.flags(pgno) & P_LEAF2:
                continue
            for i in range(self.nkeys(pgno)):
                yield pgno, i, self.node(pgno, i)

    def named(self, name: bytes) -> int:
        """Offset of the 48-byte record of named DB ``name``."""
        for _pgno, _i, off in self.leaf_nodes(self.rec(self.main_rec())["root"]):
            if self.node_flags(off) == F_SUBDATA and self.node_key(off) == name:
                return self.node_data(off)
        raise LookupError(name)

    def find_node(self, root: int, flags: int) -> Tuple[int, int, int]:
        for found in self.leaf_nodes(root):
            if self.node_flags(found[2]) == flags:
                return found
        raise LookupError(flags)

    def bigdata(self, root: int) -> Tuple[int, int]:
        """(node offset, first overflow page) of the first F_BIGDATA node of a tree."""
        _pgno, _i, off = self.find_node(root, F_BIGDATA)
        return off, self.u64(self.node_data(off))

    def subpage(self, root: int) -> int:
        """Offset of the first DUPSORT sub-page of a tree."""
        return self.node_data(self.find_node(root, F_DUPDATA)[2])

    def free_value(self) -> int:
        """Offset of the first inline free-list record's value (count, then pages)."""
        for _pgno, _i, off in self.leaf_nodes(self.rec(self.free_rec())["root"]):
            if self.node_flags(off) == 0:
                return self.node_data(off)
        raise LookupError("no inline free-list record")


@pytest.fixture
def image() -> Callable[[Path], Image]:
    return Image
