"""Text as Manticore must see it: sanitised, tokenised into an OR query, escaped twice.

The client returns empty hits for text with control or zero-width characters, so both indexed
and query text go through `normalize_text` first. A BM25 query is a bag of words ("any term
may match"), while Manticore's default is "every term must match": the query is rewritten to
`w1 | w2 | ...`, each word escaped for the query syntax, and the whole for a SQL string literal.
"""

from __future__ import annotations

import re

from ...corpus import normalize_text

#: Manticore's full-text query operators (manual: "Escaping characters in query string").
QUERY_SYNTAX = frozenset("\\()|-!@~\"&/^$=<>[]*?':+%")
#: letters and digits: `_` separates words, as in Manticore's default charset_table and tantivy
_WORD = re.compile(r"[^\W_]+")
#: a meta-chunk of NExtLong is ~2,048 characters; more distinct words add little to BM25
MAX_QUERY_WORDS = 512


def sanitize(text: str) -> str:
    """The same characters the embedded backend indexes (see `normalize_text`)."""
    return normalize_text(text)


def escape_query(word: str) -> str:
    """`word` with every query-syntax character backslash-escaped: matched as plain text."""
    return "".join("\\" + char if char in QUERY_SYNTAX else char for char in word)


def sql_string(text: str) -> str:
    """A single-quoted SQL literal (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def query_words(query: str) -> list[str]:
    """Distinct words of a free-text query, lowercased, in order of first appearance."""
    words = dict.fromkeys(word.lower() for word in _WORD.findall(sanitize(query)))
    return list(words)[:MAX_QUERY_WORDS]


def match_expression(query: str) -> str:
    """The full-text expression for MATCH(): any word may match; '' when there is none."""
    return " | ".join(escape_query(word) for word in query_words(query))
