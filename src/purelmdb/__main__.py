"""``python -m purelmdb``: a demonstration and small tools.

Commands:

* ``demo [PATH]`` -- create an environment (in a temporary folder unless PATH is given), write
  and read in transactions, and print its statistics;
* ``stat PATH [-n]`` -- print the environment's and the main database's statistics;
* ``verify PATH [-n]`` -- check a data file's integrity without opening it through the engine
  (``-n``: PATH is the data file itself, not a folder).

The library itself never prints; this module does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import List, Optional

from . import Environment, Error, __version__


def _print_stats(env: Environment) -> None:
    info = env.info()
    stat = env.stat()
    print("environment %s" % env.path())
    print("  map size        %d" % info["map_size"])
    print("  page size       %d" % stat["psize"])
    print("  pages used      %d" % (info["last_pgno"] + 1))
    print("  last txn id     %d" % info["last_txnid"])
    print("main database")
    for name in ("depth", "branch_pages", "leaf_pages", "overflow_pages", "entries"):
        print("  %-15s %d" % (name.replace("_", " "), stat[name]))


def demo(path: Optional[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        where = path or os.path.join(tmp, "demo-env")
        with Environment(where) as env:
            n = 20000
            t0 = time.perf_counter()
            with env.begin(write=True) as txn:
                for i in range(n):
                    txn.put(b"user:%08d" % i, b"name-%d;score=%d" % (i, i * 7 % 1000))
            t1 = time.perf_counter()
            with env.begin(write=True) as txn:
                for i in range(0, n, 3):
                    txn.delete(b"user:%08d" % i)
                txn.put(b"blob", os.urandom(100000))   # a value on overflow pages
            with env.begin() as txn:
                t2 = time.perf_counter()
                found = sum(1 for i in range(n) if txn.get(b"user:%08d" % i) is not None)
                t3 = time.perf_counter()
                cur = txn.cursor()
                cur.set_range(b"user:00010000")
                window = [k.decode() for k, _ in zip(cur.iternext(values=False), range(3))]
                blob = len(txn.get(b"blob"))
            print("purelmdb %s demo" % __version__)
            print("  wrote %d records in one transaction: %.1f us each"
                  % (n, (t1 - t0) / n * 1e6))
            print("  deleted every third, stored a %d-byte value" % blob)
            print("  %d records found by random get: %.1f us each" % (found, (t3 - t2) / n * 1e6))
            print("  cursor from user:00010000 ->", ", ".join(window))
            _print_stats(env)
    return 0


def stat(path: str, single_file: bool) -> int:
    with Environment(path, subdir=not single_file, readonly=True, lock=False) as env:
        _print_stats(env)
    return 0


def verify(path: str, single_file: bool) -> int:
    from .verify import VerifyError, format_report
    from .verify import verify as run_verify
    try:
        problems = run_verify(path, subdir=False if single_file else None)
    except VerifyError as exc:
        print("verify: cannot verify %s: %s" % (path, exc), file=sys.stderr)
        return 2
    print(format_report(problems))
    return 1 if problems else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="purelmdb", description="pure-Python LMDB")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="create an environment, write, read, print statistics")
    p.add_argument("path", nargs="?", help="folder to create (default: a temporary one)")
    for name, text in (("stat", "print statistics"), ("verify", "check a data file")):
        p = sub.add_parser(name, help=text)
        p.add_argument("path")
        p.add_argument("-n", dest="single_file", action="store_true",
                       help="PATH is the data file itself (no subdirectory)")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return demo(args.path)
        if args.command == "stat":
            return stat(args.path, args.single_file)
        return verify(args.path, args.single_file)
    except Error as exc:
        print("purelmdb: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
