"""Turn worker results into tables (plain text and markdown), target verdicts and checks.

A result is the dict a worker returns (see bench_workloads.run_worker) plus "column", the
report column it belongs to: the engine name, or e.g. "purelmdb@pypy" for a worker that
ran under another interpreter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bench_engines import BASELINE
from bench_workloads import KEY_SIZE, WORKLOADS

Result = Dict[str, Any]

# The performance issue's targets: purelmdb (CPython) / C binding at 10^5 keys.
TARGET_N = 100_000
TARGET_COLUMN = "purelmdb"
RATIO_TARGETS: Tuple[Tuple[str, float], ...] = (
    ("get_random", 2.0),
    ("scan", 2.5),
    ("load_random", 4.0),
    ("load_sorted", 3.0),
    ("small_txns", 5.0),
)
FASTER_THAN = "sqlite3"  # every read workload must beat it
READS = ("get_random", "scan")
# Cost that grows gently: how much more per op at the largest size than at the smallest.
# The issue: get and scan cost per operation stays flat from 10^4 to 10^6 keys, within 2x.
# Memory: peak added memory per MiB of data may not grow by more than 25% from the
# smallest to the largest size.
GROWTH_LIMIT = 2.0
GROWTH_SLACK = 1.25


@dataclass
class Table:
    title: str
    header: List[str]
    rows: List[List[str]]
    notes: List[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [
            max(len(r[i]) for r in [self.header] + self.rows) for i in range(len(self.header))
        ]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        out = [self.title, line(self.header), "-" * len(line(self.header))]
        out += [line(r) for r in self.rows]
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"**{self.title}**", ""]
        out.append("| " + " | ".join(self.header) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(self.header) - 1)) + "|")
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


# --------------------------------------------------------------------------
# Lookups


def size_label(n: int) -> str:
    exp = round(math.log10(n)) if n > 0 else 0
    return f"10^{exp}" if 10**exp == n else f"{n:,}"


def value_label(v: int) -> str:
    return f"{v // 1024} KB" if v >= 1024 and v % 1024 == 0 else f"{v} B"


def find(results: List[Result], column: str, n: int, v: int) -> Optional[Result]:
    for r in results:
        if r["column"] == column and r["n"] == n and r["value_size"] == v:
            return r
    return None


def us(results: List[Result], column: str, n: int, v: int, workload: str) -> Optional[float]:
    r = find(results, column, n, v)
    return None if r is None else r.get("us_per_op", {}).get(workload)


def columns_of(results: List[Result]) -> List[str]:
    seen: Dict[str, None] = {}
    for r in results:
        seen.setdefault(r["column"], None)
    return list(seen)


def sets_of(results: List[Result]) -> List[Tuple[int, int]]:
    return sorted({(r["n"], r["value_size"]) for r in results})


def data_size_mib(n: int, v: int) -> float:
    return n * (KEY_SIZE + v) / (1 << 20)


def fmt(x: Optional[float], digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


# --------------------------------------------------------------------------
# Tables


def set_table(results: List[Result], n: int, v: int) -> Table:
    """One workload set: us/op and ratio to the C binding, then file size and memory."""
    cols = columns_of(results)
    data_mib = data_size_mib(n, v)
    title = f"{size_label(n)} keys x {value_label(v)} values (data {data_mib:.1f} MiB)"
    rows: List[List[str]] = []
    for w in WORKLOADS:
        base = us(results, BASELINE, n, v, w)
        row = [w]
        for c in cols:
            x = us(results, c, n, v, w)
            row.append(fmt(x) + (f" ({x / base:.1f}x)" if x is not None and base else ""))
        rows.append(row)
    for label, get in (
        ("file MiB", lambda r: r.get("file_mib")),
        ("peak +MiB", lambda r: r.get("memory", {}).get("peak_added_mib")),
        ("heap +MiB", lambda r: r.get("memory", {}).get("heap_added_mib")),
    ):
        row = [label]
        for c in cols:
            r = find(results, c, n, v)
            row.append(fmt(None if r is None else get(r), 1))
        rows.append(row)
    notes = []
    for c in cols:
        r = find(results, c, n, v)
        if r is None:
            continue
        if r["status"] != "ok":
            notes.append(f"{c}: {r['status']}")
        for problem in r.get("problems", []):
            notes.append(f"{c}: WRONG RESULT: {problem}")
    clock = next((r["clock"] for r in results if r.get("clock")), "")
    return Table(title, [f"{clock} us/op (x {BASELINE})".strip()] + cols, rows, notes)


def target_table(results: List[Result]) -> Table:
    """The issue's targets, each with its verdict per value size measured at 10^5 keys."""
    values = sorted({v for n, v in sets_of(results) if n == TARGET_N})
    header = ["target", "limit"] + [value_label(v) for v in values]
    rows: List[List[str]] = []
    for w, limit in RATIO_TARGETS:
        row = [f"{w} purelmdb/lmdb", f"<= {limit:g}x"]
        for v in values:
            x, base = (
                us(results, TARGET_COLUMN, TARGET_N, v, w),
                us(results, BASELINE, TARGET_N, v, w),
            )
            if x is None or not base:
                row.append("not measured")
            else:
                ratio = x / base
                row.append(f"{ratio:.2f}x " + ("met" if ratio <= limit else "NOT MET"))
        rows.append(row)
    for w in READS:
        row = [f"{w} purelmdb vs {FASTER_THAN}", "faster"]
        for v in values:
            x, other = (
                us(results, TARGET_COLUMN, TARGET_N, v, w),
                us(results, FASTER_THAN, TARGET_N, v, w),
            )
            if x is None or other is None:
                row.append("not measured")
            else:
                row.append(f"{x:.2f} vs {other:.2f} " + ("met" if x < other else "NOT MET"))
        rows.append(row)
    notes = [f"measured at {size_label(TARGET_N)} keys, purelmdb under the parent's interpreter"]
    if not values:
        notes.append(f"no workload set with {size_label(TARGET_N)} keys in this run (--sizes)")
    return Table(f"Targets ({size_label(TARGET_N)} keys)", header, rows, notes)


