"""Write docs/api.md, the API reference, from purelmdb's docstrings (standard library only).

    python docs/gen_api.py            # rewrite docs/api.md from the source in src/
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

Optional modules (``purelmdb.aio``, ``purelmdb.tool``, ``purelmdb.ctools``, ...) are included
only when they import, so re-running after they land adds them. The output must not depend on
the machine: parameters whose names start with ``_`` are left out of signatures, object
addresses are stripped from default values, and errno-based exceptions show their symbolic
code (``EAGAIN``), not its number.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from types import ModuleType
from typing import Any, Callable, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
OUTPUT = os.path.join(HERE, "api.md")

# (module, names to document or None for its __all__ / public definitions, required)
SECTIONS: Sequence[Tuple[str, Optional[Sequence[str]], bool]] = (
    ("purelmdb", ("open", "Environment", "Transaction", "Cursor", "version",
                  "enable_drop_gil"), True),
    ("purelmdb.errors", None, True),
    ("purelmdb.verify", None, True),
    ("purelmdb.mapping", ("PersistentDict",), True),
    ("purelmdb.codecs", None, True),
    ("purelmdb.aio", None, False),
    ("purelmdb.tool", ("main",), False),      # the command line; its helpers are internal
    ("purelmdb.ctools", None, False),
)

# special methods worth listing when a class defines them
SPECIAL = ("__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__", "__iter__",
           "__reversed__", "__enter__", "__exit__", "__aenter__", "__aexit__")

# public names of the engine's internal interface (used by tree.py and freelist.py), not API
_ENGINE_HOOKS = {"psize"}
INTERNAL = {"Transaction": _ENGINE_HOOKS, "AsyncTransaction": _ENGINE_HOOKS}

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class _Source:
    """An annotation kept as source text (``from __future__ import annotations``), shown
    without the quotes `inspect` would put around a string."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _signature(obj: Any) -> str:
    """The call signature, without ``self``, private parameters and the return type."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = []
    for i, p in enumerate(sig.parameters.values()):
        if p.name.startswith("_") or (i == 0 and p.name in ("self", "cls")):
            continue
        if isinstance(p.annotation, str):
            p = p.replace(annotation=_Source(p.annotation))
        if p.name == "mode" and type(p.default) is int:
            p = p.replace(default=_Source(oct(p.default)))     # file modes read as octal
        params.append(p)
    text = str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))
    return _ADDRESS.sub("", text)


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return _ADDRESS.sub("", doc)


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _public_names(module: ModuleType) -> List[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module.__name__]


def _own_members(cls: type) -> List[Tuple[str, Any]]:
    """Public methods and properties the class itself defines, in definition order."""
    out = []
    hidden = INTERNAL.get(cls.__name__, set())
    for name, member in vars(cls).items():
        if name.startswith("_") or name in hidden:
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if inspect.isfunction(member) or isinstance(member, property):
            out.append((name, member))
    return out


def _exception_table(module: ModuleType, names: Sequence[str]) -> List[str]:
    lines = ["| exception | LMDB name | code | meaning |", "|---|---|---|---|"]
    for name in names:
        cls = getattr(module, name)
        code = getattr(cls, "MDB_CODE", 0)
        mdb_name = getattr(cls, "MDB_NAME", "")
        shown = str(code) if code < 0 else ("errno" if code else "")
        reason = getattr(cls, "MDB_REASON", "")
        reason = reason.split(": ", 1)[1] if reason.startswith(mdb_name + ":") else reason
        if not reason:
            reason = _doc(cls).splitlines()[0] if _doc(cls) else ""
        hint = getattr(cls, "HINT", "")
        if hint:
            reason += " (%s)" % hint
        lines.append("| `%s` | %s | %s | %s |" % (name, mdb_name, shown, reason))
    return lines


def _function(lines: List[str], qualname: str, obj: Any, level: str) -> None:
    lines.append("%s `%s%s`" % (level, qualname, _signature(obj)))
    lines.append("")
    doc = _doc(obj)
    if doc:
        lines.extend([doc, ""])


def _class(lines: List[str], modname: str, name: str, cls: type) -> None:
    lines.append("### class `%s.%s%s`" % (modname, name, _signature(cls)))
    lines.append("")
    bases = [b for b in cls.__bases__ if b is not object]
    if bases:
        lines.append("Bases: %s" % ", ".join("`%s`" % b.__name__ for b in bases))
        lines.append("")
    doc = _doc(cls)
    if doc:
        lines.extend([doc, ""])
    special = [s for s in SPECIAL if s in vars(cls)]
    if special:
        lines.append("Special methods: %s" % ", ".join("`%s`" % s for s in special))
        lines.append("")
    for mname, member in _own_members(cls):
        if isinstance(member, property):
            lines.append("#### property `%s.%s`" % (name, mname))
            lines.append("")
            doc = _doc(member)
            if doc:
                lines.extend([doc, ""])
        else:
            _function(lines, "%s.%s" % (name, mname), member, "####")


def _section(modname: str, module: ModuleType, names: Optional[Sequence[str]]) -> List[str]:
    lines = ["## %s" % modname, ""]
    doc = inspect.getdoc(module)
    if doc:
        lines.extend([doc, ""])
    names = list(names) if names is not None else _public_names(module)
    if modname == "purelmdb.errors":
        lines.extend(_exception_table(module, names))
        lines.append("")
        return lines
    for name in names:
        obj = getattr(module, name, None)
        if obj is None:
            continue
        if name == "open" and obj is getattr(module, "Environment", None):
            lines.extend(["### `purelmdb.open`", "", "An alias of `Environment`.", ""])
        elif inspect.isclass(obj):
            if issubclass(obj, BaseException):
                lines.append("### exception `%s.%s`" % (modname, name))
                lines.append("")
                if _doc(obj):
                    lines.extend([_doc(obj), ""])
            else:
                _class(lines, modname, name, obj)
        elif callable(obj):
            _function(lines, "%s.%s" % (modname, name), obj, "###")
        else:
            lines.extend(["### `%s.%s`" % (modname, name), "",
                          "`%s`" % _ADDRESS.sub("", repr(obj)), ""])
    return lines


def generate(import_module: Callable[[str], ModuleType] = importlib.import_module) -> str:
    """The text of docs/api.md for the modules that import."""
    body: List[str] = []
    toc: List[str] = []
    for modname, names, required in SECTIONS:
        try:
            module = import_module(modname)
        except ImportError:
            if required:
                raise
            continue
        toc.append("- [%s](#%s)" % (modname, _anchor(modname)))
        body.extend(_section(modname, module, names))
    head = [
        "# purelmdb API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py`; do not edit by hand "
        "(`tests/unit/test_docs.py` fails when this file is out of date). The user guide is "
        "[guide.md](guide.md).",
        "",
    ]
    text = "\n".join(head + toc + [""] + body)
    return text.rstrip("\n") + "\n"


def main(argv: Sequence[str]) -> int:
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    text = generate()
    if "--check" in argv:
        try:
            with open(OUTPUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print("docs/api.md is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
