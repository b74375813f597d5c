"""This process's id, kept current across fork() without a system call per check.

Every transaction begin checks that its environment is used in the process that opened it
(an environment inherited through fork() must not be used). ``os.getpid()`` is a system
call on current glibc, and a small write transaction made four of them; ``pid`` is read
from memory and `os.register_at_fork` renews it in a child.
"""

from __future__ import annotations

import os

pid = os.getpid()


def _after_fork_in_child() -> None:
    global pid
    pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
