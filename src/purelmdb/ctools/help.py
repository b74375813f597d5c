"""``--help`` for the C-tool lookalikes. LMDB's tools have no ``--help`` (they print
"invalid option" and their usage line), so answering it changes nothing a script relies on;
the texts follow the tools' man pages."""

from __future__ import annotations

from typing import Dict

HELP: Dict[str, str] = {
    "mdb_stat": """\
usage: mdb_stat [-V] [-n] [-e] [-r[r]] [-f[f[f]]] [-a|-s subdb] dbpath

Print statistics of an LMDB environment (as LMDB's mdb_stat).

  -V        print the LMDB version and exit
  -n        dbpath is the data file itself, not a folder
  -e        also print the environment's information (map size, pages, readers)
  -f        also print the free list's totals; -ff each record; -fff each page
  -r        print the reader table; -rr first free the slots of dead processes
  -a        print every named database too
  -s subdb  print the named database subdb instead of the main one
""",
    "mdb_dump": """\
usage: mdb_dump [-V] [-f output] [-l] [-n] [-p] [-a|-s subdb] dbpath

Write a database in the portable text format that mdb_load reads (as LMDB's mdb_dump).

  -V         print the LMDB version and exit
  -f output  write to the file output instead of stdout
  -l         list the named databases and exit
  -n         dbpath is the data file itself, not a folder
  -p         print printable bytes as they are (default: hex)
  -a         dump every named database
  -s subdb   dump the named database subdb instead of the main one
""",
    "mdb_load": """\
usage: mdb_load [-V] [-f input] [-n] [-s name] [-N] [-T] dbpath

Load databases from mdb_dump's format (as LMDB's mdb_load).

  -V        print the LMDB version and exit
  -f input  read from the file input instead of stdin
  -n        dbpath is the data file itself, not a folder
  -s name   load into the named database name
  -N        do not overwrite existing keys (NOOVERWRITE / NODUPDATA)
  -T        the input is plain text: one key line and one value line per record
""",
    "mdb_copy": """\
usage: mdb_copy [-V] [-c] [-n] srcpath [dstpath]

Copy an environment consistently while it is in use (as LMDB's mdb_copy); without dstpath
the data file goes to stdout.

  -V   print the LMDB version and exit
  -c   compact: leave out free pages and renumber the rest, as LMDB does
  -n   srcpath and dstpath are data files, not folders
  -v   copy the snapshot before the latest commit (LMDB 1.0's option)
""",
    "mdb_drop": """\
usage: mdb_drop [-V] [-n] [-d] [-s subdb] dbpath

Empty a database, or delete a named one (as LMDB's mdb_drop).

  -V        print the LMDB version and exit
  -n        dbpath is the data file itself, not a folder
  -d        delete the named database instead of emptying it
  -s subdb  work on the named database subdb instead of the main one
""",
}
