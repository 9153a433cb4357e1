"""A set of 64-bit keys whose memory does not grow with the corpus: exact dedup at any size.

Indexing keeps one content key and one id key per document to drop duplicates. As Python sets
they cost about 60 bytes a key: 600 MB at 5M documents, 23 GB at FineWeb-Edu's 190M. Here the
newest `memory_keys` keys live in a Python set; when it fills, its keys are sorted into a run
(a `uint64` file, memory-mapped) in a temporary folder. Runs of similar size are merged, as in
a log-structured merge tree, so a corpus of n keys has at most log2(n / memory_keys) + 1 runs
and each key is rewritten about that many times. A batch of keys is looked up in each run with
one `searchsorted`. The file-backed pages a lookup touches are clean page cache the kernel can
drop, not heap: resident memory stays near the set's bound however large the corpus.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: keys held in memory before spilling: about 35 MB as a Python set
MEMORY_KEYS = 1 << 19
_MASK = (1 << 64) - 1
_MERGE_CHUNK = 1 << 20


class SpillingKeySet:
    """Tells, for keys in arrival order, which are seen for the first time. Memory holds at
    most `memory_keys` keys plus one batch."""

    def __init__(self, memory_keys: int | None = None, folder: Path | None = None) -> None:
        self._memory_keys = memory_keys or MEMORY_KEYS
        self._recent: set[int] = set()
        self._runs: list[np.ndarray] = []
        self._parent = folder
        self._folder: Path | None = None
        self._files = 0

    def __len__(self) -> int:
        return len(self._recent) + sum(len(run) for run in self._runs)

    @property
    def runs(self) -> int:
        """How many sorted runs are on disk (for tests and progress)."""
        return len(self._runs)

    def first_seen(self, keys: Sequence[int]) -> list[bool]:
        """For each key, in order: True the first time it is seen (and remember it)."""
        keys = [key & _MASK for key in keys]
        on_disk = self._on_disk(keys)
        recent = self._recent
        batch = set(keys)
        if len(batch) == len(keys) and not any(on_disk) and recent.isdisjoint(batch):
            # the usual batch, all new: set operations in C, no Python step a key
            recent |= batch
            if len(recent) >= self._memory_keys:
                self._spill()
            return [True] * len(keys)
        new: list[bool] = []
        for key, old in zip(keys, on_disk, strict=True):
            if old or key in recent:
                new.append(False)
                continue
            recent.add(key)
            new.append(True)
        if len(recent) >= self._memory_keys:  # after the batch: its lookups saw every run
            self._spill()
        return new

    def _on_disk(self, keys: list[int]) -> list[bool]:
        if not self._runs or not keys:
            return [False] * len(keys)
        wanted = np.fromiter(keys, dtype=np.uint64, count=len(keys))
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            places = np.searchsorted(run, wanted)
            inside = places < len(run)
            found[inside] |= run[places[inside]] == wanted[inside]
        return found.tolist()

    def _spill(self) -> None:
        run = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        run.sort()
        self._recent = set()
        self._runs.append(self._write(run))
        while len(self._runs) >= 2 and len(self._runs[-1]) * 2 >= len(self._runs[-2]):
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(self._merge(older, newer))
            self._remove(older)
            self._remove(newer)

    def _merge(self, older: np.ndarray, newer: np.ndarray) -> np.ndarray:
        """One sorted run of two, `_MERGE_CHUNK` keys of `older` at a time, so a merge holds
        a chunk in memory, not the runs (keys are never in two runs)."""
        path = self._path()
        merged = np.memmap(path, dtype=np.uint64, mode="w+", shape=(len(older) + len(newer),))
        written = taken = 0
        for start in range(0, len(older), _MERGE_CHUNK):
            chunk = older[start : start + _MERGE_CHUNK]
            last = start + _MERGE_CHUNK >= len(older)
            end = len(newer) if last else int(np.searchsorted(newer, chunk[-1], side="right"))
            part = np.concatenate([chunk, newer[taken:end]])
            part.sort()
            merged[written : written + len(part)] = part
            written, taken = written + len(part), end
        merged.flush()
        del merged
        return np.memmap(path, dtype=np.uint64, mode="r")

    def _write(self, keys: np.ndarray) -> np.ndarray:
        path = self._path()
        keys.astype(np.uint64).tofile(path)
        return np.memmap(path, dtype=np.uint64, mode="r")

    def _path(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="litelong-keys-", dir=self._parent))
        self._files += 1
        return self._folder / f"run-{self._files:06d}.u64"

    @staticmethod
    def _remove(run: np.ndarray) -> None:
        filename = getattr(run, "filename", None)
        del run
        if filename:
            Path(filename).unlink(missing_ok=True)

    def close(self) -> None:
        """Forget every key and delete the runs' files."""
        self._recent = set()
        self._runs = []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> SpillingKeySet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
