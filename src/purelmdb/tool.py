"""The `lmdb` package's command-line tool (``python -m lmdb``, module ``lmdb.tool``).

Usage: ``python -m purelmdb [options] <command> [args]``, the syntax of ``python -m lmdb``
(``optparse``, options anywhere on the line). Commands: copy, copyfd, drop, dump, edit, get,
readers, restore, rewrite, shell, stat, verify, warm, watch; ``--help`` after a command prints
that command's help.

Dump files use the cdbmake format: one ``+klen,vlen:key->value\\n`` per record, in key order,
then an empty line.

Behaviour follows ``lmdb.tool`` (py-lmdb 3.0.0), including the module-level names its tests
call (`main`, `ENV`, `DB`, `make_parser`, `die`, `xxd`, `dump_cursor_to_fp`,
`restore_cursor_from_fp`, `db_map_from_args`, ...). Where this tool is stricter, on purpose:

* the environment must already exist (its data file too): no command creates one by accident;
* engine and file errors end as ``lmdb.tool: <message>`` with exit status 1, not a traceback;
* ``get``, ``dump``, ``drop`` and ``rewrite`` refuse a database that does not exist instead
  of creating it (``edit`` and ``restore`` create it);
* ``restore`` checks lengths (keys of at most 511 bytes, digits only) before reading, so a
  damaged dump cannot make it allocate without bound, and it writes nothing unless every
  record is well-formed. Restoring the main database skips the records that name databases
  of the target (a dump of the main database holds the named databases' records; the engine
  refuses to overwrite them), so ``dump --all`` restores in one command;
* ``rewrite`` does not copy those records either (they hold page numbers of the source file),
  keeps each database's flags (dupsort, ...), appends only into an empty database, and lets
  the target grow as needed.
"""

from __future__ import annotations

import array
import code
import collections
import csv
import optparse
import os
import pprint
import shutil
import string
import sys
import time
from typing import (
    IO,
    Any,
    Callable,
    Collection,
    Deque,
    Dict,
    List,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
)

import purelmdb as lmdb

from .environment import Environment, _Database
from .errors import Error, MapFullError, NotFoundError
from .layout import MAX_KEY_SIZE

BUF_SIZE = 10485760
ENCODING = "utf-8"
SYS_BLOCK = "/sys/block"

#: The open environment (left open after `main` returns, as in ``lmdb.tool``).
ENV: Optional[Environment] = None
#: The database given with ``-d``, or None for the main database.
DB: Optional[_Database] = None

#: command -> (arguments, description); the order is the order of ``--help``.
COMMAND_HELP: Dict[str, Tuple[str, str]] = {
    "copy": ("<target-dir>",
             "Consistent backup of the environment into a new directory (created;\n"
             "it must not exist). --compact leaves out free pages."),
    "copyfd": ("",
               "Consistent backup of the data file to --out-fd (default 1, stdout):\n"
               "  %prog -e source.lmdb copyfd > target.lmdb/data.mdb"),
    "drop": ("<db> [<db> ...]", "Delete named databases (not the main one, :main:)."),
    "dump": ("[<db>=<file> ...]",
             "Write databases in cdbmake format. Without arguments the main database\n"
             "goes to 'main.cdbmake'; with --all the main database and every named one\n"
             "go to '<name>.cdbmake'. ':main:' names the main database."),
    "edit": ("--set k=v --set-file k=path --add k=v --add-file k=path --delete k",
             "Change records of the database (-d, default main) in one write transaction.\n"
             "--add and --add-file leave existing keys alone; options may be repeated."),
    "get": ("<key> [<key> ...]",
            "Print values of the database (-d, default main); -x prints a hex dump."),
    "readers": ("", "Print the reader lock table; -c first clears stale readers."),
    "restore": ("<db>=<file> [...]",
                "Load cdbmake files into databases (':main:' is the main database) in one\n"
                "write transaction; nothing is written if a file is malformed."),
    "rewrite": ("-E <target> [<db> ...]",
                "Copy databases (default the main one) into the environment -E, in key\n"
                "order with append."),
    "shell": ("", "Interactive Python console with ENV bound to the open environment."),
    "stat": ("", "Print the environment's stat() and info()."),
    "verify": ("[<path>]",
               "Offline check of a data file (the path, or -e; -s for a single file)\n"
               "without opening it through the engine. Prints 'verify: OK' and exits 0,\n"
               "or prints each problem and exits 1."),
    "warm": ("", "Read the data file sequentially to load it into the page cache."),
    "watch": ("", "Print live statistics every --interval seconds (rates averaged over\n"
                  "--window samples; --csv for CSV) until Ctrl-C."),
}

