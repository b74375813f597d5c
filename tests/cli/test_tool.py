"""End-to-end tests of ``python -m purelmdb``: the `lmdb` package's tool (`purelmdb.tool`),
``demo``, the old ``stat PATH``/``verify PATH -n`` forms and the dispatch to `purelmdb.ctools`.

Every command runs in a subprocess (``sys.executable -m purelmdb ...`` with ``src`` on
``PYTHONPATH``), as a user would run it. The C binding is the oracle: it writes the
environments the tool reads, reads back what the tool writes, and its own ``python -m lmdb``
dumps the same databases for a byte comparison. Error paths check the exit status, the
``lmdb.tool: <message>`` line, and that no traceback is printed.
"""

from __future__ import annotations

import ast
import os
import signal
import struct
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
SHIM = REPO / "tests" / "upstream" / "shim"
TIMEOUT = 120

lmdb = pytest.importorskip("lmdb")  # the C binding: the oracle

from purelmdb import tool as ptool  # noqa: E402  (conftest puts src/ on sys.path)

Records = Dict[bytes, List[bytes]]

# Databases of the sample environment: main (with a binary key, an empty value and a value
# on overflow pages), a plain named database and a dupsort one.
MAIN: Records = {b"key1": [b"value1"], b"key2": [b"value2"], b"key3": [b"value3"],
                 b"\x00bin\xff": [b"\n->+1,2:\n"], b"empty": [b""], b"big": [b"B" * 20000]}
NAMED: Records = {b"a": [b"1"], b"b": [b"2"], b"c" * 300: [b"long key"]}
DUPS: Records = {b"k%d" % i: [b"%03d" % j for j in range(i * 5)] for i in range(1, 6)}


# -- running ------------------------------------------------------------------------------------


def _env_vars(pythonpath: Sequence[Path]) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    env.pop("COLUMNS", None)
    return env


