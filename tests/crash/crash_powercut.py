"""Power-cut simulation: record what a workload asks of the disk, then build the files a
power cut could have left, and check each one.

The disk model (what fdatasync promises, and no more):

* every write issued before a completed sync is on the disk;
* a write issued after the last completed sync may or may not be, independently of the
  others (the page cache writes back in any order), and a write that is there may be *torn*:
  only some of its 512-byte sectors (aligned to the file offset) made it; a sector itself is
  all old or all new;
* a file-size change (ftruncate) after the last sync may or may not be there either; a write
  that is there extends the file as far as it reaches.

So a power cut between sync ``k`` and sync ``k+1`` leaves: the image of every write before
sync ``k``, plus any subset of the writes between the two syncs, each whole or torn. Cutting
power earlier in that window gives a subset of the same choices, so checking the subsets of
the whole window covers every cut inside it. The commits whose ``commit()`` returned before
sync ``k+1`` had returned before any cut in the window, so each image must open at one of
them or later.

`RecordingIO` is purelmdb's `FileIO` seam with a log. Two deliberately broken variants show
the checker has teeth: `SkipDataSyncIO` drops the sync between the page writes and the meta
write, `MetaFirstIO` lets the meta write reach the disk queue before the page writes.
"""

from __future__ import annotations

import hashlib
import mmap
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from crash_model import Content, Model, apply_to_txn, describe_difference, ops_for, read_all

import purelmdb
from purelmdb.storage import FileIO
from purelmdb.verify import verify

SECTOR = 512
PSIZE = mmap.PAGESIZE if mmap.PAGESIZE in (4096, 8192, 16384, 32768, 65536) else 4096

# log events: ("w", offset, data) a write; ("t", size, b"") an ftruncate; ("s", 0, b"") a
# completed sync; ("c", txnid, b"") commit() of txnid returned (a marker, not disk I/O)
Event = Tuple[str, int, bytes]


class RecordingIO(FileIO):
    """Writes and truncates for real (the engine reads its file back through mmap) and logs
    them with their data. Syncs are logged, not performed: only the simulated disk matters."""

    def __init__(self) -> None:
        self.events: List[Event] = []

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        super().pwrite(fd, data, offset)
        self.log_write(offset, bytes(data))

    def log_write(self, offset: int, data: bytes) -> None:
        self.events.append(("w", offset, data))

    def sync(self, fd: int) -> None:
        self.events.append(("s", 0, b""))

    def truncate(self, fd: int, size: int) -> None:
        super().truncate(fd, size)
        self.events.append(("t", size, b""))

    def mark_commit(self, txnid: int) -> None:
        self.events.append(("c", txnid, b""))


def is_meta_write(offset: int) -> bool:
    return offset < 2 * PSIZE


class SkipDataSyncIO(RecordingIO):
    """BROKEN on purpose: drops every sync that does not follow a meta write, i.e. the one
    that should put the pages on disk before the meta page points at them."""

    def __init__(self) -> None:
        super().__init__()
        self._after_meta = False

    def log_write(self, offset: int, data: bytes) -> None:
        super().log_write(offset, data)
        self._after_meta = is_meta_write(offset)

    def sync(self, fd: int) -> None:
        if self._after_meta:
            super().sync(fd)


class MetaFirstIO(RecordingIO):
    """BROKEN on purpose: page writes reach the disk queue only after the next meta write
    (as a store that writes the meta page first would), so the sync before the meta write
    covers none of them."""

    def __init__(self) -> None:
        super().__init__()
        self._held: List[Event] = []

    def log_write(self, offset: int, data: bytes) -> None:
        if is_meta_write(offset):
            self.events.append(("w", offset, data))
            self.events.extend(self._held)
            self._held = []
        else:
            self._held.append(("w", offset, data))


@dataclass
class Window:
    """The writes between two completed syncs, and what a cut inside may leave."""

    index: int
    durable: bytes                    # the disk image at the sync that opens the window
    pending: List[Event]              # writes and truncates issued after it (optional)
    acked: int                        # last commit() that returned before the next sync
    durable_meta: int                 # newest txn id whose meta write preceded the opening sync


def windows(events: Sequence[Event]) -> Iterator[Window]:
    """Every window of a log, starting at the first completed sync (before it the
    environment was never created durably, so there is nothing to promise)."""
    disk = bytearray()
    pending: List[Event] = []
    acked = -1
    durable_meta = -1
    meta_seen = -1
    started = False
    index = 0
    for ev in list(events) + [("s", 0, b"")]:
        kind = ev[0]
        if kind == "c":
            acked = max(acked, ev[1])
        elif kind == "s":
            if started:
                yield Window(index, bytes(disk), pending, acked, durable_meta)
                index += 1
            for p in pending:
                apply(disk, p)
            pending = []
            durable_meta = meta_seen
            started = True
        else:
            if kind == "w" and is_meta_write(ev[1]) and len(ev[2]) <= 2 * PSIZE:
                meta_seen = max(meta_seen, _meta_txnid(ev))
            pending.append(ev)


