"""SynthesisRun: topics x index → long samples of exactly `targetTokens` tokens.

The stage (`stage`) drives `assembly/` (modes litelong and standard), `nextlong/` (mode
nextlong) and, after the commit, `report/`; samples are written through `litelong.dataset`.
"""

from .nextlong import EmbeddingModelUnavailable
from .stage import ModeUnavailable, after_commit, build_part

__all__ = [
    "EmbeddingModelUnavailable",
    "ModeUnavailable",
    "after_commit",
    "build_part",
]
