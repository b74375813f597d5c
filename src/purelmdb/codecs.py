"""Codecs: how `purelmdb.mapping.PersistentDict` turns keys and values into bytes and back.

A `Codec` is a pair of functions, ``encode(obj) -> bytes`` and ``decode(bytes) -> obj``, with
a name and a flag saying whether it is *ordered*: whether ``a < b`` exactly when
``encode(a) < encode(b)``. LMDB sorts keys by their bytes, so only an ordered key codec makes
iteration follow the keys' natural order.

=========  ===================  =======  ==================================================
name       Python type          ordered  bytes
=========  ===================  =======  ==================================================
bytes      bytes (bytes-like)   yes      the bytes themselves
str        str                  yes      UTF-8 (its byte order is code-point order, which is
                                         how Python compares strings)
int        int                  yes      a length byte then the magnitude, see `encode_int`
json       JSON-able values     no       compact UTF-8 JSON (tuples come back as lists,
                                         dict keys as strings)
pickle     any picklable value  no       pickle, `pickle.DEFAULT_PROTOCOL`
=========  ===================  =======  ==================================================

LMDB keys are 1 to 511 bytes long, so the empty ``b""`` and ``""`` cannot be keys, nor can
anything whose encoding is longer than 511 bytes. Values have no such limit.

**pickle and json as key codecs.** Their bytes do not sort meaningfully (iteration order is
the order of the encoded bytes, not of the objects), and with pickle equal objects do not
always encode to equal bytes (``1``, ``1.0`` and ``True`` are equal but pickle differently; a
dict's or set's pickle depends on its insertion history), so a key can seem to be missing.
Use them for values; for keys use ``bytes``, ``str``, ``int`` or a codec of your own.
**Never unpickle data you do not trust**: loading a pickle can run arbitrary code.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Callable, Dict, Generic, TypeVar, Union

__all__ = [
    "Codec", "BYTES", "STR", "INT", "JSON", "PICKLE", "get_codec", "encode_int", "decode_int",
    "INT_MIN", "INT_MAX",
]

T = TypeVar("T")

# -- the ordered integer encoding ------------------------------------------------------------

_MAX_LEN = 127
#: the smallest integer the ``int`` codec encodes: ``-(256 ** 127)`` (about -1.4e305)
INT_MIN = -(256 ** _MAX_LEN)
#: the largest integer the ``int`` codec encodes: ``256 ** 127 - 1``
INT_MAX = 256 ** _MAX_LEN - 1


def encode_int(n: int) -> bytes:
    """Encode ``n`` so that byte order equals numeric order (1 to 128 bytes).

    A non-negative ``n`` of ``L`` significant bytes (``L`` = 0 for zero) is the byte
    ``0x80 + L`` followed by ``n`` in ``L`` big-endian bytes. A negative ``n`` needing ``L``
    bytes (``-256**L <= n``; ``L`` = 0 for -1) is the byte ``0x7f - L`` followed by
    ``n + 256**L`` in ``L`` big-endian bytes. The first byte orders by sign and magnitude;
    within one first byte every encoding has the same length and compares as a number.
    Range: `INT_MIN` to `INT_MAX` (``L <= 127``); beyond it `OverflowError`.
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("the int codec encodes int, not %s" % type(n).__name__)
    if n >= 0:
        size = (n.bit_length() + 7) >> 3
        if size > _MAX_LEN:
            raise OverflowError("int too large for the int codec (max 256**127 - 1)")
        return bytes((0x80 + size,)) + n.to_bytes(size, "big")
    size = ((~n).bit_length() + 7) >> 3
    if size > _MAX_LEN:
        raise OverflowError("int too small for the int codec (min -(256**127))")
    return bytes((0x7F - size,)) + (n + (1 << (8 * size))).to_bytes(size, "big")


def decode_int(data: bytes) -> int:
    """The integer `encode_int` encoded as ``data``; `ValueError` for anything else."""
    if not data:
        raise ValueError("int codec: empty input")
    head = data[0]
    if head >= 0x80:
        size = head - 0x80
        if len(data) != size + 1 or (size and data[1] == 0):
            raise ValueError("int codec: malformed encoding %r" % bytes(data[:16]))
        return int.from_bytes(data[1:], "big")
    size = 0x7F - head
    if len(data) != size + 1 or (size and data[1] == 0xFF):
        raise ValueError("int codec: malformed encoding %r" % bytes(data[:16]))
    return int.from_bytes(data[1:], "big") - (1 << (8 * size))


# -- codecs ------------------------------------------------------------------------------------


class Codec(Generic[T]):
    """``Codec(name, encode, decode, ordered=False)``: a named pair of conversion functions.

    ``ordered`` promises that ``encode`` preserves order (``a < b`` exactly when
    ``encode(a) < encode(b)``); it is documentation for users and tests, nothing relies on it.
    Make your own for other key types, e.g. ``Codec("uuid", lambda u: u.bytes,
    lambda b: uuid.UUID(bytes=b), ordered=True)``.
    """

    __slots__ = ("name", "encode", "decode", "ordered")

    def __init__(self, name: str, encode: Callable[[T], bytes], decode: Callable[[bytes], T],
                 ordered: bool = False) -> None:
        self.name = name
        self.encode = encode
        self.decode = decode
        self.ordered = ordered

    def __repr__(self) -> str:
        return "<Codec %s%s>" % (self.name, " (ordered)" if self.ordered else "")


def _encode_bytes(obj: Any) -> bytes:
    if obj.__class__ is bytes:
        return obj
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, bytes):            # a subclass: store plain bytes
        return bytes(obj)
    raise TypeError("the bytes codec encodes bytes-like objects, not %s"
                    % type(obj).__name__)


def _encode_str(obj: str) -> bytes:
    if not isinstance(obj, str):
        raise TypeError("the str codec encodes str, not %s" % type(obj).__name__)
    return obj.encode("utf-8")


def _decode_str(data: bytes) -> str:
    return data.decode("utf-8")


def _encode_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode_json(data: bytes) -> Any:
    return json.loads(data)


def _encode_pickle(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.DEFAULT_PROTOCOL)


def _decode_pickle(data: bytes) -> Any:
    return pickle.loads(data)


def _identity(data: bytes) -> bytes:
    return data


BYTES: Codec[bytes] = Codec("bytes", _encode_bytes, _identity, ordered=True)
STR: Codec[str] = Codec("str", _encode_str, _decode_str, ordered=True)
INT: Codec[int] = Codec("int", encode_int, decode_int, ordered=True)
JSON: Codec[Any] = Codec("json", _encode_json, _decode_json)
PICKLE: Codec[Any] = Codec("pickle", _encode_pickle, _decode_pickle)

_BY_NAME: Dict[str, Codec[Any]] = {c.name: c for c in (BYTES, STR, INT, JSON, PICKLE)}


def get_codec(codec: Union[str, Codec[Any]]) -> Codec[Any]:
    """The codec named ``codec`` (``"bytes"``, ``"str"``, ``"int"``, ``"json"``,
    ``"pickle"``), or ``codec`` itself when it is a `Codec`."""
    if isinstance(codec, Codec):
        return codec
    try:
        return _BY_NAME[codec]
    except (KeyError, TypeError):
        raise ValueError("unknown codec %r: use one of %s or a Codec"
                         % (codec, ", ".join(sorted(_BY_NAME)))) from None
