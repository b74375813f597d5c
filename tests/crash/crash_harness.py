"""Running, killing and checking the writer subprocess (writer.py) of the kill tests."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

from crash_model import Content, Model, describe_difference, read_all

import purelmdb
from purelmdb.verify import verify

WRITER = Path(__file__).resolve().with_name("writer.py")
READY_TIMEOUT = 30.0


def _child_env() -> dict:
    """The environment of a child process: it imports the same purelmdb as the tests."""
    env = dict(os.environ)
    src = str(Path(purelmdb.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@dataclass
class WriterRun:
    """What one writer process reported before it ended."""

    start_txnid: int
    start_digest: str
    acked: List[Tuple[int, str]] = field(default_factory=list)   # (txnid, digest) per commit
    killed: bool = False
    returncode: Optional[int] = None
    stderr: str = ""

    @property
    def last_acked(self) -> int:
        return self.acked[-1][0] if self.acked else self.start_txnid


def _pump(stream: Any, lines: queue.Queue) -> None:
    for line in iter(stream.readline, b""):
        lines.put(line.decode())
    lines.put(None)


def run_writer(path: Path, *, kill_after: Optional[float], sync: bool = True,
               metasync: bool = True, max_txns: int = 0) -> WriterRun:
    """Start writer.py on ``path``; once it is ready, SIGKILL it after ``kill_after``
    seconds (None: let it finish ``max_txns`` commits). Returns every line it acknowledged."""
    cmd = [sys.executable, str(WRITER), str(path), "--sync", str(int(sync)),
           "--metasync", str(int(metasync)), "--max-txns", str(max_txns)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_child_env())
    lines: queue.Queue = queue.Queue()
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    try:
        first = lines.get(timeout=READY_TIMEOUT)
        if first is None or not first.startswith("ready "):
            proc.wait(timeout=10)
            raise AssertionError("writer did not start: %r\n%s"
                                 % (first, proc.stderr.read().decode()))
        _, txnid, dig = first.split()
        run = WriterRun(int(txnid), dig)
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        run.returncode = proc.wait(timeout=120)
        run.killed = run.returncode == -signal.SIGKILL
        pump.join(timeout=10)
        while True:
            line = lines.get_nowait()
            if line is None:
                break
            if line.strip() == "done":
                continue
            if line.startswith("error"):
                raise AssertionError("writer: " + line)
            t, d = line.split()
            run.acked.append((int(t), d))
        run.stderr = proc.stderr.read().decode()
        return run
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def check_writer_digests(run: WriterRun, model: Model) -> None:
    """The writer's own idea of the content agrees with this process's model."""
    assert run.start_digest == model.digest_at(run.start_txnid), "writer started elsewhere"
    for t, d in run.acked:
        assert d == model.digest_at(t), "writer's digest of txn %d differs from the model" % t


def read_with_purelmdb(path: Path) -> Tuple[int, Content]:
    """(last txn id, content) of the environment at ``path``, read-only."""
    env = purelmdb.Environment(str(path), readonly=True)
    try:
        with env.begin() as txn:
            return txn.id(), read_all(txn)
    finally:
        env.close()


def read_with_c(path: Path) -> Tuple[int, Content]:
    """(last txn id, content) as the C binding reads it (read-only, no lock)."""
    import lmdb

    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return txn.id(), read_all(txn)
    finally:
        env.close()


def check_recovered(path: Path, model: Model, low: int, high: int, *,
                    with_c: bool = False) -> int:
    """Assert the environment at ``path`` holds exactly the model of some txn id in
    ``low..high``, that verify() finds nothing, and (``with_c``) that the C binding reads
    the same. Returns the id found."""
    txnid, found = read_with_purelmdb(path)
    assert low <= txnid <= high, "recovered txn %d, expected %d..%d" % (txnid, low, high)
    expected = model.content_at(txnid)
    assert found == expected, "content of txn %d: %s" % (
        txnid, describe_difference(found, expected))
    problems = verify(str(path))
    assert problems == [], "verify after txn %d:\n%s" % (txnid, "\n".join(problems[:20]))
    if with_c:
        c_txnid, c_found = read_with_c(path)
        assert c_txnid == txnid, "C binding sees txn %d, purelmdb %d" % (c_txnid, txnid)
        assert c_found == expected, "C binding's content of txn %d: %s" % (
            txnid, describe_difference(c_found, expected))
    return txnid
