"""`rarest_terms`: which of a query's terms a reduced search keeps (mode nextlong's negatives)."""

from __future__ import annotations

from litelong.index.retriever import MIN_TERMS, rarest_terms


def _ranked(*documents: int) -> list[tuple[int, int, str]]:
    return [(count, -1, f"t{count}") for count in documents]


def test_without_a_budget_the_rarest_terms_up_to_max_terms_are_kept() -> None:
    assert rarest_terms(_ranked(50, 3, 900, 7), max_terms=2) == ["t3", "t7"]


def test_a_budget_stops_at_the_first_term_that_would_pass_it() -> None:
    ranked = _ranked(1, 2, 3, 4, 10, 1000, 20)
    assert rarest_terms(ranked, max_terms=24, max_postings=30) == ["t1", "t2", "t3", "t4", "t10"]
    assert rarest_terms(ranked, max_terms=24, max_postings=40) == [
        "t1",
        "t2",
        "t3",
        "t4",
        "t10",
        "t20",
    ]


def test_the_first_terms_are_kept_however_long_their_postings() -> None:
    """A query of common words still searches with its rarest few (never with nothing)."""
    ranked = _ranked(500, 600, 700, 800, 900)
    kept = rarest_terms(ranked, max_terms=24, max_postings=10)
    assert kept == ["t500", "t600", "t700", "t800"]
    assert len(kept) == MIN_TERMS


def test_max_terms_caps_a_budget_that_would_hold_more() -> None:
    assert rarest_terms(_ranked(1, 1, 1, 1, 1, 1), max_terms=5, max_postings=10**9) == ["t1"] * 5