#: Commands that may create the database named with ``-d``.
_CREATING_COMMANDS = frozenset(["edit"])

# isprint(): printable ASCII, without the whitespace that moves the cursor.
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


# -- helpers the upstream tests call ------------------------------------------------------------


def _to_bytes(s: Any) -> bytes:
    """``str(s)`` encoded as UTF-8."""
    return str(s).encode(ENCODING)


def _arg_bytes(s: str) -> bytes:
    """A command-line argument as bytes: UTF-8, and bytes the locale could not decode
    (``surrogateescape``) given back unchanged."""
    return s.encode(ENCODING, "surrogateescape")


def isprint(c: str) -> bool:
    """Whether character ``c`` prints visibly without moving the cursor (no newline, tab)."""
    return c in _PRINTABLE


def xxd(data: Any) -> str:
    """``data`` as ``xxd`` shows it: lines of 16 bytes, ``'0000000: 4142 ...  AB'``, with
    ``.`` for unprintable bytes; ``'\\n'`` for no data."""
    data = bytes(data)
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        hexed = chunk.hex()
        groups = " ".join(hexed[i:i + 4] for i in range(0, len(hexed), 4))
        shown = "".join(chr(b) if isprint(chr(b)) else "." for b in chunk)
        lines.append("%07x: %-39s  %s" % (offset, groups, shown))
    return "\n".join(lines) + "\n"


def delta(history: Sequence[float]) -> List[float]:
    """Differences of neighbours: ``[b - a for each a, b]``."""
    items = list(history)
    return [b - a for a, b in zip(items, items[1:])]


def die(fmt: str, *args: Any) -> NoReturn:
    """Print ``lmdb.tool: <message>`` on stderr and exit with status 1."""
    if args:
        fmt %= args
    sys.stderr.write("lmdb.tool: %s\n" % (fmt,))
    raise SystemExit(1)


def _env() -> Environment:
    if ENV is None:
        die("no environment is open")
    return ENV


# -- option parsing -----------------------------------------------------------------------------


class _Parser(optparse.OptionParser):
    """Keeps the epilog (the list of commands) as written instead of re-wrapping it."""

    def format_epilog(self, formatter: optparse.HelpFormatter) -> str:
        return "\n" + self.expand_prog_name(self.epilog) + "\n" if self.epilog else ""


def _commands_text(extra: str = "") -> str:
    lines = ["Commands:"]
    for name, (args, text) in COMMAND_HELP.items():
        lines.append("  %s %s" % (name, args) if args else "  " + name)
        lines.extend("      " + line for line in text.splitlines())
    if extra:
        lines.append(extra.rstrip("\n"))
    lines.append("")
    lines.append("'%prog <command> --help' describes one command.")
    return "\n".join(lines)


