"""``mdb_load`` lookalike against Debian's mdb_load: the same messages and exit status for
good and malformed input, the same data loaded (read back with Debian's mdb_dump), and dumps
from either side load with the other."""

from __future__ import annotations

import os
import re

import lmdb
import pytest
from test_ctools_support import (
    NAMED,
    assert_same,
    contents,
    make_env,
    needs_c_tools,
    run_c,
    run_py,
)

import purelmdb

pytestmark = [pytest.mark.interop, needs_c_tools]

IMPLS = {"c": lmdb, "py": purelmdb}
RUNNERS = {"c": run_c, "py": run_py}


@pytest.fixture(scope="module", params=sorted(IMPLS))
def source(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("load-" + request.param) / "env")
    make_env(IMPLS[request.param], path)
    return path


def _load_both(tmp_path, dump: bytes, *opts: str, mkdir: bool = True):
    """Load ``dump`` with each tool into a fresh ``db`` (same relative path, so messages
    match); return both results and paths."""
    out = {}
    for side, run in RUNNERS.items():
        where = tmp_path / side
        where.mkdir(parents=True)
        if mkdir:
            (where / "db").mkdir()
        out[side] = (run("mdb_load", *opts, "db", stdin=dump, cwd=str(where)),
                     str(where / "db"))
    return out


def _env_facts(path: str) -> bytes:
    """mdb_stat -e lines that do not depend on page allocation: map size, readers, and the
    last transaction id (mdb_load commits every 100 records)."""
    out = run_c("mdb_stat", "-e", path).out
    return b"".join(re.findall(rb"  (?:Map size|Max readers|Last transaction ID): \d+\n", out))


def test_round_trip_all_databases(source, tmp_path):
    dump = run_c("mdb_dump", "-a", source).out
    both = _load_both(tmp_path, dump)
    (c, c_path), (py, py_path) = both["c"], both["py"]
    assert_same(c, py)
    # 0.9's loader does not know the duplicates= and db_pagesize= lines mdb_dump writes
    assert b"unrecognized keyword ignored: db_pagesize" in py.err
    assert run_c("mdb_dump", "-a", py_path).out == dump
    assert contents(py_path) == contents(c_path)
    assert _env_facts(py_path) == _env_facts(c_path)


@pytest.mark.parametrize("fmt", [[], ["-p"]], ids=["bytevalue", "print"])
@pytest.mark.parametrize("name", NAMED)
def test_cross_round_trip(source, tmp_path, name, fmt):
    """Our dump loads with Debian's mdb_load and Debian's dump with ours, to the same data."""
    ours = run_py("mdb_dump", *fmt, "-s", name, source).out
    theirs = run_c("mdb_dump", "-s", name, source).out
    if fmt and b"\\\\" in ours:
        # Debian's 0.9.24 loader mis-reads an escaped backslash after another escape on the
        # same line (ITS#9068, fixed in 0.9.25): load our print dump with our own loader
        loaders = {"py": run_py}
    else:
        loaders = RUNNERS
    for side, run in loaders.items():
        dest = tmp_path / ("from-py-" + side)
        dest.mkdir()
        assert run("mdb_load", str(dest), stdin=ours).rc == 0
        assert run_c("mdb_dump", "-s", name, str(dest)).out == theirs
    dest = tmp_path / "from-c"
    dest.mkdir()
    assert run_py("mdb_load", str(dest), stdin=theirs).rc == 0
    assert run_c("mdb_dump", "-s", name, str(dest)).out == theirs


def test_main_database_round_trip(tmp_path):
    src = str(tmp_path / "src")
    with purelmdb.open(src) as env, env.begin(write=True) as txn:
        # no backslashes: Debian's 0.9.24 mdb_dump -p writes them unescaped (ITS#9068)
        for i in range(1000):
            txn.put(b"key%05d" % i, os.urandom(i % 200).replace(b"\\", b"/"))
        txn.put(b"big", os.urandom(50000).replace(b"\\", b"/"))
    for fmt in ([], ["-p"]):
        dump = run_c("mdb_dump", *fmt, src).out
        both = _load_both(tmp_path / ("m%d" % len(fmt)), dump)
        assert_same(both["c"][0], both["py"][0])
        assert run_c("mdb_dump", both["py"][1]).out == run_c("mdb_dump", src).out
        assert _env_facts(both["py"][1]) == _env_facts(both["c"][1])


