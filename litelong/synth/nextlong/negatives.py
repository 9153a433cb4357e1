"""Where NExtLong's hard negatives come from: the chunks most similar to a meta-chunk.

`bm25` (the paper's cheap variant) asks the chunk index with the meta-chunk's text as the query;
`dense` embeds the chunk index once (`embeddings.py`) and searches it with faiss. Both answer the
same question in one call per meta-document, and neither ever returns a chunk of the
meta-document itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ...index import Retriever, parent_of
from ...store import Artifact, ArtifactStore
from ..threads import ordered_map


@dataclass(frozen=True)
class Query:
    doc_ids: frozenset[str]  # the meta-document's documents: their chunks are never negatives
    text: str  # the meta-chunk
    own_chunks: int  # chunks those documents have: how many hits filtering may remove


class NegativeSource(Protocol):
    measure: str  # what `score` is: "bm25" or "cosine"

    def __call__(self, queries: list[Query], k: int) -> list[list[tuple[str, float]]]:
        """Up to `k` (chunk id, score) per query, most similar first, none from its document."""
        ...


def _without_own(
    hits: list[tuple[str, float]], doc_ids: frozenset[str], k: int
) -> list[tuple[str, float]]:
    return [hit for hit in hits if parent_of(hit[0]) not in doc_ids][:k]


class Bm25Negatives:
    measure = "bm25"

    def __init__(self, chunks: Retriever) -> None:
        self._chunks = chunks

    def __call__(self, queries: list[Query], k: int) -> list[list[tuple[str, float]]]:
        """A meta-document's meta-chunks searched from a few threads (`threads.py`)."""
        return list(
            ordered_map(
                lambda query: _without_own(
                    self._chunks.search(query.text, k + query.own_chunks), query.doc_ids, k
                ),
                queries,
            )
        )


class DenseNegatives:
    measure = "cosine"

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
