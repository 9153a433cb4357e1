"""Bulk loading: documents → NDJSON `replace` batches, several in flight, retried when transient.

`replace` (not `insert`) makes loading idempotent by id: a loader killed half-way and run again
rewrites the documents it had sent instead of failing on them or doubling them. The id goes at
the top level of each operation; inside `doc` Manticore would store it as a field.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ...corpus import Document
from .backend import LENGTH_COLUMN
from .client import ManticoreConnection, RetryPolicy
from .shards import Shard, numeric_id, shard_of
from .text import sanitize


def replace_line(table: str, document: Document, lengths: bool = True) -> str:
    """One NDJSON `replace` operation for `document` (text sanitised, id hashed), with the
    text's length unless the table was created before its attribute (`lengths` False)."""
    content = sanitize(document.text)
    doc: dict[str, object] = {"content": content, "doc_id": document.id}
    if lengths:
        doc[LENGTH_COLUMN] = len(content)
    operation = {"replace": {"table": table, "id": numeric_id(document.id), "doc": doc}}
    return json.dumps(operation, ensure_ascii=False, separators=(",", ":"))


def ndjson(table: str, documents: Iterable[Document], lengths: bool = True) -> str:
    """A bulk body: one operation a line, newline-terminated (Manticore requires the last)."""
    return "".join(replace_line(table, document, lengths) + "\n" for document in documents)


class BulkLoader:
    """Routes documents to their shard and sends full batches, at most `in_flight` at a time.

    `flush` returns once every document added so far is acknowledged by its server: the point
    where a caller may record progress. A batch that fails after its retries raises from
    `add` or `flush`.
    """

    def __init__(
        self,
        shards: list[Shard],
        connections: dict[str, ManticoreConnection],
        batch_size: int = 1000,
        in_flight: int = 4,
        retry: RetryPolicy | None = None,
        send: Callable[[ManticoreConnection, str], object] | None = None,
        lengths: Sequence[bool] | None = None,
    ) -> None:
        if batch_size < 1 or in_flight < 1:
            raise ValueError("batch_size and in_flight must be at least 1")
        self._shards = shards
        self._connections = connections
        self._batch_size = batch_size
        self._in_flight = in_flight
        self._retry = retry or RetryPolicy()
        self._send = send or (lambda connection, body: connection.bulk(body))
        # which tables take the length attribute (`prepare_tables`); all, unless told
        self._lengths = list(lengths) if lengths is not None else [True] * len(shards)
        self._pending: list[list[Document]] = [[] for _ in shards]
        self._futures: deque[Future[object]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="bulk")
        self.per_shard = [0] * len(shards)

    def add(self, document: Document) -> None:
        shard = shard_of(document.id, len(self._shards))
        batch = self._pending[shard]
        batch.append(document)
        self.per_shard[shard] += 1
        if len(batch) >= self._batch_size:
            self._submit(shard)

    def _submit(self, shard: int) -> None:
        documents, self._pending[shard] = self._pending[shard], []
        if not documents:
            return
        while len(self._futures) >= self._in_flight:
            self._futures.popleft().result()
        target = self._shards[shard]
        body = ndjson(target.table, documents, self._lengths[shard])
        connection = self._connections[target.url]
        self._futures.append(
            self._pool.submit(self._retry.run, lambda: self._send(connection, body))
        )

    def flush(self) -> None:
        for shard in range(len(self._shards)):
            self._submit(shard)
        while self._futures:
            self._futures.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