def make_parser(prog: str = "python -m lmdb", extra_help: str = "") -> optparse.OptionParser:
    """The option parser, with ``lmdb.tool``'s options and defaults. ``extra_help`` is added
    to the list of commands in ``--help``."""
    parser = _Parser(prog=prog, usage="%prog [options] <command> [args]",
                     add_help_option=False, epilog=_commands_text(extra_help))
    parser.add_option("-h", "--help", action="store_true", default=False,
                      help="show this help message (or one command's) and exit")
    parser.add_option("-e", "--env", help="Environment to open (a directory, or a file with -s)")
    parser.add_option("-d", "--db", help="Database to open (default: main)")
    parser.add_option("-r", "--read", action="store_true",
                      help="Open environment read-only")
    parser.add_option("-S", "--map_size", type="int", default=10,
                      help="Map size in megabytes (default: 10)")
    parser.add_option("-s", "--use-single-file", action="store_true",
                      help="The environment is a single file, not a directory")
    parser.add_option("-a", "--all", action="store_true",
                      help='Make "dump" dump all databases')
    parser.add_option("-E", "--target_env", help='Target environment for "rewrite"')
    parser.add_option("-x", "--xxd", action="store_true", help="Print values in xxd format")
    parser.add_option("-M", "--max-dbs", type="int", default=128,
                      help="Maximum open DBs (default: 128)")
    parser.add_option("--out-fd", type="int", default=1, help='"copyfd" command target fd')
    group = parser.add_option_group('Options for "copy" command')
    group.add_option("--compact", action="store_true", default=False,
                     help="Perform compaction while copying.")
    group = parser.add_option_group('Options for "edit" command')
    group.add_option("--set", action="append", help="key=value pair to set.")
    group.add_option("--set-file", action="append", help="key=path: set key to the file's bytes.")
    group.add_option("--add", action="append", help="key=value pair to add (no overwrite).")
    group.add_option("--add-file", action="append",
                     help="key=path: add key with the file's bytes (no overwrite).")
    group.add_option("--delete", action="append", help="key to delete.")
    group = parser.add_option_group('Options for "readers" command')
    group.add_option("-c", "--clean", action="store_true",
                     help="Clear stale readers first (default: no)")
    group = parser.add_option_group('Options for "watch" command')
    group.add_option("--csv", action="store_true", help="Generate CSV instead of terminal output.")
    group.add_option("--interval", type="int", default=1, help="Interval size (default: 1sec)")
    group.add_option("--window", type="int", default=10, help="Average window size (default: 10)")
    return parser


def _print_help(parser: optparse.OptionParser, command: Optional[str]) -> None:
    """The whole help, or one command's: its usage line, description, then the options."""
    if command in COMMAND_HELP:
        args, text = COMMAND_HELP[command]
        parser.set_usage("%%prog [options] %s %s\n\n%s" % (command, args, text))
        parser.epilog = None
    parser.print_help()


# -- dump and restore (cdbmake format) ----------------------------------------------------------


def dump_cursor_to_fp(cursor: Any, fp: IO[bytes]) -> None:
    """Write every record the cursor iterates over as ``+klen,vlen:key->value\\n``, then the
    closing empty line."""
    write = fp.write
    for key, value in cursor:
        write(b"".join((b"+%d,%d:" % (len(key), len(value)), key, b"->", value, b"\n")))
    write(b"\n")


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    """Up to ``size`` bytes (fewer at end of file), read in pieces so that a length claimed
    by a damaged file is never allocated in one go."""
    if size <= 1 << 20:
        return read(size)
    parts = []
    while size > 0:
        part = read(min(size, 1 << 20))
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _read_length(read: Callable[[int], bytes], sep: bytes, what: str, rec_nr: int) -> int:
    digits = b""
    while True:
        ch = read(1)
        if ch == sep:
            break
        if not ch:
            die("unexpected end of file in the %s length, line/record #%d", what, rec_nr)
        digits += ch
        if len(digits) > 20:
            break
    if not digits.isdigit() or len(digits) > 20:
        die("bad or missing %s length, line/record #%d", what, rec_nr)
    return int(digits)


