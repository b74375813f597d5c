"""The C binding's two variants, and what the tests must allow for each.

The ``lmdb`` package builds its CPython extension on CPython and its CFFI variant on PyPy.
Both wrap the same LMDB, but they differ in py-lmdb's own layer, and purelmdb follows the
extension (the expectations of the differential tests were measured on it):

* a ``buffers=True`` read gives a ``memoryview`` (purelmdb, the extension) or a cffi
  ``buffer`` (CFFI). Both point into the map: turn them into bytes before their transaction
  ends (reading a cffi buffer later may crash the interpreter);
* error texts and ``what`` (``mdb_cursor_get`` where the extension says ``mdb_get``), ``str``
  and ``bytearray`` arguments, and where a cursor stands after deletes and writes through
  another cursor differ. Tests comparing those with the C binding need its extension: they
  carry the mark ``needs_c_extension``, which tests/conftest.py turns into a skip under the
  CFFI variant (of the ``lib="c"`` case only, when the test is parametrized by ``lib``).

Importable from every test folder: pytest puts ``tests/`` on ``sys.path`` with the root conftest.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Tuple

try:
    # PyPy, and CPython with cffi installed
    from _cffi_backend import buffer as _cffi_buffer  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - cffi is not installed
    BUFFER_TYPES: Tuple[type, ...] = (memoryview,)
else:
    BUFFER_TYPES = (memoryview, _cffi_buffer)

CFFI_REASON = (
    "the C binding runs its CFFI variant (always on PyPy), whose cursor positioning after "
    "writes and error details differ from its CPython extension, which purelmdb follows"
)


def is_buffer(x: Any) -> bool:
    """True for a buffers=True result of either variant (not for bytes)."""
    return isinstance(x, BUFFER_TYPES)


def plain(x: Any) -> Any:
    """``x`` with every buffer, also inside tuples and lists, turned into bytes."""
    if is_buffer(x):
        return bytes(x)
    if isinstance(x, (tuple, list)):
        return type(x)(plain(i) for i in x)
    return x


def is_cffi(module: ModuleType) -> bool:
    """True when ``module`` is the C binding running its CFFI variant."""
    return module.__name__ == "lmdb" and module.Environment.__module__ == "lmdb.cffi"


def c_binding_is_cffi() -> bool:
    """True when the installed C binding runs its CFFI variant (False when it is missing)."""
    try:
        import lmdb
    except ImportError:
        return False
    return is_cffi(lmdb)

