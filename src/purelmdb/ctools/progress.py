"""A progress bar for long work (load, copy, dump), on stderr, only when stderr is a terminal
and tqdm is installed (``pip install purelmdb[cli]``). In a pipe, a log or without tqdm it
does nothing, so the tools' output stays exactly the C tools'.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any, Callable, Optional


def _wanted() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """``with Progress(total=n, unit="B") as bar: bar.update_to(done)``. A no-op unless
    shown (see the module docstring); ``total`` may be None when unknown."""

    def __init__(self, total: Optional[int], unit: str = "it", desc: str = "",
                 scale: bool = False) -> None:
        self._bar: Any = None
        self._done = 0
        if not _wanted():
            return
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, unit=unit, desc=desc, unit_scale=scale,
                         unit_divisor=1024 if scale else 1000, leave=False,
                         file=sys.stderr, dynamic_ncols=True)

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def update_to(self, done: int) -> None:
        if self._bar is not None and done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Watch:
    """Poll ``position()`` in a background thread and move a bar to it, for work that runs
    in one call we cannot hook into (``Environment.copyfd`` writing a file)."""

    def __init__(self, bar: Progress, position: Callable[[], int],
                 interval: float = 0.2) -> None:
        self._bar = bar
        self._position = position
        self._interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._bar.update_to(self._position())
            except (OSError, ValueError):
                return

    def __enter__(self) -> Watch:
        if self._bar.shown:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def file_offset(fd: int) -> Callable[[], int]:
    """How far a file descriptor has been written (its offset)."""
    return lambda: os.lseek(fd, 0, os.SEEK_CUR)
