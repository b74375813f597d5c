"""Writer subprocess of the kill tests (run as a script; see crash_harness.py).

``python writer.py PATH [--sync 0|1] [--metasync 0|1] [--max-txns N]``

Opens the environment at PATH with purelmdb, reads its content, prints
``ready <txnid> <digest>``, then commits transaction after transaction, each one the
deterministic `crash_model.ops_for` of its id, and after each ``commit()`` returns prints
``<txnid> <digest of the expected content>`` and flushes stdout: a line on the pipe is an
acknowledged commit. It runs until killed (or ``--max-txns`` commits, then prints ``done``).
"""

from __future__ import annotations

import argparse
import sys

from crash_model import apply_to_dict, apply_to_txn, digest, ops_for, read_all

import purelmdb


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--sync", type=int, default=1)
    parser.add_argument("--metasync", type=int, default=1)
    parser.add_argument("--max-txns", type=int, default=0)
    args = parser.parse_args()
    env = purelmdb.Environment(args.path, sync=bool(args.sync), metasync=bool(args.metasync))
    with env.begin() as txn:
        content = read_all(txn)
        txnid = txn.id()
    out = sys.stdout
    out.write("ready %d %s\n" % (txnid, digest(content)))
    out.flush()
    done = 0
    while not args.max_txns or done < args.max_txns:
        txnid += 1
        ops = ops_for(txnid)
        with env.begin(write=True) as txn:
            if txn.id() != txnid:
                out.write("error: write transaction has id %d, expected %d\n" % (txn.id(), txnid))
                out.flush()
                return 3
            apply_to_txn(txn, ops)
        apply_to_dict(content, ops)
        out.write("%d %s\n" % (txnid, digest(content)))
        out.flush()
        done += 1
    env.close()
    out.write("done\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