def restore_cursor_from_fp(txn: Any, fp: IO[bytes], db: Optional[_Database],
                           skip: Collection[bytes] = ()) -> int:
    """Put the cdbmake records of ``fp`` into ``db`` with ``txn``, except those whose key is
    in ``skip``. Returns the number of records plus one (the closing empty line), as
    ``lmdb.tool``; malformed input ends the program (`die`)."""
    read = fp.read
    rec_nr = 0
    while True:
        rec_nr += 1
        plus = read(1)
        if plus == b"\n":
            return rec_nr
        if not plus:
            die("unexpected end of file at line/record #%d (a dump ends with an empty line)",
                rec_nr)
        if plus != b"+":
            die("bad or missing plus, line/record #%d", rec_nr)
        klen = _read_length(read, b",", "key", rec_nr)
        dlen = _read_length(read, b":", "value", rec_nr)
        if klen > MAX_KEY_SIZE:
            die("key of %d bytes exceeds the %d-byte limit, line/record #%d",
                klen, MAX_KEY_SIZE, rec_nr)
        key = read(klen)
        if len(key) != klen:
            die("short key or data, line/record #%d", rec_nr)
        if read(2) != b"->":
            die("bad or missing separator, line/record #%d", rec_nr)
        data = _read_exactly(read, dlen)
        if len(data) != dlen:
            die("short key or data, line/record #%d", rec_nr)
        end = read(1)
        if end != b"\n":
            die("%s, line/record #%d", "bad line ending" if end else "unexpected end of file",
                rec_nr)
        if key in skip:
            continue
        try:
            txn.put(key, data, db=db)
        except MapFullError:
            raise  # not this record's fault: main() says how to get room
        except Error as exc:
            die("line/record #%d: %s", rec_nr, exc)


def _open_db(name: Optional[bytes], create: bool) -> _Database:
    """The main database (None) or the named one; a missing one is created only if asked."""
    env = _env()
    if name is None:
        return env.open_db(None)
    try:
        return env.open_db(name, create=create)
    except NotFoundError:
        die("no database named %r in %s", name.decode(ENCODING, "backslashreplace"),
            env.path())


def db_map_from_args(args: Sequence[str], create: bool = True
                     ) -> Dict[Optional[str], Tuple[_Database, str]]:
    """``{name: (database, path)}`` from ``db=path`` arguments (``:main:`` is the main
    database, keyed None); no arguments: ``{':main:': (main, 'main.cdbmake')}``."""
    db_map: Dict[Optional[str], Tuple[_Database, str]] = {}
    for arg in args:
        dbname, sep, path = arg.partition("=")
        if not sep:
            die('DB specification missing "=": %r', arg)
        name = None if dbname == ":main:" else dbname
        if name in db_map:
            die("DB specified twice: %r", arg)
        if not path:
            die("no file given for DB %r", dbname)
        db_map[name] = (_open_db(_arg_bytes(name) if name else None, create), path)
    if not db_map:
        db_map[":main:"] = (_open_db(None, create), "main.cdbmake")
    return db_map


def all_dbs_map() -> Dict[Optional[str], Tuple[_Database, str]]:
    """The main database and every named one, each to ``<name>.cdbmake`` (``dump --all``)."""
    env = _env()
    db_map: Dict[Optional[str], Tuple[_Database, str]] = {
        ":main:": (env.open_db(None), "main.cdbmake")}
    used = {"main.cdbmake": ":main:"}
    for name in env.dbs():
        text = name.decode(ENCODING, "backslashreplace")
        filename = text.replace(os.sep, "_").replace("/", "_") + ".cdbmake"
        if filename in used:
            die("--all: databases %r and %r would both be dumped to %r; name the files "
                "with <db>=<file> instead", used[filename], text, filename)
        used[filename] = text
        db_map[text] = (env.open_db(name, create=False), filename)
    return db_map


# -- commands -----------------------------------------------------------------------------------


