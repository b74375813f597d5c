"""Engine adapters for the benchmark: one class per store, all with the same methods.

Standard library only and Python 3.9 syntax: this module also runs under PyPy in the
purelmdb worker. Every adapter is configured for CPU cost, not durability: no fsync
anywhere (LMDB ``sync=False, metasync=False``, SQLite ``synchronous=OFF``, gdbm fast mode).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_NAMES = ("lmdb", "purelmdb", "sqlite3", "dbm")
BASELINE = "lmdb"

Items = List[Tuple[bytes, bytes]]


class Unavailable(Exception):
    """The engine cannot be benchmarked in this interpreter."""


class Skipped(Exception):
    """The engine has no equivalent of this workload."""


class Engine:
    """Common interface. ``open`` gets a fresh directory that the adapter may fill."""

    name = "?"

    def describe(self) -> Dict[str, str]:
        raise NotImplementedError

    def open(self, path: Path, map_size: int) -> None:
        raise NotImplementedError

    def load(self, items: Items, append: bool) -> None:
        """Insert all items in one transaction (append: items are sorted by key)."""
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
    """Both LMDB bindings share one adapter: purelmdb is a drop-in for ``lmdb``."""

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
        info = {"module": self.module_name, "version": str(getattr(self.mod, "__version__", "?"))}
        version = getattr(self.mod, "version", None)
        if callable(version):
            try:
                info["lmdb_lib"] = ".".join(str(x) for x in version())
            except Exception:  # an old or partial binding: the version is only a label
                pass
        return info

    def open(self, path: Path, map_size: int) -> None:
        self.env = self.mod.open(str(path), map_size=map_size, sync=False, metasync=False)

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
            for _k, _v in txn.cursor().iternext(keys=True, values=True):
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

    def _import(self) -> Any:
        src = REPO_ROOT / "src"
        if (src / "purelmdb").is_dir() and str(src) not in sys.path:
            sys.path.insert(0, str(src))  # the checkout, not an installed copy, is measured
        mod = super()._import()
        if not callable(getattr(mod, "open", None)):
            raise Unavailable(f"purelmdb ({mod.__file__}) lacks open()")
        return mod

    def describe(self) -> Dict[str, str]:
        info = super().describe()
        info["path"] = str(getattr(self.mod, "__file__", "?"))
        return info


class SqliteEngine(Engine):
    """``kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID``, WAL journal, synchronous=OFF."""

    name = "sqlite3"

    def __init__(self) -> None:
        import sqlite3

        self.sqlite3 = sqlite3
        self.conn: Any = None

    def describe(self) -> Dict[str, str]:
        return {"version": self.sqlite3.sqlite_version}

    def open(self, path: Path, map_size: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.conn = self.sqlite3.connect(str(path / "kv.sqlite"), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")

    def load(self, items: Items, append: bool) -> None:
        # SQLite has no append mode: the sorted workload inserts in key order.
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
    """dbm.gnu if this interpreter has it, else dbm.dumb. No transactions, no key order."""

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

    def open(self, path: Path, map_size: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.db = self.flavour.open(str(path / "kv"), self.flag)

    def load(self, items: Items, append: bool) -> None:
        # No order and no append mode: the sorted workload inserts in key order.
        db = self.db
        for k, v in items:
            db[k] = v
        db.sync()  # the closest thing to a commit

    def get_all(self, keys: Sequence[bytes]) -> int:
        get = self.db.get
        return sum(1 for k in keys if get(k) is not None)

    def scan(self) -> int:
        # No key order in dbm: a full, unordered iteration of keys and values.
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
