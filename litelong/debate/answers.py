"""Reading model answers leniently: JSON in code fences or prose, a list where an object was
asked, `"yes"` for `"accepted"`. What still does not fit raises `UnusableAnswer` with a reason
that goes back to the model in the one repair request.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class UnusableAnswer(ValueError):
    """The answer holds no JSON of the expected shape."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProposedTopic(_Answer):
    topic: str
    explanation: str = ""

    @field_validator("explanation", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else str(value)


class Proposal(_Answer):
    topics: list[ProposedTopic] = Field(min_length=1)

    @field_validator("topics", mode="before")
    @classmethod
    def _bare_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"topic": item} if isinstance(item, str) else item for item in value]
        return value


_ACCEPT = {"accepted", "accept", "yes", "true", "keep", "approved", "ok"}
_REJECT = {"rejected", "reject", "no", "false", "drop", "remove"}


class Verdict(_Answer):
    id: int
    verdict: Literal["accepted", "rejected"]
    reason: str = ""

    @field_validator("verdict", mode="before")
    @classmethod
    def _synonyms(cls, value: Any) -> Any:
        word = str(value).strip().lower()
        if word in _ACCEPT:
            return "accepted"
        if word in _REJECT:
            return "rejected"
        return value


class Critique(_Answer):
    verdicts: list[Verdict]


class Rejection(_Answer):
    id: int
    category: str = "other"
    reason: str = ""


class JudgeAnswer(_Answer):
    rejected: list[Rejection]


A = TypeVar("A", bound=_Answer)


def parse_answer(text: str, model: type[A]) -> A:
    """The answer as `model`, or UnusableAnswer saying what was wrong."""
    data = extract_json(text)
    key = next(iter(model.model_fields))
    if isinstance(data, list):  # a bare list where {"key": [...]} was asked
        data = {key: data}
    elif isinstance(data, dict) and key not in data:
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(lists) == 1:  # {"subtopics": [...]} for {"topics": [...]}
            data = {key: lists[0]}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'answer'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise UnusableAnswer(f"JSON does not match the expected shape ({problems})") from None


def extract_json(text: str) -> Any:
    """The first JSON object or array in `text`, inside code fences or surrounded by prose."""
    stripped = text.strip()
    if not stripped:
        raise UnusableAnswer("the answer is empty")
    candidates = [stripped, *(match.strip() for match in _FENCE.findall(stripped))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for start, char in enumerate(stripped):
        if char in "{[":
            try:
                return decoder.raw_decode(stripped, start)[0]
            except ValueError:
                continue
    raise UnusableAnswer("the answer holds no valid JSON object")
