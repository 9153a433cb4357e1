"""Model answers are read leniently, and what cannot be read says why."""

from __future__ import annotations

import pytest

from litelong.debate.answers import (
    Critique,
    JudgeAnswer,
    Proposal,
    UnusableAnswer,
    extract_json,
    parse_answer,
)
from litelong.debate.prompts import CRITIQUE_STEP, JUDGE_STEP, PROPOSE_STEP


def test_json_in_code_fences_with_prose_around_is_read() -> None:
    text = 'Sure! Here are the topics:\n```json\n{"topics": [{"topic": "Dark matter"}]}\n```\nBye'
    assert parse_answer(text, Proposal).topics[0].topic == "Dark matter"


def test_json_after_prose_without_fences_is_read() -> None:
    text = 'The verdicts are {"verdicts": [{"id": 1, "verdict": "yes", "reason": "fits"}]} ok?'
    verdict = parse_answer(text, Critique).verdicts[0]
    assert (verdict.id, verdict.verdict, verdict.reason) == (1, "accepted", "fits")


def test_a_list_where_an_object_was_asked_is_wrapped() -> None:
    answer = parse_answer('[{"topic": "Exoplanets", "explanation": "worlds"}]', Proposal)
    assert [t.topic for t in answer.topics] == ["Exoplanets"]


def test_bare_strings_and_renamed_keys_are_accepted_as_topics() -> None:
    answer = parse_answer('{"subtopics": ["Comets", "Meteors"]}', Proposal)
    assert [t.topic for t in answer.topics] == ["Comets", "Meteors"]


def test_judge_answer_with_no_rejections_is_valid() -> None:
    assert parse_answer('{"rejected": []}', JudgeAnswer).rejected == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("I cannot help with that.", "no valid JSON"),
        ('{"topics": [', "no valid JSON"),
        ('{"topics": []}', "expected shape"),
        ('{"verdicts": [{"id": "one", "verdict": "maybe"}]}', "expected shape"),
    ],
)
def test_unusable_answers_say_what_is_wrong(text: str, problem: str) -> None:
    model = Critique if "verdicts" in text else Proposal
    with pytest.raises(UnusableAnswer, match=problem):
        parse_answer(text, model)


def test_first_json_value_wins_when_prose_has_several() -> None:
    assert extract_json('note {"a": 1} and {"b": 2}') == {"a": 1}


@pytest.mark.parametrize("step", [PROPOSE_STEP, CRITIQUE_STEP, JUDGE_STEP])
def test_every_answer_schema_is_strict_and_bounded(step: object) -> None:
    schema = step.schema(7)  # type: ignore[attr-defined]
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(schema["properties"])
    (array,) = schema["properties"].values()
    assert array["maxItems"] == 7
    assert array["items"]["additionalProperties"] is False
