"""``mdb_dump`` lookalike against Debian's mdb_dump, byte for byte, on files written by the C
binding and by purelmdb."""

from __future__ import annotations

import lmdb
import pytest
from test_ctools_support import (
    BACKSLASH_KEY,
    NAMED,
    assert_same,
    make_env,
    needs_c_tools,
    run_c,
    run_py,
    undo_backslash_fix,
)

import purelmdb

pytestmark = [pytest.mark.interop, needs_c_tools]

IMPLS = {"c": lmdb, "py": purelmdb}


@pytest.fixture(scope="module", params=sorted(IMPLS))
def env_path(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dump-" + request.param) / "env")
    make_env(IMPLS[request.param], path)
    return path


BYTEVALUE = [[], ["-a"], ["-l"]] + [["-s", name] for name in NAMED]


@pytest.mark.parametrize("opts", BYTEVALUE, ids=lambda o: " ".join(o) or "main")
def test_dump_bytevalue_matches_c(env_path, opts):
    c = run_c("mdb_dump", *opts, env_path)
    assert c.rc == 0 and c.out
    assert_same(c, run_py("mdb_dump", *opts, env_path))


PRINT = [["-p"], ["-p", "-a"]] + [["-p", "-s", name] for name in NAMED]


@pytest.mark.parametrize("opts", PRINT, ids=lambda o: " ".join(o))
def test_dump_print_matches_c(env_path, opts):
    """Byte for byte, except one known difference: Debian's mdb_dump (0.9.24) writes a
    backslash in printable data as itself, which a loader cannot tell from an escape
    (ITS#9068); LMDB 0.9.25 and later, and this tool, write two."""
    c, py = run_c("mdb_dump", *opts, env_path), run_py("mdb_dump", *opts, env_path)
    assert c.rc == py.rc == 0 and c.err == py.err == b""
    assert undo_backslash_fix(py.out) == c.out
    if b"\\" not in py.out:
        assert py.out == c.out


def test_dump_print_escapes_backslashes(env_path):
    py = run_py("mdb_dump", "-p", env_path).out
    assert rb" back\\slash" + b"\n" in py
    assert rb" value\\with\\\\backslashes\0a\0d\09" + b"\n" in py


def test_dump_to_file(env_path, tmp_path):
    c_file, py_file = tmp_path / "c.dump", tmp_path / "py.dump"
    c = run_c("mdb_dump", "-a", "-f", str(c_file), env_path)
    py = run_py("mdb_dump", "-a", "-f", str(py_file), env_path)
    assert_same(c, py)
    assert c.out == b"" and c_file.read_bytes() == py_file.read_bytes()
    assert BACKSLASH_KEY.hex().encode() not in c_file.read_bytes()   # main db not in -a
    run_py("mdb_dump", "-f", str(py_file), env_path)
    assert BACKSLASH_KEY.hex().encode() in py_file.read_bytes()


def test_dump_nosubdir(tmp_path):
    for name, mod in sorted(IMPLS.items()):
        path = str(tmp_path / ("%s.lmdb" % name))
        make_env(mod, path, records=100, subdir=False)
        for opts in (["-n"], ["-n", "-a"], ["-n", "-p", "-s", "dups"]):
            assert_same(run_c("mdb_dump", *opts, path), run_py("mdb_dump", *opts, path))


def test_dump_empty_and_unnamed(tmp_path):
    """No named databases: ``-a`` says so and fails; a plain key is not a database."""
    path = str(tmp_path / "env")
    with purelmdb.open(path) as env, env.begin(write=True) as txn:
        txn.put(b"only", b"plain keys")
    for opts in (["-a"], ["-l"], [], ["-s", "only"]):
        assert_same(run_c("mdb_dump", *opts, path), run_py("mdb_dump", *opts, path))
    empty = str(tmp_path / "empty")
    purelmdb.open(empty).close()
    for opts in (["-a"], [], ["-p"]):
        c = run_c("mdb_dump", *opts, empty)
        assert_same(c, run_py("mdb_dump", *opts, empty))
    assert b"does not contain multiple databases" in run_py("mdb_dump", "-a", empty).err


@pytest.mark.parametrize("opts", [
    ["-s", "nosuch"], ["-a", "-s", "dups"], ["-s", "dups", "-l"], ["-x"], ["-f"],
    ["-V", "-q"],
])
def test_dump_errors_match_c(env_path, opts):
    c = run_c("mdb_dump", *opts, env_path)
    if opts[0] != "-V":
        assert c.rc == 1
        assert_same(c, run_py("mdb_dump", *opts, env_path))
    else:       # -V wins before the bad option is seen; the versions differ
        py = run_py("mdb_dump", *opts, env_path)
        assert c.rc == py.rc == 0 and c.err == py.err == b""


def test_dump_bad_paths(tmp_path):
    for args in (["mdb_dump", str(tmp_path / "missing")],
                 ["mdb_dump", "-f", str(tmp_path / "no" / "such" / "file"), str(tmp_path)],
                 ["mdb_dump"], ["mdb_dump", "-n", str(tmp_path)]):
        c, py = run_c(*args), run_py(*args)
        assert c.rc == 1
        assert_same(c, py)


def test_dump_closed_pipe(tmp_path):
    """A reader that goes away ends the dump as mdb_dump's signal handler does."""
    import subprocess
    import sys

    from test_ctools_support import _env
    env_path = str(tmp_path / "env")
    with purelmdb.open(env_path) as env, env.begin(write=True) as txn:
        for i in range(2000):           # a dump of 4 MB: far more than a pipe buffers
            txn.put(b"%06d" % i, b"v" * 1000)
    p = subprocess.Popen([sys.executable, "-m", "purelmdb.ctools", "mdb_dump", env_path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert p.stdout is not None and p.stderr is not None
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(60) == 1
    assert err == b"mdb_dump: %s: Interrupted system call\n" % env_path.encode()
    c = subprocess.Popen(["mdb_dump", env_path], executable="/usr/bin/mdb_dump",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert c.stdout is not None and c.stderr is not None
    c.stdout.read(10)
    c.stdout.close()
    assert c.stderr.read() == err and c.wait(60) == 1
