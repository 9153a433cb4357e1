"""Where NExtLong's hard negatives come from: the chunks most similar to a meta-chunk.

`bm25` (the paper's cheap variant) asks the chunk index with the meta-chunk's rarest terms;
`dense` embeds the chunk index once (`embeddings.py`) and searches it with faiss. Both answer the
same question in one call per meta-document, and neither ever returns a chunk of the
meta-document itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ...index import Retriever, parent_of
from ...store import Artifact, ArtifactStore

# The terms a BM25 negative's query keeps: its meta-chunk's rarest in the chunk index, at most
# QUERY_TERMS, and past the first 4 none that takes the postings read past QUERY_POSTINGS
# (`rarest_terms`). On the scale benchmark's 2.1M and 10.6M chunks, 24 terms alone searched
# 9-12x faster than the whole meta-chunk (4.5 and 18.3 ms), keeping 99% of its negatives' BM25
# similarity; with the postings budget a search costs 1.5 and 2.9 ms, keeping 98.6% and 94.9%
# (bench/nextlong_query.py): its cost no longer grows with the chunk index.
QUERY_TERMS = 24
QUERY_POSTINGS = 100_000
# Hits past k a first search asks for, to be left out where they are the meta-document's own
# chunks (`Bm25Negatives.__call__`).
OWN_FIRST = 8


@dataclass(frozen=True)
class Query:
    doc_ids: frozenset[str]  # the meta-document's documents: their chunks are never negatives
    text: str  # the meta-chunk
    own_chunks: int  # chunks those documents have: how many hits filtering may remove


class NegativeSource(Protocol):
    measure: str  # what `score` is: "bm25" or "cosine"
    concurrent: bool  # whether calls may overlap (planning searches several samples at once)

    def __call__(self, queries: list[Query], k: int) -> list[list[tuple[str, float]]]:
        """Up to `k` (chunk id, score) per query, most similar first, none from its document."""
        ...


def _without_own(
    hits: list[tuple[str, float]], doc_ids: frozenset[str], k: int
) -> list[tuple[str, float]]:
    return [hit for hit in hits if parent_of(hit[0]) not in doc_ids][:k]


class Bm25Negatives:
    """Each meta-chunk searched with its rarest terms (`Retriever.search`'s `max_terms` and
    `max_postings`): a meta-chunk holds ~100 distinct terms after stop words, and the search
    costs the postings of the terms it keeps, the common ones longest."""

    measure = "bm25"
    concurrent = True  # searches release the GIL: planning overlaps samples (`plan_topics`)

    def __init__(
        self,
        chunks: Retriever,
        query_terms: int | None = QUERY_TERMS,
        query_postings: int | None = QUERY_POSTINGS,
    ) -> None:
        self._chunks = chunks
        self._query_terms = query_terms
        self._query_postings = query_postings

    def __call__(self, queries: list[Query], k: int) -> list[list[tuple[str, float]]]:
        """The best `k` hits outside the meta-document of each meta-chunk: first from k +
        `OWN_FIRST` hits, and only where its own chunks took too many of those, from k + all
        its chunks. A meta-document at 128K tokens has ~130 chunks, and a limit that wide cost
        every search the reading of its ids (bench/README.md). The first answer is a prefix of
        the second, so both keep the same hits, unless more chunks than the retriever's tie
        margin share the score at the first one's cut (exact copies in a corpus). A
        meta-document's first searches go in one `search_many` call (the samples' calls
        overlap)."""
        terms, postings = self._query_terms, self._query_postings
        firsts = [min(query.own_chunks, OWN_FIRST) for query in queries]
        hits: list[list[tuple[str, float]]] = [[] for _ in queries]
        for first in sorted(set(firsts)):
            numbers = [number for number, each in enumerate(firsts) if each == first]
            texts = [queries[number].text for number in numbers]
            for number, found in zip(
                numbers, self._chunks.search_many(texts, k + first, terms, postings), strict=True
            ):
                hits[number] = found
        answers = []
        for query, first, found in zip(queries, firsts, hits, strict=True):
            kept = _without_own(found, query.doc_ids, k)
            if len(kept) < k and len(found) == k + first and first < query.own_chunks:
                wide = self._chunks.search(query.text, k + query.own_chunks, terms, postings)
                kept = _without_own(wide, query.doc_ids, k)
            answers.append(kept)
        return answers


class DenseNegatives:
    measure = "cosine"
    concurrent = False  # one batch of embeddings at a time; faiss and torch use the cores

    def __init__(
        self, chunks: Retriever, store: ArtifactStore, index: Artifact, model: str | None
    ) -> None:
        from .embeddings import ChunkEmbeddings, VectorIndex, encoder, load_model

        self._encode = encoder(load_model(model))
        embeddings = ChunkEmbeddings(store, index, chunks, model, self._encode)
        self._ids, vectors = embeddings.load()
        self.embedded = embeddings.computed
        self._index = VectorIndex(vectors)

    def __call__(self, queries: list[Query], k: int) -> list[list[tuple[str, float]]]:
        from .embeddings import normalise

        if not queries or not self._ids:
            return [[] for _ in queries]
        vectors = normalise(self._encode([query.text for query in queries]))
        widest = k + max(query.own_chunks for query in queries)
        scores, positions = self._index.search(vectors, widest)
        found = []
        for query, row_scores, row in zip(queries, scores, positions, strict=True):
            hits = [
                (self._ids[position], round(float(score), 6))
                for score, position in zip(row_scores.tolist(), row.tolist(), strict=True)
                if position >= 0
            ]
            found.append(_without_own(hits, query.doc_ids, k))
        return found
