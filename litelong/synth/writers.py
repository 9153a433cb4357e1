"""SynthesisRun outputs: samples streamed to JSONL, Parquet or MDS shards, plus `metadata.parquet`.

Every writer holds at most one output file's worth of samples (a Parquet row group, an MDS
shard) and rolls to a new file before the current one would pass `shard_size_bytes`; a sample
larger than the limit gets a file of its own. `metadata.parquet` is written for every format:
it is all the report reads.

MDS is mosaicml-streaming's format (version 2, uncompressed), written here so the CPU workers
need neither `streaming` nor the torch and torchvision it requires. For the same samples and
size limit the files are the bytes `streaming.MDSWriter` writes, except that a first sample
larger than the limit never leaves an empty shard before it. `read_mds` reads them back with
numpy alone.
"""

from __future__ import annotations

import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal, Self

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .sample import Sample

Format = Literal["jsonl", "parquet", "mds"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet", "mds")

METADATA_FILE = "metadata.parquet"
MDS_INDEX = "index.json"

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
}
METADATA_SCHEMA = pa.schema(_METADATA_COLUMNS)

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
METADATA_ROW_GROUP = 4096

# Parquet overhead not in the per-sample estimate: magic, schema and footer, and per row group
# the column chunk metadata and page headers. Measured at about 3.5 KiB and 1 KiB; doubled.
_PARQUET_FILE_OVERHEAD = 8 << 10
_PARQUET_ROW_GROUP_OVERHEAD = 4 << 10

# The MDS columns, in the sorted order MDSWriter stores them.
MDS_COLUMNS = {
    "id": "str",
    "indices": "ndarray:uint32",
    "input_ids": "ndarray:uint32",
    "subject_code": "str",
}


@dataclass
class WriterStats:
    """What a writer wrote: `files` are names relative to its folder, `bytes` their total size."""

    samples: int = 0
    tokens: int = 0
    files: list[str] = field(default_factory=list)
    bytes: int = 0


def open_writer(format: Format, folder: Path, shard_size_bytes: int) -> SampleWriter:
    """A writer of `format` into `folder` (created if missing); use it as a context manager."""
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r}: expected one of {FORMATS}")
    if shard_size_bytes <= 0:
        raise ValueError(f"shard_size_bytes must be positive, got {shard_size_bytes}")
    writers: dict[str, type[SampleWriter]] = {
        "jsonl": _JsonlWriter,
        "parquet": _ParquetWriter,
        "mds": _MdsWriter,
    }
    return writers[format](Path(folder), shard_size_bytes)


class SampleWriter(ABC):
    """Streams samples into one folder. `close()` finishes the files and may be called again;
    leaving the `with` block on an exception only closes the handles (the part is debris)."""

    def __init__(self, folder: Path, shard_size_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.shard_size_bytes = shard_size_bytes
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
    def __init__(self, folder: Path, shard_size_bytes: int) -> None:
        super().__init__(folder, shard_size_bytes)
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

    def __init__(self, folder: Path, shard_size_bytes: int) -> None:
        super().__init__(folder, shard_size_bytes)
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


# -- metadata.parquet ------------------------------------------------------------------------


class _MetadataWriter:
    """One row per sample, in row groups of METADATA_ROW_GROUP rows."""

    def __init__(self, path: Path) -> None:
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            str(path), METADATA_SCHEMA, compression="zstd"
        )
        self._rows: dict[str, list[Any]] = {name: [] for name in METADATA_SCHEMA.names}

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
        }
        for name, value in row.items():
            self._rows[name].append(value)
        if len(self._rows["id"]) >= METADATA_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._writer is not None and self._rows["id"]:
            self._writer.write_table(pa.table(self._rows, schema=METADATA_SCHEMA))
        self._rows = {name: [] for name in METADATA_SCHEMA.names}

    def close(self) -> None:
        self._flush()
        self.abort()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# -- MDS -------------------------------------------------------------------------------------
#
# A shard (streaming/base/format/mds/writer.py, encode_joint_shard):
#   uint32 n | uint32 offsets[n + 1] (from the file's start) | config JSON | n samples
# A sample (encode_sample): uint32 size of each variable-size column, then each column's bytes.
# `ndarray:<dtype>` without a shape (encodings.py, NDArray.encode): one byte ndim << 2 | k,
# the shape as uint8/16/32/64 (k = 0..3, the smallest that holds the largest dimension), then
# the values. Little-endian throughout, as numpy writes on every platform we run on.

_SHAPE_DTYPES = ("<u1", "<u2", "<u4", "<u8")
_VALUE_DTYPES = {
    8: "uint8",
    9: "int8",
    16: "uint16",
    17: "int16",
    18: "float16",
    32: "uint32",
    33: "int32",
    34: "float32",
    64: "uint64",
    65: "int64",
    66: "float64",
}


def mds_config(shard_size_bytes: int) -> dict[str, Any]:
    """The shard-writing configuration MDSWriter stores in each shard and in index.json."""
    names = sorted(MDS_COLUMNS)
    return {
        "version": 2,
        "format": "mds",
        "compression": None,
        "hashes": [],
        "size_limit": shard_size_bytes,
        "column_names": names,
        "column_encodings": [MDS_COLUMNS[name] for name in names],
        "column_sizes": [None] * len(names),
    }


def _mds_json(obj: Any) -> bytes:
    """Python's json.dumps with sorted keys and default separators: MDSWriter's exact bytes."""
    return json.dumps(obj, sort_keys=True).encode("utf-8")


