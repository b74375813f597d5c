"""``python -m purelmdb.ctools mdb_stat ARGS...``: run one of LMDB's tool lookalikes."""

from __future__ import annotations

import sys

from . import COMMANDS, run


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write("usage: python -m purelmdb.ctools {%s} [ARGS...]\n"
                         % ",".join(COMMANDS))
        return 1
    return run(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
