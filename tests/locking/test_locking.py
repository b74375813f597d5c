"""The lock-file layer (LMDB's opening protocol), against real processes, the C binding and
mdb_stat.

The C-side tests depend on a C opener being *blocked* while we hold the first opener's exclusive
lock: only then does it trust the header we leave behind when we share it (an opener that finds
the file unlocked re-initialises it and proves nothing). ``wait_blocked`` waits for its pending lock request to show in /proc/locks.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator, List

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from purelmdb.errors import Error, ReadonlyError  # noqa: E402
from purelmdb.locking import LockFile, lock_path_for  # noqa: E402

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="LMDB lock-file layout and /proc are Linux's"
    ),
]

CHILD_ENV = dict(
    os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
)


# -- helpers ------------------------------------------------------------------------------------


def run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=CHILD_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )


def start_py(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=CHILD_ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out


def c_env(path: Path, commits: int) -> None:
    """A real LMDB environment at ``path`` written by the C binding with ``commits`` commits."""
    pytest.importorskip("lmdb")
    done = run_py(f"""
        import lmdb
        env = lmdb.open({str(path)!r})
        for i in range({commits}):
            with env.begin(write=True) as txn:
                txn.put(b"k%d" % i, b"v%d" % i)
        assert env.info()["last_txnid"] == {commits}
        env.close()
    """)
    assert done.returncode == 0, done.stderr


def wait_blocked(proc: subprocess.Popen, lock_path: Path, timeout: float = 10.0) -> None:
    """Wait until ``proc`` is waiting for a lock on ``lock_path`` (a "->" line of /proc/locks)."""
    ino = os.stat(lock_path).st_ino
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and str(proc.pid) in fields and fields[-3].endswith(f":{ino}"):
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"process {proc.pid} never blocked on {lock_path}")


PROBE = """
    import signal, sys
    from purelmdb.locking import LockFile

    class GiveUp(BaseException):
        pass

    def give_up(*_):
        raise GiveUp

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(2)
    try:
        lf = LockFile(sys.argv[1], readonly=False, mode=0o644, max_readers=126)
    except GiveUp:
        print("blocked")
    else:
        signal.alarm(0)
        print("first" if lf.first else "shared")
        lf.close()
"""


def probe(lock_path: Path) -> str:
    """From another process: 'first' (nobody else has it open), 'shared' (others have it open
    and shared), or 'blocked' (an opener holds it exclusively)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE), str(lock_path)],
        env=CHILD_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def opened() -> Iterator[List[LockFile]]:
    """Append LockFiles here: they are closed even when the test fails."""
    files: List[LockFile] = []
    yield files
    for lf in files:
        lf.close()


def open_lock(opened: List[LockFile], path: Path, **kw: object) -> LockFile:
    args: dict = dict(readonly=False, mode=0o644, max_readers=126)
    args.update(kw)
    lf = LockFile(str(path), **args)
    opened.append(lf)
    return lf


# -- layout -------------------------------------------------------------------------------------


def test_lock_path_for() -> None:
    assert lock_path_for("/d/env", True) == "/d/env/lock.mdb"
    assert lock_path_for("/d/env.mdb", False) == "/d/env.mdb-lock"


def test_header_matches_lmdb_layout(tmp_path: Path, opened: List[LockFile]) -> None:
    path = tmp_path / "lock.mdb"
    lf = open_lock(opened, path, mode=0o640)
    assert (lf.active, lf.max_readers, lf.num_readers()) == (True, 126, 0)
    # Built by hand from format doc 13.1, not from the module's constants.
    want = bytearray(8192)
    want[0:8] = bytes.fromhex("dec0efbe 01000100")
    want[8 + 16] = want[64 + 16] = 0x90  # __kind of rmutex and wmutex
    assert path.read_bytes() == want
    lf.publish_txnid(0x0102030405)
    want[48:56] = (0x0102030405).to_bytes(8, "little")
    assert path.read_bytes() == want
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o640 & ~umask


