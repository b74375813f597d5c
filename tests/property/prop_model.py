"""Models and strategies shared by the stateful property tests.

``Model`` is the reference: a dict plus its sorted key list. A cursor state (one per cursor in
test_prop_env.py) records where an lmdb cursor stands; ``expect_move`` says what a
positioning call must return and where it leaves the cursor. The states only cover behaviour
that LMDB defines cleanly; sequences whose outcome depends on LMDB's internal cursor state
(for example ``next()`` after a failed ``set_key``) put the cursor in ``UNKNOWN``, from which the
machine only uses absolute positioning. Those quirks have their own explicit tests in
``tests/interop/test_interop_cursor_semantics.py``.

Cursor states:
  ('fresh',)          never positioned: next() is first(), prev() is last()
  ('pos', k)          on key k
  ('eof',)            past the end, e.g. after set_range() beyond the last key or deleting the
                      last record through this cursor: next() is False, prev() is last()
  ('del', s, k)       its record k was deleted by another cursor or by the transaction (and
                      nothing else changed since): key()/item() show the following record s
                      (or b'' when none), next() lands on s, prev() on the record before k
  ('unknown',)        unpositioned (key()/item() show b''), but LMDB keeps an internal
                      position that next()/prev() would move from: only absolute moves
  ('lost',)           'unknown', 'eof' or 'del' and then the transaction was written: key() and
                      item() re-read LMDB's internal position and may show a record again, and
                      delete() may delete it: only absolute and keyed moves
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from typing import Dict, List, Optional, Tuple

from hypothesis import strategies as st

from c_variant import plain

GiB = 1 << 30
CLOSED_MESSAGE = "Attempt to operate on closed/deleted/dropped object."
MAX_KEY = 511

FRESH = ("fresh",)
EOF = ("eof",)
UNKNOWN = ("unknown",)
LOST = ("lost",)

# Long shared prefixes make branch pages carry long keys and force splits near the root;
# short alphabets make collisions (overwrites, deletes of existing keys) common.
PREFIXES = (
    b"", b"k", b"key/", b"user:000", b"\x00\x00", b"\xff" * 8,
    b"p" * 120, b"q" * 300, b"r" * 480,
)


def b(x):
    """Normalise a result (a buffer with buffers=True) to bytes."""
    return plain(x)


def make_value(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@st.composite
def keys(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 3:
        return draw(st.binary(min_size=1, max_size=3))
    if kind <= 7:
        prefix = draw(st.sampled_from(PREFIXES))
        suffix = draw(st.binary(min_size=0 if prefix else 1, max_size=16))
        return (prefix + suffix)[:MAX_KEY]
    return draw(st.binary(min_size=1, max_size=MAX_KEY))


@st.composite
def value_specs(draw) -> Tuple[int, int]:
    """(length, seed) of a value; ``make_value(*spec)`` builds it (keeps reports short)."""
    kind = draw(st.integers(0, 39))
    if kind < 22:
        n = draw(st.integers(0, 64))
    elif kind < 30:
        n = draw(st.integers(65, 2000))
    elif kind < 38:
        n = draw(st.integers(2001, 5000))  # many of these need overflow pages
    else:
        n = draw(st.integers(5001, 100_000))
    return (n, draw(st.integers(0, 1 << 16)))


def key_from(model: "Model"):
    """A key that exists in the model half of the time."""
    if not model.ks:
        return keys()
    return st.one_of(st.sampled_from(model.ks), keys())


def bulk_keys(rng: random.Random, n: int) -> List[bytes]:
    """n keys sharing a prefix (drawn from PREFIXES or random), of mixed lengths."""
    if rng.random() < 0.7:
        prefix = rng.choice(PREFIXES)
    else:
        prefix = rng.randbytes(rng.randint(1, 60))
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            suffix = rng.randbytes(rng.randint(1, 6))
        elif r < 0.9:
            suffix = rng.randbytes(rng.randint(7, 40))
        else:
            suffix = rng.randbytes(rng.randint(41, 300))
        out.append((prefix + suffix)[:MAX_KEY])
    return out


def bulk_value(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.75:
        n = rng.randint(0, 100)
    elif r < 0.93:
        n = rng.randint(101, 2000)
    elif r < 0.995:
        n = rng.randint(2001, 6000)
    else:
        n = rng.randint(6001, 60_000)
    return rng.randbytes(n)


class Model:
    """A dict with its keys kept sorted (bytes order is lmdb's default order)."""

    __slots__ = ("d", "ks")

    def __init__(self, d: Optional[Dict[bytes, bytes]] = None) -> None:
        self.d: Dict[bytes, bytes] = dict(d or {})
        self.ks: List[bytes] = sorted(self.d)

    def copy(self) -> "Model":
        m = Model.__new__(Model)
        m.d = dict(self.d)
        m.ks = list(self.ks)
        return m

    def __len__(self) -> int:
        return len(self.ks)

    def __contains__(self, k: bytes) -> bool:
        return k in self.d

    def put(self, k: bytes, v: bytes) -> None:
        if k not in self.d:
            insort(self.ks, k)
        self.d[k] = v

    def delete(self, k: bytes) -> None:
        del self.d[k]
        del self.ks[bisect_left(self.ks, k)]

    def first(self) -> Optional[bytes]:
        return self.ks[0] if self.ks else None

    def last(self) -> Optional[bytes]:
        return self.ks[-1] if self.ks else None

    def ceil(self, k: bytes) -> Optional[bytes]:
        i = bisect_left(self.ks, k)
        return self.ks[i] if i < len(self.ks) else None

    def succ(self, k: bytes) -> Optional[bytes]:
        i = bisect_right(self.ks, k)
        return self.ks[i] if i < len(self.ks) else None

    def pred(self, k: bytes) -> Optional[bytes]:
        i = bisect_left(self.ks, k)
        return self.ks[i - 1] if i else None

    def items(self, start: Optional[bytes] = None, reverse: bool = False) -> List[Tuple[bytes, bytes]]:
        if start is None:
            ks = self.ks[::-1] if reverse else self.ks
        elif reverse:
            ks = self.ks[: bisect_right(self.ks, start)][::-1]
        else:
            ks = self.ks[bisect_left(self.ks, start):]
        d = self.d
        return [(k, d[k]) for k in ks]

    def item(self, state) -> Optional[Tuple[bytes, bytes]]:
        """What key()/value() of a cursor in ``state`` show (None: not defined)."""
        if state[0] == "lost":
            return None
        if state[0] == "pos":
            return (state[1], self.d[state[1]])
        if state[0] == "del" and state[1] is not None:
            return (state[1], self.d[state[1]])
        return (b"", b"")


def pos(k: Optional[bytes]):
    return ("pos", k)


def expect_move(model: Model, state, op: str, arg: Optional[bytes] = None):
    """(expected return value, new state) of a positioning call, or None if undefined."""
    kind = state[0]

    def land(k, fail_state=UNKNOWN):
        return (True, pos(k)) if k is not None else (False, fail_state)

    if op == "first":
        return land(model.first())
    if op == "last":
        return land(model.last())
    if op == "set_key":
        return (True, pos(arg)) if arg in model else (False, UNKNOWN)
    if op == "set_range":
        return land(model.ceil(arg), EOF)
    if op == "next":
        if kind == "fresh":
            return land(model.first())
        if kind == "pos":
            return land(model.succ(state[1]))
        if kind == "eof":
            return (False, EOF)
        if kind == "del":
            return land(state[1])
        return None
    if op == "prev":
        if kind == "fresh" or kind == "eof":
            return land(model.last())
        if kind == "pos":
            return land(model.pred(state[1]))
        if kind == "del":
            return land(model.pred(state[2]))
        return None
    raise ValueError(op)


def state_after_read(model: Model, state):
    """Reading key()/item() of a 'del' cursor makes LMDB re-read its position."""
    if state[0] == "del":
        return pos(state[1]) if state[1] is not None else EOF
    return state


def state_after_foreign_insert(state):
    """Another cursor or the transaction wrote a record (new or overwritten)."""
    if state[0] in ("del", "eof", "unknown"):
        return LOST
    return state


def state_after_foreign_delete(model_after: Model, state, k: bytes):
    """Another cursor or the transaction deleted k (model_after no longer holds it)."""
    if state[0] == "pos" and state[1] == k:
        return ("del", model_after.succ(k), k)
    if state[0] in ("del", "eof", "unknown"):
        return LOST
    return state
