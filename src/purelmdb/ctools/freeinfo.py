"""The free list as ``mdb_stat -f`` reads it: records of the free-list database (FREE_DBI),
read-only, through the engine's tree walk (the public API has no handle for that database).

Each record is keyed by the id of the transaction that freed the pages; its value is a count
followed by that many page numbers, in descending order in a sound file.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

from ..freelist import records as free_records
from ..layout import FREE_DBI

__all__ = ["free_db_stat", "free_records", "max_span", "runs"]


def free_db_stat(txn: Any) -> Dict[str, int]:
    """The free-list database's record, as ``mdb_stat(txn, FREE_DBI)`` reports it."""
    d = txn._dbs[FREE_DBI]
    return {"psize": txn._psize, "depth": d.depth, "branch_pages": d.branch_pages,
            "leaf_pages": d.leaf_pages, "overflow_pages": d.overflow_pages,
            "entries": d.entries}


def max_span(pages: List[int]) -> Tuple[int, bool]:
    """(longest run of consecutive page numbers, whether the order is wrong) of a record,
    found as mdb_stat does: from the smallest page up, the run length only ever grows, so a
    misordered record reports what LMDB's tool reports."""
    span = 0
    bad = False
    prev = 1
    i = len(pages)
    while i > 0:
        i -= 1
        pg = pages[i]
        if pg <= prev:
            bad = True
        prev = pg
        pg += span
        while i >= span and pages[i - span] == pg:
            span += 1
            pg += 1
    return span, bad


def runs(pages: List[int]) -> Iterator[Tuple[int, int]]:
    """(first page, length) of each run of consecutive pages, smallest first (``-fff``)."""
    j = len(pages) - 1
    while j >= 0:
        pg = pages[j]
        span = 1
        j -= 1
        while j >= 0 and pages[j] == pg + span:
            span += 1
            j -= 1
        yield pg, span
