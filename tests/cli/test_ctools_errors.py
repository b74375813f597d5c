"""Bad input for every tool: the C tools' kind of error and exit status, never a traceback
(``run_py`` fails on one); and the progress bar, shown on a terminal only."""

from __future__ import annotations

import importlib.util
import os
import pty
import subprocess
import sys
from typing import Any

import pytest
from test_ctools_support import (
    _env,
    assert_same,
    needs_c_tools,
    run_c,
    run_py,
)

import purelmdb

pytestmark = [pytest.mark.interop, needs_c_tools]

TOOLS = ("mdb_stat", "mdb_dump", "mdb_load", "mdb_copy")


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("args", [[], ["-Z", "x"], ["-"], ["--", "-V"], ["a", "b", "c"]],
                         ids=str)
def test_usage_errors_match_c(tool, args, tmp_path):
    c = run_c(tool, *args, cwd=str(tmp_path), stdin=b"")
    assert c.rc != 0
    assert_same(c, run_py(tool, *args, cwd=str(tmp_path), stdin=b""))


@pytest.mark.parametrize("tool", ["mdb_stat", "mdb_dump", "mdb_copy"])
@pytest.mark.parametrize("damage", ["missing", "garbage", "empty", "short", "directory"])
def test_bad_files_match_c(tool, damage, tmp_path):
    env = tmp_path / "env"
    if damage != "missing":
        env.mkdir()
    if damage == "garbage":
        (env / "data.mdb").write_bytes(os.urandom(5 * 4096))
    elif damage == "empty":
        (env / "data.mdb").write_bytes(b"")
    elif damage == "short":
        (env / "data.mdb").write_bytes(b"\xde\xc0\xef\xbe" * 10)
    elif damage == "directory":
        (env / "data.mdb").mkdir()
    args = [str(env)] + ([str(tmp_path / "out")] if tool == "mdb_copy" else [])
    if tool == "mdb_copy":
        (tmp_path / "out").mkdir()
    c = run_c(tool, *args)
    assert c.rc == 1
    assert_same(c, run_py(tool, *args))


def _damaged_env(tmp_path) -> str:
    path = str(tmp_path / "damaged")
    with purelmdb.open(path) as env, env.begin(write=True) as txn:
        for i in range(2000):
            txn.put(b"k%05d" % i, b"v" * 50)
    with open(os.path.join(path, "data.mdb"), "r+b") as f:
        f.seek(5 * 4096 + 16)
        f.write(b"\xff" * 184)       # a leaf's node pointers now point past the page
    return path


@pytest.mark.parametrize("args,message", [
    (["mdb_dump"], b"mdb_dump: %s: MDB_CORRUPTED: Located page was wrong type\n"),
    (["mdb_dump", "-a"], b"mdb_dump: %s: MDB_CORRUPTED: Located page was wrong type\n"),
    (["mdb_dump", "-p"], b"mdb_dump: %s: MDB_CORRUPTED: Located page was wrong type\n"),
    (["mdb_stat", "-a"], b""),
])
def test_damaged_pages(tmp_path, args, message):
    """LMDB reads a damaged leaf without checking and dumps garbage; purelmdb refuses it,
    with the error the C tool gives for a failed read (mdb_stat -a: status 1, no word)."""
    path = _damaged_env(tmp_path)
    py = run_py(*args, path)
    assert py.rc == 1
    assert py.err == (message % path.encode() if message else b"")


def test_damaged_pages_copy(tmp_path):
    path = _damaged_env(tmp_path)
    (tmp_path / "out").mkdir()
    py = run_py("mdb_copy", "-c", path, str(tmp_path / "out"))
    assert py == (1, b"", b"mdb_copy: copying failed, error -30796 "
                          b"(MDB_CORRUPTED: Located page was wrong type)\n")


def test_load_into_unwritable_place(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"not a folder")
    dump = b"HEADER=END\n 61\n 62\nDATA=END\n"
    c = run_c("mdb_load", str(target), stdin=dump)
    assert c.rc == 1
    assert_same(c, run_py("mdb_load", str(target), stdin=dump))