def cmd_copy(opts: Any, args: List[str]) -> None:
    env = _env()
    if len(args) != 1:
        die("Please specify output directory (see --help)")
    output_dir = args[0]
    if os.path.exists(output_dir):
        die("Output directory %r already exists.", output_dir)
    os.makedirs(output_dir, 0o755)
    print("Running copy to %r...." % (output_dir,))
    sys.stdout.flush()
    try:
        env.copy(output_dir, compact=opts.compact)
    except BaseException:
        # Leave no half copy that looks like an environment.
        shutil.rmtree(output_dir, ignore_errors=True)
        raise


def cmd_copyfd(opts: Any, args: List[str]) -> None:
    env = _env()
    if args:
        die('"copyfd" command takes no arguments (see --help)')
    try:
        os.fstat(opts.out_fd)
    except OSError as exc:
        die("Bad --out-fd %d: %s", opts.out_fd, exc)
    if os.isatty(opts.out_fd):
        die("--out-fd %d is a terminal; redirect it to a file (see --help)", opts.out_fd)
    env.copyfd(opts.out_fd, compact=opts.compact)


def cmd_drop(opts: Any, args: List[str]) -> None:
    env = _env()
    if not args:
        die("Must specify at least one sub-database (see --help)")
    if ":main:" in args:
        die("Cannot drop main DB")
    for name in args:
        db = _open_db(_arg_bytes(name), create=False)
        print("Dropping DB %r..." % (name,))
        with env.begin(write=True) as txn:
            txn.drop(db)


def cmd_dump(opts: Any, args: List[str]) -> None:
    env = _env()
    if opts.all:
        if args:
            die("--all cannot be combined with a list of databases")
        db_map = all_dbs_map()
    else:
        db_map = db_map_from_args(args, create=False)
    with env.begin(buffers=True) as txn:
        for db, path in db_map.values():
            with open(path, "wb", BUF_SIZE) as fp:
                print("Dumping to %r..." % (path,))
                dump_cursor_to_fp(txn.cursor(db=db), fp)


def cmd_edit(opts: Any, args: List[str]) -> None:
    env = _env()
    if args:
        die("Edit command only takes options, not arguments (see --help)")

    def pair(option: str, elem: str) -> Tuple[bytes, bytes]:
        key, sep, value = _arg_bytes(elem).partition(b"=")
        if not sep:
            die("%s expects key=value, got %r", option, elem)
        return key, value

    def file_bytes(path: bytes) -> bytes:
        with open(path, "rb") as fp:
            return fp.read()

    with env.begin(write=True) as txn:
        cursor = txn.cursor(db=DB)
        for elem in opts.add or []:
            cursor.put(*pair("--add", elem), overwrite=False)
        for elem in opts.set or []:
            cursor.put(*pair("--set", elem))
        for key in opts.delete or []:
            txn.delete(_arg_bytes(key), db=DB)
        for elem in opts.add_file or []:
            key, path = pair("--add-file", elem)
            cursor.put(key, file_bytes(path), overwrite=False)
        for elem in opts.set_file or []:
            key, path = pair("--set-file", elem)
            cursor.put(key, file_bytes(path))


def cmd_get(opts: Any, args: List[str]) -> None:
    env = _env()
    print_header = len(args) > 1
    with env.begin(buffers=True, db=DB) as txn:
        for arg in args:
            value = txn.get(_arg_bytes(arg))
            if value is None:
                print("%r: missing" % (arg,))
                continue
            if print_header:
                print("%r:" % (arg,))
            print(xxd(value) if opts.xxd else bytes(value))


def cmd_readers(opts: Any, args: List[str]) -> None:
    env = _env()
    if opts.clean:
        print("Cleaned %d stale entries." % (env.reader_check(),))
    print(env.readers())


def cmd_restore(opts: Any, args: List[str]) -> None:
    env = _env()
    db_map = db_map_from_args(args)
    # A dump of the main database holds the records of the named databases (their roots
    # and counters). Those are not data: the named databases' own dumps restore them, and
    # the engine refuses to overwrite them.
    named = frozenset(env.dbs())
    with env.begin(buffers=True, write=True) as txn:
        for name, (db, path) in db_map.items():
            with open(path, "rb", BUF_SIZE) as fp:
                print("Restoring from %r..." % (path,))
                skip = named if name in (None, ":main:") else frozenset()
                count = restore_cursor_from_fp(txn, fp, db, skip)
                print("Loaded %d keys from %r" % (count - 1, path))


