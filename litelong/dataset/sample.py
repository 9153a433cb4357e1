"""A long sample: exactly `targetTokens` token ids, the text they come from, and the span of
every document in it. Writers and the report read only this."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Span:
    """One document's tokens in a sample: `[start, end)`, including the separator after it, so
    the spans of a sample tile it exactly (what document masking needs)."""

    doc_id: str
    start: int
    end: int
    truncated: bool = False  # the document crossed the budget and was cut to fit
    role: str = "doc"  # doc; in mode nextlong: meta or negative
    score: float | None = None  # a negative's similarity to its meta-chunk (BM25 or cosine)


@dataclass
class Sample:
    id: str  # stable: "<subject code>/<topic number>/<sample number>" or "standard/<n>/<k>"
    input_ids: np.ndarray  # uint32, length targetTokens
    text: str  # the documents' text joined by the separator, cut where the tokens end
    spans: list[Span]
    topic: str = ""
    subject_code: str = ""
    heading: str = ""
    query: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @cached_property
    def token_hash(self) -> bytes:
        """`token_hash(input_ids)`, computed once: the stage's duplicate check and the
        writer's metadata both ask for it (blake2b of 512 KB at 128K tokens)."""
        return token_hash(self.input_ids)

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def doc_ids(self) -> list[str]:
        return [span.doc_id for span in self.spans]


def token_hash(input_ids: np.ndarray) -> bytes:
    """A sample's identity by content: blake2b-128 of its uint32 token ids."""
    return hashlib.blake2b(
        np.ascontiguousarray(input_ids, np.uint32).tobytes(), digest_size=16
    ).digest()