def _mds_ndarray(array: np.ndarray) -> bytes:
    shape = np.array(array.shape, np.int64)
    largest = int(shape.max())
    kind = 0 if largest < 1 << 8 else 1 if largest < 1 << 16 else 2 if largest < 1 << 32 else 3
    head = bytes([(array.ndim << 2) | kind]) + shape.astype(_SHAPE_DTYPES[kind]).tobytes()
    return head + np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()


def _mds_sample(sample: Sample) -> bytes:
    indices = np.array([(span.start, span.end) for span in sample.spans], np.uint32)
    columns = {
        "id": sample.id.encode("utf-8"),
        "indices": _mds_ndarray(indices),
        "input_ids": _mds_ndarray(sample.input_ids),
        "subject_code": sample.subject_code.encode("utf-8"),
    }
    data = [columns[name] for name in sorted(MDS_COLUMNS)]
    return np.array([len(datum) for datum in data], "<u4").tobytes() + b"".join(data)


class _MdsWriter(SampleWriter):
    """One shard is buffered as encoded samples, then written whole (its header comes first)."""

    def __init__(self, folder: Path, shard_size_bytes: int) -> None:
        if shard_size_bytes >= 1 << 32:
            raise ValueError("MDS shards hold 32-bit offsets: shard_size_bytes must be < 4 GiB")
        super().__init__(folder, shard_size_bytes)
        self._config = mds_config(shard_size_bytes)
        self._config_data = _mds_json(self._config)
        self._shards: list[dict[str, Any]] = []
        self._pending: list[bytes] = []
        self._pending_size = 8 + len(self._config_data)

    def _write(self, sample: Sample) -> None:
        data = _mds_sample(sample)
        if self._pending and self.shard_size_bytes < self._pending_size + len(data) + 4:
            self._flush()
        self._pending.append(data)
        self._pending_size += len(data) + 4

    def _flush(self) -> None:
        if not self._pending:
            return
        count = len(self._pending)
        offsets = np.cumsum([0] + [len(data) for data in self._pending], dtype=np.int64)
        offsets += 4 + 4 * (count + 1) + len(self._config_data)
        if offsets[-1] >= 1 << 32:
            raise ValueError("an MDS shard would pass 4 GiB, which its 32-bit offsets cannot hold")
        basename = f"shard.{len(self._shards):05d}.mds"
        with (self.folder / basename).open("wb") as out:
            out.write(np.uint32(count).astype("<u4").tobytes())
            out.write(offsets.astype("<u4").tobytes())
            out.write(self._config_data)
            for data in self._pending:
                out.write(data)
        raw_data = {"basename": basename, "bytes": int(offsets[-1]), "hashes": {}}
        self._shards.append({"samples": count, "raw_data": raw_data, "zip_data": None})
        self._shards[-1].update(self._config)
        self._files.append(basename)
        self._pending = []
        self._pending_size = 8 + len(self._config_data)

    def _finish(self) -> None:
        self._flush()
        (self.folder / MDS_INDEX).write_bytes(_mds_json({"version": 2, "shards": self._shards}))
        self._files.append(MDS_INDEX)

    def _abort(self) -> None:
        self._pending = []


def read_mds(folder: Path) -> Iterator[dict[str, Any]]:
    """The samples of an uncompressed MDS dataset, in order, one shard in memory at a time.

    Reads the `str`, `bytes` and `ndarray[:dtype[:shape]]` columns: enough to check what this
    module writes without mosaicml-streaming."""
    index = json.loads((Path(folder) / MDS_INDEX).read_bytes())
    if index.get("version") != 2:
        raise ValueError(f"{folder}: unsupported MDS index version {index.get('version')!r}")
    for shard in index["shards"]:
        if shard["format"] != "mds" or shard["compression"] or shard["zip_data"]:
            raise ValueError(f"{folder}: only uncompressed MDS shards can be read")
        data = (Path(folder) / shard["raw_data"]["basename"]).read_bytes()
        count = int(np.frombuffer(data, "<u4", 1)[0])
        offsets = np.frombuffer(data, "<u4", count + 1, 4)
        columns = list(zip(shard["column_names"], shard["column_encodings"], strict=True))
        sizes: list[int | None] = shard["column_sizes"]
        for begin, end in itertools.pairwise(offsets.tolist()):
            yield _mds_decode_sample(data[begin:end], columns, sizes)


def _mds_decode_sample(
    data: bytes, columns: list[tuple[str, str]], sizes: list[int | None]
) -> dict[str, Any]:
    variable = sum(size is None for size in sizes)
    heads = iter(np.frombuffer(data, "<u4", variable).tolist())
    lengths = [size if size is not None else next(heads) for size in sizes]
    position = 4 * variable
    sample: dict[str, Any] = {}
    for (name, encoding), length in zip(columns, lengths, strict=True):
        sample[name] = _mds_decode(encoding, data[position : position + length])
        position += length
    return sample


def _mds_decode(encoding: str, data: bytes) -> Any:
    name, _, config = encoding.partition(":")
    if name == "str":
        return data.decode("utf-8")
    if name == "bytes":
        return data
    if name != "ndarray":
        raise ValueError(f"read_mds cannot decode MDS encoding {encoding!r}")
    dtype, _, shape_text = config.partition(":")
    position = 0
    if not dtype:
        dtype = _VALUE_DTYPES[data[0]]
        position = 1
    if shape_text:
        shape = tuple(int(dim) for dim in shape_text.split(","))
    else:
        ndim, kind = data[position] >> 2, data[position] & 3
        width = 1 << kind
        shape = tuple(np.frombuffer(data, _SHAPE_DTYPES[kind], ndim, position + 1).tolist())
        position += 1 + ndim * width
    values = np.frombuffer(data, np.dtype(dtype).newbyteorder("<"), offset=position)
    return values.astype(dtype).reshape(shape)
