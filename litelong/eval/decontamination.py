"""Decontamination: does the evaluation's text occur in the model's training data?

Token n-grams (13, as GPT-3's and Llama's contamination studies used) of every sample's
context and hidden text are looked up among the n-grams of the TrainingJob's samples (the
SynthesisRun it trained on). A sample counts as contaminated when any of its n-grams is found;
the report says which tasks, how many samples, and shows the first overlapping text. A topical
haystack drawn from the index the training data came from is expected to overlap: that is what
the task is about, and the report says so rather than hiding it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NGRAM = 13
_PRIME = np.uint64(1_000_003)
_CHUNK = 1 << 20


def ngram_hashes(ids: np.ndarray, n: int = NGRAM) -> np.ndarray:
    """A 64-bit polynomial hash of every window of `n` tokens (wrapping arithmetic)."""
    ids = np.asarray(ids, dtype=np.uint64)
    if ids.size < n:
        return np.zeros(0, dtype=np.uint64)
    powers = _PRIME ** np.arange(n - 1, -1, -1, dtype=np.uint64)
    out = []
    for first in range(0, ids.size - n + 1, _CHUNK):
        windows = np.lib.stride_tricks.sliding_window_view(ids[first : first + _CHUNK + n - 1], n)
        with np.errstate(over="ignore"):
            out.append((windows * powers).sum(axis=1, dtype=np.uint64))
    return np.concatenate(out)


class TrainingNgrams:
    """The set of n-gram hashes of a training set, sorted for lookups."""

    def __init__(self, sequences: Iterable[np.ndarray], n: int = NGRAM) -> None:
        self.n = n
        parts, self.tokens = [], 0
        for sequence in sequences:
            parts.append(np.unique(ngram_hashes(sequence, n)))
            self.tokens += len(sequence)
        self.hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)

    def found(self, ids: np.ndarray) -> np.ndarray:
        """Start positions in `ids` of n-grams that occur in the training data."""
        hashes = ngram_hashes(ids, self.n)
        if hashes.size == 0 or self.hashes.size == 0:
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self.hashes, hashes).clip(max=self.hashes.size - 1)
        return np.flatnonzero(self.hashes[at] == hashes)
