"""The timed workloads, run for one engine and one workload set inside a worker process.

Standard library only and Python 3.9 syntax (the purelmdb worker may run under PyPy).
A workload set is (number of keys, value size); the parent starts one worker per engine
and set, so that peak memory is the engine's own and no engine warms caches for another.
"""

from __future__ import annotations

import functools
import gc
import platform
import random
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from bench_engines import ENGINE_CLASSES, Engine, Items, Skipped, Unavailable

KEY_SIZE = 16
PAGE_SIZE = 4096

# Workload name -> what is timed. Order is the report order.
WORKLOADS: Dict[str, str] = {
    "load_random": "put N pairs in random order, 1 write txn, commit included (us/key)",
    "load_sorted": "put N pairs in key order, append=True (others: sorted inserts), 1 txn (us/key)",
    "get_random": "get every key in shuffled order, 1 read txn (us/key)",
    "scan": "ordered cursor scan of all keys and values (dbm: unordered) (us/key)",
    "small_txns": "write txns of one put each (new keys) into the loaded store (us/txn)",
}
READ_WORKLOADS = ("get_random", "scan")


# --------------------------------------------------------------------------
# Data


@dataclass
class Dataset:
    items: Items  # N (key, value) pairs in random (generation) order
    sorted_items: Items  # the same pairs sorted by key
    get_order: List[bytes]  # all keys, shuffled independently of the load order
    txn_items: Items  # fresh pairs for small_txns, `txns` per run

    @property
    def data_bytes(self) -> int:
        return sum(len(k) + len(v) for k, v in self.items)


def make_dataset(n: int, value_size: int, txn_pool: int, seed: int) -> Dataset:
    """Deterministic data from random.Random(seed), the same in every worker and interpreter.

    Keys are 16 random bytes. Values are slices of one random pool at random offsets: they
    cost a memcpy each instead of a fresh randbytes call, which matters at 16 KB x 10^6,
    and no engine here compresses or deduplicates values.
    """
    rng = random.Random(seed)
    keys: Dict[bytes, None] = {}
    while len(keys) < n + txn_pool:  # dedupe (a 16-byte collision is only theoretical)
        keys[rng.randbytes(KEY_SIZE)] = None
    pool = rng.randbytes(value_size + 4096)
    offsets = [rng.randrange(4096) for _ in range(n + txn_pool)]
    values = [pool[o : o + value_size] for o in offsets]
    pairs = list(zip(keys, values))
    del keys, values, offsets
    items, txn_items = pairs[:n], pairs[n:]
    get_order = [k for k, _ in items]
    rng.shuffle(get_order)
    return Dataset(items, sorted(items), get_order, txn_items)


