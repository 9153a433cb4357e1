"""Corpus reading: JSON Lines and Parquet over fsspec, normalised, filtered, deduplicated."""

from .normalize import content_digest, normalize_text
from .reader import (
    Columns,
    Document,
    corpus_files,
    read_batches,
    read_columns,
    read_shard,
    shard_files,
)
from .skips import REASONS, SkipCounter
from .sources import CorpusFile, CorpusReadError, InvalidCorpus

__all__ = [
    "REASONS",
    "Columns",
    "CorpusFile",
    "CorpusReadError",
    "Document",
    "InvalidCorpus",
    "SkipCounter",
    "content_digest",
    "corpus_files",
    "normalize_text",
    "read_batches",
    "read_columns",
    "read_shard",
    "shard_files",
]
