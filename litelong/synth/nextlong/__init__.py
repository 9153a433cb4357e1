"""Mode nextlong (NExtLong, arXiv 2501.12766): meta-chunks each followed by hard negatives
(`samples`: plan, claim, fill), found by BM25 or dense embeddings (`negatives`; the encoder,
the persisted vectors and faiss in `embeddings`, which imports torch only when used);
meta-chunks' token ids cut from their documents' (`slicing`)."""

from .embeddings import DEFAULT_MODEL, EmbeddingModelUnavailable
from .negatives import (
    QUERY_POSTINGS,
    QUERY_TERMS,
    Bm25Negatives,
    DenseNegatives,
    NegativeSource,
    Query,
)
from .samples import Plan, TextSpill, claim, fill, plan_topics
from .slicing import ChunkSlicer

__all__ = [
    "DEFAULT_MODEL",
    "QUERY_POSTINGS",
    "QUERY_TERMS",
    "Bm25Negatives",
    "ChunkSlicer",
    "DenseNegatives",
    "EmbeddingModelUnavailable",
    "NegativeSource",
    "Plan",
    "Query",
    "TextSpill",
    "claim",
    "fill",
    "plan_topics",
]
