"""SynthesisRun: topics x index → long samples of exactly `targetTokens` tokens."""

from .embeddings import EmbeddingModelUnavailable
from .sample import Sample, Span
from .stage import ModeUnavailable, after_commit, build_part
from .tokenizer import TokenizerUnavailable, load_tokenizer

__all__ = [
    "EmbeddingModelUnavailable",
    "ModeUnavailable",
    "Sample",
    "Span",
    "TokenizerUnavailable",
    "after_commit",
    "build_part",
    "load_tokenizer",
]
