"""Topic hygiene: clean text, 1-12 words, no (near-)duplicates within a subject, more specific
than the taxonomy's own labels, and a retrieval query that anchors the topic in its subject."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MIN_WORDS = 1
MAX_WORDS = 12
NEAR_DUPLICATE_JACCARD = 0.8

_LEADING_MARKS = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,3}[.):]|[a-z][.)])\s*", re.IGNORECASE)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
_NON_WORD = re.compile(r"[^\w]+")
_STOPWORDS = frozenset(
    {
        *("a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or"),
        *("the", "to", "with", "within", "its", "their", "general", "other", "others"),
        "miscellaneous",
    }
)


def clean_topic(text: str) -> str:
    """Whitespace collapsed, list marks, quotes and trailing punctuation removed."""
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())
    text = _LEADING_MARKS.sub("", text)
    text = text.strip(_QUOTES + " ").rstrip(".;:,!").strip(_QUOTES + " ")
    return text


def word_count(text: str) -> int:
    return len(text.split())


def problem_with(topic: str) -> str | None:
    """Why a cleaned topic is unusable, or None."""
    words = word_count(topic)
    if words < MIN_WORDS or not _NON_WORD.sub("", topic):
        return "empty"
    if words > MAX_WORDS:
        return "too_many_words"
    return None


def _stem(word: str) -> str:
    """Plural to singular, roughly: enough to match "Black Holes" with "black hole"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def topic_key(topic: str) -> frozenset[str]:
    """Content words, lower case, crudely singular: what two phrasings of a topic share."""
    words = (_stem(word) for word in _NON_WORD.sub(" ", topic.lower()).split())
    return frozenset(word for word in words if word not in _STOPWORDS)


def is_near_duplicate(key: frozenset[str], other: frozenset[str]) -> bool:
    if key == other:
        return True
    if not key or not other:
        return False
    return len(key & other) / len(key | other) >= NEAR_DUPLICATE_JACCARD


def label_problem(
    topic: str, subject: str, parents: Sequence[str], siblings: Sequence[str]
) -> str | None:
    """Why a topic is only a taxonomy label, or None: its content words are all words of (or
    nearly equal to) its subject's label, a parent's or a sibling's. Such a topic ("Mathematics"
    in MATHEMATICS / General) retrieves the same generic documents as the label itself, so it is
    rejected by rule before the judge sees it."""
    key = topic_key(topic)
    if not key:
        return None
    groups = (("same_as_subject", [subject]), ("same_as_parent", parents))
    for reason, labels in (*groups, ("same_as_sibling", siblings)):
        for label in labels:
            other = topic_key(label)
            if other and (key <= other or is_near_duplicate(key, other)):
                return reason
    return None


def retrieval_query(topic: str, subject_name: str) -> str:
    """The topic plus the subject's own words, free of query-syntax characters.

    "Black hole thermodynamics" in "Astronomy" → "Black hole thermodynamics astronomy"; "General"
    and words already in the topic are not repeated.
    """
    topic_words = _NON_WORD.sub(" ", topic).split()
    seen = {word.lower() for word in topic_words}
    extra = []
    for word in _NON_WORD.sub(" ", subject_name).split():
        lowered = word.lower()
        if lowered not in seen and lowered not in _STOPWORDS:
            seen.add(lowered)
            extra.append(lowered)
    return " ".join(topic_words + extra).replace("_", " ")
