"""The cluster BM25 backend: Manticore Search real-time tables, one per shard.

What a shard ranks by is BM25 (k1=1.2, b=0.75): the `expr` ranker with `bm25a`, which needs
`index_field_lengths` (the plain `bm25` ranker ignores document length), and plain,
unnormalised IDF so a term's weight does not depend on how many words the query has. What
Manticore returns is not that BM25 but `bm25a`'s normalisation of it,
0.5 + BM25 / (BM25A_SPREAD * ln(1 + N)) with N the shard's documents (measured against
searchd 10.1.0 with PACKEDFACTORS() and read in its source, issue 21): the order within a
shard is BM25's, but shards of different sizes are on different scales. The ranker's weight is
an integer, so the expression is scaled by SCORE_SCALE; `bm25` undoes both, and the merged
scores are BM25 on every shard.

Each table keeps each document's length in characters as an integer attribute
(`LENGTH_COLUMN`), returned with its hits, so a synthesis can skip a document that reuse
forbids without reading its text. A table created before that attribute has none: its lengths
are unknown (None), found out once per table with DESCRIBE.

Each shard computes IDF from its own documents. Shards are uniform hashes of the ids, so their
statistics agree with the whole corpus' up to sampling noise, which matters only for terms in a
handful of documents (docs/manticore.md, "Scores").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...api.v1alpha1.bm25index import Analysis, documents_per_shard
from ...store import Artifact
from ..retriever import UnknownDocument, rarest_terms
from .client import READY_SECONDS, ManticoreConnection, ManticoreError, RetryPolicy
from .shards import Shard, merge_hits, numeric_id, shard_of
from .text import escape_query, match_expression, query_words, sql_string

K1 = 1.2
B = 0.75
#: weights are integers: bm25a (at most a few hundred for a 512-word query) times this stays
#: far below 2^31 and keeps BM25 to about 1e-4 after `bm25` undoes the normalisation
SCORE_SCALE = 1_000_000
#: bm25a = 0.5 + BM25 / (BM25A_SPREAD * ln(1 + documents in the table))
BM25A_SPREAD = 4.4
LOCATION_FILE = "manticore.json"
#: each document's length in characters (`len` of the text `get` returns): an `int`
#: attribute, unsigned 32-bit, which no text under maxChars comes near
LENGTH_COLUMN = "doc_chars"
_TIE_MARGIN = 32
_GET_BATCH = 512
_IDS_PAGE = 10_000


def create_table_sql(table: str, analysis: Analysis) -> str:
    """DDL of one shard's table: the text, the id, the length attribute; English stemming and
    stop words as the spec asks, and field lengths, without which `bm25a` cannot normalise by
    document length."""
    options = [f"morphology={sql_string('stem_en' if analysis.stem else 'none')}"]
    if analysis.stopwords:
        options.append("stopwords='en'")
    options.append("index_field_lengths='1'")
    columns = f"content text, doc_id string, {LENGTH_COLUMN} int"
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns}) " + " ".join(options)


def describe_sql(table: str) -> str:
    """A table's columns, one row each (`Field`, `Type`, `Properties`)."""
    return f"DESCRIBE {table}"


def search_sql(table: str, expression: str, limit: int, lengths: bool = False) -> str:
    """The BM25 query of one shard: `limit` best by score, max_matches raised to match; the
    weight comes back as SCORE_SCALE * bm25a (see `bm25`). `lengths`: each hit's length too
    (a table created before the attribute has none, and naming it would be an error)."""
    ranker = f"expr('{SCORE_SCALE}*bm25a({K1},{B})')"
    columns = f"doc_id, {LENGTH_COLUMN}" if lengths else "doc_id"
    return (
        f"SELECT {columns}, WEIGHT() AS w FROM {table} WHERE MATCH({sql_string(expression)}) "
        f"LIMIT {limit} OPTION ranker={ranker}, idf='plain,tfidf_unnormalized', "
        f"max_matches={limit}"
    )


