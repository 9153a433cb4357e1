"""Training sequences from a committed SynthesisRun: MDS (`input_ids` + `indices`, the document
spans) or Parquet (`input_ids` + `spans`), read part by part through the artifact store.

A sample of T tokens gives floor(T / contextLength) sequences (windows), each with the token
after it as its last label where there is one (a sample of exactly contextLength tokens, what
a SynthesisRun with targetTokens = contextLength makes, is one window whose last token has no
label); the order of windows
is a seeded permutation, one per epoch, so the sequence any rank reads at any step is a pure
function of (seed, step): a resumed run reads exactly what the killed one would have.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..dataset.mds import MDS_INDEX, mds_decode_sample
from ..skips import SkipCounter
from ..store import Artifact


class UnreadableSamples(ValueError):
    """The SynthesisRun output holds no format the trainer reads, or too few tokens."""


@dataclass(frozen=True)
class Sequence:
    """One training sequence: `length + 1` tokens (inputs and next-token labels; `length` when
    the sample ends there) and the spans of its documents, relative to the window."""

    sample_id: str
    tokens: np.ndarray
    spans: list[tuple[int, int]]


@dataclass(frozen=True)
class _Window:
    source: int  # index into TrainingData._sources
    row: int  # sample within the source
    start: int  # first token


class _Source:
    """One file of samples, read by row on demand (the last file's decoded rows are cached)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind

    def lengths(self) -> list[int]:
        if self.kind == "parquet":
            table = pq.read_table(self.path, columns=["input_ids"])
            return [len(row or ()) for row in table.column("input_ids").to_pylist()]
        return [np.asarray(row["input_ids"]).shape[0] for row in self._mds_rows()]

    def read(self, row: int) -> tuple[str, np.ndarray, list[tuple[int, int]]]:
        if self.kind == "parquet":
            record = _parquet_rows(self.path)[row]
            return record
        sample = self._mds_rows()[row]
        spans = [(int(a), int(b)) for a, b in np.asarray(sample["indices"]).reshape(-1, 2)]
        return str(sample["id"]), np.asarray(sample["input_ids"]), spans

    def _mds_rows(self) -> list[dict[str, object]]:
        return _mds_shard(self.path)


@functools.lru_cache(maxsize=2)
def _mds_shard(path: Path) -> list[dict[str, object]]:
    data = path.read_bytes()
    config = json.loads((path.parent / MDS_INDEX).read_bytes())
    shard = next(s for s in config["shards"] if s["raw_data"]["basename"] == path.name)
    count = int(np.frombuffer(data, "<u4", 1)[0])
    offsets = np.frombuffer(data, "<u4", count + 1, 4).tolist()
    columns = list(zip(shard["column_names"], shard["column_encodings"], strict=True))
    sizes = shard["column_sizes"]
    return [
        mds_decode_sample(data[begin:end], columns, sizes)
        for begin, end in itertools.pairwise(offsets)
    ]


@functools.lru_cache(maxsize=2)
def _parquet_rows(path: Path) -> list[tuple[str, np.ndarray, list[tuple[int, int]]]]:
    table = pq.read_table(path, columns=["id", "input_ids", "spans"])
    return [
        (str(sid), np.asarray(ids, np.uint32), [(int(a), int(b)) for a, b in spans or ()])
        for sid, ids, spans in zip(
            table.column("id").to_pylist(),
            table.column("input_ids").to_pylist(),
            table.column("spans").to_pylist(),
            strict=True,
        )
    ]


def _sources(folder: Path) -> list[_Source]:
    index = folder / MDS_INDEX
    if index.exists():
        shards = json.loads(index.read_bytes())["shards"]
        columns = set(shards[0]["column_names"]) if shards else set()
        if shards and not {"input_ids", "indices"} <= columns:
            raise UnreadableSamples(f"{folder}: MDS without input_ids and indices columns")
        return [_Source(folder / s["raw_data"]["basename"], "mds") for s in shards]
    files = sorted(folder.glob("samples-*.parquet"))
    if files:
        return [_Source(path, "parquet") for path in files]
    if any(folder.glob("samples-*.jsonl")):
        raise UnreadableSamples(
            f"{folder}: JSONL output holds text, not token ids; train on output.format mds "
            "or parquet"
        )
    return []


class TrainingData:
    """Every window of `length` tokens in a committed SynthesisRun output."""

    def __init__(self, artifact: Artifact, length: int, seed: int) -> None:
        manifest = artifact.committed_manifest()
        if manifest is None:
            raise UnreadableSamples(f"{artifact} is not committed")
        self.length, self.seed = length, seed
        self.skips = SkipCounter()
        self._sources: list[_Source] = []
        self._windows: list[_Window] = []
        for record in sorted(manifest.parts, key=lambda part: part.shard):
            for source in _sources(artifact.local_part(record)):
                self._sources.append(source)
                for row, tokens in enumerate(source.lengths()):
                    count = tokens // length
                    if count == 0:
                        self.skips.skip("shorter_than_context", f"{source.path.name}#{row}")
                    for window in range(count):
                        self._windows.append(_Window(len(self._sources) - 1, row, window * length))
        if not self._windows:
            raise UnreadableSamples(f"{artifact}: no sample holds contextLength = {length} tokens")

    def __len__(self) -> int:
        return len(self._windows)

    def sequence(self, index: int) -> Sequence:
        """The `index`-th sequence of the training order (epochs repeat, reshuffled)."""
        epoch, position = divmod(index, len(self._windows))
        order = _permutation(len(self._windows), self.seed, epoch)
        window = self._windows[int(order[position])]
        sample_id, ids, spans = self._sources[window.source].read(window.row)
        start, end = window.start, window.start + self.length + 1
        local = [
            (max(a, start) - start, min(b, end) - start) for a, b in spans if b > start and a < end
        ]
        return Sequence(f"{sample_id}@{start}", np.asarray(ids[start:end], np.int64), local)


@functools.lru_cache(maxsize=4)
def _permutation(size: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(size)