def growth_tables(results: List[Result]) -> List[Table]:
    """get and scan cost per op across sizes, per value size; verdict for purelmdb."""
    tables = []
    cols = columns_of(results)
    for v in sorted({v for _, v in sets_of(results)}):
        sizes = sorted({n for n, vv in sets_of(results) if vv == v})
        if len(sizes) < 2:
            continue
        lo, hi = sizes[0], sizes[-1]
        header = ["us/op"] + [size_label(n) for n in sizes] + ["growth", "gentle?"]
        rows = []
        allowed = GROWTH_LIMIT
        for w in READS:
            for c in cols:
                cells = [us(results, c, n, v, w) for n in sizes]
                growth = cells[-1] / cells[0] if cells[0] and cells[-1] else None
                verdict = ""
                if c.startswith("purelmdb") and growth is not None:
                    verdict = f"{'yes' if growth <= allowed else 'NO'} (<= {allowed:.2f}x)"
                rows.append(
                    [f"{w} {c}"]
                    + [fmt(x) for x in cells]
                    + [f"{growth:.2f}x" if growth else "-", verdict]
                )
        tables.append(
            Table(
                f"Cost per op vs size, {value_label(v)} values",
                header,
                rows,
                [
                    f"growth = us/op at {size_label(hi)} / us/op at {size_label(lo)}; gentle: "
                    f"<= {GROWTH_LIMIT:g}x (the issue's limit; the other engines' growth is "
                    f"shown for reference)"
                ],
            )
        )
    return tables


def memory_tables(results: List[Result]) -> List[Table]:
    """Peak memory the engine added vs the size of the data, per value size."""
    tables = []
    cols = columns_of(results)
    for v in sorted({v for _, v in sets_of(results)}):
        sizes = sorted({n for n, vv in sets_of(results) if vv == v})
        header = ["peak +MiB (/ data)"] + [size_label(n) for n in sizes] + ["gentle?"]
        data_row = ["data MiB"] + [fmt(data_size_mib(n, v), 1) for n in sizes]
        rows = [data_row + [""]]
        for c in cols:
            row = [c]
            ratios: List[Optional[float]] = []
            for n in sizes:
                r = find(results, c, n, v)
                peak = None if r is None else r.get("memory", {}).get("peak_added_mib")
                ratio = None if peak is None else peak / data_size_mib(n, v)
                ratios.append(ratio)
                row.append("-" if peak is None else f"{peak:.1f} ({ratio:.2f})")
            verdict = ""
            if c.startswith("purelmdb") and len(sizes) > 1 and ratios[0] and ratios[-1] is not None:
                verdict = "yes" if ratios[-1] <= GROWTH_SLACK * ratios[0] else "NO"
            rows.append(row + [verdict])
        tables.append(
            Table(
                f"Peak memory vs data size, {value_label(v)} values",
                header,
                rows,
                [
                    "peak +MiB: peak RSS during the workloads minus RSS once the data set was "
                    "built (includes touched pages of a memory-mapped store); in brackets, "
                    "per MiB of data",
                    f"gentle: the per-MiB figure at the largest size is <= {GROWTH_SLACK:g} x "
                    "the smallest size's",
                ],
            )
        )
    return tables


def all_tables(results: List[Result]) -> List[Table]:
    tables = [set_table(results, n, v) for n, v in sets_of(results)]
    tables.append(target_table(results))
    tables += growth_tables(results)
    tables += memory_tables(results)
    return tables


def worker_lines(results: List[Result]) -> List[str]:
    """One line per report column: what it ran (module versions, interpreter)."""
    lines = []
    for c in columns_of(results):
        r = next(r for r in results if r["column"] == c)
        info = ", ".join(f"{k}={v}" for k, v in r.get("info", {}).items())
        lines.append(f"{c}: {info or r['status']}; {r.get('python', '?')}")
    return lines