def cmd_rewrite(opts: Any, args: List[str]) -> None:
    env = _env()
    if not opts.target_env:
        die("Must specify target environment path with -E")
    names = [None if arg == ":main:" else arg for arg in args] or [None]
    sources = [(name, _open_db(_arg_bytes(name) if name else None, create=False))
               for name in names]
    # No map size: purelmdb grows the target as it fills.
    target = lmdb.open(opts.target_env, max_dbs=opts.max_dbs, sync=False, metasync=False,
                       writemap=True, map_async=True)
    # The main database holds the named databases' records (root page numbers of the
    # source file): copied as they are they would point into nowhere in the target.
    named = frozenset(env.dbs())
    try:
        for name, src_db in sources:
            flags = src_db.flags()
            if name is None:
                dst_db = target.open_db(None)
            else:
                dst_db = target.open_db(
                    _arg_bytes(name), reverse_key=flags["reverse_key"], dupsort=flags["dupsort"],
                    integerkey=flags["integerkey"], integerdup=flags["integerdup"],
                    dupfixed=flags["dupfixed"])
            print("Writing %r..." % (name or ":main:",))
            with target.begin(db=dst_db, write=True) as wtxn:
                # Appending needs an empty database, and takes no repeated keys (dupsort).
                append = not flags["dupsort"] and wtxn.stat(dst_db)["entries"] == 0
                with env.begin(db=src_db, buffers=True) as rtxn:
                    for key, value in rtxn.cursor():
                        key = bytes(key)
                        if name is None and key in named:
                            continue
                        wtxn.put(key, bytes(value), append=append)
        print("Syncing..")
        target.sync(True)
    finally:
        target.close()


def cmd_shell(opts: Any, args: List[str]) -> None:
    try:
        import readline  # noqa: F401  (line editing, when the platform has it)
    except ImportError:
        pass
    code.InteractiveConsole(globals()).interact()


def cmd_stat(opts: Any, args: List[str]) -> None:
    env = _env()
    pprint.pprint(env.stat())
    pprint.pprint(env.info())


def cmd_verify(opts: Any, args: List[str]) -> None:
    """Run the offline checker on a path, without opening it through the engine."""
    from .verify import VerifyError
    from .verify import verify as run_verify
    if len(args) > 1:
        die("verify: give one path (see --help)")
    path = args[0] if args else opts.env
    if not path:
        die("verify: specify a path (positional or with --env)")
    try:
        problems = run_verify(path, subdir=False if opts.use_single_file else None)
    except (VerifyError, OSError) as exc:
        die("verify: %s", exc)
    if problems:
        for line in problems:
            sys.stdout.write("%s\n" % (line,))
        sys.stdout.flush()
        die("verify: FAILED (%d problem%s)", len(problems), "" if len(problems) == 1 else "s")
    sys.stdout.write("verify: OK\n")


def cmd_warm(opts: Any, args: List[str]) -> None:
    env = _env()
    stat = env.stat()
    info = env.info()
    last_offset = stat["psize"] * (info["last_pgno"] + 1)
    path = env.path() if opts.use_single_file else os.path.join(env.path(), "data.mdb")
    buf = array.array("B", bytes(32768))
    t0 = time.time()
    done = 0
    with open(path, "rb", buffering=0) as fp:
        while done < last_offset:
            got = fp.readinto(buf)
            if not got:
                die("data file is truncated (expected %d bytes, got %d)", last_offset, done)
            done += got
    print("Warmed %.2fmb in %dms" % (last_offset / 1048576.0, 1000 * (time.time() - t0)))


