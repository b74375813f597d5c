"""``python -m purelmdb`` (and the ``purelmdb`` console script): one entry point for

* the `lmdb` package's tool, with its syntax: ``python -m purelmdb -e ENV stat``, ``... dump``,
  ``... restore :main:=main.cdbmake``, ``verify PATH``, ... (see `purelmdb.tool`; ``python -m
  lmdb ARGS`` and ``python -m purelmdb ARGS`` do the same);
* ``demo [PATH]``: create an environment (in a temporary folder unless PATH is given), write
  and read in transactions, and print its statistics;
* ``mdb_stat``, ``mdb_dump``, ``mdb_load``, ``mdb_copy``, ``mdb_drop`` followed by the C
  tools' arguments: LMDB's command-line tools (`purelmdb.ctools`);
* shorter forms kept from earlier versions: ``stat PATH`` (no ``-e``) is ``-e PATH -r stat``,
  and ``-n`` after ``stat``/``verify`` means ``-s`` (PATH is the data file itself).

Exit status: 0 on success, 1 on an error (the message is on stderr, without a traceback),
2 on a usage error, 130 when interrupted; ``verify`` exits 1 when it finds problems.
The library itself never prints; this module and `purelmdb.tool` do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from typing import List, Optional, Sequence

from . import Environment, Error, __version__

#: LMDB's C tools, run by `purelmdb.ctools` (imported only when one is asked for).
CTOOLS = ("mdb_stat", "mdb_dump", "mdb_load", "mdb_copy", "mdb_drop")

EXTRA_HELP = """\
  demo [<path>]
      Create an environment (a temporary one without <path>), write and read
      in transactions, print its statistics.
  mdb_stat|mdb_dump|mdb_load|mdb_copy|mdb_drop <args>
      LMDB's command-line tools, with their own options ('%prog mdb_dump -h')."""


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


def _demo_main(prog: str, argv: List[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=prog + " demo",
        description="Create an environment, write and read in transactions, print its "
                    "statistics.")
    parser.add_argument("path", nargs="?",
                        help="folder to create (default: a temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    try:
        return demo(args.path)
    except Error as exc:
        print("purelmdb: %s" % exc, file=sys.stderr)
        return 1


def _run_ctool(name: str, argv: List[str]) -> int:
    try:
        ctools = importlib.import_module(__package__ + ".ctools")
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.endswith(".ctools"):
            raise
        print("purelmdb: %s is not available: this purelmdb has no ctools module" % name,
              file=sys.stderr)
        return 1
    return int(ctools.run(name, argv))


def _old_forms(argv: List[str]) -> List[str]:
    """``stat PATH`` and ``-n``, from before the tool: rewritten into the tool's syntax."""
    if not argv or argv[0] not in ("stat", "verify"):
        return argv
    argv = ["-s" if arg == "-n" else arg for arg in argv]
    rest = [arg for arg in argv[1:] if arg != "-s"]
    if argv[0] == "stat" and len(rest) == 1 and not rest[0].startswith("-"):
        # Nothing else on the line: unambiguous, since the tool's stat takes no argument.
        return ["-e", rest[0], "-r"] + [arg for arg in argv if arg != rest[0]]
    return argv


def _run_tool(prog: str, argv: List[str]) -> int:
    from . import tool
    try:
        tool.main(argv, prog=prog, extra_help=EXTRA_HELP)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    finally:
        if tool.ENV is not None:
            tool.ENV.close()
            tool.ENV = None
        tool.DB = None
    return 0


def _prog() -> str:
    """How the user ran us, for the help texts."""
    if os.path.basename(sys.argv[0]) == "__main__.py":
        spec = globals().get("__spec__")
        package = spec.name.rpartition(".")[0] if spec is not None else "purelmdb"
        return "python -m %s" % (package or "purelmdb")
    return os.path.basename(sys.argv[0]) or "purelmdb"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command line (default ``sys.argv[1:]``); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = _prog()
    try:
        if args and args[0] in CTOOLS:
            return _run_ctool(args[0], args[1:])
        if args and args[0] == "demo":
            return _demo_main(prog, args[1:])
        return _run_tool(prog, _old_forms(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``... | head``): say nothing, and keep the interpreter's
        # final flush of stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


if __name__ == "__main__":
    sys.exit(main())
