"""The behaviour every BM25 backend owes its callers. A backend's test module subclasses
`RetrieverContract` and provides the `retriever` fixture over `CONTRACT_CORPUS`.

The expectations are BM25 facts (k1=1.2, b=0.75, English stemming and stop words), not
numbers of one engine, so the Manticore backend must pass them unchanged.
"""

from __future__ import annotations

import pytest

from litelong.index import Retriever, UnknownDocument

CONTRACT_CORPUS = [
    {"id": "rust", "text": "Iron rusts when it is exposed to oxygen and water over time."},
    {"id": "photo", "text": "Photosynthesis converts light energy into chemical energy in plants."},
    {"id": "cells", "text": "Plant cells have walls; animal cells do not have cell walls at all."},
    {"id": "short-plant", "text": "Plants need light."},
    {
        "id": "long-plant",
        "text": "Plants need light. " + "Gardening advice about soil, pots and watering. " * 20,
    },
    {"id": "quantum", "text": "Quantum mechanics describes nature at the scale of atoms."},
    {"id": "unicode", "text": "Café culture in Zürich: naïve visitors order a crème brûlée."},
    {"id": "symbols", "text": 'Query syntax like "quotes" (parens) AND +plus -minus: colon*'},
]


class RetrieverContract:
    """Subclass and define a `retriever` fixture indexing CONTRACT_CORPUS."""

    def test_is_a_retriever(self, retriever: Retriever) -> None:
        assert isinstance(retriever, Retriever)

    def test_counts_every_document(self, retriever: Retriever) -> None:
        assert retriever.count() == len(CONTRACT_CORPUS)

    def test_finds_the_document_about_the_query(self, retriever: Retriever) -> None:
        assert retriever.search("photosynthesis", 3)[0][0] == "photo"
        assert retriever.search("quantum atoms", 3)[0][0] == "quantum"

    def test_stems_query_and_documents_alike(self, retriever: Retriever) -> None:
        assert retriever.search("rusting irons", 1)[0][0] == "rust"

    def test_stop_words_alone_match_nothing(self, retriever: Retriever) -> None:
        assert retriever.search("the and of it is", 5) == []

    def test_shorter_documents_score_higher_for_the_same_match(self, retriever: Retriever) -> None:
        """BM25's length normalisation (b=0.75): the same terms in a shorter document win."""
        scores = dict(retriever.search("plants light", 10))
        assert scores["short-plant"] > scores["long-plant"]

    def test_results_are_sorted_and_limited(self, retriever: Retriever) -> None:
        hits = retriever.search("plant cells light energy", 2)
        assert len(hits) == 2
        assert hits[0][1] >= hits[1][1] > 0

    def test_query_syntax_characters_are_plain_text(self, retriever: Retriever) -> None:
        hits = retriever.search('"quotes" (parens) AND +plus -minus: colon*', 3)
        assert hits[0][0] == "symbols"

    def test_unicode_is_matched_after_normalisation(self, retriever: Retriever) -> None:
        assert retriever.search("cafe\u0301 zu\u0308rich", 1)[0][0] == "unicode"

    def test_control_and_zero_width_characters_in_queries_are_ignored(
        self, retriever: Retriever
    ) -> None:
        assert retriever.search("photo\u200bsynthesis\x00", 1)[0][0] == "photo"

    def test_no_match_and_empty_query_give_no_hits(self, retriever: Retriever) -> None:
        assert retriever.search("xylophone", 5) == []
        assert retriever.search("", 5) == []

    def test_lengths_are_the_texts_lengths_or_unknown(self, retriever: Retriever) -> None:
        """A length a backend gives is exactly its stored text's (a synthesis skips documents
        by it, unread); None says it does not know."""
        ids = [doc["id"] for doc in CONTRACT_CORPUS]
        texts = dict(zip(ids, retriever.get(ids), strict=True))
        hits = retriever.search_lengths("plants light", 10)
        assert [hit[:2] for hit in hits] == retriever.search("plants light", 10)
        for doc_id, _, chars in hits:
            assert chars is None or chars == len(texts[doc_id])
        ordinals = list(range(retriever.count()))
        pairs = zip(retriever.ids_at(ordinals), retriever.lengths_at(ordinals), strict=True)
        assert all(chars is None or chars == len(texts[doc_id]) for doc_id, chars in pairs)

    def test_search_many_answers_each_query_as_search_does(self, retriever: Retriever) -> None:
        """Mode nextlong searches a meta-document's meta-chunks in one call: each answer is
        the query's own search, whatever the others (no match, an empty query, a tie at the
        cut: `plants light` at k=1 ties nothing, at k=2 cuts below the short document)."""
        queries = ["plants light", "xylophone", "", "quantum atoms", "plant cells light energy"]
        queries *= 5  # more than a backend may answer in one batch
        for k in (1, 2, 5):
            for terms, postings in ((None, None), (2, None), (24, 3)):
                expected = [retriever.search(query, k, terms, postings) for query in queries]
                assert retriever.search_many(queries, k, terms, postings) == expected
        assert retriever.search_many([], 3) == []
        assert retriever.search_many(["plants light"], 0) == [[]]

    def test_get_returns_texts_in_the_order_asked(self, retriever: Retriever) -> None:
        texts = {doc["id"]: doc["text"] for doc in CONTRACT_CORPUS}
        assert retriever.get(["quantum", "rust", "quantum"]) == [
            texts["quantum"],
            texts["rust"],
            texts["quantum"],
        ]

    def test_document_ids_lists_every_document_once(self, retriever: Retriever) -> None:
        ids = list(retriever.document_ids())
        assert len(ids) == len(set(ids)) == retriever.count()
        assert list(retriever.document_ids()) == ids  # a fixed order
        assert retriever.get(ids[:2])

    def test_ids_at_reads_positions_of_the_document_ids_order(self, retriever: Retriever) -> None:
        ids = list(retriever.document_ids())
        asked = [len(ids) - 1, 0, 3, 3, 5]
        assert retriever.ids_at(asked) == [ids[i] for i in asked]
        assert retriever.ids_at([]) == []
        with pytest.raises(IndexError):
            retriever.ids_at([len(ids)])

    def test_get_of_an_unknown_id_raises(self, retriever: Retriever) -> None:
        with pytest.raises(UnknownDocument, match="nope"):
            retriever.get(["rust", "nope"])

    def test_a_reduced_query_keeps_its_rarest_terms(self, retriever: Retriever) -> None:
        """`max_terms` keeps the terms fewest documents hold: `plant` (4 documents) goes even
        when the query repeats it, `light` (3) stays at two terms, and `quantum` (1) alone at
        one; `xylophone`, which no document holds, never takes a place."""
        query = "plants plants plants light quantum xylophone"
        assert "cells" in dict(retriever.search(query, 10))  # `plant` alone matches it
        two = dict(retriever.search(query, 10, max_terms=2))
        assert set(two) == {"quantum", "photo", "short-plant", "long-plant"}
        assert [hit for hit, _ in retriever.search(query, 10, max_terms=1)] == ["quantum"]
        assert retriever.search("quantum atoms", 3, max_terms=24) == retriever.search(
            "quantum atoms", 3
        )

    def test_a_postings_budget_leaves_out_the_common_terms(self, retriever: Retriever) -> None:
        """Past four terms, a term whose documents would take the postings read past
        `max_postings` is left out: `plant` (4 documents) after four terms of one document
        each; a budget that holds it keeps it."""
        query = "quantum atoms iron oxygen plants"
        assert "cells" in dict(retriever.search(query, 10, max_terms=24))
        tight = retriever.search(query, 10, max_terms=24, max_postings=4)
        assert set(dict(tight)) == {"quantum", "rust"}
        assert "cells" in dict(retriever.search(query, 10, max_terms=24, max_postings=8))

    def test_searching_many_candidates_is_fine(self, retriever: Retriever) -> None:
        assert len(retriever.search("plants", 1000)) == 4
