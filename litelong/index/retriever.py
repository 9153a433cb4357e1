"""The retrieval interface every BM25 backend implements (tantivy now, Manticore later)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable


class UnknownDocument(KeyError):
    """`get` was asked for an id the index does not hold."""


# Terms a query keeps under a postings budget however long their lists (`rarest_terms`).
MIN_TERMS = 4


def rarest_terms(
    ranked: list[tuple[int, int, str]], max_terms: int, max_postings: int | None = None
) -> list[str]:
    """The rarest of a query's terms: `ranked` is (documents holding it, minus its count in
    the query, term), terms no document holds left out. At most `max_terms`, and past
    `MIN_TERMS` none whose postings would take the sum past `max_postings`: tantivy scores
    every document of every list (its Python binding collects without pruning), so the
    postings are the cost, and the rarest terms carry most of a BM25 ranking."""
    kept: list[str] = []
    postings = 0
    for documents, _, term in sorted(ranked)[:max_terms]:
        over = max_postings is not None and postings + documents > max_postings
        if over and len(kept) >= MIN_TERMS:
            break
        kept.append(term)
        postings += documents
    return kept


@runtime_checkable
class Retriever(Protocol):
    """BM25 search over a committed index.

    Scores are BM25 (k1=1.2, b=0.75) over the index's analysed text; higher is better. Results
    are ordered by score, then by id, so equal scores come back in a stable order.
    """

    def search(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float]]:
        """The `k` best (doc_id, score) pairs for a free-text query; [] when nothing matches.

        `max_terms`: search with at most this many of the query's distinct terms, the rarest
        in the index (highest IDF), leaving out terms no document holds. A query of a few
        hundred words costs about as many posting lists; its rarest terms decide most of the
        ranking at a fraction of the cost (mode nextlong's negatives, docs/nextlong.md).
        `max_postings` (with `max_terms`): stop adding terms, rarest first, once the next would
        take the postings read past it (`rarest_terms`), so a search costs about the same on
        a small index and a large one."""
        ...

    def search_lengths(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float, int | None]]:
        """`search`, each hit with its text's length in characters (`len(get([id])[0])`), or
        None where the index does not store it: a synthesis skips a document it may not use
        by its length, unread (`synth/assembly/pieces.py`)."""
        ...

    def search_many(
        self,
        queries: Sequence[str],
        k: int,
        max_terms: int | None = None,
        max_postings: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        """`search` of each query, in order: the same answers, with what a backend pays once
        a call paid once for them all (mode nextlong searches a meta-document's meta-chunks
        in one call)."""
        ...

    def get(self, ids: Sequence[str]) -> list[str]:
        """The stored texts of `ids`, in the same order; raises UnknownDocument."""
        ...

    def count(self) -> int:
        """Documents in the index."""
        ...

    def document_ids(self) -> Iterator[str]:
        """Every document id once, in an order fixed by the committed index (what mode
        `standard` samples from)."""
        ...

    def ids_at(self, ordinals: Sequence[int]) -> list[str]:
        """The ids at these positions of `document_ids()`' order (each in [0, count())), in
        the order asked: a random draw from the index without listing every id."""
        ...

    def lengths_at(self, ordinals: Sequence[int]) -> list[int | None]:
        """The text lengths in characters of the documents `ids_at(ordinals)` names; None
        where the index does not store them."""
        ...

    def close(self) -> None: ...
