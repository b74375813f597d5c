"""Helpers for the tests of ``purelmdb.ctools`` against Debian's LMDB tools (no tests here).

``run_c`` runs ``/usr/bin/mdb_*`` with ``argv[0]`` the bare tool name, ``run_py`` runs our
lookalike as ``python -m purelmdb.ctools NAME``, so both print the same program name in their
messages. ``make_env`` builds the same environment through either implementation: named
databases of every kind (dupsort, dupfixed, integerkey, integerdup, reversekey), overflow
values, awkward bytes, and deletes that leave free pages.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import List, NamedTuple, Optional

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
C_TOOLS = "/usr/bin"

needs_c_tools = pytest.mark.skipif(not os.path.exists(os.path.join(C_TOOLS, "mdb_stat")),
                                   reason="Debian's lmdb-utils (/usr/bin/mdb_stat) missing")
pytestmark = [pytest.mark.interop, needs_c_tools]

VERSION_LINE = re.compile(rb"LMDB \d+\.\d+\.\d+: \([^)]*\)\n")


class Result(NamedTuple):
    rc: int
    out: bytes
    err: bytes


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env.pop("POSIXLY_CORRECT", None)
    return env


def run_c(tool: str, *args: str, stdin: Optional[bytes] = None, cwd: Optional[str] = None,
          ) -> Result:
    p = subprocess.run([tool, *args], executable=os.path.join(C_TOOLS, tool), input=stdin,
                       capture_output=True, cwd=cwd, env=_env(), timeout=120)
    return Result(p.returncode, p.stdout, p.stderr)


def run_py(tool: str, *args: str, stdin: Optional[bytes] = None, cwd: Optional[str] = None,
           ) -> Result:
    p = subprocess.run([sys.executable, "-m", "purelmdb.ctools", tool, *args], input=stdin,
                       capture_output=True, cwd=cwd, env=_env(), timeout=300)
    assert b"Traceback" not in p.stderr, p.stderr.decode("utf-8", "replace")
    return Result(p.returncode, p.stdout, p.stderr)


def assert_same(c: Result, py: Result) -> None:
    assert py.err == c.err
    assert py.out == c.out
    assert py.rc == c.rc


NAMED = ("plain", "dups", "fixed", "ints", "intdup", "rev", "big\\name")
BACKSLASH_KEY = b"back\\slash"


def make_env(mod: ModuleType, path: str, records: int = 400, subdir: bool = True) -> None:
    """Fill an environment at ``path`` through ``mod`` (``lmdb`` or ``purelmdb``)."""
    kw = {"map_size": 64 << 20} if mod.__name__ == "lmdb" else {}
    env = mod.open(path, max_dbs=16, subdir=subdir, **kw)
    try:
        dbs = {
            "plain": env.open_db(b"plain"),
            "dups": env.open_db(b"dups", dupsort=True),
            "fixed": env.open_db(b"fixed", dupsort=True, dupfixed=True),
            "ints": env.open_db(b"ints", integerkey=True),
            "intdup": env.open_db(b"intdup", dupsort=True, integerdup=True),
            "rev": env.open_db(b"rev", reverse_key=True),
            "big\\name": env.open_db(b"big\\name"),
        }
        with env.begin(write=True) as txn:
            for i in range(records):
                txn.put(b"main%05d" % i, b"value %d \x00\x01\xff ~" % i)
                txn.put(b"k%04d" % i, b"v" * (i % 50), db=dbs["plain"])
                for j in range(i % 7):
                    txn.put(b"d%03d" % (i % 60), b"dup-%d-%d" % (i, j), db=dbs["dups"])
                txn.put(b"f%03d" % (i % 40), struct.pack(">Q", i), db=dbs["fixed"])
                txn.put(struct.pack("=Q", i * 7919), b"int %d" % i, db=dbs["ints"])
                txn.put(struct.pack("=I", i % 13), struct.pack("=I", i), db=dbs["intdup"])
                txn.put(b"r%d" % i, b"rev", db=dbs["rev"])
            txn.put(b"overflow", bytes(range(256)) * 60)            # 15 KiB: overflow pages
            txn.put(b"zz\x00nul", b"a key with a NUL byte")
            txn.put(BACKSLASH_KEY, b"value\\with\\\\backslashes\n\r\t")
            txn.put(b"k", b"x" * 9000, db=dbs["big\\name"])
        with env.begin(write=True) as txn:   # leaves free pages behind
            for i in range(0, records, 3):
                txn.delete(b"main%05d" % i)
                txn.delete(b"k%04d" % i, db=dbs["plain"])
            txn.delete(b"overflow")
            txn.put(b"overflow2", b"O" * 12000)
        with env.begin(write=True) as txn:
            for i in range(0, records, 5):
                txn.delete(b"d%03d" % (i % 60), db=dbs["dups"])
    finally:
        env.close()


def c_pages(data: bytes, psize: int = 4096) -> List[bytes]:
    return [data[i:i + psize] for i in range(0, len(data), psize)]


def mask_gaps(data: bytes, psize: int = 4096) -> bytes:
    """A data file with the unused gap of every branch and leaf page zeroed: LMDB's
    compacting copy leaves whatever its buffer held there."""
    out = bytearray(data)
    for pgno in range(2, len(data) // psize):
        base = pgno * psize
        flags, lower, upper = struct.unpack_from("<HHH", data, base + 10)
        if flags & 0x03 and not flags & 0x20 and 16 <= lower <= upper <= psize:
            out[base + lower:base + upper] = bytes(upper - lower)
        elif flags & 0x20 and 16 <= lower <= upper <= psize:   # LEAF2: no pointer array
            out[base + lower:base + upper] = bytes(upper - lower)
    return bytes(out)


def undo_backslash_fix(dump: bytes) -> bytes:
    """A ``print``-format dump as LMDB before 0.9.25 writes it: a backslash as itself
    (ITS#9068, fixed in 0.9.25, made it ``\\\\``; Debian's tools are 0.9.24)."""
    return re.sub(rb"\\(\\|[0-9a-f]{2})",
                  lambda m: b"\\" if m.group(1) == b"\\" else m.group(0), dump)


def contents(path: str) -> bytes:
    """Everything in an environment as Debian's mdb_dump shows it: every named database,
    and the main database's plain records (a named database's record holds page numbers,
    which depend on the writer)."""
    named = run_c("mdb_dump", "-a", path)
    main = run_c("mdb_dump", path)
    names = set(run_c("mdb_dump", "-l", path).out.split(b"\n"))
    lines = main.out.split(b"\n")
    head = lines.index(b"HEADER=END") + 1 if b"HEADER=END" in lines else len(lines)
    body = lines[head:]
    kept = []
    for i in range(0, len(body) - 1, 2):
        key = body[i]
        if key.startswith(b" ") and bytes.fromhex(key[1:].decode()) in names:
            continue
        kept.extend(body[i:i + 2])
    return b"\n".join(lines[:head] + kept) + b"|" + named.out + b"|%d" % main.rc
