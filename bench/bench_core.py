#!/usr/bin/env python3
"""Core benchmark: purelmdb against the C binding (``lmdb``), sqlite3 and dbm.

Run by hand (it is not a test)::

    python bench/bench_core.py                       # N=100,000, all engines
    python bench/bench_core.py --n 20000 --engines lmdb,purelmdb
    python bench/bench_core.py --json out.json

Every engine runs in its own subprocess, so that peak RSS (``ru_maxrss``) is
per engine and no engine warms caches or the allocator for another. The data
set is regenerated identically in each worker from ``--seed``.

See bench/README.md for the workloads and how to read the numbers.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
MAP_SIZE = 2 << 30  # 2 GiB, for both LMDB bindings
KEY_SIZE = 16
ALL_ENGINES = ("lmdb", "purelmdb", "sqlite3", "dbm")
BASELINE = "lmdb"

# Workload name -> description. Order is the report order.
WORKLOADS: Dict[str, str] = {
    "load_random": "load N keys, random order, 1 write txn (us/key)",
    "load_sorted": "load N sorted keys, append=True, 1 write txn (us/key)",
    "get_random": "get every key, shuffled, 1 read txn (us/key)",
    "scan": "ordered scan of all keys+values with a cursor (us/key)",
    "small_txns": "write txns of 1 put each, no sync (us/txn)",
}

Items = List[Tuple[bytes, bytes]]


class Unavailable(Exception):
    """The engine cannot be benchmarked in this interpreter."""


class Skipped(Exception):
    """The engine does not support this workload."""


# --------------------------------------------------------------------------
# Data


@dataclass
class Dataset:
    items: Items  # N (key, value) pairs, in random (generation) order
    sorted_items: Items  # the same pairs sorted by key
    get_order: List[bytes]  # all keys, shuffled independently
    txn_items: Items  # new pairs for the small-transaction workload


def make_dataset(n: int, value_size: int, txns: int, seed: int) -> Dataset:
    """Deterministic random keys and values (random.Random(seed).randbytes)."""
    rng = random.Random(seed)
    keys: Dict[bytes, None] = {}
    while len(keys) < n + txns:  # dedupe (a 16-byte collision is only theoretical)
        keys[rng.randbytes(KEY_SIZE)] = None
    all_keys = list(keys)
    items = [(k, rng.randbytes(value_size)) for k in all_keys[:n]]
    txn_items = [(k, rng.randbytes(value_size)) for k in all_keys[n:]]
    get_order = [k for k, _ in items]
    rng.shuffle(get_order)
    return Dataset(items, sorted(items), get_order, txn_items)


# --------------------------------------------------------------------------
# Engine adapters: every adapter has the same methods.


class Engine:
    """Common interface. ``path`` is a fresh directory owned by the adapter."""

    name = "?"

    def describe(self) -> Dict[str, str]:
        raise NotImplementedError

    def open(self, path: Path) -> None:
        raise NotImplementedError

    def load(self, items: Items, append: bool) -> None:
        """Insert all items in one transaction (append: items are sorted)."""
        raise NotImplementedError

    def get_all(self, keys: Sequence[bytes]) -> int:
        """Look every key up in one read transaction; return how many were found."""
        raise NotImplementedError

    def scan(self) -> int:
        """Read every key and value in key order; return how many were read."""
        raise NotImplementedError

    def put_each(self, items: Items) -> None:
        """One write transaction per item."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class LmdbEngine(Engine):
    """Both LMDB bindings share one adapter: purelmdb is a drop-in for lmdb."""

    module_name = "lmdb"

    def __init__(self) -> None:
        self.mod = self._import()
        self.env: Any = None

    def _import(self) -> Any:
        try:
            return importlib.import_module(self.module_name)
        except Exception as exc:
            raise Unavailable(f"import {self.module_name} failed: {exc!r}") from exc

    def describe(self) -> Dict[str, str]:
        info = {"module": self.module_name, "version": getattr(self.mod, "__version__", "?")}
        version = getattr(self.mod, "version", None)
        if callable(version):
            try:
                info["lmdb_lib"] = ".".join(str(x) for x in version())
            except Exception:
                pass
        return info

    def open(self, path: Path) -> None:
        self.env = self.mod.open(str(path), map_size=MAP_SIZE, sync=False, metasync=False)

    def load(self, items: Items, append: bool) -> None:
        with self.env.begin(write=True) as txn:
            put = txn.put
            if append:
                for k, v in items:
                    put(k, v, append=True)
            else:
                for k, v in items:
                    put(k, v)

    def get_all(self, keys: Sequence[bytes]) -> int:
        found = 0
        with self.env.begin() as txn:
            get = txn.get
            for k in keys:
                if get(k) is not None:
                    found += 1
        return found

    def scan(self) -> int:
        count = 0
        with self.env.begin() as txn:
            cursor = txn.cursor()
            for _k, _v in cursor.iternext(keys=True, values=True):
                count += 1
        return count

    def put_each(self, items: Items) -> None:
        begin = self.env.begin
        for k, v in items:
            with begin(write=True) as txn:
                txn.put(k, v)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


