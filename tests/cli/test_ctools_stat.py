"""``mdb_stat`` lookalike against Debian's mdb_stat, byte for byte, on files written by the C
binding and by purelmdb (named databases of every kind, overflow values, free pages)."""

from __future__ import annotations

import os

import lmdb
import pytest
from test_ctools_support import (
    VERSION_LINE,
    assert_same,
    make_env,
    needs_c_tools,
    run_c,
    run_py,
)

import purelmdb
from purelmdb.ctools.common import VERSION_STRING

pytestmark = [pytest.mark.interop, needs_c_tools]

IMPLS = {"c": lmdb, "py": purelmdb}


@pytest.fixture(scope="module", params=sorted(IMPLS))
def env_path(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("stat-" + request.param) / "env")
    make_env(IMPLS[request.param], path)
    return path


@pytest.fixture(scope="module", params=sorted(IMPLS))
def file_path(request, tmp_path_factory):
    """An environment without a subdirectory (``-n``)."""
    path = str(tmp_path_factory.mktemp("statn-" + request.param) / "data.lmdb")
    make_env(IMPLS[request.param], path, records=120, subdir=False)
    return path


OPTION_SETS = [
    [], ["-e"], ["-f"], ["-ff"], ["-fff"], ["-r"], ["-rr"], ["-a"], ["-e", "-a"],
    ["-s", "dups"], ["-s", "fixed"], ["-s", "ints"], ["-s", "intdup"], ["-s", "rev"],
    ["-sbig\\name"], ["-efffa"], ["-r", "-s", "plain"], ["-rr", "-f"], ["-e", "-r"],
    ["-a", "-f", "-e", "-rr"],
]


@pytest.mark.parametrize("opts", OPTION_SETS, ids=lambda o: " ".join(o) or "default")
def test_stat_matches_c(env_path, opts):
    assert_same(run_c("mdb_stat", *opts, env_path), run_py("mdb_stat", *opts, env_path))


def test_stat_options_after_path(env_path):
    # glibc getopt permutes: options may follow the path
    c = run_c("mdb_stat", env_path, "-e", "-f")
    assert c.rc == 0 and b"Freelist Status" in c.out
    assert_same(c, run_py("mdb_stat", env_path, "-e", "-f"))


@pytest.mark.parametrize("opts", [["-n"], ["-n", "-efff", "-a"], ["-n", "-s", "plain"]])
def test_stat_nosubdir_matches_c(file_path, opts):
    assert_same(run_c("mdb_stat", *opts, file_path), run_py("mdb_stat", *opts, file_path))


def test_free_pages_are_listed(env_path):
    """The fixture really has free pages, so the -f comparisons above compare something."""
    out = run_py("mdb_stat", "-fff", env_path).out
    free = int(out.split(b"Free pages: ")[1].split(b"\n")[0])
    assert free > 0
    assert b"    Transaction " in out


@pytest.mark.parametrize("opts", [
    ["-s", "nosuch"],                # MDB_NOTFOUND
    ["-s", "main00001"],             # a plain key: MDB_INCOMPATIBLE
    ["-a", "-s", "dups"], ["-s", "dups", "-a"],     # -a and -s exclude each other
    ["-x"], ["-s"], ["--long"],      # getopt errors, usage
    ["-e", "two", "paths"],
])
def test_stat_errors_match_c(env_path, opts):
    args = [*opts, env_path] if opts != ["-s"] else ["-s"]
    c = run_c("mdb_stat", *args)
    assert c.rc != 0
    assert_same(c, run_py("mdb_stat", *args))


def test_stat_no_arguments_matches_c():
    assert_same(run_c("mdb_stat"), run_py("mdb_stat"))


def test_stat_missing_and_corrupt(tmp_path):
    missing = str(tmp_path / "missing")
    assert_same(run_c("mdb_stat", missing), run_py("mdb_stat", missing))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(os.urandom(3 * 4096))
    c = run_c("mdb_stat", str(bad))
    assert c.rc == 1 and b"MDB_INVALID" in c.err
    assert_same(c, run_py("mdb_stat", str(bad)))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "data.mdb").write_bytes(b"")
    assert_same(run_c("mdb_stat", str(empty)), run_py("mdb_stat", str(empty)))


def test_stat_version():
    # -V prints the version of the LMDB each side follows: Debian's 0.9.24, purelmdb's
    # 0.9.36; only the format can be compared
    c, py = run_c("mdb_stat", "-V"), run_py("mdb_stat", "-V")
    assert c.rc == py.rc == 0 and c.err == py.err == b""
    assert VERSION_LINE.fullmatch(c.out) and VERSION_LINE.fullmatch(py.out)
    assert py.out == (VERSION_STRING + "\n").encode()