def keywords_sql(table: str, words: Sequence[str]) -> str:
    """How one shard's table analyses `words` (stemming, stop words) and how many of its
    documents hold each resulting term: CALL KEYWORDS with statistics."""
    return f"CALL KEYWORDS({sql_string(' '.join(words))}, {sql_string(table)}, 1 AS stats)"


def bm25(weight: int, documents: int) -> float:
    """The BM25 score behind a shard's integer `bm25a` weight, given the shard's size."""
    return (weight / SCORE_SCALE - 0.5) * BM25A_SPREAD * math.log1p(documents)


class TablesOutOfSync(ManticoreError):
    """A committed index whose Manticore tables are gone or hold other documents."""


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
) -> list[bool]:
    """Wait until every server answers (a wrong URL fails within `ready_timeout`), then
    create the shard tables that are missing; whether each table has the length attribute
    (one created before it, that a rerun loads into, has not)."""
    for connection in connections.values():
        connection.wait_ready(ready_timeout)
    retry = RetryPolicy()
    for shard in shards:
        statement = create_table_sql(shard.table, analysis)
        retry.run(lambda: connections[shard.url].sql(statement))  # noqa: B023
    return [has_lengths(connections[shard.url], shard, retry) for shard in shards]


def has_lengths(connection: ManticoreConnection, shard: Shard, retry: RetryPolicy) -> bool:
    """Whether the shard's table has the length attribute (DESCRIBE lists it)."""
    found = retry.run(lambda: connection.sql(describe_sql(shard.table)))
    return any(str(row.get("Field", "")).lower() == LENGTH_COLUMN for row in found)