def test_larger_file_keeps_size_and_reader_table(tmp_path: Path, opened: List[LockFile]) -> None:
    path = tmp_path / "lock.mdb"
    path.write_bytes(b"\xab" * (128 + 64 * 300))
    lf = open_lock(opened, path)
    assert lf.max_readers == 300  # (size - 192) // 64 + 1, as C derives it
    data = path.read_bytes()
    assert len(data) == 128 + 64 * 300
    assert data[:8] == bytes.fromhex("dec0efbe 01000100") and data[48:60] == bytes(12)
    assert data[128:] == bytes(64 * 300)  # stale reader slots wiped


def test_short_file_is_extended(tmp_path: Path, opened: List[LockFile]) -> None:
    path = tmp_path / "lock.mdb"
    path.write_bytes(b"\xff" * 100)
    lf = open_lock(opened, path, max_readers=10)
    assert lf.max_readers == 10
    data = path.read_bytes()
    assert len(data) == 128 + 64 * 10 and data[:4] == bytes.fromhex("dec0efbe")


def test_max_readers_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(Error) as info:
        LockFile(str(tmp_path / "lock.mdb"), readonly=False, mode=0o644, max_readers=0)
    assert info.value.code == errno.EINVAL
    assert not (tmp_path / "lock.mdb").exists()


# -- exclusion between processes ----------------------------------------------------------------


def test_other_openers_wait_for_the_first_to_share(tmp_path: Path, opened: List[LockFile]) -> None:
    path = tmp_path / "lock.mdb"
    lf = open_lock(opened, path)
    assert lf.first
    assert probe(path) == "blocked"
    lf.share(7)
    assert not lf.first and probe(path) == "shared"
    assert path.read_bytes()[48:56] == (7).to_bytes(8, "little")
    lf.close()
    lf.close()  # idempotent
    assert probe(path) == "first"
    with pytest.raises(Error, match="closed"):
        lf.publish_txnid(1)


@pytest.mark.interop
def test_opens_shared_while_a_c_process_has_the_env_open(
        tmp_path: Path, opened: List[LockFile]) -> None:
    c_env(tmp_path, 1)
    holder = start_py(f"""
        import lmdb, sys
        env = lmdb.open({str(tmp_path)!r})
        print("open", flush=True)
        sys.stdin.readline()
    """)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        lf = open_lock(opened, tmp_path / "lock.mdb", env_path=str(tmp_path))
        assert lf.active and not lf.first and lf.txnid() == 1
    finally:
        finish(holder)


def test_a_lock_file_of_another_format_is_refused(tmp_path: Path, opened: List[LockFile]) -> None:
    path = tmp_path / "lock.mdb"
    first = open_lock(opened, path)
    first.share(0)
    # as another platform's C LMDB; written through our map: opening and closing another
    # descriptor of the file would drop our locks
    first._map[4:8] = (0x00010002).to_bytes(4, "little")
    done = run_py(f"""
        from purelmdb.locking import LockFile
        from purelmdb.errors import VersionMismatchError
        try:
            LockFile({str(path)!r}, readonly=False, mode=0o644, max_readers=126)
        except VersionMismatchError as e:
            print("refused", e)
    """)
    assert done.stdout.startswith("refused") and "another format" in done.stdout


@pytest.mark.interop
def test_c_opener_blocks_until_we_share_then_reads_and_writes(
    tmp_path: Path, opened: List[LockFile]
) -> None:
    c_env(tmp_path, 3)
    lf = open_lock(opened, tmp_path / "lock.mdb")
    lf.publish_txnid(3)
    started = time.monotonic()
    c = start_py(f"""
        import json, lmdb
        env = lmdb.open({str(tmp_path)!r})
        with env.begin() as txn:
            read = [txn.id(), txn.get(b"k2").decode()]
        with env.begin(write=True) as txn:
            txn.put(b"new", b"1")
        print(json.dumps(dict(read=read, last=env.info()["last_txnid"])))
    """)
    try:
        wait_blocked(c, tmp_path / "lock.mdb")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        assert c.poll() is None, "the C opener did not wait for our lock"
    finally:
        lf.share(3)
    assert json.loads(finish(c)) == {"read": [3, "v2"], "last": 4}
    assert lf.txnid() == 4      # the C writer published its commit in the shared header


