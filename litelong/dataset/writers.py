"""SynthesisRun outputs: samples streamed to JSONL, Parquet or MDS shards, plus `metadata.parquet`.

Every writer holds at most a bounded batch of samples (a Parquet row group of at most 64 samples
or 64 MiB; one sample for MDS, whose shard grows in a temporary file) and rolls to a new file
before the current one would pass `shard_size_bytes`; a sample larger than the limit gets a file
of its own. `metadata.parquet` is written for every format:
it is all the report reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .mds import MdsWriter
from .sample import Sample
from .writer_base import METADATA_FILE, SampleWriter, WriterStats

__all__ = ["FORMATS", "METADATA_FILE", "Format", "SampleWriter", "WriterStats", "open_writer"]

Format = Literal["jsonl", "parquet", "mds"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet", "mds")

_SAMPLES_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "num_tokens": pa.int32(),
    "topic": pa.string(),
    "subject_code": pa.string(),
    "heading": pa.string(),
    "query": pa.string(),
    "doc_ids": pa.list_(pa.string()),
    "spans": pa.list_(pa.list_(pa.int32())),
    "truncated": pa.list_(pa.bool_()),
    "roles": pa.list_(pa.string()),
    "input_ids": pa.list_(pa.uint32()),
}
SAMPLES_SCHEMA = pa.schema(_SAMPLES_COLUMNS)

# Row groups: bounded in rows and bytes, so a writer's memory does not depend on the run's size.
ROW_GROUP_SAMPLES = 64
ROW_GROUP_BYTES = 64 << 20

# Parquet overhead not in the per-sample estimate: magic, schema and footer, and per row group
# the column chunk metadata and page headers. Measured at about 3.5 KiB and 1 KiB; doubled.
_PARQUET_FILE_OVERHEAD = 8 << 10
_PARQUET_ROW_GROUP_OVERHEAD = 4 << 10


def open_writer(
    format: Format, folder: Path, shard_size_bytes: int, roles: bool = False
) -> SampleWriter:
    """A writer of `format` into `folder` (created if missing); use it as a context manager.

    JSONL and Parquet always hold each span's role; MDS adds a `roles` column when asked."""
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r}: expected one of {FORMATS}")
    if shard_size_bytes <= 0:
        raise ValueError(f"shard_size_bytes must be positive, got {shard_size_bytes}")
    writers: dict[str, type[SampleWriter]] = {
        "jsonl": _JsonlWriter,
        "parquet": _ParquetWriter,
        "mds": MdsWriter,
    }
    return writers[format](Path(folder), shard_size_bytes, roles)


def _record(sample: Sample) -> dict[str, Any]:
    """The text-and-metadata fields shared by JSONL and Parquet."""
    return {
        "id": sample.id,
        "text": sample.text,
        "num_tokens": sample.num_tokens,
        "topic": sample.topic,
        "subject_code": sample.subject_code,
        "heading": sample.heading,
        "query": sample.query,
        "doc_ids": sample.doc_ids,
        "spans": [[span.start, span.end] for span in sample.spans],
        "truncated": [span.truncated for span in sample.spans],
        "roles": [span.role for span in sample.spans],
    }


# -- JSONL -----------------------------------------------------------------------------------


class _JsonlWriter(SampleWriter):
    def __init__(self, folder: Path, shard_size_bytes: int, roles: bool = False) -> None:
        super().__init__(folder, shard_size_bytes, roles)
        self._file: BinaryIO | None = None
        self._file_bytes = 0

    def _write(self, sample: Sample) -> None:
        line = orjson.dumps(_record(sample)) + b"\n"
        if self._file is not None and self._file_bytes + len(line) > self.shard_size_bytes:
            self._close_file()
        if self._file is None:
            self._file = (self.folder / self._next_name("jsonl")).open("wb")
            self._file_bytes = 0
        self._file.write(line)
        self._file_bytes += len(line)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _finish(self) -> None:
        self._close_file()

    def _abort(self) -> None:
        self._close_file()


# -- Parquet ---------------------------------------------------------------------------------


class _ParquetWriter(SampleWriter):
    """Rolls on a conservative estimate: the bytes already in the file, the pending row group
    uncompressed, and the footer; zstd only makes the file smaller than that."""

    def __init__(self, folder: Path, shard_size_bytes: int, roles: bool = False) -> None:
        super().__init__(folder, shard_size_bytes, roles)
        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._row_groups = 0
        self._pending: list[Sample] = []
        self._pending_bytes = 0

    def _write(self, sample: Sample) -> None:
        size = _parquet_estimate(sample)
        if self._sink is not None:
            pending_groups = self._row_groups + 1
            projected = (
                self._sink.tell()
                + self._pending_bytes
                + size
                + _PARQUET_FILE_OVERHEAD
                + _PARQUET_ROW_GROUP_OVERHEAD * pending_groups
            )
            if projected > self.shard_size_bytes:
                self._close_file()
        if self._sink is None:
            self._sink = pa.OSFile(str(self.folder / self._next_name("parquet")), "wb")
            self._writer = pq.ParquetWriter(
                self._sink, SAMPLES_SCHEMA, compression="zstd", write_statistics=False
            )
            self._row_groups = 0
        self._pending.append(sample)
        self._pending_bytes += size
        if len(self._pending) >= ROW_GROUP_SAMPLES or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        assert self._writer is not None
        records = [_record(sample) for sample in self._pending]
        columns: dict[str, Any] = {
            name: [record[name] for record in records] for name in SAMPLES_SCHEMA.names[:-1]
        }
        columns["input_ids"] = _list_array([sample.input_ids for sample in self._pending])
        self._writer.write_table(pa.table(columns, schema=SAMPLES_SCHEMA))
        self._row_groups += 1
        self._pending = []
        self._pending_bytes = 0

    def _close_file(self) -> None:
        self._flush()
        self._abort()

    def _finish(self) -> None:
        self._close_file()

    def _abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        self._pending = []
        self._pending_bytes = 0


def _parquet_estimate(sample: Sample) -> int:
    """Plain-encoded size: 4 bytes per token and span bound, strings with their length prefix."""
    strings = [sample.id, sample.text, sample.topic, sample.subject_code, sample.heading]
    strings += [sample.query, *sample.doc_ids, *(span.role for span in sample.spans)]
    text = sum(len(value.encode()) + 4 for value in strings)
    return 4 * sample.num_tokens + 9 * len(sample.spans) + text + 64


def _list_array(arrays: list[np.ndarray]) -> pa.ListArray:
    """list<uint32> from numpy arrays without a Python int per token."""
    offsets = np.zeros(len(arrays) + 1, np.int32)
    np.cumsum([array.size for array in arrays], out=offsets[1:])
    values = pa.array(np.concatenate(arrays), pa.uint32())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