def _find_diskstat(path: str) -> Optional[str]:
    """The ``/sys/block/.../stat`` file of the disk (or partition) holding ``path``."""
    if not os.path.exists(SYS_BLOCK):
        return None
    try:
        st = os.stat(path)
        wanted = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
        for name in os.listdir(SYS_BLOCK):
            base = os.path.join(SYS_BLOCK, name)
            for candidate in [base] + [os.path.join(base, sub) for sub in os.listdir(base)]:
                dev = os.path.join(candidate, "dev")
                if os.path.isfile(dev):
                    with open(dev) as fp:
                        if fp.read().strip() == wanted:
                            return os.path.join(candidate, "stat")
    except OSError:
        return None
    return None


class DiskStatter:
    """Counters of one disk from its ``/sys/block`` stat file, re-read by `refresh`."""

    FIELDS = ("reads", "reads_merged", "sectors_read", "read_ms", "writes", "writes_merged",
              "sectors_written", "write_ms", "io_count", "io_ms", "total_ms")

    def __init__(self, path: str) -> None:
        self.path = path
        self.values: Dict[str, int] = {}
        self.refresh()

    def refresh(self) -> None:
        with open(self.path) as fp:
            numbers = fp.read().split()
        self.values = {name: int(n) for name, n in zip(self.FIELDS, numbers)}

    def __getattr__(self, name: str) -> int:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def cmd_watch(opts: Any, args: List[str]) -> None:
    env = _env()
    if opts.interval <= 0 or opts.window <= 0:
        die("--interval and --window must be positive")
    current: Dict[str, Dict[str, int]] = {"stat": {}, "info": {}}

    def st(name: str) -> Callable[[], float]:
        return lambda: current["stat"][name]

    def inf(name: str) -> Callable[[], float]:
        return lambda: current["info"][name]

    def env_mb() -> float:
        return current["info"]["last_pgno"] * current["stat"]["psize"] / 1048576.0

    def rate(func: Callable[[], float]) -> Callable[[], float]:
        """Per-second change of ``func()`` averaged over the last --window samples."""
        history: Deque[float] = collections.deque(maxlen=opts.window)

        def windowed() -> float:
            history.append(func())
            if len(history) <= 1:
                return 0
            return sum(delta(history)) / (len(history) - 1) / opts.interval
        return windowed

    cols: List[Tuple[str, str, Callable[[], float]]] = [
        ("%d", "Depth", st("depth")),
        ("%d", "Branch", st("branch_pages")),
        ("%d", "Leaf", st("leaf_pages")),
        ("%+d", "Leaf/s", rate(st("leaf_pages"))),
        ("%d", "Oflow", st("overflow_pages")),
        ("%+d", "Oflow/s", rate(st("overflow_pages"))),
        ("%d", "Recs", st("entries")),
        ("%+d", "Recs/s", rate(st("entries"))),
        ("%d", "Rdrs", inf("num_readers")),
        ("%.2f", "EnvMb", env_mb),
        ("%+.2f", "EnvMb/s", rate(env_mb)),
        ("%d", "Txs", inf("last_txnid")),
        ("%+.2f", "Txs/s", rate(inf("last_txnid"))),
    ]
    statpath = _find_diskstat(env.path())
    statter = DiskStatter(statpath) if statpath else None
    if statter is not None:
        cols.append(("%+d", "SctRd/s", rate(lambda: statter.values["sectors_read"])))
        cols.append(("%+d", "SctWr/s", rate(lambda: statter.values["sectors_written"])))

    widths = [len(head) for _, head, _ in cols]
    writer = csv.writer(sys.stdout, quoting=csv.QUOTE_ALL) if opts.csv else None
    if writer is not None:
        writer.writerow([head for _, head, _ in cols])
    term_width = 0
    rows = 0
    try:
        while True:
            current["stat"] = env.stat()
            current["info"] = env.info()
            if statter is not None:
                statter.refresh()
            vals = [fmt % func() for fmt, _, func in cols]
            widths = [max(w, len(v)) for w, v in zip(widths, vals)]
            if writer is not None:
                writer.writerow(vals)
            else:
                width, height = shutil.get_terminal_size()
                if width != term_width or not rows % max(height - 2, 1):
                    term_width = width
                    print("".join(head.rjust(w + 1) for (_, head, _), w in zip(cols, widths)))
                print("".join(v.rjust(w + 1) for v, w in zip(vals, widths)))
            sys.stdout.flush()  # each row as it comes, also into a pipe
            time.sleep(opts.interval)
            rows += 1
    except KeyboardInterrupt:
        pass