@pytest.mark.interop
@pytest.mark.parametrize("published", [5, 3], ids=["current", "stale-control"])
def test_c_trusts_the_published_txnid(
    tmp_path: Path, opened: List[LockFile], published: int
) -> None:
    # The stale case is the control: it shows the txnid C uses comes from us, not from the meta.
    # info()["last_txnid"] comes from the meta pages and is 5 either way, so it cannot tell.
    c_env(tmp_path, 5)
    lf = open_lock(opened, tmp_path / "lock.mdb")
    c = start_py(f"""
        import json, lmdb
        env = lmdb.open({str(tmp_path)!r}, readonly=True)
        with env.begin() as txn:
            print(json.dumps([txn.id(), env.info()["last_txnid"]]))
    """)
    try:
        wait_blocked(c, tmp_path / "lock.mdb")
    finally:
        lf.share(published)
    assert json.loads(finish(c)) == [published, 5]


@pytest.mark.interop
def test_mdb_stat_reads_the_header_we_leave(tmp_path: Path, opened: List[LockFile]) -> None:
    mdb_stat = shutil.which("mdb_stat")
    if mdb_stat is None:
        pytest.skip("mdb_stat (lmdb-utils) is not installed")
    c_env(tmp_path, 4)
    lf = open_lock(opened, tmp_path / "lock.mdb", max_readers=200)
    stat = subprocess.Popen([mdb_stat, "-e", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        wait_blocked(stat, tmp_path / "lock.mdb")
    finally:
        lf.share(4)
    out, _ = stat.communicate(timeout=20)
    assert stat.returncode == 0
    # mdb_stat asks for 126 readers; it got 200 from our file's size.
    for line in (
        "Last transaction ID: 4",
        "Max readers: 200",
        "Number of readers used: 0",
        "Entries: 4",
    ):
        assert line in out
    again = subprocess.run([mdb_stat, "-e", str(tmp_path)], capture_output=True, text=True)
    assert again.returncode == 0 and "Last transaction ID: 4" in again.stdout


# -- one open per process -----------------------------------------------------------------------


def test_second_open_in_process_raises_and_keeps_the_lock(
    tmp_path: Path, opened: List[LockFile]
) -> None:
    pytest.importorskip("lmdb")
    # The C binding's wording, measured on another directory (it would block on ours).
    other = tmp_path / "other"
    other.mkdir()
    done = run_py(f"""
        import lmdb
        env = lmdb.open({str(other)!r})
        try:
            lmdb.open({str(other)!r})
        except lmdb.Error as e:
            print(e)
    """)
    c_message = done.stdout.strip().replace(str(other), str(tmp_path))
    assert c_message == f"The environment '{tmp_path}' is already open in this process."

    path = tmp_path / "lock.mdb"
    lf = open_lock(opened, path, env_path=str(tmp_path))
    with pytest.raises(Error) as info:
        open_lock(opened, path, env_path=str(tmp_path))
    assert type(info.value) is Error and str(info.value) == c_message
    (tmp_path / "alias").symlink_to(tmp_path)  # same file, another path
    with pytest.raises(Error, match="already open in this process"):
        open_lock(opened, tmp_path / "alias" / "lock.mdb")
    assert probe(path) == "blocked"  # the failed opens did not drop our lock
    lf.close()
    assert open_lock(opened, path).active


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_second_open_is_refused_before_opening_a_descriptor(
    tmp_path: Path, opened: List[LockFile]
) -> None:
    path = tmp_path / "lock.mdb"
    open_lock(opened, path)
    before = open_fds()
    with pytest.raises(Error, match="already open in this process"):
        open_lock(opened, path)
    assert open_fds() == before


def test_path_switched_to_an_open_lock_file_after_the_check(
    tmp_path: Path, opened: List[LockFile]
) -> None:
    held = tmp_path / "held-lock"
    lf = open_lock(opened, held)
    before = open_fds()

    def switched(path: str, flags: int, mode: int) -> int:
        return os.open(held, flags, mode)  # as if `path` became a link to `held` meanwhile

    with pytest.raises(Error, match="already open in this process"):
        LockFile(
            str(tmp_path / "new-lock"), readonly=False, mode=0o644, max_readers=126, _open=switched
        )
    assert probe(held) == "blocked"  # the stray descriptor was not closed
    assert open_fds() == before + 1
    lf.close()
    assert open_fds() == before - 2  # closed along with the holder's own and its map's


# -- fork -----------------------------------------------------------------------------------------


def test_fork_child_closing_an_fd_keeps_the_parents_fcntl_lock(tmp_path: Path) -> None:
    """The OS fact the fork handling relies on, without purelmdb in the way."""
    import fcntl

    path = tmp_path / "lock.mdb"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0, os.SEEK_SET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(fd)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        assert probe(path) == "blocked"
    finally:
        os.close(fd)


def test_fork_child_close_does_not_release_parent_lock(
    tmp_path: Path, opened: List[LockFile]
) -> None:
    path = tmp_path / "lock.mdb"
    lf = open_lock(opened, path)
    lf.share(9)
    slot = lf.acquire_slot()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child; reports through its exit status
        status = 1
        try:
            try:
                lf.publish_txnid(10)
            except Error as e:
                assert "after fork()" in str(e)
            else:
                raise AssertionError("publish_txnid worked in the child")
            lf.close()
            # the child may open anew, beside the parent
            mine = LockFile(str(path), readonly=False, mode=0o644, max_readers=126)
            if not mine.first and mine.txnid() == 9:
                status = 0
            mine.close()
        finally:
            os._exit(status)
    assert os.waitpid(pid, 0)[1] == 0
    assert probe(path) == "shared"           # our shared lock survived the child's close
    assert path.read_bytes()[48:56] == (9).to_bytes(8, "little")  # the child wrote nothing
    assert [row[0] for row in lf.reader_rows()] == [os.getpid()]  # nor freed our slot
    lf.free_slot(slot)
    lf.close()
    assert probe(path) == "first"


def test_fork_child_may_reopen_once_the_parent_has_closed(
    tmp_path: Path, opened: List[LockFile]
) -> None:
    path = tmp_path / "lock.mdb"
    inherited = open_lock(opened, path)
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child; reports through its exit status
        status = 1
        try:
            os.close(go_w)
            os.read(go_r, 1)  # the parent has closed
            mine = LockFile(str(path), readonly=False, mode=0o644, max_readers=126)
            inherited.close()  # must not close a descriptor that drops `mine`'s lock
            if probe(path) == "blocked":
                status = 0
            mine.close()
        finally:
            os._exit(status)
    os.close(go_r)
    inherited.close()
    os.write(go_w, b"x")
    os.close(go_w)
    assert os.waitpid(pid, 0)[1] == 0


# -- read-only fallback -------------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES], ids=["EROFS", "EACCES"])
def test_readonly_runs_without_lock_file_when_unwritable(tmp_path: Path, code: int) -> None:
    def refuse(path: str, flags: int, mode: int) -> int:
        raise OSError(code, os.strerror(code), path)

    path = str(tmp_path / "lock.mdb")
    lf = LockFile(path, readonly=True, mode=0o644, max_readers=50, _open=refuse)
    assert (lf.active, lf.max_readers, lf.num_readers()) == (False, 50, 0)
    lf.publish_txnid(3)  # a no-op
    lf.close()
    lf.close()
    assert not os.path.exists(path)

    with pytest.raises(Error) as info:  # a writer needs the lock file
        LockFile(path, readonly=False, mode=0o644, max_readers=50, _open=refuse)
    assert info.value.code == code
    assert isinstance(info.value, ReadonlyError) == (code == errno.EACCES)


def test_readonly_other_open_errors_still_raise(tmp_path: Path) -> None:
    with pytest.raises(Error) as info:
        LockFile(str(tmp_path / "missing" / "lock.mdb"), readonly=True, mode=0o644, max_readers=126)
    assert info.value.code == errno.ENOENT


def test_readonly_folder_really_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip(
                "chmod 0555 does not stop this user from writing (running as root?); "
                "the EROFS/EACCES branch is covered through the _open seam"
            )
        lf = LockFile(str(folder / "lock.mdb"), readonly=True, mode=0o644, max_readers=126)
        assert not lf.active
        lf.close()
        with pytest.raises(ReadonlyError):
            LockFile(str(folder / "lock.mdb"), readonly=False, mode=0o644, max_readers=126)
    finally:
        folder.chmod(0o755)
