"""The contract every SynthesisRun writer keeps, and the `metadata.parquet` each one writes.

Apart from `writers.py` so that a format module (`mds.py`) can subclass `SampleWriter` while
`writers.py` imports it for `open_writer`, with no import cycle.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .sample import Sample

METADATA_FILE = "metadata.parquet"

_METADATA_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "topic": pa.string(),
    "subject_code": pa.string(),
    "heading": pa.string(),
    "query": pa.string(),
    "num_tokens": pa.int32(),
    "doc_ids": pa.list_(pa.string()),
    "starts": pa.list_(pa.int32()),
    "ends": pa.list_(pa.int32()),
    "truncated": pa.list_(pa.bool_()),
    "roles": pa.list_(pa.string()),
    "scores": pa.list_(pa.float32()),
    "token_hash": pa.string(),  # blake2b-128 of input_ids, hex: what duplicate checks compare
}
METADATA_SCHEMA = pa.schema(_METADATA_COLUMNS)

# A row group ends at this many rows or document entries (spans), whichever comes first, so a
# writer's memory depends neither on the run's size nor on the samples' length: a 128K-token
# sample holds some 400 documents, about 50 KB as the Python objects buffered here, and 64K
# entries are about 10 MB.
METADATA_ROW_GROUP = 4096
METADATA_ROW_GROUP_SPANS = 1 << 16


@dataclass
class WriterStats:
    """What a writer wrote: `files` are names relative to its folder, `bytes` their total size."""

    samples: int = 0
    tokens: int = 0
    files: list[str] = field(default_factory=list)
    bytes: int = 0


class SampleWriter(ABC):
    """Streams samples into one folder. `close()` finishes the files and may be called again;
    leaving the `with` block on an exception only closes the handles (the part is debris)."""

    def __init__(self, folder: Path, shard_size_bytes: int, roles: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.shard_size_bytes = shard_size_bytes
        self.roles = roles  # formats that store roles only when asked (MDS) add them
        self._files: list[str] = []
        self._samples = 0
        self._tokens = 0
        self._stats: WriterStats | None = None
        self._metadata = _MetadataWriter(folder / METADATA_FILE)

    def write(self, sample: Sample) -> None:
        if self._stats is not None:
            raise RuntimeError("write() after close()")
        _check(sample)
        self._write(sample)
        self._metadata.write(sample)
        self._samples += 1
        self._tokens += sample.num_tokens

    def close(self) -> WriterStats:
        if self._stats is None:
            self._finish()
            self._metadata.close()
            files = [*self._files, METADATA_FILE]
            size = sum((self.folder / name).stat().st_size for name in files)
            self._stats = WriterStats(self._samples, self._tokens, files, size)
        return self._stats

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._stats is None:
            self._abort()
            self._metadata.abort()

    def _next_name(self, extension: str) -> str:
        name = f"samples-{len(self._files):05d}.{extension}"
        self._files.append(name)
        return name

    @abstractmethod
    def _write(self, sample: Sample) -> None: ...

    @abstractmethod
    def _finish(self) -> None: ...

    @abstractmethod
    def _abort(self) -> None: ...


def _check(sample: Sample) -> None:
    """Refuse what the formats cannot hold or would hold wrongly: a builder bug, not data."""
    ids = sample.input_ids
    if not isinstance(ids, np.ndarray) or ids.ndim != 1 or ids.dtype != np.uint32 or not ids.size:
        raise ValueError(f"{sample.id}: input_ids must be a non-empty 1-D uint32 array")
    spans = sample.spans
    if not spans or spans[0].start != 0 or spans[-1].end != ids.size:
        raise ValueError(f"{sample.id}: spans must cover [0, {ids.size})")
    for before, after in itertools.pairwise(spans):
        if before.end != after.start or before.start >= before.end:
            raise ValueError(f"{sample.id}: spans must tile the sample")


class _MetadataWriter:
    """One row per sample, in row groups of at most METADATA_ROW_GROUP rows; a group also ends
    once its rows hold METADATA_ROW_GROUP_SPANS document entries."""

    def __init__(self, path: Path) -> None:
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            str(path), METADATA_SCHEMA, compression="zstd"
        )
        self._rows: dict[str, list[Any]] = {name: [] for name in METADATA_SCHEMA.names}
        self._spans = 0

    def write(self, sample: Sample) -> None:
        row = {
            "id": sample.id,
            "topic": sample.topic,
            "subject_code": sample.subject_code,
            "heading": sample.heading,
            "query": sample.query,
            "num_tokens": sample.num_tokens,
            "doc_ids": sample.doc_ids,
            "starts": [span.start for span in sample.spans],
            "ends": [span.end for span in sample.spans],
            "truncated": [span.truncated for span in sample.spans],
            "roles": [span.role for span in sample.spans],
            "scores": [span.score for span in sample.spans],
            "token_hash": sample.token_hash.hex(),
        }
        for name, value in row.items():
            self._rows[name].append(value)
        self._spans += len(sample.spans)
        if len(self._rows["id"]) >= METADATA_ROW_GROUP or self._spans >= METADATA_ROW_GROUP_SPANS:
            self._flush()

    def _flush(self) -> None:
        if self._writer is not None and self._rows["id"]:
            self._writer.write_table(pa.table(self._rows, schema=METADATA_SCHEMA))
        self._rows = {name: [] for name in METADATA_SCHEMA.names}
        self._spans = 0

    def close(self) -> None:
        self._flush()
        self.abort()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
