"""Topic hygiene and retention: what is kept, and why the rest is not."""

from __future__ import annotations

import pytest

from litelong.debate.protocol import Candidate, retain
from litelong.debate.topics import (
    clean_topic,
    is_near_duplicate,
    label_problem,
    problem_with,
    retrieval_query,
    topic_key,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  1.  Black   hole thermodynamics. ", "Black hole thermodynamics"),
        ('- "Stellar nurseries"', "Stellar nurseries"),
        ("\u201cCosmic rays\u201d;", "Cosmic rays"),
        ("(3) Galaxy  mergers", "Galaxy mergers"),
    ],
)
def test_topics_are_cleaned_of_list_marks_quotes_and_spacing(raw: str, clean: str) -> None:
    assert clean_topic(raw) == clean


def test_topics_must_have_one_to_twelve_words() -> None:
    assert problem_with("Dark matter") is None
    assert problem_with(" ".join(["word"] * 12)) is None
    assert problem_with(" ".join(["word"] * 13)) == "too_many_words"
    assert problem_with("") == "empty"
    assert problem_with("--") == "empty"


def test_case_plural_and_filler_differences_are_duplicates() -> None:
    assert is_near_duplicate(topic_key("Black Holes"), topic_key("black hole"))
    assert is_near_duplicate(topic_key("The history of comets"), topic_key("Comet history"))
    assert not is_near_duplicate(topic_key("Comet history"), topic_key("Comet composition"))


def test_query_adds_subject_words_and_drops_syntax_characters() -> None:
    query = retrieval_query('Black-hole "thermodynamics" (entropy)', "Physics / Astrophysics")
    assert query == "Black hole thermodynamics entropy physics astrophysics"
    assert retrieval_query("Astrophysics of stars", "Astrophysics") == "Astrophysics of stars"
    assert not set(query) & set('+-&|!(){}[]^"~*?:\\/')


def _candidates() -> list[Candidate]:
    rows = [
        # topic, proposer, position, critique, judge
        ("Dark matter", "a", 0, "accepted", "kept"),
        ("Galaxy formation", "a", 1, "rejected", "kept"),
        ("Dark matters", "b", 0, "accepted", "kept"),  # near duplicate of #1
        ("Cooking pasta", "b", 1, "rejected", "rejected"),
        ("Cosmic inflation", "b", 2, "accepted", "rejected"),
    ]
    return [
        Candidate(i, topic, "", proposer, position, critique=critique, judge=judge)
        for i, (topic, proposer, position, critique, judge) in enumerate(rows, 1)
    ]


def test_filter_reject_keeps_all_but_the_judges_rejections_and_duplicates() -> None:
    candidates = _candidates()
    retain(candidates, "filterReject", limit=10)
    assert [c.topic for c in candidates if c.kept] == ["Dark matter", "Galaxy formation"]
    assert [c.dropped for c in candidates] == ["", "", "duplicate", "judge", "judge"]


def test_keep_accepted_keeps_only_what_the_critique_accepted() -> None:
    candidates = _candidates()
    retain(candidates, "keepAccepted", limit=10)
    assert [c.topic for c in candidates if c.kept] == ["Dark matter", "Cosmic inflation"]


def test_keep_fixed_k_ranks_by_judge_then_critique_then_position() -> None:
    candidates = _candidates()
    retain(candidates, "keepFixedK", limit=2)
    assert [c.topic for c in candidates if c.kept] == ["Dark matter", "Galaxy formation"]
    assert sum(c.dropped == "fixed_k" for c in candidates) == 2


def test_a_topic_that_is_only_its_subjects_parents_or_siblings_label_is_rejected() -> None:
    parents, siblings = ["MATHEMATICS"], ["Algebra / Linear", "Geometry / General"]
    assert label_problem("Mathematics", "General", parents, siblings) == "same_as_parent"
    assert label_problem("Calculus", "Calculus", parents, siblings) == "same_as_subject"
    assert label_problem("Linear algebra", "Calculus", parents, siblings) == "same_as_sibling"
    assert label_problem("geometries", "Calculus", parents, siblings) == "same_as_sibling"
    assert label_problem("Limits of sequences", "Calculus", parents, siblings) is None
    assert label_problem("Calculus in economics", "Calculus", parents, siblings) is None
