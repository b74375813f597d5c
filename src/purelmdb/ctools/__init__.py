"""Lookalikes of LMDB's command-line tools: ``mdb_stat``, ``mdb_dump``, ``mdb_load``,
``mdb_copy`` and ``mdb_drop``, with the C tools' options, output and errors byte for byte
(LMDB 0.9), built on purelmdb's public API.

``run(name, argv)`` runs one tool with its arguments (without the program name) and returns
its exit status; ``python -m purelmdb.ctools mdb_stat ARGS...`` does the same from a shell.
"""

from __future__ import annotations

import importlib
import sys
from typing import List

from .common import EXIT_FAILURE, ToolExit, err

COMMANDS = ("mdb_stat", "mdb_dump", "mdb_load", "mdb_copy", "mdb_drop")

_MODULES = {"mdb_stat": "stat", "mdb_dump": "dump", "mdb_load": "load", "mdb_copy": "copy",
            "mdb_drop": "drop"}

__all__ = ["COMMANDS", "run"]


def run(name: str, argv: List[str]) -> int:
    """Run tool ``name`` (one of `COMMANDS`) with ``argv``; print to stdout/stderr and
    return the exit status. Never raises for bad input or a bad file: every failure is
    reported as the C tool reports it (or, for what it has no words for, ``NAME: text``)."""
    if name not in _MODULES:
        err("%s: unknown command; one of %s\n" % (name, ", ".join(COMMANDS)))
        return EXIT_FAILURE
    if "--help" in argv:
        from .help import HELP
        sys.stdout.write(HELP[name])
        return 0
    module = importlib.import_module("." + _MODULES[name], __name__)
    try:
        return int(module.main(name, list(argv)))
    except ToolExit as exc:
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except Exception as exc:     # never a traceback: say what failed, as the tools do
        err("%s: %s\n" % (name, exc))
        return EXIT_FAILURE
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError, OSError):
            _silence_stdout()


def _silence_stdout() -> None:
    """After the reader of our stdout went away, keep Python from complaining at exit."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
