"""The cluster BM25 backend: Manticore Search real-time tables, one per shard.

Scores are true BM25 (k1=1.2, b=0.75): the `expr` ranker with `bm25a`, which needs
`index_field_lengths` (the plain `bm25` ranker ignores document length), and plain,
unnormalised IDF so a term's weight does not depend on how many words the query has. Manticore
ranks with integer weights, so the expression is scaled by SCORE_SCALE and divided back here.

Each shard computes IDF from its own documents. Shards are uniform hashes of the ids, so their
statistics agree with the whole corpus' up to sampling noise, which matters only for terms in a
handful of documents (docs/manticore.md, "Global IDF").
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...api.v1alpha1.bm25index import Analysis
from ..retriever import UnknownDocument
from .client import READY_SECONDS, ManticoreConnection, RetryPolicy
from .shards import Shard, merge_hits, numeric_id, shard_of
from .text import match_expression, sql_string

K1 = 1.2
B = 0.75
SCORE_SCALE = 10_000
LOCATION_FILE = "manticore.json"
_TIE_MARGIN = 32
_GET_BATCH = 512
_IDS_PAGE = 10_000


def create_table_sql(table: str, analysis: Analysis) -> str:
    """DDL of one shard's table: English stemming and stop words as the spec asks, and field
    lengths, without which `bm25a` cannot normalise by document length."""
    options = [f"morphology={sql_string('stem_en' if analysis.stem else 'none')}"]
    if analysis.stopwords:
        options.append("stopwords='en'")
    options.append("index_field_lengths='1'")
    return f"CREATE TABLE IF NOT EXISTS {table} (content text, doc_id string) " + " ".join(options)


def search_sql(table: str, expression: str, limit: int) -> str:
    """The BM25 query of one shard: `limit` best by score, max_matches raised to match."""
    ranker = f"expr('{SCORE_SCALE}*bm25a({K1},{B})')"
    return (
        f"SELECT id, doc_id, WEIGHT() AS w FROM {table} WHERE MATCH({sql_string(expression)}) "
        f"LIMIT {limit} OPTION ranker={ranker}, idf='plain,tfidf_unnormalized', "
        f"max_matches={limit}"
    )


def write_location(folder: Path, shards: Sequence[Shard]) -> None:
    """Record in an index part where its tables live: what `open_index` opens later."""
    record = {"shards": [{"url": shard.url, "table": shard.table} for shard in shards]}
    (folder / LOCATION_FILE).write_text(json.dumps(record, indent=2) + "\n")


def read_location(folder: Path) -> list[Shard]:
    record = json.loads((folder / LOCATION_FILE).read_text())
    return [Shard(entry["url"], entry["table"]) for entry in record["shards"]]


def connect(shards: Sequence[Shard], timeout: float = 120.0) -> dict[str, ManticoreConnection]:
    """One connection per distinct server, pooled for the fan-out."""
    return {url: ManticoreConnection(url, timeout) for url in dict.fromkeys(s.url for s in shards)}


def prepare_tables(
    shards: Sequence[Shard],
    connections: dict[str, ManticoreConnection],
    analysis: Analysis,
    ready_timeout: float = READY_SECONDS,
) -> None:
    """Wait until every server answers (a wrong URL fails within `ready_timeout`), then
    create the shard tables that are missing."""
    for connection in connections.values():
        connection.wait_ready(ready_timeout)
    retry = RetryPolicy()
    for shard in shards:
        statement = create_table_sql(shard.table, analysis)
        retry.run(lambda: connections[shard.url].sql(statement))  # noqa: B023


class ManticoreRetriever:
    """Fans each query out to every shard in parallel and merges the hits by score."""

    def __init__(self, shards: Sequence[Shard], timeout: float = 120.0) -> None:
        if not shards:
            raise ValueError("an index needs at least one shard")
        self._shards = list(shards)
        self._connections = connect(self._shards, timeout)
        self._pool = ThreadPoolExecutor(max_workers=min(32, len(self._shards)))
        self._retry = RetryPolicy(attempts=3)

    def _sql(self, shard: Shard, statement: str) -> list[dict[str, Any]]:
        return self._retry.run(lambda: self._connections[shard.url].sql(statement))

    def _search_shard(self, shard: Shard, expression: str, limit: int) -> list[tuple[str, float]]:
        rows = self._sql(shard, search_sql(shard.table, expression, limit))
        hits = ((str(row["doc_id"]), int(row["w"]) / SCORE_SCALE) for row in rows)
        return [hit for hit in hits if hit[1] > 0]

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        expression = match_expression(query)
        if not expression or k <= 0:
            return []
        limit = k + _TIE_MARGIN  # ties at the cut are chosen by id, as in every backend
        found = self._pool.map(
            lambda shard: self._search_shard(shard, expression, limit), self._shards
        )
        return merge_hits(found, k)

    def get(self, ids: Sequence[str]) -> list[str]:
        by_shard: dict[int, list[str]] = {}
        for doc_id in dict.fromkeys(ids):
            by_shard.setdefault(shard_of(doc_id, len(self._shards)), []).append(doc_id)
        found: dict[str, str] = {}
        for index, wanted in by_shard.items():
            shard = self._shards[index]
            for start in range(0, len(wanted), _GET_BATCH):
                batch = wanted[start : start + _GET_BATCH]
                numbers = ",".join(str(numeric_id(doc_id)) for doc_id in batch)
                statement = (
                    f"SELECT id, doc_id, content FROM {shard.table} WHERE id IN ({numbers}) "
                    f"LIMIT {len(batch)} OPTION max_matches={len(batch)}"
                )
                asked = set(batch)
                for row in self._sql(shard, statement):
                    if row["doc_id"] in asked:  # a 63-bit hash collision is a miss, not a swap
                        found[row["doc_id"]] = row["content"]
        missing = [doc_id for doc_id in ids if doc_id not in found]
        if missing:
            raise UnknownDocument(f"not in the index: {', '.join(missing[:5])}")
        return [found[doc_id] for doc_id in ids]

    def count(self) -> int:
        return sum(self.shard_counts())

    def shard_counts(self) -> list[int]:
        """Documents in each shard, in shard order."""
        counts = []
        for shard in self._shards:
            rows = self._sql(shard, f"SELECT COUNT(*) AS n FROM {shard.table}")
            counts.append(int(rows[0]["n"]) if rows else 0)
        return counts

    def document_ids(self) -> Iterator[str]:
        """Shard by shard, by Manticore id: an order fixed by the loaded data."""
        for shard in self._shards:
            last = 0
            while True:
                rows = self._sql(
                    shard,
                    f"SELECT id, doc_id FROM {shard.table} WHERE id > {last} ORDER BY id ASC "
                    f"LIMIT {_IDS_PAGE} OPTION max_matches={_IDS_PAGE}",
                )
                yield from (str(row["doc_id"]) for row in rows)
                if len(rows) < _IDS_PAGE:
                    break
                last = int(rows[-1]["id"])

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for connection in self._connections.values():
            connection.close()
