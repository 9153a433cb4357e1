"""Mode nextlong (NExtLong, arXiv 2501.12766): meta-chunks each followed by hard negatives
(`samples`: plan, claim, fill), found by BM25 or dense embeddings (`negatives`; the encoder,
the persisted vectors and faiss in `embeddings`, which imports torch only when used)."""

from .embeddings import DEFAULT_MODEL, EmbeddingModelUnavailable
from .negatives import Bm25Negatives, DenseNegatives, NegativeSource, Query
from .samples import Plan, claim, fill, plan_topic

__all__ = [
    "DEFAULT_MODEL",
    "Bm25Negatives",
    "DenseNegatives",
    "EmbeddingModelUnavailable",
    "NegativeSource",
    "Plan",
    "Query",
    "claim",
    "fill",
    "plan_topic",
]