COMMANDS: Dict[str, Callable[[Any, List[str]], None]] = {
    "copy": cmd_copy, "copyfd": cmd_copyfd, "drop": cmd_drop, "dump": cmd_dump,
    "edit": cmd_edit, "get": cmd_get, "readers": cmd_readers, "restore": cmd_restore,
    "rewrite": cmd_rewrite, "shell": cmd_shell, "stat": cmd_stat, "verify": cmd_verify,
    "warm": cmd_warm, "watch": cmd_watch,
}


# -- entry point --------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return "%s: %s" % (os.fsdecode(where), exc.strerror) if where else exc.strerror
    return str(exc) or type(exc).__name__


def _open_env(opts: Any) -> Environment:
    """The environment of ``-e``, which must exist: the tool never creates one."""
    data_path = opts.env if opts.use_single_file else os.path.join(opts.env, "data.mdb")
    if opts.use_single_file and os.path.isdir(opts.env):
        die("%s is a directory; leave out -s/--use-single-file", opts.env)
    if not os.path.isfile(data_path):
        if not os.path.exists(opts.env):
            die("%s: No such file or directory", opts.env)
        if os.path.isfile(opts.env):
            die("%s is a file; add -s/--use-single-file for a single-file environment",
                opts.env)
        die("%s: no LMDB environment here (no data.mdb)", opts.env)
    return lmdb.open(opts.env, map_size=opts.map_size * 1048576,
                     subdir=not opts.use_single_file, max_dbs=opts.max_dbs, create=False,
                     readonly=bool(opts.read))


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m lmdb",
         extra_help: str = "") -> None:
    """Run the tool on ``argv`` (default ``sys.argv[1:]``). Errors raise ``SystemExit(1)``
    after printing ``lmdb.tool: <message>``; a usage error ``SystemExit(2)``. The
    environment stays open in `ENV` (the caller closes it)."""
    global ENV, DB
    parser = make_parser(prog, extra_help)
    opts, args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    # -r used to take a value, and only "READ" made the environment read-only; it is a flag
    # now, and the old spelling still works.
    if opts.read and args[:1] == ["READ"]:
        args = args[1:]
    if opts.help:
        _print_help(parser, args[0] if args else None)
        return
    if not args:
        die("Please specify a command (see --help)")
    command, args = args[0], args[1:]
    func = COMMANDS.get(command)
    if func is None:
        die("No such command: %r (see --help)", command)
    if opts.map_size <= 0 or opts.max_dbs < 0:
        die("--map_size must be positive and --max-dbs not negative")

    # verify reads an untrusted file as raw bytes: it must not be opened by the engine.
    if command == "verify":
        cmd_verify(opts, args)
        return
    if not opts.env:
        die("Please specify environment (--env)")
    try:
        ENV = _open_env(opts)
        if opts.db:
            DB = _open_db(_arg_bytes(opts.db), create=command in _CREATING_COMMANDS)
        func(opts, args)
    except BrokenPipeError:
        raise  # the reader of our output went away: the caller ends quietly
    except MapFullError as exc:
        die("%s: %s; the map size is %d MB, give a larger one with -S MB",
            exc.what, exc.reason, opts.map_size)
    except (Error, OSError) as exc:
        die("%s", _describe(exc))


if __name__ == "__main__":
    main()
