"""Helpers for the file-exchange interop tests (imported by module name)."""

from __future__ import annotations

import os
import random
import struct
from typing import Dict, List, Tuple

GiB = 1 << 30
PREFIXES = (b"", b"a", b"key/", b"user:000", b"\x00\x00", b"\xff" * 8, b"p" * 120, b"r" * 480)

# meta page (LMDB 0.9, 64-bit): page header 16 bytes, then magic, version, address, mapsize,
# two 48-byte db records (FREE_DBI, MAIN_DBI), last_pg, txnid
_META = struct.Struct("<IIQQ" + "IHHQQQQQ" * 2 + "QQ")
_MAGIC = 0xBEEFC0DE


def data_file(path: str, subdir: bool) -> str:
    return os.path.join(path, "data.mdb") if subdir else path


def read_meta(path: str, subdir: bool, psize: int = 4096) -> Dict[str, int]:
    """The current meta page (larger txnid) of a closed store, decoded by hand."""
    with open(data_file(path, subdir), "rb") as f:
        raw = f.read(2 * psize)
    metas = []
    for i in range(2):
        fields = _META.unpack_from(raw, i * psize + 16)
        assert fields[0] == _MAGIC, "bad magic"
        metas.append(dict(
            version=fields[1], mapsize=fields[3], free_depth=fields[6],
            free_entries=fields[10], free_root=fields[11], main_depth=fields[14],
            main_entries=fields[18], main_root=fields[19], last_pg=fields[20],
            txnid=fields[21]))
    return max(metas, key=lambda m: m["txnid"])


def rand_key(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.5:
        n = rng.randint(1, 16)
    elif r < 0.85:
        n = rng.randint(17, 64)
    else:
        n = rng.randint(65, 511)
    return (rng.choice(PREFIXES) + rng.randbytes(n))[:511]


def rand_value(rng: random.Random, big: float = 0.002) -> bytes:
    r = rng.random()
    if r < 0.95:
        n = rng.randint(0, 64)
    elif r < 1.0 - big:
        n = rng.randint(65, 4000)
    else:
        n = rng.randint(4001, 64 * 1024)
    return rng.randbytes(n)


def churn(env, rng: random.Random, model: Dict[bytes, bytes], keyspace: List[bytes],
          n_txns: int, ops_per_txn: int) -> None:
    """Random transactions of puts, overwrites and deletes (some aborted) over keyspace,
    leaving free pages behind; ``model`` follows the committed state."""
    for _ in range(n_txns):
        abort = rng.random() < 0.15
        work = dict(model)
        txn = env.begin(write=True)
        for _ in range(ops_per_txn):
            k = rng.choice(keyspace)
            r = rng.random()
            if r < 0.55:
                v = rand_value(rng, big=0.03)
                assert txn.put(k, v) is True
                work[k] = v
            elif r < 0.9:
                assert txn.delete(k) is (k in work)
                work.pop(k, None)
            elif r < 0.97 and k in work:
                # overwrite an existing value with a very different size
                v = rng.randbytes(rng.choice([0, 10, 3000, 20_000]))
                assert bytes(txn.replace(k, v)) == work[k]
                work[k] = v
            else:
                # delete a run of neighbours through a cursor (page merges)
                c = txn.cursor()
                if c.set_range(k):
                    for _ in range(rng.randint(1, 60)):
                        key = bytes(c.key())
                        if not key:
                            break
                        assert c.delete() is True
                        del work[key]
        if abort:
            txn.abort()
        else:
            txn.commit()
            model.clear()
            model.update(work)


def contents(env) -> List[Tuple[bytes, bytes]]:
    with env.begin() as txn:
        return [(bytes(k), bytes(v)) for k, v in txn.cursor()]


def dump_body(items) -> str:
    """The data section mdb_dump prints (bytevalue format) for these records."""
    return "".join(f" {k.hex()}\n {v.hex()}\n" for k, v in items)


def split_dump(text: str) -> Tuple[Dict[str, str], str]:
    head, sep, rest = text.partition("HEADER=END\n")
    assert sep, "no HEADER=END in mdb_dump output"
    body, sep, tail = rest.partition("DATA=END\n")
    assert sep, "no DATA=END in mdb_dump output"
    assert tail == ""
    header = dict(line.split("=", 1) for line in head.splitlines())
    return header, body


def first_difference(a: str, b: str) -> str:
    al, bl = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(al, bl)):
        if x != y:
            return f"line {i}: got {x[:80]!r}, expected {y[:80]!r}"
    return f"lengths differ: {len(al)} vs {len(bl)} lines"
