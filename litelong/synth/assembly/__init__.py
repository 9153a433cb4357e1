"""Modes litelong and standard: a topic's retrieved documents (`candidates`), long ones cut into
pieces (`pieces`), tokenized once and concatenated into samples of exactly `targetTokens`
tokens (`assemble`)."""

from .assemble import (
    FETCH_BATCH,
    FIRST_FETCH_BATCH,
    GIVE_UP,
    MIN_FETCH_BATCH,
    Built,
    Separator,
    Tokenized,
    TokenizedDocuments,
    cut_to_fit,
    fill_samples,
)
from .candidates import (
    Candidates,
    ClaimTable,
    Topic,
    claims,
    debate_topics,
    seed_of,
    standard_topics,
)
from .pieces import PIECE_CHARS_PER_TOKEN, Claim, document_of, piece_bounds, pieces_for

__all__ = [
    "FETCH_BATCH",
    "FIRST_FETCH_BATCH",
    "GIVE_UP",
    "MIN_FETCH_BATCH",
    "PIECE_CHARS_PER_TOKEN",
    "Built",
    "Candidates",
    "Claim",
    "ClaimTable",
    "Separator",
    "Tokenized",
    "TokenizedDocuments",
    "Topic",
    "claims",
    "cut_to_fit",
    "debate_topics",
    "document_of",
    "fill_samples",
    "piece_bounds",
    "pieces_for",
    "seed_of",
    "standard_topics",
]
