"""Reading a corpus on a thread of its own while the caller consumes what it has read.

The index stage's one Python thread used to decompress, parse, normalise, hash and dedup each
document and then hand it to tantivy; tantivy's indexing threads waited on it whenever it was
busy reading. `prefetched` runs the reading on a thread that fills a bounded queue, so zstd and
blake2b (which release the GIL) overlap with the caller's work, and memory holds at most
`depth` items beyond the one being consumed (bench/README.md, "keeping the cores busy").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

#: batches read ahead (each up to 1,024 documents: a few MB)
DEPTH = 4
_POLL_S = 0.1


class _End:
    """What the reading thread puts last: nothing (all items given) or the error it raised."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetched(items: Iterator[T], depth: int = DEPTH) -> Generator[T, None, None]:
    """`items`, in order, read on a thread up to `depth` ahead. An error the reading raises
    is raised here, where the item it stopped would have been; when the caller stops early
    (an error of its own, or `close`), the thread stops and `items` is closed, so its
    `finally` blocks (temporary files) run before this returns."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    channel: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                channel.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_End())
        except BaseException as error:  # given to the consumer, which raises it
            put(_End(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=read, name="litelong-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = channel.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
