"""Nested write transactions and named databases, in lockstep with the C binding: the same
random puts, deletes, child begins, commits and aborts give the same results and the same
views at every step; the files verify clean."""

from __future__ import annotations

import random
from typing import Any, List

import pytest

import purelmdb
from purelmdb.verify import verify

lmdb = pytest.importorskip("lmdb")


def _view(txn: Any, db: Any, skip: bytes = b"") -> List[Any]:
    # named-database records hold page numbers, which differ between the engines
    return [kv for kv in txn.cursor(db=db) if kv[0] != skip]


@pytest.mark.interop
@pytest.mark.parametrize("seed", range(8))
def test_nested_transactions_match_c(tmp_path, seed):
    envs = [lmdb.open(str(tmp_path / "c"), map_size=1 << 28, max_dbs=4),
            purelmdb.open(str(tmp_path / "py"), max_dbs=4)]
    dbs = [e.open_db(b"x") for e in envs]
    rnd = random.Random(seed)
    for t in range(12):
        stacks: List[List[Any]] = [[e.begin(write=True)] for e in envs]
        for step in range(rnd.randint(1, 150)):
            op = rnd.random()
            k = b"%04d" % rnd.randint(0, 500)
            use_x = rnd.random() < 0.3
            mult = rnd.choice([1, 30, 600])
            commit_child = rnd.random() < 0.5
            results = []
            for side in (0, 1):
                stack = stacks[side]
                txn = stack[-1]
                db = dbs[side] if use_x else None
                if op < 0.5:
                    r: Any = txn.put(k, k * mult, db=db)
                elif op < 0.75:
                    r = txn.delete(k, db=db)
                elif op < 0.82 and len(stack) < 4:
                    stack.append(envs[side].begin(write=True, parent=txn))
                    r = "begin"
                elif op < 0.9 and len(stack) > 1:
                    child = stack.pop()
                    child.commit() if commit_child else child.abort()
                    r = "end"
                else:
                    r = txn.get(k, db=db)
                results.append(r)
            assert results[0] == results[1], (seed, t, step)
            views = [(_view(stacks[s][-1], dbs[s]), _view(stacks[s][-1], None, b"x"))
                     for s in (0, 1)]
            assert views[0] == views[1], (seed, t, step)
        top_commit = rnd.random() < 0.8
        for s in (0, 1):
            stacks[s][0].commit() if top_commit else stacks[s][0].abort()
    for e in envs:
        e.close()
    assert verify(str(tmp_path / "py")) == []


def test_parent_is_blocked_while_child_lives(tmp_path):
    env = purelmdb.open(str(tmp_path))
    parent = env.begin(write=True)
    parent.put(b"a", b"1")
    child = env.begin(write=True, parent=parent)
    with pytest.raises(purelmdb.BadTxnError):
        parent.put(b"b", b"2")
    with pytest.raises(purelmdb.BadTxnError):
        parent.get(b"a")
    child.put(b"c", b"3")
    parent.commit()                  # an open child is discarded, as in the lmdb package
    with pytest.raises(purelmdb.Error):
        child.put(b"d", b"4")
    with env.begin() as txn:
        assert list(txn.cursor()) == [(b"a", b"1")]
    with pytest.raises(purelmdb.InvalidParameterError):
        env.begin(write=True, parent=env.begin())
    env.close()


def test_db_created_in_aborted_child_is_forgotten(tmp_path):
    env = purelmdb.open(str(tmp_path), max_dbs=3)
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    env.open_db(b"temp", txn=child)
    child.abort()
    parent.commit()
    with pytest.raises(purelmdb.NotFoundError):
        env.open_db(b"temp", create=False)
    assert env.dbs() == []
    env.close()


def test_parent_is_usable_again_once_its_child_ends(tmp_path):
    """put() and get() check one flag for "ended, spoiled, has a child, other thread"
    (txn._putter, txn._unusable) and take the full check when it is off: the parent works
    again once its child ends, whichever way, and every other case is still refused."""
    import threading

    env = purelmdb.open(str(tmp_path))
    parent = env.begin(write=True)
    for end in ("abort", "commit"):
        child = env.begin(write=True, parent=parent)
        child.put(b"c-" + end.encode(), b"x")
        with pytest.raises(purelmdb.BadTxnError):
            parent.get(b"a")
        getattr(child, end)()
        assert parent.put(b"p-" + end.encode(), b"y")
        assert parent.get(b"p-" + end.encode()) == b"y"
    assert parent.get(b"c-abort") is None and parent.get(b"c-commit") == b"x"
    errors = []
    worker = threading.Thread(target=lambda: errors.append(
        pytest.raises(purelmdb.Error, parent.put, b"t", b"z").value))
    worker.start()
    worker.join()
    assert errors and "thread" in str(errors[0])
    parent.commit()
    with pytest.raises(purelmdb.Error):
        parent.put(b"late", b"v")
    with pytest.raises(purelmdb.Error):
        parent.get(b"p-abort")
    with env.begin() as txn:
        with pytest.raises(purelmdb.ReadonlyError):
            txn.put(b"k", b"v")
    env.close()