def _records(n: int, start: int = 0) -> bytes:
    return b"".join(b" %s\n %s\n" % ((b"k%05d" % i).hex().encode(), (b"v%d" % i).hex().encode())
                    for i in range(start, start + n))


CASES = {
    "empty input": b"",
    "header only": b"VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n",
    "250 records, 3 batches": b"HEADER=END\n" + _records(250) + b"DATA=END\n",
    "bad version": b"VERSION=4\nHEADER=END\n",
    "bad format": b"VERSION=3\nformat=xyz\nHEADER=END\n",
    "bad type": b"type=hash\nHEADER=END\n",
    "bad mapsize": b"mapsize=abc\nHEADER=END\n",
    "mapsize with junk": b"mapsize=2000000x\nHEADER=END\n" + _records(3) + b"DATA=END\n",
    "huge mapsize": b"mapsize=-1\nHEADER=END\n" + _records(3) + b"DATA=END\n",
    "bad maxreaders": b"maxreaders=\nHEADER=END\n",
    "maxreaders": b"maxreaders=200\nHEADER=END\n" + _records(3) + b"DATA=END\n",
    "line without =": b"VERSION=3\nnonsense\nHEADER=END\n",
    "unknown keywords and flag values": b"VERSION=3\nfoo=1\ndupsort=0\nHEADER=END\n"
                                        b" 61\n 62\n 61\n 63\nDATA=END\n",
    "odd hex key": b"HEADER=END\n 616\n 62\nDATA=END\n",
    "bad hex value": b"HEADER=END\n 61\n 6x\nDATA=END\n",
    "value missing": b"HEADER=END\n 61\nDATA=END\n",
    "no DATA=END": b"HEADER=END\n 61\n 62\n",
    "junk line": b"HEADER=END\n" + _records(150) + b"XYZ\n" + _records(2, 500) + b"DATA=END\n",
    "no final newline": b"HEADER=END\n 61\n 62",
    "print format": b"format=print\nHEADER=END\n a\\41\n v\\00\\ff\nDATA=END\n",
    "print bad escape in key": b"format=print\nHEADER=END\n a\\4\n v\nDATA=END\n",
    "print bad escape in value": b"format=print\nHEADER=END\n a\n v\\zz\nDATA=END\n",
    "empty key": b"HEADER=END\n \n 62\nDATA=END\n",
    "key too long": b"HEADER=END\n " + b"61" * 600 + b"\n 62\nDATA=END\n",
    "map full": b"mapsize=1048576\nHEADER=END\n"
                + b"".join(b" %s\n %s\n" % ((b"k%05d" % i).hex().encode(), b"76" * 3000)
                           for i in range(600)) + b"DATA=END\n",
    "several databases": b"database=x\ndupsort=1\nHEADER=END\n 61\n 62\n 61\n 63\nDATA=END\n"
                         b"database=y\nintegerkey=1\nHEADER=END\n 0100000000000000\n 62\n"
                         b"DATA=END\nHEADER=END\n 6162\n 63\nDATA=END\n",
    "reversedup database": b"database=r\ndupsort=1\nreversedup=1\nHEADER=END\n"
                           b" 61\n 0102\n 61\n 0201\n 61\n 0301\n 62\n 00\nDATA=END\n",
    "dupfixed integerdup database": b"database=f\ndupsort=1\ndupfixed=1\nintegerdup=1\n"
                                    b"HEADER=END\n 61\n 02000000\n 61\n 01000000\n"
                                    b" 61\n 00010000\nDATA=END\n",
    "reversekey main database": b"reversekey=1\nHEADER=END\n 6162\n 31\n 6261\n 32\n"
                                b"DATA=END\n",
    "dupsort main database": b"dupsort=1\nHEADER=END\n 61\n 62\n 61\n 63\n 61\n 64\nDATA=END\n",
    "a name that is a plain key": b"HEADER=END\n 78\n 79\nDATA=END\n"
                                  b"database=x\nHEADER=END\n 61\n 62\nDATA=END\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_load_input_matches_c(tmp_path, name):
    both = _load_both(tmp_path, CASES[name])
    (c, c_path), (py, py_path) = both["c"], both["py"]
    assert_same(c, py)
    if os.path.exists(os.path.join(c_path, "data.mdb")):
        assert contents(py_path) == contents(c_path)
        assert _env_facts(py_path) == _env_facts(c_path)
        for opts in ([], ["-a"], ["-p"]):      # our dumper on what Debian's loader wrote
            assert_same(run_c("mdb_dump", *opts, c_path), run_py("mdb_dump", *opts, c_path))


@pytest.mark.parametrize("opts,data", [
    (["-T"], b"key1\nval1\nkey2\nval\\\\x\\41\n"),
    (["-T"], b"key1\nval1\nkey2\n"),
    (["-T", "-s", "sub"], b"k\nv\n"),
    (["-N"], b"HEADER=END\n 61\n 62\n 61\n 63\n 64\n 65\nDATA=END\n"),
    (["-N"], b"dupsort=1\ndatabase=d\nHEADER=END\n 61\n 62\n 61\n 63\n 64\n 65\nDATA=END\n"),
    ([], b"dupsort=1\ndatabase=d\nHEADER=END\n 61\n 62\n 61\n 62\n 61\n 61\nDATA=END\n"),
    (["-s", "named"], b"HEADER=END\n 61\n 62\nDATA=END\n"),
    (["-s", "named"], b"database=other\nHEADER=END\n 61\n 62\nDATA=END\n"),
], ids=str)
def test_load_options_match_c(tmp_path, opts, data):
    both = _load_both(tmp_path, data, *opts)
    (c, c_path), (py, py_path) = both["c"], both["py"]
    assert_same(c, py)
    assert contents(py_path) == contents(c_path)


def test_load_into_existing_environment(source, tmp_path):
    """A second load into an environment adds to it, with -N keeping what is there."""
    dump = run_c("mdb_dump", "-s", "plain", source).out
    changed = dump.replace(b"HEADER=END\n", b"HEADER=END\n 6b30303031\n 6e6577\n", 1)
    for opts in ([], ["-N"]):
        both = _load_both(tmp_path / ("x%d" % len(opts)), dump)
        for side, run in RUNNERS.items():
            assert run("mdb_load", *opts, both[side][1], stdin=changed).rc == 0
        assert contents(both["py"][1]) == contents(both["c"][1])


@pytest.mark.parametrize("args", [
    ["-x", "db"], ["db", "extra"], [], ["-s"], ["-f", "/nonexistent/input", "db"],
])
def test_load_usage_errors_match_c(tmp_path, args):
    c = run_c("mdb_load", *args, cwd=str(tmp_path))
    assert c.rc == 1
    assert_same(c, run_py("mdb_load", *args, cwd=str(tmp_path)))


def test_load_missing_folder_and_file_option(tmp_path):
    dump = b"HEADER=END\n 61\n 62\nDATA=END\n"
    both = _load_both(tmp_path / "m", dump, mkdir=False)
    assert both["c"][0].rc == 1 and b"No such file or directory" in both["c"][0].err
    assert_same(both["c"][0], both["py"][0])
    (tmp_path / "in.dump").write_bytes(dump)
    for side, run in RUNNERS.items():
        dest = tmp_path / ("f-" + side)
        dest.mkdir()
        assert run("mdb_load", "-f", str(tmp_path / "in.dump"), str(dest)).rc == 0
    assert contents(str(tmp_path / "f-py")) == contents(str(tmp_path / "f-c"))


def test_load_nosubdir(tmp_path):
    dump = b"database=d\nHEADER=END\n 61\n 62\nDATA=END\n"
    for side, run in RUNNERS.items():
        assert run("mdb_load", "-n", str(tmp_path / side), stdin=dump).rc == 0
    assert run_c("mdb_dump", "-n", "-a", str(tmp_path / "py")).out == \
        run_c("mdb_dump", "-n", "-a", str(tmp_path / "c")).out


def test_load_respects_recorded_map_size(tmp_path):
    """Without a mapsize line, an existing environment keeps the map size it records, as
    a hard limit: both tools fail the same way when the data outgrows it."""
    small = b"mapsize=1048576\nHEADER=END\n 61\n 62\nDATA=END\n"
    big = b"".join(b"key%05d\n%s\n" % (i, b"v" * 3000) for i in range(600))
    both = _load_both(tmp_path, small)
    results = {side: RUNNERS[side]("mdb_load", "-T", "db", stdin=big,
                                   cwd=str(tmp_path / side)) for side in RUNNERS}
    assert results["c"].rc == 1 and b"MDB_MAP_FULL" in results["c"].err
    assert_same(results["c"], results["py"])
    assert contents(both["py"][1]) == contents(both["c"][1])
    assert _env_facts(both["py"][1]) == _env_facts(both["c"][1])
