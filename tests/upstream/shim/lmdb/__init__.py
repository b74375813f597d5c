"""Shim that makes ``import lmdb`` give purelmdb, so py-lmdb's own tests run against it.

Put the directory holding this package first on ``sys.path`` (``PYTHONPATH``). Importing it:

* replaces ``sys.modules['lmdb']`` by the ``purelmdb`` module itself, so ``lmdb.X is
  purelmdb.X`` for every name (``lmdb.__all__`` included) and monkeypatching ``lmdb.X``
  patches purelmdb;
* installs a meta-path finder that answers ``lmdb.<sub>`` with the already imported
  ``purelmdb.<sub>`` (``import lmdb.tool``, ``import lmdb.verify``, ``python -m lmdb``). A
  submodule purelmdb does not have yet raises ``ModuleNotFoundError`` only where it is
  imported, so it fails only the tests that need it.

Without the finder, ``import lmdb.verify`` would find ``verify.py`` through ``purelmdb.__path__``
and execute it a second time as a distinct module ``lmdb.verify``, with its own copies of
purelmdb's exception classes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import CodeType, ModuleType
from typing import Optional, Sequence

import purelmdb

ALIAS = "lmdb"
TARGET = "purelmdb"


class _AliasLoader(importlib.abc.Loader):
    """Loads ``lmdb.<sub>`` as the module object ``purelmdb.<sub>``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.target_spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.target_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just set ``module.__spec__`` to the alias spec; give the
        # module back its own (it was executed once already, as ``purelmdb.<sub>``).
        if self.target_spec is not None:
            module.__spec__ = self.target_spec

    def get_code(self, fullname: str) -> Optional[CodeType]:
        """For ``python -m lmdb``: runpy runs the target's code under the alias name."""
        spec = importlib.util.find_spec(self.target)
        loader = spec.loader if spec is not None else None
        get_code = getattr(loader, "get_code", None)
        return get_code(self.target) if get_code is not None else None

    def is_package(self, fullname: str) -> bool:
        spec = importlib.util.find_spec(self.target)
        return spec is not None and spec.submodule_search_locations is not None


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``lmdb.<sub>`` wherever ``purelmdb.<sub>`` exists."""

    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]] = None,
        target: Optional[ModuleType] = None,
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if not fullname.startswith(ALIAS + "."):
            return None
        real_name = TARGET + fullname[len(ALIAS):]
        real_spec = importlib.util.find_spec(real_name)
        if real_spec is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname,
            _AliasLoader(real_name),
            origin=real_spec.origin,
            is_package=real_spec.submodule_search_locations is not None,
        )


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())

# Submodules imported before the shim (rare) become reachable under the alias as well.
for _name, _module in list(sys.modules.items()):
    if _name.startswith(TARGET + ".") and _module is not None:
        sys.modules.setdefault(ALIAS + _name[len(TARGET):], _module)

sys.modules[ALIAS] = purelmdb