def map_size_for(n: int, value_size: int, txn_pool: int) -> int:
    """A map comfortably larger than any store built here (it is sparse: size costs nothing)."""
    records = n + txn_pool
    if value_size > 1024:  # overflow pages: the value plus a 16-byte page header, rounded up
        per_record = -(-(value_size + 16) // PAGE_SIZE) * PAGE_SIZE + 64
    else:
        per_record = KEY_SIZE + value_size + 16
    return max(64 << 20, 3 * records * per_record + (64 << 20))


# --------------------------------------------------------------------------
# Timing


CLOCKS = ("cpu", "wall")
# PyPy's gc.disable() stops its major collections, the only thing that frees memory there:
# memory would balloon and the runs would skip a cost that is part of PyPy's price.
PAUSE_GC = platform.python_implementation() == "CPython"


def timed(fn: Callable[[], Any]) -> Tuple[float, float, Any]:
    """Run fn once; return (wall seconds, CPU seconds of this process, result).

    On CPython the cyclic garbage collector is collected, then off while fn runs.
    """
    gc.collect()
    if PAUSE_GC:
        gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        gc.enable()
    return wall, cpu, result


class Repeats:
    """Best-of-k runs of one workload: up to `repeat`, fewer once `budget` seconds are spent.

    Small sets get several runs (one is short and noisy); a set whose one run already takes
    the budget runs once, which keeps 10^6-key runs affordable. Both clocks are kept: CPU
    time (process_time) is what the engines cost and hardly moves when other jobs share
    the machine; wall time adds waiting for the CPU and the disk.
    """

    def __init__(self, repeat: int, budget: float) -> None:
        self.repeat = max(1, repeat)
        self.budget = budget
        self.runs = 0
        self.spent = 0.0
        self.best = {clock: float("inf") for clock in CLOCKS}

    def run(self, fn: Callable[[], Any]) -> Any:
        wall, cpu, result = timed(fn)
        self.runs += 1
        self.spent += wall
        self.best["wall"] = min(self.best["wall"], wall)
        self.best["cpu"] = min(self.best["cpu"], cpu)
        return result

    def more(self) -> bool:
        return self.runs < self.repeat and self.spent < self.budget


# --------------------------------------------------------------------------
# Memory


def _proc_status() -> Dict[str, int]:
    """VmHWM, VmRSS, RssAnon... of /proc/self/status in bytes (empty off Linux)."""
    fields: Dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[name] = int(parts[0]) * 1024
    except OSError:
        pass
    return fields


def _ru_maxrss() -> Optional[int]:
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB on Linux


class MemoryProbe:
    """Peak memory the engine adds on top of the data set held by the worker.

    On Linux the peak-RSS mark is reset (/proc/self/clear_refs, "5") once the data set is
    built, so the transient memory of building it is not counted. Elsewhere, ru_maxrss is
    a lower bound of the same thing. Peak RSS includes the pages of a memory-mapped store
    the engine touched; `heap` (RssAnon, sampled after each workload) leaves them out and
    shows what Python objects, caches and malloc hold.
    """

    def __init__(self) -> None:
        self.method = "ru_maxrss"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            if "VmHWM" in _proc_status():
                self.method = "VmHWM"
        except OSError:
            pass
        status = _proc_status()
        self.base_rss = status.get("VmRSS") if self.method == "VmHWM" else _ru_maxrss()
        self.base_anon = status.get("RssAnon")
        self.max_anon = self.base_anon

    def sample(self) -> None:
        anon = _proc_status().get("RssAnon")
        if anon is not None and self.max_anon is not None:
            self.max_anon = max(self.max_anon, anon)

    def result(self) -> Dict[str, Any]:
        peak = _proc_status().get("VmHWM") if self.method == "VmHWM" else _ru_maxrss()
        mib = 1 << 20
        out: Dict[str, Any] = {"method": self.method}
        if peak is not None and self.base_rss is not None:
            out["base_mib"] = self.base_rss / mib
            out["peak_added_mib"] = max(0, peak - self.base_rss) / mib
        if self.max_anon is not None and self.base_anon is not None:
            out["heap_added_mib"] = max(0, self.max_anon - self.base_anon) / mib
        return out


def allocated_mib(path: Path) -> float:
    """Space actually allocated under path (st_blocks), so sparse files count their true size."""
    total = 0
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total / (1 << 20)


# --------------------------------------------------------------------------
# The workloads


@dataclass
class WorkloadParams:
    n: int
    value_size: int
    txns: int
    repeat: int
    budget: float
    clock: str  # "cpu" or "wall": the one us_per_op reports
    seed: int
    tmp: Optional[str]


def _load(
    engine: Engine, items: Items, append: bool, base: Path, map_size: int, rep: Repeats
) -> Path:
    """Best-of load into fresh stores; the last store is left open and its path returned."""
    while True:
        path = base.with_name(f"{base.name}-{rep.runs}")
        engine.open(path, map_size)
        rep.run(lambda: engine.load(items, append))
        if not rep.more():
            return path
        engine.close()
        shutil.rmtree(path, ignore_errors=True)


def run_workloads(
    engine: Engine,
    data: Dataset,
    p: WorkloadParams,
    workdir: Path,
    probe: MemoryProbe,
    out: Dict[str, Any],
) -> None:
    """Fill out["us_per_op"] workload by workload; partial results survive an error."""
    us: Dict[str, float] = out["us_per_op"]
    runs: Dict[str, int] = out["runs"]
    problems: List[str] = out["problems"]
    n = len(data.items)
    map_size = map_size_for(n, p.value_size, len(data.txn_items))

    def record(name: str, rep: Repeats, ops: int) -> None:
        for clock in CLOCKS:
            out[f"us_per_op_{clock}"][name] = rep.best[clock] * 1e6 / ops
        us[name] = rep.best[p.clock] * 1e6 / ops
        runs[name] = rep.runs
        probe.sample()

    try:
        rep = Repeats(p.repeat, p.budget)
        store = _load(engine, data.items, False, workdir / "random", map_size, rep)
        record("load_random", rep, n)
        out["file_mib"] = allocated_mib(store)

        rep = Repeats(p.repeat, p.budget)
        while rep.more():
            found = rep.run(lambda: engine.get_all(data.get_order))
            if found != n:
                problems.append(f"get_random found {found} of {n} keys")
        record("get_random", rep, n)

        rep = Repeats(p.repeat, p.budget)
        while rep.more():
            count = rep.run(engine.scan)
            if count != n:
                problems.append(f"scan read {count} of {n} records")
        record("scan", rep, n)

        rep = Repeats(p.repeat, p.budget)
        while rep.more():
            batch = data.txn_items[rep.runs * p.txns : (rep.runs + 1) * p.txns]
            rep.run(functools.partial(engine.put_each, batch))
        record("small_txns", rep, p.txns)
        expected = n + rep.runs * p.txns
        count = engine.scan()
        if count != expected:
            problems.append(f"after small_txns: {count} records, expected {expected}")
    finally:
        engine.close()
    shutil.rmtree(store, ignore_errors=True)

    rep = Repeats(p.repeat, p.budget)
    try:
        _load(engine, data.sorted_items, True, workdir / "sorted", map_size, rep)
        record("load_sorted", rep, n)
    except Skipped:
        pass
    finally:
        engine.close()


def python_description() -> str:
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"


def run_worker(engine_name: str, p: WorkloadParams) -> Dict[str, Any]:
    """Everything one worker process does; returns the JSON-able result."""
    out: Dict[str, Any] = {
        "engine": engine_name,
        "n": p.n,
        "value_size": p.value_size,
        "status": "ok",
        "python": python_description(),
        "implementation": platform.python_implementation(),
        "clock": p.clock,
        "us_per_op": {},
        "us_per_op_cpu": {},
        "us_per_op_wall": {},
        "runs": {},
        "problems": [],
    }
    data = make_dataset(p.n, p.value_size, p.txns * max(1, p.repeat), p.seed)
    out["data_mib"] = data.data_bytes / (1 << 20)
    try:
        engine = ENGINE_CLASSES[engine_name]()
    except Unavailable as exc:
        out["status"] = f"unavailable: {exc}"
        return out
    out["info"] = engine.describe()
    probe = MemoryProbe()  # after the data set and the engine's import: only its own memory
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{engine_name}-", dir=p.tmp))
    try:
        run_workloads(engine, data, p, workdir, probe, out)
    except Exception as exc:
        traceback.print_exc()
        out["status"] = f"error: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out["memory"] = probe.result()
    return out
