"""Every prompt of the debate, with the JSON schema of the answer it asks for.

The schemas go to the server as `response_format` (vLLM and llama.cpp enforce them with a
grammar; the length limits keep small models from rambling), and the same answers are parsed
leniently in `answers.py` for servers that ignore them. Templates are plain `str.format` text so
that a reader sees exactly what a model is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOPIC_MAX_CHARS = 120
REASON_MAX_CHARS = 240

SYSTEM = (
    "You are a subject librarian who names precise subtopics for a book catalogue and judges "
    "them carefully. Answer with JSON only, no prose."
)

PROPOSE = """\
In the field of {heading}, list {n} subtopics in {subject} and give a brief explanation of each.

Each subtopic is 1 to 12 words, specific enough to find documents about it with a search engine.
Stay inside "{subject}". Do not propose subtopics that belong to these neighbouring subjects:
{avoid}

Answer as JSON: {{"topics": [{{"topic": "...", "explanation": "one line"}}]}} with {n} topics."""

CRITIQUE = """\
Subject: "{subject}" in the field of {heading}.
Another expert proposed these subtopics:
{topics}

Judge every subtopic on four criteria:
- relevance: it belongs to "{subject}";
- distinctiveness: it does not mean the same as another subtopic in the list;
- diversity: together the list covers different sides of the subject;
- retrieval value: it is a good search query for documents about the subject.
Accept or reject each one, with a one-line reason.

Answer as JSON: {{"verdicts": [{{"id": 1, "verdict": "accepted", "reason": "..."}}]}} with one
verdict per number, "accepted" or "rejected"."""

JUDGE = """\
Subject: "{subject}" in the field of {heading}.
Two experts each proposed subtopics, then each critiqued the other's list:
{topics}

You are the judge. Reject the subtopics that are:
- redundant: the weaker of a group of similar subtopics (keep the best one of each group);
- low coverage: too narrow or trivial to be worth documents of their own;
- low relevance: outside "{subject}".
Keep all others. Critiques are advice, not orders.

Answer as JSON: {{"rejected": [{{"id": 3, "category": "redundant", "reason": "..."}}]}}; an
empty list if every subtopic should stay. category is one of: {categories}."""

REPAIR = """\
Your answer could not be used: {problem}
Answer again with only the JSON object, in this shape: {shape}"""

JUDGE_CATEGORIES = ("redundant", "low_coverage", "low_relevance")


@dataclass(frozen=True)
class Step:
    """One kind of request: its template, the JSON schema of its answer and an example shape."""

    name: str
    template: str
    shape: str

    def schema(self, items: int) -> dict[str, Any]:
        return _SCHEMAS[self.name](items)


def _propose_schema(items: int) -> dict[str, Any]:
    topic = _object(
        topic={"type": "string", "minLength": 1, "maxLength": TOPIC_MAX_CHARS},
        explanation={"type": "string", "maxLength": REASON_MAX_CHARS},
    )
    return _object(topics={"type": "array", "items": topic, "minItems": 1, "maxItems": items})


def _critique_schema(items: int) -> dict[str, Any]:
    verdict = _object(
        id={"type": "integer", "minimum": 1, "maximum": items},
        verdict={"type": "string", "enum": ["accepted", "rejected"]},
        reason={"type": "string", "maxLength": REASON_MAX_CHARS},
    )
    return _object(verdicts={"type": "array", "items": verdict, "maxItems": items})


def _judge_schema(items: int) -> dict[str, Any]:
    rejection = _object(
        id={"type": "integer", "minimum": 1, "maximum": items},
        category={"type": "string", "enum": list(JUDGE_CATEGORIES)},
        reason={"type": "string", "maxLength": REASON_MAX_CHARS},
    )
    return _object(rejected={"type": "array", "items": rejection, "maxItems": items})


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object with every property required (what OpenAI's strict mode demands)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_SCHEMAS = {"propose": _propose_schema, "critique": _critique_schema, "judge": _judge_schema}

PROPOSE_STEP = Step("propose", PROPOSE, '{"topics": [{"topic": "...", "explanation": "..."}]}')
CRITIQUE_STEP = Step(
    "critique", CRITIQUE, '{"verdicts": [{"id": 1, "verdict": "accepted", "reason": "..."}]}'
)
JUDGE_STEP = Step(
    "judge", JUDGE, '{"rejected": [{"id": 3, "category": "redundant", "reason": "..."}]}'
)