class CLmdbEngine(LmdbEngine):
    name = "lmdb"
    module_name = "lmdb"


class PureLmdbEngine(LmdbEngine):
    name = "purelmdb"
    module_name = "purelmdb"
    REQUIRED = ("open",)

    def _import(self) -> Any:
        src = REPO_ROOT / "src"
        if (src / "purelmdb").is_dir() and str(src) not in sys.path:
            sys.path.insert(0, str(src))  # prefer the checkout over any installed copy
        mod = super()._import()
        missing = [name for name in self.REQUIRED if not callable(getattr(mod, name, None))]
        if missing:
            raise Unavailable(f"purelmdb ({mod.__file__}) lacks {', '.join(missing)}()")
        return mod

    def describe(self) -> Dict[str, str]:
        info = super().describe()
        info["path"] = str(getattr(self.mod, "__file__", "?"))
        return info


class SqliteEngine(Engine):
    """CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID, WAL, synchronous=OFF."""

    name = "sqlite3"

    def __init__(self) -> None:
        import sqlite3

        self.sqlite3 = sqlite3
        self.conn: Any = None

    def describe(self) -> Dict[str, str]:
        return {"version": self.sqlite3.sqlite_version}

    def open(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.conn = self.sqlite3.connect(str(path / "kv.sqlite"), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")

    def load(self, items: Items, append: bool) -> None:
        # No append mode in SQLite: the sorted workload simply inserts in key order.
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO kv(k, v) VALUES (?, ?)", items)
        self.conn.execute("COMMIT")

    def get_all(self, keys: Sequence[bytes]) -> int:
        found = 0
        execute = self.conn.execute
        execute("BEGIN")
        try:
            for k in keys:
                if execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone() is not None:
                    found += 1
        finally:
            execute("COMMIT")
        return found

    def scan(self) -> int:
        count = 0
        for _k, _v in self.conn.execute("SELECT k, v FROM kv ORDER BY k"):
            count += 1
        return count

    def put_each(self, items: Items) -> None:
        execute = self.conn.execute
        for k, v in items:
            execute("BEGIN")
            execute("INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)", (k, v))
            execute("COMMIT")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class DbmEngine(Engine):
    """dbm.gnu if this interpreter has it, else dbm.dumb. No transactions, no order."""

    name = "dbm"

    def __init__(self) -> None:
        try:
            import dbm.gnu as flavour

            self.flag = "nf"  # new file, fast (unsynchronised) mode
        except ImportError:
            import dbm.dumb as flavour  # type: ignore[no-redef]

            self.flag = "n"
        self.flavour: Any = flavour
        self.db: Any = None

    def describe(self) -> Dict[str, str]:
        return {"module": self.flavour.__name__}

    def open(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.db = self.flavour.open(str(path / "kv"), self.flag)

    def load(self, items: Items, append: bool) -> None:
        if append:
            raise Skipped("dbm has no ordered/append load")
        db = self.db
        for k, v in items:
            db[k] = v
        db.sync()  # the closest thing to a commit

    def get_all(self, keys: Sequence[bytes]) -> int:
        get = self.db.get
        return sum(1 for k in keys if get(k) is not None)

    def scan(self) -> int:
        # dbm has no key order: this is a full (unordered) iteration of keys and values.
        db = self.db
        count = 0
        for k in db.keys():
            _v = db[k]
            count += 1
        return count

    def put_each(self, items: Items) -> None:
        db = self.db
        for k, v in items:
            db[k] = v

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


ENGINE_CLASSES: Dict[str, Callable[[], Engine]] = {
    "lmdb": CLmdbEngine,
    "purelmdb": PureLmdbEngine,
    "sqlite3": SqliteEngine,
    "dbm": DbmEngine,
}


# --------------------------------------------------------------------------
# Timing and measurement


def timed(fn: Callable[[], Any]) -> Tuple[float, Any]:
    """Run fn once with the garbage collector off; return (seconds, result)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, result


def best_of(fn: Callable[[], Any], repeat: int) -> Tuple[float, Any]:
    runs = [timed(fn) for _ in range(max(1, repeat))]
    return min(runs, key=lambda run: run[0])


def peak_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return rss * scale / (1 << 20)


def disk_mib(path: Path) -> float:
    """Space actually allocated under path (st_blocks), so sparse maps count true size."""
    total = 0
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total / (1 << 20)


def check(label: str, got: int, want: int, problems: List[str]) -> None:
    if got != want:
        problems.append(f"{label}: expected {want}, got {got}")


# --------------------------------------------------------------------------
# Worker: one engine, all workloads, in this process


def run_workloads(
    engine: Engine, data: Dataset, workdir: Path, repeat: int, out: Dict[str, Any]
) -> None:
    """Fill out["us_per_op"] workload by workload (partial results survive an error)."""
    us: Dict[str, float] = out["us_per_op"]
    problems: List[str] = out["problems"]
    n, txns = len(data.items), len(data.txn_items)

    engine.open(workdir / "random")
    try:
        secs, _ = timed(lambda: engine.load(data.items, append=False))
        us["load_random"] = secs * 1e6 / n
        out["disk_mib"] = disk_mib(workdir / "random")

        secs, found = best_of(lambda: engine.get_all(data.get_order), repeat)
        us["get_random"] = secs * 1e6 / n
        check("get_random found", found, n, problems)

        secs, count = best_of(engine.scan, repeat)
        us["scan"] = secs * 1e6 / n
        check("scan count", count, n, problems)

        secs, _ = timed(lambda: engine.put_each(data.txn_items))
        us["small_txns"] = secs * 1e6 / max(1, txns)
        check("count after small_txns", engine.scan(), n + txns, problems)
    finally:
        engine.close()

    engine.open(workdir / "sorted")
    try:
        secs, _ = timed(lambda: engine.load(data.sorted_items, append=True))
        us["load_sorted"] = secs * 1e6 / n
    except Skipped:
        pass
    finally:
        engine.close()


def worker(args: argparse.Namespace) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "engine": args.worker,
        "status": "ok",
        "python": python_description(),
        "us_per_op": {},
        "problems": [],
    }
    data = make_dataset(args.n, args.value_size, args.txns, args.seed)
    try:
        engine = ENGINE_CLASSES[args.worker]()
    except Unavailable as exc:
        out["status"] = f"unavailable: {exc}"
        return out
    out["info"] = engine.describe()
    out["rss_base_mib"] = peak_rss_mib()
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{args.worker}-", dir=args.tmp))
    try:
        run_workloads(engine, data, workdir, args.repeat, out)
    except Exception as exc:
        traceback.print_exc()
        out["status"] = f"error: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out["rss_peak_mib"] = peak_rss_mib()
    return out


# --------------------------------------------------------------------------
# Parent: spawn one worker per engine, gather, report


def python_description() -> str:
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> Dict[str, str]:
    try:
        import lmdb

        lmdb_version = f"{lmdb.__version__} (LMDB {'.'.join(map(str, lmdb.version()))})"
    except Exception as exc:
        lmdb_version = f"not importable ({type(exc).__name__})"
    return {
        "platform": platform.platform(),
        "cpu": f"{cpu_model()} x{os.cpu_count()}",
        "python": python_description(),
        "lmdb package": lmdb_version,
    }


def worker_command(args: argparse.Namespace, engine: str, result_file: Path) -> List[str]:
    cmd = [
        args.python,
        str(Path(__file__).resolve()),
        "--worker",
        engine,
        "--result-file",
        str(result_file),
        "--n",
        str(args.n),
        "--value-size",
        str(args.value_size),
        "--txns",
        str(args.txns),
        "--repeat",
        str(args.repeat),
        "--seed",
        str(args.seed),
    ]
    if args.tmp:
        cmd += ["--tmp", args.tmp]
    return cmd


def run_engine(args: argparse.Namespace, engine: str) -> Dict[str, Any]:
    fd, name = tempfile.mkstemp(prefix=f"bench-{engine}-", suffix=".json", dir=args.tmp)
    os.close(fd)
    result_file = Path(name)
    try:
        proc = subprocess.run(worker_command(args, engine, result_file), timeout=args.timeout)
        text = result_file.read_text()
        if proc.returncode != 0 or not text:
            return {"engine": engine, "status": f"worker exited with {proc.returncode}"}
        return json.loads(text)
    except subprocess.TimeoutExpired:
        return {"engine": engine, "status": f"timed out after {args.timeout}s"}
    finally:
        result_file.unlink(missing_ok=True)


def format_cell(value: float | None, base: float | None) -> str:
    if value is None:
        return "-"
    if base:
        return f"{value:.2f} ({value / base:.1f}x)"
    return f"{value:.2f}"


def render_table(results: List[Dict[str, Any]]) -> str:
    names = [r["engine"] for r in results]
    base = next((r for r in results if r["engine"] == BASELINE), {})
    base_us = base.get("us_per_op", {})
    header = f"us/op (x {BASELINE})" if base_us else "us/op"
    rows: List[List[str]] = [[header] + names]
    for workload in WORKLOADS:
        rows.append(
            [workload]
            + [
                format_cell(r.get("us_per_op", {}).get(workload), base_us.get(workload))
                for r in results
            ]
        )
    for key, label in (
        ("disk_mib", "disk MiB"),
        ("rss_base_mib", "RSS base MiB"),
        ("rss_peak_mib", "RSS peak MiB"),
    ):
        rows.append([label] + [f"{r[key]:.1f}" if r.get(key) is not None else "-" for r in results])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def report(args: argparse.Namespace, machine: Dict[str, str], results: List[Dict[str, Any]]) -> str:
    lines = [f"{k + ':':<14} {v}" for k, v in machine.items()]
    lines.append(
        f"{'params:':<14} n={args.n} value_size={args.value_size} key_size={KEY_SIZE} "
        f"txns={args.txns} repeat={args.repeat} seed={args.seed}"
    )
    lines.append("")
    for r in results:
        info = ", ".join(f"{k}={v}" for k, v in r.get("info", {}).items())
        lines.append(f"{r['engine']:<9} {r['status']}" + (f"  [{info}]" if info else ""))
        if r.get("python") and r["python"] != machine["python"]:
            lines.append(f"{'':<9} worker python: {r['python']}")
        for problem in r.get("problems", []):
            lines.append(f"{'':<9} WRONG RESULT: {problem}")
    lines += ["", render_table(results), ""]
    lines += [f"  {name:<12} {desc}" for name, desc in WORKLOADS.items()]
    lines.append("  read workloads: best of --repeat; write workloads: one run")
    return "\n".join(lines)


# --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="number of keys (default 100000)")
    p.add_argument("--value-size", type=int, default=100, help="value bytes (default 100)")
    p.add_argument(
        "--txns", type=int, default=2000, help="write transactions in small_txns (default 2000)"
    )
    p.add_argument(
        "--engines", default=",".join(ALL_ENGINES), help=f"comma list from {','.join(ALL_ENGINES)}"
    )
    p.add_argument("--repeat", type=int, default=3, help="best of k for reads (default 3)")
    p.add_argument("--seed", type=int, default=1234, help="random.Random seed")
    p.add_argument("--tmp", default=None, help="folder for the stores (default: system temp)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write results as JSON")
    p.add_argument(
        "--python", default=sys.executable, help="interpreter for the engine workers (e.g. pypy3)"
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per engine worker")
    p.add_argument("--worker", choices=ALL_ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ALL_ENGINES))
    if unknown:
        p.error(f"unknown engine(s): {', '.join(unknown)}")
    args.engine_list = engines
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        Path(args.result_file).write_text(json.dumps(worker(args)))
        return 0
    machine = machine_info()
    results = []
    for engine in args.engine_list:
        print(f"running {engine} ...", file=sys.stderr, flush=True)
        results.append(run_engine(args, engine))
    print(report(args, machine, results))
    if args.json:
        payload = {
            "machine": machine,
            "params": {
                "n": args.n,
                "value_size": args.value_size,
                "key_size": KEY_SIZE,
                "txns": args.txns,
                "repeat": args.repeat,
                "seed": args.seed,
                "map_size": MAP_SIZE,
            },
            "results": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
