"""SynthesisRun: topics x index → long samples of exactly `targetTokens` tokens."""

from ..dataset.sample import Sample, Span
from ..tokenizer import TokenizerUnavailable, load_tokenizer
from .nextlong import EmbeddingModelUnavailable
from .stage import ModeUnavailable, after_commit, build_part

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
