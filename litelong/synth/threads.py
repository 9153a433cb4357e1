"""Work issued from a few threads: tantivy's search and the tokenizer release the GIL (and
Manticore's search is a network call), so topics' retrievals, their assembly and the report's
coherence queries overlap on the cores the process may use, in the order asked and with a
bounded number in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..cores import thread_share, usable_cores

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_THREADS = 8


def search_threads() -> int:
    """The cores this process may use (its CPU affinity, or its share of them in a
    `litelong run --jobs` worker), at most MAX_THREADS."""
    return max(1, min(MAX_THREADS, thread_share() or usable_cores()))


def assembly_threads() -> int:
    """Topics assembled at once: one more than `search_threads`. Assembly's Python (reading
    texts, cutting, packing) holds the GIL while the tokenizer's own threads run natively, so
    with one topic a core a 100K litelong run kept 1.61-1.64 of 2 cores busy, with one more
    1.69-1.70, on the same files (bench/README.md, "Where the cores idle")."""
    return min(MAX_THREADS, search_threads() + 1)


def ordered_map(
    function: Callable[[Item], Result], items: Iterable[Item], threads: int | None = None
) -> Iterator[Result]:
    """`map(function, items)` on `threads` threads, results in the items' order, at most
    2 x threads items in flight (so results never pile up ahead of the caller)."""
    threads = search_threads() if threads is None else threads
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="search") as pool:
        pending: deque[Future[Result]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