def _meta_txnid(ev: Event) -> int:
    """The txn id a meta write carries (a 120-byte tail, or whole meta pages at creation)."""
    offset, data = ev[1], ev[2]
    end = (offset // PSIZE) * PSIZE + 152       # the txnid field ends at byte 152 of its page
    if offset <= end - 8 and offset + len(data) >= end:
        return int.from_bytes(data[end - 8 - offset:end - offset], "little")
    return -1


def apply(disk: bytearray, ev: Event, pieces: Optional[List[Tuple[int, int]]] = None) -> None:
    """Apply a write (only the ``pieces`` (start, end) of it, when given) or a truncate."""
    kind, offset, data = ev
    if kind == "t":
        if offset > len(disk):
            disk.extend(bytes(offset - len(disk)))
        else:
            del disk[offset:]
        return
    for start, end in pieces if pieces is not None else [(offset, offset + len(data))]:
        if len(disk) < end:
            disk.extend(bytes(end - len(disk)))
        disk[start:end] = data[start - offset:end - offset]


def sectors(ev: Event) -> List[Tuple[int, int]]:
    """The (start, end) pieces of a write, cut at absolute 512-byte sector boundaries."""
    _, offset, data = ev
    end = offset + len(data)
    cuts = [offset] + list(range((offset // SECTOR + 1) * SECTOR, end, SECTOR)) + [end]
    return list(zip(cuts, cuts[1:]))


def torn(ev: Event, rng: random.Random) -> List[Tuple[int, int]]:
    """A torn version of a write of several sectors: a prefix, or a random subset."""
    parts = sectors(ev)
    if len(parts) < 2:
        return parts
    if rng.random() < 0.5:
        return parts[:rng.randint(1, len(parts) - 1)]
    chosen = [p for p in parts if rng.random() < 0.5]
    return chosen if chosen and len(chosen) < len(parts) else parts[:1]


def images(window: Window, rng: random.Random, samples: int) -> Iterator[bytes]:
    """Disk images a cut in ``window`` may leave: nothing pending, everything pending, every
    subset when there are at most 4 pending events, else ``samples`` random subsets; each
    subset with and without a torn member."""
    pending = window.pending
    n = len(pending)
    choices: List[List[bool]] = [[False] * n, [True] * n]
    if n <= 4:
        choices = [[bool(m >> i & 1) for i in range(n)] for m in range(1 << n)]
    else:
        choices += [[rng.random() < 0.5 for _ in range(n)] for _ in range(samples)]
    for chosen in choices:
        for tear in (False, True):
            if tear and not any(c and ev[0] == "w" and len(sectors(ev)) > 1
                                for c, ev in zip(chosen, pending)):
                continue
            disk = bytearray(window.durable)
            for c, ev in zip(chosen, pending):
                if c:
                    tearable = tear and ev[0] == "w" and len(sectors(ev)) > 1
                    apply(disk, ev, torn(ev, rng) if tearable and rng.random() < 0.7 else None)
            yield bytes(disk)


def check_image(image: bytes, path: Path, snapshots: Dict[int, Content],
                low: int) -> Tuple[Optional[int], Optional[str]]:
    """(txn id it opened at, None) if ``image`` opens with purelmdb at a committed txn id
    >= ``low`` whose content is exactly that transaction's, and verify() finds nothing;
    else (id or None, what is wrong)."""
    path.write_bytes(image)
    try:
        env = purelmdb.Environment(str(path), subdir=False, readonly=True, lock=False)
        try:
            with env.begin() as txn:
                txnid = txn.id()
                found = read_all(txn)
        finally:
            env.close()
    except purelmdb.Error as exc:
        return None, "does not open or read: %r" % exc
    if txnid < low:
        return txnid, "opens at txn %d, but txn %d had been acknowledged" % (txnid, low)
    if txnid not in snapshots:
        return txnid, "opens at txn %d, which never committed" % txnid
    if found != snapshots[txnid]:
        return txnid, "txn %d content: %s" % (
            txnid, describe_difference(found, snapshots[txnid]))
    problems = verify(str(path), subdir=False)
    if problems:
        return txnid, "txn %d: verify: %s" % (txnid, "; ".join(problems[:5]))
    return txnid, None


@dataclass
class Report:
    states: int = 0                   # distinct images checked
    windows: int = 0
    newer: int = 0                    # images that opened past the acknowledged commit
    violations: List[str] = field(default_factory=list)


def check_log(events: Sequence[Event], snapshots: Dict[int, Content], workdir: Path, *,
              bound: Callable[[Window], int], seed: int = 0, samples: int = 3,
              stop_at_first: bool = False) -> Report:
    """Check every image of every window of ``events``; ``bound(window)`` is the lowest txn
    id an image of that window may open at."""
    rng = random.Random(seed)
    report = Report()
    seen = set()
    path = workdir / "state.mdb"
    for window in windows(events):
        report.windows += 1
        low = bound(window)
        for image in images(window, rng, samples):
            h = hashlib.blake2b(image, digest_size=16).digest()
            if h in seen:
                continue
            seen.add(h)
            report.states += 1
            txnid, problem = check_image(image, path, snapshots, low)
            report.newer += txnid is not None and txnid > window.acked
            if problem is not None:
                report.violations.append("window %d (after sync %d, %d pending): %s"
                                         % (window.index, window.index, len(window.pending),
                                            problem))
                if stop_at_first:
                    return report
    return report


def record_workload(io: RecordingIO, workdir: Path, txns: int,
                    **env_kwargs) -> Tuple[List[Event], Dict[int, Content]]:
    """Run transactions 1..txns on a new environment through ``io``; returns the log
    (with a commit marker after each ``commit()`` returned) and each txn's content."""
    env = purelmdb.Environment(str(workdir / "live.mdb"), subdir=False, _io=io, **env_kwargs)
    io.mark_commit(0)                      # the empty environment exists (it was synced)
    model = Model()
    snapshots: Dict[int, Content] = {0: {}}
    try:
        for t in range(1, txns + 1):
            with env.begin(write=True) as txn:
                assert txn.id() == t
                apply_to_txn(txn, ops_for(t))
            io.mark_commit(t)
            snapshots[t] = dict(model.content_at(t))
    finally:
        env.close()
    return io.events, snapshots


def acked_bound(window: Window) -> int:
    """The full-sync promise: nothing older than the last acknowledged commit."""
    return window.acked