class ManticoreRetriever:
    """Fans each query out to every shard in parallel and merges the hits by BM25 score."""

    def __init__(self, shards: Sequence[Shard], timeout: float = 120.0) -> None:
        if not shards:
            raise ValueError("an index needs at least one shard")
        self._shards = list(shards)
        self._connections = connect(self._shards, timeout)
        # callers may search from several threads: room for a few fan-outs at once
        self._pool = ThreadPoolExecutor(max_workers=min(64, 4 * len(self._shards)))
        self._retry = RetryPolicy(attempts=3)
        self._sizes: list[int] | None = None
        self._lengths: list[bool] | None = None  # which tables have the length attribute

    def _sql(self, shard: Shard, statement: str) -> list[dict[str, Any]]:
        return self._retry.run(lambda: self._connections[shard.url].sql(statement))

    def check(self, committed: Sequence[int] | None, at_most: bool = False) -> list[str]:
        """What differs between the shards' tables and the committed document counts, one
        line each ([] when they agree): a table gone, or holding other documents. Without
        per-shard counts (or with counts of another layout) only the tables are checked.
        `at_most`: a table may hold fewer (but some) documents than counted, as when loaders
        that read other files each sent a copy of one document (`replace` keeps one)."""
        problems = []
        sizes = []
        if committed is None or len(committed) != len(self._shards):
            committed = [-1] * len(self._shards)
        for shard, expected in zip(self._shards, committed, strict=True):
            try:
                rows = self._sql(shard, f"SELECT COUNT(*) AS n FROM {shard.table}")
            except ManticoreError as error:
                if error.transient:
                    raise
                problems.append(f"table {shard.table} at {shard.url} is missing ({error})")
                sizes.append(0)
                continue
            found = int(rows[0]["n"]) if rows else 0
            sizes.append(found)
            fewer_allowed = at_most and 0 < found < expected
            if expected >= 0 and found != expected and not fewer_allowed:
                problems.append(
                    f"table {shard.table} at {shard.url} holds {found:,} documents, "
                    f"the committed index {expected:,}"
                )
        self._sizes = sizes
        return problems

    def _shard_sizes(self) -> list[int]:
        if self._sizes is None:
            self._sizes = self.shard_counts()
        return self._sizes

    def _with_lengths(self) -> list[bool]:
        if self._lengths is None:
            self._lengths = [
                has_lengths(self._connections[shard.url], shard, self._retry)
                for shard in self._shards
            ]
        return self._lengths

    def _search_shard(
        self, shard: Shard, documents: int, expression: str, limit: int, lengths: bool
    ) -> list[tuple[str, float, int | None]]:
        rows = self._sql(shard, search_sql(shard.table, expression, limit, lengths))
        hits = (
            (
                str(row["doc_id"]),
                bm25(int(row["w"]), documents),
                int(row[LENGTH_COLUMN]) if lengths else None,
            )
            for row in rows
        )
        return [hit for hit in hits if hit[1] > 0]

    def _rarest_words(
        self, words: list[str], max_terms: int, max_postings: int | None = None
    ) -> list[str]:
        """A word for each of the `max_terms` terms (normalised forms) of `words` that the
        fewest documents hold, summed over the shards (ties: more words of the query with that
        form, then alphabetical), within `max_postings` (`rarest_terms`); terms no document
        holds are left out."""
        statements = [keywords_sql(shard.table, words) for shard in self._shards]
        found = self._pool.map(self._sql, self._shards, statements)
        documents: dict[str, int] = {}
        spellings: dict[str, list[str]] = {}
        for number, rows in enumerate(found):
            for row in rows:
                term = str(row.get("normalized") or "")
                if not term:
                    continue
                documents[term] = documents.get(term, 0) + int(row.get("docs") or 0)
                if number == 0:
                    spellings.setdefault(term, []).append(str(row["tokenized"]))
        ranked = [
            (count, -len(spellings.get(term, ())), term)
            for term, count in documents.items()
            if count and spellings.get(term)
        ]
        return [spellings[term][0] for term in rarest_terms(ranked, max_terms, max_postings)]

    def search(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float]]:
        hits = self.search_lengths(query, k, max_terms, max_postings)
        return [(doc_id, score) for doc_id, score, _ in hits]

    def search_many(
        self,
        queries: Sequence[str],
        k: int,
        max_terms: int | None = None,
        max_postings: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        """One search a query: a Manticore query has no fixed cost worth sharing."""
        return [self.search(query, k, max_terms, max_postings) for query in queries]

    def search_lengths(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float, int | None]]:
        """Each hit with its length in characters from the table's length attribute; None
        from a table created before it (a synthesis then reads the text: the fetch path)."""
        expression = match_expression(query)
        words = query_words(query)
        if max_terms is not None and (max_postings is not None or len(words) > max_terms):
            rarest = self._rarest_words(words, max_terms, max_postings)
            expression = " | ".join(escape_query(word) for word in rarest)
        if not expression or k <= 0:
            return []
        limit = k + _TIE_MARGIN  # ties at the cut are chosen by id, as in every backend
        sizes, lengths = self._shard_sizes(), self._with_lengths()
        if len(self._shards) == 1:  # no fan-out: no hand-off to another thread
            shard, size, has = self._shards[0], sizes[0], lengths[0]
            return merge_hits([self._search_shard(shard, size, expression, limit, has)], k)
        found = self._pool.map(
            lambda shard, size, has: self._search_shard(shard, size, expression, limit, has),
            self._shards,
            sizes,
            lengths,
        )
        return merge_hits(found, k)

    def get(self, ids: Sequence[str]) -> list[str]:
        """Texts by id: one `id IN (...)` batch per shard and 512 ids, the batches in parallel."""
        by_shard: dict[int, list[str]] = {}
        for doc_id in dict.fromkeys(ids):
            by_shard.setdefault(shard_of(doc_id, len(self._shards)), []).append(doc_id)
        batches = [
            (self._shards[index], wanted[start : start + _GET_BATCH])
            for index, wanted in by_shard.items()
            for start in range(0, len(wanted), _GET_BATCH)
        ]
        if len(batches) == 1:
            fetched = [self._fetch(*batches[0])]
        else:
            fetched = list(self._pool.map(lambda batch: self._fetch(*batch), batches))
        found = {doc_id: text for texts in fetched for doc_id, text in texts.items()}
        missing = [doc_id for doc_id in ids if doc_id not in found]
        if missing:
            raise UnknownDocument(f"not in the index: {', '.join(missing[:5])}")
        return [found[doc_id] for doc_id in ids]

    def _fetch(self, shard: Shard, batch: list[str]) -> dict[str, str]:
        numbers = ",".join(str(numeric_id(doc_id)) for doc_id in batch)
        statement = (
            f"SELECT id, doc_id, content FROM {shard.table} WHERE id IN ({numbers}) "
            f"LIMIT {len(batch)} OPTION max_matches={len(batch)}"
        )
        asked = set(batch)
        return {  # a 63-bit hash collision is a miss, not a swap
            row["doc_id"]: row["content"]
            for row in self._sql(shard, statement)
            if row["doc_id"] in asked
        }

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
            yield from self._shard_ids(shard)

    def _shard_ids(self, shard: Shard, stop: int | None = None) -> Iterator[str]:
        """A shard's ids by Manticore id, paged by a cursor on the id (never a deep offset),
        up to `stop` of them."""
        last = 0
        read = 0
        while stop is None or read < stop:
            page = _IDS_PAGE if stop is None else min(_IDS_PAGE, stop - read)
            rows = self._sql(
                shard,
                f"SELECT id, doc_id FROM {shard.table} WHERE id > {last} ORDER BY id ASC "
                f"LIMIT {page} OPTION max_matches={page}",
            )
            yield from (str(row["doc_id"]) for row in rows)
            read += len(rows)
            if len(rows) < page:
                break
            last = int(rows[-1]["id"])

    def ids_at(self, ordinals: Sequence[int]) -> list[str]:
        """Manticore keeps ids as hashes, with no ordinal to seek to: each shard holding an
        asked ordinal is paged (by id cursor) up to the largest one asked of it, keeping only
        the asked ids. Memory: a page and the answer; time: the pages read, once per call, so
        callers ask for a whole draw at once."""
        sizes = self._shard_sizes()
        starts = [sum(sizes[:number]) for number in range(len(sizes) + 1)]
        wanted: dict[int, dict[int, list[int]]] = {}  # shard → local ordinal → answer slots
        for slot, ordinal in enumerate(ordinals):
            ordinal = int(ordinal)
            if not 0 <= ordinal < starts[-1]:
                raise IndexError(f"ordinals must lie in [0, {starts[-1]})")
            shard = next(n for n in range(len(sizes)) if ordinal < starts[n + 1])
            wanted.setdefault(shard, {}).setdefault(ordinal - starts[shard], []).append(slot)
        found = [""] * len(ordinals)
        for shard, slots in wanted.items():
            stop = max(slots) + 1
            for local, doc_id in enumerate(self._shard_ids(self._shards[shard], stop)):
                for slot in slots.get(local, ()):
                    found[slot] = doc_id
        return found

    def lengths_at(self, ordinals: Sequence[int]) -> list[int | None]:
        """Unknown (None): reaching an ordinal means paging the table by id (`ids_at`), which
        costs more than the texts it would spare; searches carry their hits' lengths."""
        return [None] * len(ordinals)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for connection in self._connections.values():
            connection.close()


def open_committed(
    artifact: Artifact, part: Path, counts: dict[str, int], by_files: bool = False
) -> ManticoreRetriever:
    """The retriever of a committed index, once its tables are checked against the counts it
    committed; raises TablesOutOfSync saying what differs and how to rebuild. `by_files`
    (partition files): loaders dedup only their own files, so an exact duplicate read by two
    of them is counted twice but held once, and a table may hold fewer than counted."""
    retriever = ManticoreRetriever(read_location(part))
    committed = documents_per_shard(counts)
    try:
        problems = retriever.check(committed, at_most=by_files)
    except BaseException:
        retriever.close()
        raise
    if problems:
        retriever.close()
        raise TablesOutOfSync(
            f"BM25Index/{artifact.name}: the committed index at {artifact.uri} no longer "
            f"matches Manticore: {'; '.join(problems)}. Rebuild it: `litelong run --rebuild "
            "<manifest>`; in a cluster, delete the BM25Index, remove that folder from the store "
            'and apply it again (docs/manticore.md, "Rebuilding an index")'
        )
    return retriever