def tool(*args: str, cwd: Optional[Path] = None, input: Optional[bytes] = None,
         stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """``python -m purelmdb ARGS`` with the working tree's purelmdb."""
    return subprocess.run([sys.executable, "-m", "purelmdb", *args], cwd=cwd, input=input,
                          stdout=stdout, stderr=subprocess.PIPE, env=_env_vars([SRC]),
                          timeout=TIMEOUT)


def c_tool(*args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """``python -m lmdb ARGS`` with the C binding."""
    return subprocess.run([sys.executable, "-m", "lmdb", *args], cwd=cwd,
                          capture_output=True, env=_env_vars([]), timeout=TIMEOUT)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    return proc.stdout.decode() if proc.stdout is not None else ""


def fails(proc: subprocess.CompletedProcess, *fragments: str, status: int = 1) -> str:
    """The error message of a run that must fail cleanly."""
    err = proc.stderr.decode()
    assert proc.returncode == status, (proc.returncode, err)
    assert "Traceback" not in err, err
    if status == 1:
        assert err.startswith("lmdb.tool: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


# -- environments -------------------------------------------------------------------------------


def write_env(path: Path, dbs: Dict[Optional[bytes], Records], subdir: bool = True) -> None:
    """An environment written by the C binding: ``{db name (None: main): records}``."""
    env = lmdb.open(str(path), max_dbs=8, subdir=subdir, map_size=64 << 20)
    try:
        for name, records in dbs.items():
            db = env.open_db(name, dupsort=name == b"dups") if name else env.open_db(None)
            with env.begin(write=True, db=db) as txn:
                for key, values in records.items():
                    for value in values:
                        txn.put(key, value)
    finally:
        env.close()


def read_env(path: Path, subdir: bool = True) -> Dict[Optional[bytes], Records]:
    """Every database of an environment, read by the C binding; named databases' records
    are left out of the main one."""
    env = lmdb.open(str(path), max_dbs=16, subdir=subdir, readonly=True, lock=False)
    try:
        names = env.dbs() if hasattr(env, "dbs") else []
        out: Dict[Optional[bytes], Records] = {}
        for name in [None] + list(names):
            db = env.open_db(name, create=False) if name else env.open_db(None)
            records: Records = {}
            with env.begin(db=db) as txn:
                for key, value in txn.cursor():
                    if name is None and key in names:
                        continue
                    records.setdefault(key, []).append(value)
            out[name] = records
        return out
    finally:
        env.close()


def empty_env(path: Path) -> Path:
    lmdb.open(str(path), max_dbs=8).close()
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "src.lmdb"
    write_env(path, {None: MAIN, b"named": NAMED, b"dups": DUPS})
    return path


def parse_cdbmake(data: bytes) -> List[Tuple[bytes, bytes]]:
    """The records of a cdbmake file (a reference parser for the tests)."""
    records = []
    pos = 0
    while data[pos:pos + 1] == b"+":
        comma = data.index(b",", pos)
        colon = data.index(b":", comma)
        klen, vlen = int(data[pos + 1:comma]), int(data[comma + 1:colon])
        key = data[colon + 1:colon + 1 + klen]
        assert data[colon + 1 + klen:colon + 3 + klen] == b"->"
        start = colon + 3 + klen
        records.append((key, data[start:start + vlen]))
        assert data[start + vlen:start + vlen + 1] == b"\n"
        pos = start + vlen + 1
    assert data[pos:] == b"\n"
    return records


def flat(records: Records) -> List[Tuple[bytes, bytes]]:
    return [(k, v) for k in sorted(records) for v in sorted(records[k])]


def stat_output(text: str) -> Tuple[dict, dict]:
    """The two dicts ``stat`` pretty-prints."""
    first, second = text.strip().split("}\n{")
    return ast.literal_eval(first + "}"), ast.literal_eval("{" + second)


def main_root_page(data_file: Path) -> Tuple[int, int]:
    """(page size, root page of the main database) from the current meta page."""
    raw = data_file.read_bytes()[:2 * 65536]
    psize = struct.unpack_from("<I", raw, 16 + 24)[0]   # the free DB's md_pad holds psize
    metas = []
    for pgno in (0, 1):
        base = pgno * psize + 16
        txnid = struct.unpack_from("<Q", raw, base + 24 + 96 + 8)[0]
        root = struct.unpack_from("<Q", raw, base + 24 + 48 + 40)[0]
        metas.append((txnid, root))
    return psize, max(metas)[1]


# -- help and usage -----------------------------------------------------------------------------

TOOL_COMMANDS = ["copy", "copyfd", "drop", "dump", "edit", "get", "readers", "restore",
                 "rewrite", "shell", "stat", "verify", "warm", "watch"]


def test_help_lists_every_command() -> None:
    out = ok(tool("--help"))
    for name in TOOL_COMMANDS + ["demo", "mdb_stat", "mdb_dump", "mdb_load", "--env", "--all"]:
        assert name in out
    assert out.startswith("Usage: python -m purelmdb [options] <command>")


@pytest.mark.parametrize("command", TOOL_COMMANDS)
def test_command_help(command: str) -> None:
    out = ok(tool(command, "--help"))
    assert out.startswith("Usage: python -m purelmdb [options] %s" % command)
    assert "--env" in out
    # One command's help, not the list of all of them.
    assert "Commands:" not in out


def test_demo_help() -> None:
    assert "demo" in ok(tool("demo", "--help"))


@pytest.mark.parametrize("args, status, fragment", [
    ([], 1, "Please specify a command"),
    (["stat"], 1, "Please specify environment"),
    (["-e", "x", "frobnicate"], 1, "No such command: 'frobnicate'"),
    (["--frobnicate", "stat"], 2, "no such option: --frobnicate"),
    (["-S", "ten", "stat"], 2, "invalid integer value"),
])
def test_usage_errors(args: List[str], status: int, fragment: str) -> None:
    fails(tool(*args), fragment, status=status)


# -- stat, get, readers, warm, shell --------------------------------------------------------


def test_stat_matches_c_binding(sample: Path) -> None:
    stat, info = stat_output(ok(tool("-e", str(sample), "stat")))
    c_stat, c_info = stat_output(ok(c_tool("-e", str(sample), "stat")))
    assert stat == c_stat
    assert set(info) == set(c_info)
    for name in ("map_size", "last_pgno", "last_txnid", "max_readers"):
        assert info[name] == c_info[name], name
    assert stat["entries"] == len(MAIN) + 2


def test_stat_options(sample: Path) -> None:
    args = ["-e", str(sample), "-S", "20", "-r", "stat"]
    stat, info = stat_output(ok(tool(*args)))
    assert info["map_size"] == stat_output(ok(c_tool(*args)))[1]["map_size"] == 20 << 20
    assert stat["entries"] == len(MAIN) + 2
    # the old "-r READ" spelling
    assert stat_output(ok(tool("-e", str(sample), "-r", "READ", "stat")))[0] == stat


def test_stat_path_shorthand(sample: Path, tmp_path: Path) -> None:
    assert ok(tool("stat", str(sample))) == ok(tool("-e", str(sample), "stat"))
    single = tmp_path / "single.mdb"
    write_env(single, {None: MAIN}, subdir=False)
    expected = ok(tool("-e", str(single), "-s", "stat"))
    assert ok(tool("stat", str(single), "-n")) == expected
    assert ok(tool("stat", "-n", str(single))) == expected
    assert stat_output(expected)[0]["entries"] == len(MAIN)


def test_get(sample: Path) -> None:
    assert ok(tool("-e", str(sample), "get", "key1")) == "b'value1'\n"
    assert ok(tool("-e", str(sample), "get", "nope")) == "'nope': missing\n"
    assert ok(tool("-e", str(sample), "get", "key2", "nope", "empty")) == (
        "'key2':\nb'value2'\n'nope': missing\n'empty':\nb''\n")
    assert ok(tool("-e", str(sample), "-d", "named", "get", "a")) == "b'1'\n"
    assert ok(tool("-e", str(sample), "-d", "dups", "get", "k2")) == "b'000'\n"


def test_get_matches_c_binding(sample: Path) -> None:
    for args in (["get", "key1", "key3", "zzz"], ["-x", "get", "key1", "big"],
                 ["-d", "named", "get", "a", "b"]):
        assert ok(tool("-e", str(sample), *args)) == ok(c_tool("-e", str(sample), *args))


def test_get_xxd(sample: Path) -> None:
    out = ok(tool("-e", str(sample), "-x", "get", "big"))
    lines = out.splitlines()
    assert lines[0] == "0000000: " + " ".join(["4242"] * 8) + "  " + "B" * 16
    assert lines[-2].startswith("0004e10: 4242")   # 20000 bytes: the last line at 0x4e10
    assert lines[-1] == ""


def test_output_into_closed_pipe(sample: Path) -> None:
    """``... | head``: the tool stops quietly when its reader goes away."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "purelmdb", "-e", str(sample), "-x", "get", "big", "big", "big"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env_vars([SRC]))
    first = proc.stdout.read(100)
    proc.stdout.close()                # ~250 KB of output: far more than a pipe holds
    err = proc.stderr.read()
    proc.wait(timeout=TIMEOUT)
    assert first.startswith(b"'big':\n0000000: 4242")
    assert proc.returncode == 1
    assert err == b""


def test_get_missing_named_db_is_not_created(sample: Path) -> None:
    fails(tool("-e", str(sample), "-d", "nosuch", "get", "a"), "no database named 'nosuch'")
    assert b"nosuch" not in read_env(sample)


def test_readers(sample: Path) -> None:
    assert "no active readers" in ok(tool("-e", str(sample), "readers"))
    out = ok(tool("-e", str(sample), "-c", "readers"))
    assert out.startswith("Cleaned 0 stale entries.\n")


def test_warm(sample: Path, tmp_path: Path) -> None:
    assert ok(tool("-e", str(sample), "warm")).startswith("Warmed ")
    single = tmp_path / "single.mdb"
    write_env(single, {None: MAIN}, subdir=False)
    assert ok(tool("-e", str(single), "--use-single-file", "warm")).startswith("Warmed ")


def test_warm_truncated_file(sample: Path) -> None:
    data = sample / "data.mdb"
    psize, _ = main_root_page(data)
    os.truncate(data, 2 * psize + 10)    # the metas survive, the tree does not
    proc = tool("-e", str(sample), "-r", "warm")
    fails(proc)


def test_shell(sample: Path) -> None:
    script = b"print('entries=%d' % ENV.stat()['entries'])\n"
    out = ok(tool("-e", str(sample), "shell", input=script))
    assert "entries=%d" % (len(MAIN) + 2) in out


# -- watch --------------------------------------------------------------------------------------


@pytest.mark.parametrize("csv", [True, False])
def test_watch_until_interrupted(sample: Path, csv: bool) -> None:
    args = [sys.executable, "-m", "purelmdb", "-e", str(sample), "watch"]
    if csv:
        args.append("--csv")
    # a shell that starts us in the background ignores SIGINT, and children inherit that
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env_vars([SRC]),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        header = proc.stdout.readline().decode()
        row1 = proc.stdout.readline().decode()
        row2 = proc.stdout.readline().decode()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    if csv:
        heads = [h.strip('"') for h in header.strip().split(",")]
        assert heads[:3] == ["Depth", "Branch", "Leaf"]
        values = [v.strip('"') for v in row1.strip().split(",")]
        assert values[heads.index("Recs")] == str(len(MAIN) + 2)
        assert values[heads.index("Recs/s")] == "+0"
        assert len(row2.strip().split(",")) == len(heads)
    else:
        assert header.split()[:3] == ["Depth", "Branch", "Leaf"]
        assert row1.split()[header.split().index("Recs")] == str(len(MAIN) + 2)


def test_watch_rejects_zero_interval(sample: Path) -> None:
    fails(tool("-e", str(sample), "--interval", "0", "watch"), "--interval")


# -- copy, copyfd -------------------------------------------------------------------------------


@pytest.mark.parametrize("compact", [False, True])
def test_copy(sample: Path, tmp_path: Path, compact: bool) -> None:
    target = tmp_path / "copy"
    args = ["-e", str(sample), "copy", str(target)] + (["--compact"] if compact else [])
    assert "Running copy to" in ok(tool(*args))
    assert read_env(target) == read_env(sample)
    assert (os.stat(target).st_mode & 0o777) == 0o755 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_copy_errors(sample: Path, tmp_path: Path) -> None:
    fails(tool("-e", str(sample), "copy"), "output directory")
    fails(tool("-e", str(sample), "copy", str(tmp_path)), "already exists")


def test_copyfd_to_stdout(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    target.mkdir()
    with open(target / "data.mdb", "wb") as fp:
        ok(tool("-e", str(sample), "copyfd", stdout=fp))
    assert read_env(target) == read_env(sample)


def test_copyfd_out_fd(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mdb"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "purelmdb", "-e", str(sample), "--out-fd", str(fd),
             "--compact", "copyfd"],
            pass_fds=(fd,), capture_output=True, env=_env_vars([SRC]), timeout=TIMEOUT)
    finally:
        os.close(fd)
    assert ok(proc) == ""
    assert read_env(out, subdir=False) == read_env(sample)


def test_copyfd_errors(sample: Path) -> None:
    fails(tool("-e", str(sample), "copyfd", "extra"), "takes no arguments")
    fails(tool("-e", str(sample), "--out-fd", "999", "copyfd"), "Bad --out-fd 999")


def test_copyfd_refuses_a_terminal(sample: Path) -> None:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "purelmdb", "-e", str(sample), "--out-fd", str(slave),
             "copyfd"], pass_fds=(slave,), capture_output=True, env=_env_vars([SRC]),
            timeout=TIMEOUT)
    finally:
        os.close(master)
        os.close(slave)
    fails(proc, "is a terminal")


# -- drop ---------------------------------------------------------------------------------------


def test_drop(sample: Path) -> None:
    assert "Dropping DB 'named'" in ok(tool("-e", str(sample), "drop", "named"))
    after = read_env(sample)
    assert b"named" not in after
    assert after[b"dups"] == DUPS and after[None] == MAIN


@pytest.mark.parametrize("args, fragment", [
    ([], "at least one"),
    ([":main:"], "Cannot drop main DB"),
    (["named", ":main:"], "Cannot drop main DB"),
    (["nosuch"], "no database named 'nosuch'"),
])
def test_drop_errors(sample: Path, args: List[str], fragment: str) -> None:
    before = read_env(sample)
    fails(tool("-e", str(sample), "drop", *args), fragment)
    assert read_env(sample) == before


# -- dump and restore ---------------------------------------------------------------------------


def test_dump_default_file(sample: Path, tmp_path: Path) -> None:
    out = ok(tool("-e", str(sample), "dump", cwd=tmp_path))
    assert out == "Dumping to 'main.cdbmake'...\n"
    records = parse_cdbmake((tmp_path / "main.cdbmake").read_bytes())
    assert [(k, v) for k, v in records if k not in (b"named", b"dups")] == flat(MAIN)


@pytest.mark.parametrize("args", [[], ["--all"], ["named=n.cdb", "dups=d.cdb"],
                                  [":main:=m.cdb", "dups=d.cdb"]])
def test_dump_is_byte_equal_to_c_binding(sample: Path, tmp_path: Path,
                                         args: List[str]) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    ok(tool("-e", str(sample), "dump", *args, cwd=mine))
    ok(c_tool("-e", str(sample), "dump", *args, cwd=theirs))
    names = sorted(os.listdir(theirs))
    assert sorted(os.listdir(mine)) == names and names
    for name in names:
        assert (mine / name).read_bytes() == (theirs / name).read_bytes(), name


def test_dump_all_files(sample: Path, tmp_path: Path) -> None:
    ok(tool("-e", str(sample), "-a", "dump", cwd=tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["dups.cdbmake", "main.cdbmake", "named.cdbmake",
                                             "src.lmdb"]
    assert parse_cdbmake((tmp_path / "dups.cdbmake").read_bytes()) == flat(DUPS)
    assert parse_cdbmake((tmp_path / "named.cdbmake").read_bytes()) == flat(NAMED)


@pytest.mark.parametrize("args, fragment", [
    (["--all", "named=x"], "--all cannot be combined"),
    (["named"], 'missing "="'),
    (["named=a", "named=b"], "DB specified twice"),
    (["nosuch=x"], "no database named 'nosuch'"),
    ([":main:=no/such/dir/x"], "No such file or directory"),
])
def test_dump_errors(sample: Path, tmp_path: Path, args: List[str], fragment: str) -> None:
    fails(tool("-e", str(sample), "dump", *args, cwd=tmp_path), fragment)
    assert b"nosuch" not in read_env(sample)


def test_dump_restore_round_trip(sample: Path, tmp_path: Path) -> None:
    """``dump --all`` then ``restore`` of every file into an empty environment gives the
    same databases (the named databases' records in the main dump are left to them)."""
    ok(tool("-e", str(sample), "dump", "--all", cwd=tmp_path))
    target = empty_env(tmp_path / "target")
    # A dump does not record database flags: the dupsort database is made beforehand.
    env = lmdb.open(str(target), max_dbs=4)
    env.open_db(b"dups", dupsort=True)
    env.close()
    out = ok(tool("-e", str(target), "restore", ":main:=main.cdbmake",
                  "named=named.cdbmake", "dups=dups.cdbmake", cwd=tmp_path))
    assert "Loaded %d keys from 'named.cdbmake'" % len(NAMED) in out
    restored = read_env(target)
    assert restored == read_env(sample)
    assert restored[b"dups"] == DUPS


def test_restore_without_dupsort_keeps_last_values(sample: Path, tmp_path: Path) -> None:
    """Into a database restore creates, duplicates overwrite each other (as with the C
    binding's tool): the last value of each key stays."""
    ok(tool("-e", str(sample), "dump", "dups=d.cdb", cwd=tmp_path))
    mine = empty_env(tmp_path / "mine")
    ok(tool("-e", str(mine), "restore", "dups=d.cdb", cwd=tmp_path))
    theirs = empty_env(tmp_path / "theirs")
    ok(c_tool("-e", str(theirs), "restore", "dups=d.cdb", cwd=tmp_path))
    assert read_env(mine) == read_env(theirs)
    assert read_env(mine)[b"dups"] == {k: v[-1:] for k, v in DUPS.items()}


def test_restore_dump_of_c_binding(sample: Path, tmp_path: Path) -> None:
    ok(c_tool("-e", str(sample), "dump", "named=n.cdb", "dups=d.cdb", ":main:=m.cdb",
              cwd=tmp_path))
    target = empty_env(tmp_path / "target")
    env = lmdb.open(str(target), max_dbs=4)
    env.open_db(b"dups", dupsort=True)
    env.close()
    ok(tool("-e", str(target), "restore", "named=n.cdb", ":main:=m.cdb", "dups=d.cdb",
            cwd=tmp_path))
    assert read_env(target) == read_env(sample)
    # and the C binding's tool restores purelmdb's dump the same way
    ok(tool("-e", str(sample), "dump", ":main:=p.cdb", cwd=tmp_path))
    target2 = empty_env(tmp_path / "target2")
    ok(c_tool("-e", str(target2), "restore", ":main:=p.cdb", cwd=tmp_path))
    main = read_env(target2)[None]
    # (the C binding's tool writes the named databases' records as plain values)
    assert {k: v for k, v in main.items() if k not in (b"named", b"dups")} == MAIN


def test_restore_into_single_file_env(sample: Path, tmp_path: Path) -> None:
    ok(tool("-e", str(sample), "dump", "named=n.cdb", cwd=tmp_path))
    single = tmp_path / "single.mdb"
    write_env(single, {None: {}}, subdir=False)
    ok(tool("-e", str(single), "-s", "restore", ":main:=n.cdb", cwd=tmp_path))
    assert read_env(single, subdir=False)[None] == NAMED


MALFORMED = [
    (b"", "unexpected end of file"),
    (b"+4,6:key1->value1\n", "unexpected end of file"),
    (b"X4,6:key1->value1\n\n", "bad or missing plus"),
    (b"+a,6:key1->value1\n\n", "bad or missing key length"),
    (b"+4,-6:key1->value1\n\n", "bad or missing value length"),
    (b"+4 6:key1->value1\n\n", "key length, line/record #1"),
    (b"+4,6key1->value1\n\n", "value length, line/record #1"),
    (b"+4\n6:" + b"k" * 30 + b"->value1\n\n", "bad or missing key length"),
    (b"+4,6:key1=>value1\n\n", "bad or missing separator"),
    (b"+4,60:key1->value1\n\n", "short key or data"),
    (b"+40,6:key1->value1\n\n", "short key or data"),
    (b"+4,6:key1->value1X\n", "bad line ending"),
    (b"+4,6:key1->value1\n+4,6:key2->value2", "unexpected end of file"),
    (b"+999999999999999999999999,1:k->v\n\n", "bad or missing key length"),
    (b"+600,1:" + b"k" * 600 + b"->v\n\n", "exceeds the 511-byte limit"),
    (b"+0,1:->v\n\n", "line/record #1"),
    (b"+4,6:key1->value1\n+4,6:key2->value2\n+4,99999999999:key3->v\n\n", "record #3"),
]


@pytest.mark.parametrize("data, fragment", MALFORMED)
def test_restore_malformed_writes_nothing(tmp_path: Path, data: bytes, fragment: str) -> None:
    target = empty_env(tmp_path / "target")
    (tmp_path / "bad.cdb").write_bytes(data)
    fails(tool("-e", str(target), "restore", ":main:=bad.cdb", cwd=tmp_path), fragment)
    assert read_env(target) == {None: {}}


def test_restore_map_full(tmp_path: Path) -> None:
    (tmp_path / "big.cdb").write_bytes(b"".join(
        b"+8,1000:%08d->%s\n" % (i, b"v" * 1000) for i in range(3000)) + b"\n")
    target = empty_env(tmp_path / "target")
    fails(tool("-e", str(target), "-S", "1", "restore", ":main:=big.cdb", cwd=tmp_path),
          "MDB_MAP_FULL", "the map size is 1 MB, give a larger one with -S MB")
    assert read_env(target) == {None: {}}
    ok(tool("-e", str(target), "-S", "20", "restore", ":main:=big.cdb", cwd=tmp_path))
    assert len(read_env(target)[None]) == 3000


def test_restore_errors(tmp_path: Path) -> None:
    target = empty_env(tmp_path / "target")
    fails(tool("-e", str(target), "restore", ":main:=missing.cdb", cwd=tmp_path),
          "missing.cdb: No such file or directory")
    fails(tool("-e", str(target), "restore", ":main:", cwd=tmp_path), 'missing "="')
    # without arguments: main.cdbmake in the current folder
    fails(tool("-e", str(target), "restore", cwd=tmp_path), "main.cdbmake")
    (tmp_path / "main.cdbmake").write_bytes(b"+1,1:k->v\n\n")
    ok(tool("-e", str(target), "restore", cwd=tmp_path))
    assert read_env(target) == {None: {b"k": [b"v"]}}


# In-process properties of the two format functions the upstream tests call directly.

keys = st.binary(min_size=1, max_size=64)
values = st.binary(max_size=300)


@settings(max_examples=60)
@given(st.dictionaries(keys, values, max_size=30))
def test_cdbmake_round_trip_property(records: Dict[bytes, bytes]) -> None:
    fp = BytesIO()
    ptool.dump_cursor_to_fp(sorted(records.items()), fp)
    data = fp.getvalue()
    assert parse_cdbmake(data) == sorted(records.items())

    class Txn:
        def __init__(self) -> None:
            self.puts: List[Tuple[bytes, bytes]] = []

        def put(self, key: bytes, value: bytes, db=None) -> None:
            self.puts.append((key, value))

    txn = Txn()
    assert ptool.restore_cursor_from_fp(txn, BytesIO(data), None) == len(records) + 1
    assert txn.puts == sorted(records.items())


@settings(max_examples=200)
@given(st.binary(max_size=80) | st.lists(st.sampled_from(
    [b"+", b"1", b"4", b",", b":", b"->", b"\n", b"key1", b"x", b"-", b"9" * 30]),
    max_size=20).map(b"".join))
def test_restore_never_crashes_property(data: bytes) -> None:
    """Any input either loads or ends in `die` (SystemExit 1): no other exception."""

    class Txn:
        def put(self, key: bytes, value: bytes, db=None) -> None:
            assert 0 < len(key) <= 511

    try:
        count = ptool.restore_cursor_from_fp(Txn(), BytesIO(data), None)
    except SystemExit as exc:
        assert exc.code == 1
    else:
        assert count >= 1 and data.count(b"\n") >= count


# -- edit ---------------------------------------------------------------------------------------


def test_edit(sample: Path, tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.write_bytes(b"\x00file\xffcontent")
    ok(tool("-e", str(sample), "edit", "--set", "new=1", "--set", "key1=updated",
            "--add", "key2=not used", "--add", "added=x=y", "--delete", "key3",
            "--delete", "never-there", "--set-file", "f1=%s" % content,
            "--add-file", "f2=%s" % content, "--add-file", "key2=%s" % content))
    main = read_env(sample)[None]
    expected = dict(MAIN)
    del expected[b"key3"]
    expected.update({b"new": [b"1"], b"key1": [b"updated"], b"added": [b"x=y"],
                     b"f1": [content.read_bytes()], b"f2": [content.read_bytes()]})
    assert main == expected


def test_edit_named_db_is_created(sample: Path) -> None:
    ok(tool("-e", str(sample), "-d", "fresh", "edit", "--set", "k=v"))
    after = read_env(sample)
    assert after[b"fresh"] == {b"k": [b"v"]}
    assert after[b"named"] == NAMED


@pytest.mark.parametrize("args, fragment", [
    (["positional"], "only takes options"),
    (["--set", "novalue"], "--set expects key=value"),
    (["--set", "a=1", "--set-file", "k=/no/such/file"], "/no/such/file"),
    (["--set", "=v"], "mdb_"),                      # an empty key: the engine's message
])
def test_edit_errors_write_nothing(sample: Path, args: List[str], fragment: str) -> None:
    before = read_env(sample)
    fails(tool("-e", str(sample), "edit", *args), fragment)
    assert read_env(sample) == before


def test_edit_read_only(sample: Path) -> None:
    fails(tool("-e", str(sample), "-r", "edit", "--set", "a=1"), "ermission")
    assert read_env(sample)[None] == MAIN


# -- rewrite ------------------------------------------------------------------------------------


def test_rewrite(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    out = ok(tool("-e", str(sample), "-E", str(target), "rewrite"))
    assert "Writing ':main:'" in out
    assert read_env(target)[None] == MAIN
    # the named databases' records of the main database are not copied as data
    ok(tool("-e", str(sample), "-E", str(target), "rewrite", "named", "dups"))
    assert read_env(target) == read_env(sample)
    # into a target that is not empty (no append): the other order works too
    other = tmp_path / "other"
    ok(tool("-e", str(sample), "-E", str(other), "rewrite", "dups", "named", ":main:"))
    assert read_env(other) == read_env(sample)
    env = lmdb.open(str(target), max_dbs=4, readonly=True, lock=False)
    try:
        assert env.open_db(b"dups", create=False).flags()["dupsort"]
    finally:
        env.close()


def test_rewrite_errors(sample: Path, tmp_path: Path) -> None:
    fails(tool("-e", str(sample), "rewrite"), "-E")
    fails(tool("-e", str(sample), "-E", str(tmp_path / "t"), "rewrite", "nosuch"),
          "no database named 'nosuch'")
    fails(tool("-e", str(sample), "-E", str(sample), "rewrite"), "already open")


# -- verify -------------------------------------------------------------------------------------


def test_verify(sample: Path, tmp_path: Path) -> None:
    assert ok(tool("verify", str(sample))) == "verify: OK\n"
    assert ok(tool("-e", str(sample), "verify")) == "verify: OK\n"
    single = tmp_path / "single.mdb"
    write_env(single, {None: MAIN}, subdir=False)
    assert ok(tool("verify", "-s", str(single))) == "verify: OK\n"
    assert ok(tool("verify", str(single), "-n")) == "verify: OK\n"    # the old form
    assert ok(tool("verify", "-n", str(sample / "data.mdb"))) == "verify: OK\n"


def test_verify_finds_damage(sample: Path) -> None:
    data = sample / "data.mdb"
    psize, root = main_root_page(data)
    with open(data, "r+b") as fp:
        fp.seek(root * psize + 12)          # mp_lower/mp_upper of the main root
        fp.write(b"\xff\xff\x00\x00")
    proc = tool("verify", str(sample))
    err = fails(proc, "verify: FAILED")
    problems = proc.stdout.decode().splitlines()
    assert problems and all(p.strip() for p in problems)
    assert "(%d problem" % len(problems) in err


def test_verify_errors(tmp_path: Path) -> None:
    fails(tool("verify"), "specify a path")
    fails(tool("verify", str(tmp_path / "nowhere")), "verify:")
    junk = tmp_path / "junk.mdb"
    junk.write_bytes(b"not lmdb" * 1000)
    fails(tool("verify", "-s", str(junk)), "verify:")


# -- bad environments ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["stat"], ["get", "a"], ["dump"], ["readers"],
                                     ["edit", "--set", "a=b"], ["copyfd"]])
def test_missing_environment(tmp_path: Path, command: List[str]) -> None:
    fails(tool("-e", str(tmp_path / "nowhere"), *command, cwd=tmp_path),
          "nowhere: No such file or directory")
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "main.cdbmake").exists()


def test_folder_without_environment_is_left_alone(tmp_path: Path) -> None:
    fails(tool("-e", str(tmp_path), "stat"), "no data.mdb")
    assert os.listdir(tmp_path) == []


def test_single_file_options_checked(sample: Path, tmp_path: Path) -> None:
    fails(tool("-e", str(sample), "-s", "stat"), "is a directory")
    single = tmp_path / "single.mdb"
    write_env(single, {None: MAIN}, subdir=False)
    fails(tool("-e", str(single), "stat"), "--use-single-file")


def test_not_an_lmdb_file(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "data.mdb").write_bytes(b"\x00junk" * 2000)
    for command in (["stat"], ["dump"], ["get", "x"]):
        fails(tool("-e", str(env), *command, cwd=tmp_path), "MDB_INVALID")


@pytest.mark.parametrize("command", [["dump"], ["get", "key1"], ["-E", "rw", "rewrite"],
                                     ["copy", "--compact", "cc"]])
def test_corrupt_tree_page(sample: Path, tmp_path: Path, command: List[str]) -> None:
    data = sample / "data.mdb"
    psize, root = main_root_page(data)
    with open(data, "r+b") as fp:
        fp.seek(root * psize + 10)          # mp_flags of the main root: no valid page type
        fp.write(b"\x00\x40")
    fails(tool("-e", str(sample), *command, cwd=tmp_path), "MDB_CORRUPTED")
    assert not (tmp_path / "cc").exists()    # no half-made copy left behind


# -- python -m lmdb (the shim), demo, ctools dispatch -------------------------------------------


def test_python_m_lmdb_is_this_tool(sample: Path) -> None:
    """Through the upstream shim, ``python -m lmdb`` runs purelmdb's entry point."""
    proc = subprocess.run([sys.executable, "-m", "lmdb", "-e", str(sample), "get", "key1"],
                          capture_output=True, env=_env_vars([SHIM, SRC]), timeout=TIMEOUT)
    assert ok(proc) == "b'value1'\n"
    proc = subprocess.run([sys.executable, "-m", "lmdb", "--help"],
                          capture_output=True, env=_env_vars([SHIM, SRC]), timeout=TIMEOUT)
    assert ok(proc).startswith("Usage: python -m lmdb [options]")


def test_demo(tmp_path: Path) -> None:
    out = ok(tool("demo"))
    assert "purelmdb" in out and "entries" in out
    where = tmp_path / "demo-env"
    ok(tool("demo", str(where)))
    main = read_env(where)[None]
    assert len(main) == 20000 - len(range(0, 20000, 3)) + 1 and len(main[b"blob"][0]) == 100000


FAKE_CTOOLS = """
import sys, types
fake = types.ModuleType("purelmdb.ctools")
fake.COMMANDS = ("mdb_stat", "mdb_dump", "mdb_load", "mdb_copy", "mdb_drop")
def run(name, argv):
    print("fake", name, argv)
    return 3
fake.run = run
sys.modules["purelmdb.ctools"] = fake
from purelmdb.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("name", ["mdb_stat", "mdb_dump", "mdb_load", "mdb_copy", "mdb_drop"])
def test_ctools_dispatch(name: str) -> None:
    proc = subprocess.run([sys.executable, "-c", FAKE_CTOOLS, name, "-e", "x", "--help"],
                          capture_output=True, env=_env_vars([SRC]), timeout=TIMEOUT)
    assert proc.returncode == 3, proc.stderr.decode()
    assert proc.stdout.decode() == "fake %s ['-e', 'x', '--help']\n" % name


def test_ctools_names_agree() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import purelmdb.ctools as c, purelmdb.__main__ as m; "
         "print(tuple(c.COMMANDS) == m.CTOOLS)"],
        capture_output=True, env=_env_vars([SRC]), timeout=TIMEOUT)
    assert ok(proc) == "True\n"


def test_ctools_real_module(sample: Path) -> None:
    """``python -m purelmdb mdb_stat ...`` is ``purelmdb.ctools.run('mdb_stat', ...)``."""
    mine = tool("mdb_stat", "-a", str(sample))
    direct = subprocess.run([sys.executable, "-m", "purelmdb.ctools", "mdb_stat", "-a",
                             str(sample)], capture_output=True, env=_env_vars([SRC]),
                            timeout=TIMEOUT)
    assert (mine.returncode, mine.stdout, mine.stderr) == (
        direct.returncode, direct.stdout, direct.stderr)
    assert mine.returncode == 0
