"""How many cores this process may use, and how many threads a stage may start in it.

Apart from `parallel.py` so a stage can ask without importing the pool (which imports the
stages): a `litelong run --jobs N` worker sets its share of the cores here, and a stage whose
engine would otherwise start a thread per core (tantivy's writer) starts that many instead.
"""

from __future__ import annotations

import os

_thread_share = 0


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def thread_share() -> int:
    """Threads a stage in this process may start for itself: a worker's share of the cores,
    0 (the engine's own default) outside a worker."""
    return _thread_share


def set_thread_share(threads: int) -> None:
    global _thread_share
    _thread_share = threads