def test_unknown_command():
    p = subprocess.run([sys.executable, "-m", "purelmdb.ctools", "mdb_nope"],
                       capture_output=True, env=_env())
    assert p.returncode == 1 and b"Traceback" not in p.stderr


# -- progress bar ----------------------------------------------------------------------------

def _run_on_tty(args, stdin_path=None) -> tuple:
    """Run our tool with stderr on a pseudo-terminal; (status, stdout, what the terminal
    showed)."""
    import fcntl
    import struct
    import tempfile
    import termios
    master, slave = pty.openpty()
    # a new pseudo-terminal is 0 columns wide, too narrow for any bar: make it 80
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    stdin: Any = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = tempfile.TemporaryFile()     # a file: a full pipe would stall the child
    try:
        p = subprocess.Popen([sys.executable, "-m", "purelmdb.ctools", *args],
                             stdin=stdin, stdout=stdout, stderr=slave, env=_env())
    finally:
        os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    rc = p.wait(120)
    stdout.seek(0)
    out = stdout.read()
    stdout.close()
    os.close(master)
    if stdin_path:
        stdin.close()
    return rc, out, shown


HAVE_TQDM = importlib.util.find_spec("tqdm") is not None


def test_progress_on_terminal_only(tmp_path):
    src = str(tmp_path / "src")
    with purelmdb.open(src) as env, env.begin(write=True) as txn:
        for i in range(20000):
            txn.put(b"key%06d" % i, b"value %d" % i)
    dump_file = tmp_path / "dump"
    piped = run_py("mdb_dump", "-f", str(dump_file), src)
    assert piped == (0, b"", b"")                          # a pipe: quiet

    rc, out, shown = _run_on_tty(["mdb_dump", src])
    assert rc == 0 and out == dump_file.read_bytes()       # stdout untouched by the bar
    (tmp_path / "loaded").mkdir()
    rc, out, shown_load = _run_on_tty(["mdb_load", str(tmp_path / "loaded")],
                                      stdin_path=str(dump_file))
    assert rc == 0 and out == b""
    (tmp_path / "copy").mkdir()
    rc, out, shown_copy = _run_on_tty(["mdb_copy", "-c", src, str(tmp_path / "copy")])
    assert rc == 0 and out == b""
    assert run_c("mdb_dump", str(tmp_path / "loaded")).out == dump_file.read_bytes()
    if HAVE_TQDM:                 # tqdm draws "desc: NN%|###...| n/total"
        assert b"%|" in shown and b"dump" in shown
        assert b"%|" in shown_load and b"load" in shown_load
        assert b"%|" in shown_copy and b"copy" in shown_copy
    else:                         # without tqdm the tools work, without a bar
        assert b"%|" not in shown + shown_copy
    warnings = b"unrecognized keyword ignored: db_pagesize"
    assert warnings in shown_load


def test_run_in_process(tmp_path, capfdbinary):
    """``run`` is what ``python -m purelmdb mdb_stat ...`` calls: it returns the status and
    prints what the subprocess would."""
    from purelmdb.ctools import COMMANDS, run
    assert COMMANDS == ("mdb_stat", "mdb_dump", "mdb_load", "mdb_copy", "mdb_drop")
    path = str(tmp_path / "env")
    with purelmdb.open(path) as env, env.begin(write=True) as txn:
        txn.put(b"a", b"b")
    assert run("mdb_stat", ["-e", path]) == 0
    out, err = capfdbinary.readouterr()
    assert out == run_py("mdb_stat", "-e", path).out and err == b""
    assert run("mdb_stat", ["-q", path]) == 1
    out, err = capfdbinary.readouterr()
    assert out == b"" and err.startswith(b"mdb_stat: invalid option -- 'q'\nusage: mdb_stat ")
    assert run("mdb_drop", [path]) == 0
    assert run("mdb_nope", []) == 1
