"""SynthesisRun output writers: what each format loads back as, shard roll-over, flat memory, and
MDS files that mosaicml-streaming reads (checked by our own reader when it is not installed)."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import tracemalloc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litelong.dataset import writer_base, writers
from litelong.dataset.mds import MDS_COLUMNS, read_mds, span_roles
from litelong.dataset.sample import Sample, Span, token_hash
from litelong.dataset.writers import FORMATS, METADATA_FILE, Format, WriterStats, open_writer

WORDS = ["river", "basin", "delta", "sediment", "flood", "plain", "erosion", "channel"]


def make_sample(rng: np.random.Generator, number: int, tokens: int, docs: int = 3) -> Sample:
    """Random token ids under a 50k vocabulary, cut into `docs` tiling spans."""
    docs = max(1, min(docs, tokens))
    cuts = np.sort(rng.choice(np.arange(1, tokens), size=docs - 1, replace=False)).tolist()
    bounds = [0, *cuts, tokens]
    spans = [
        Span(
            doc_id=f"doc-{number}-{k}",
            start=bounds[k],
            end=bounds[k + 1],
            truncated=k == docs - 1,
            role="doc" if k else "meta",
        )
        for k in range(docs)
    ]
    return Sample(
        id=f"SCI{number % 7:06d}/{number:06d}/0",
        input_ids=rng.integers(0, 50_000, tokens, dtype=np.uint32),
        text=" ".join(rng.choice(WORDS, tokens // 2)),
        spans=spans,
        topic=f"topic {number}",
        subject_code=f"SCI{number % 7:06d}",
        heading="SCIENCE",
        query=f"query {number} words",
    )


def make_samples(count: int, tokens: int = 500, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [make_sample(rng, n, tokens + n % 5, docs=1 + n % 4) for n in range(count)]


def write_all(format: Format, folder: Path, samples: list[Sample], limit: int) -> WriterStats:
    with open_writer(format, folder, limit) as writer:
        for sample in samples:
            writer.write(sample)
    return writer.close()


def shard_files(stats: WriterStats) -> list[str]:
    """The files that hold samples: everything but metadata.parquet and MDS's index.json."""
    return [name for name in stats.files if name not in (METADATA_FILE, "index.json")]


def load(builder: str, files: list[str], cache: Path) -> Any:
    datasets = pytest.importorskip("datasets", reason="datasets is in the dev extra")
    return datasets.load_dataset(builder, data_files=files, split="train", cache_dir=str(cache))


def spans_of(sample: Sample) -> list[list[int]]:
    return [[span.start, span.end] for span in sample.spans]


# -- what each format loads back as ----------------------------------------------------------


def test_jsonl_loads_with_datasets_as_text_and_spans(tmp_path: Path) -> None:
    samples = make_samples(40)
    stats = write_all("jsonl", tmp_path / "out", samples, 1 << 20)
    files = [str(tmp_path / "out" / name) for name in shard_files(stats)]
    rows = load("json", files, tmp_path / "hf")

    assert rows.num_rows == len(samples)
    assert "input_ids" not in rows.column_names
    for row, sample in zip(rows, samples, strict=True):
        assert row["id"] == sample.id
        assert row["text"] == sample.text
        assert row["num_tokens"] == sample.num_tokens
        assert row["spans"] == spans_of(sample)
        assert row["doc_ids"] == sample.doc_ids
        assert row["truncated"] == [span.truncated for span in sample.spans]
        assert row["roles"] == [span.role for span in sample.spans]
        assert (row["topic"], row["subject_code"], row["heading"], row["query"]) == (
            sample.topic,
            sample.subject_code,
            sample.heading,
            sample.query,
        )


def test_parquet_loads_with_datasets_with_the_exact_input_ids(tmp_path: Path) -> None:
    samples = make_samples(40)
    stats = write_all("parquet", tmp_path / "out", samples, 1 << 20)
    files = [str(tmp_path / "out" / name) for name in shard_files(stats)]
    rows = load("parquet", files, tmp_path / "hf")

    assert rows.num_rows == len(samples)
    for row, sample in zip(rows.with_format("numpy"), samples, strict=True):
        assert row["id"] == sample.id
        assert row["num_tokens"] == sample.num_tokens
        assert np.array_equal(row["input_ids"], sample.input_ids)
        assert np.stack(row["spans"]).tolist() == spans_of(sample)
    table = pq.read_table(files[0])
    assert table.schema.field("input_ids").type == pa.list_(pa.uint32())


def test_mds_reads_back_exact_tokens_and_document_spans(tmp_path: Path) -> None:
    samples = make_samples(40)
    stats = write_all("mds", tmp_path / "out", samples, 1 << 20)
    rows = list(read_mds(tmp_path / "out"))

    assert "index.json" in stats.files
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples, strict=True):
        assert row.keys() == MDS_COLUMNS.keys()
        assert row["id"] == sample.id
        assert row["subject_code"] == sample.subject_code
        assert row["input_ids"].dtype == np.uint32
        assert np.array_equal(row["input_ids"], sample.input_ids)
        assert row["indices"].shape == (len(sample.spans), 2)
        assert row["indices"].tolist() == spans_of(sample)


def test_mds_with_roles_reads_back_each_spans_role_beside_its_span(tmp_path: Path) -> None:
    samples = make_samples(20)
    with open_writer("mds", tmp_path / "out", 1 << 20, roles=True) as writer:
        for sample in samples:
            writer.write(sample)
    rows = list(read_mds(tmp_path / "out"))
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples, strict=True):
        assert row.keys() == {*MDS_COLUMNS, "roles"}
        assert row["roles"].dtype == np.uint8
        assert span_roles(row) == [span.role for span in sample.spans]
        assert row["indices"].tolist() == spans_of(sample)
    without = write_all("mds", tmp_path / "plain", samples, 1 << 20)
    assert "roles" not in next(read_mds(tmp_path / "plain")) and without.samples == 20


def test_mds_shard_is_laid_out_as_mosaicml_streaming_writes_it(tmp_path: Path) -> None:
    """Built by hand from streaming's MDSWriter.encode_joint_shard, encode_sample and
    NDArray.encode, so the layout is checked without our reader or mosaicml-streaming."""
    small = Sample("a", np.array([1, 2, 3], np.uint32), "abc", [Span("x", 0, 2), Span("y", 2, 3)])
    large = Sample(
        "bé", np.arange(300, dtype=np.uint32), "long", [Span("z", 0, 300)], subject_code="SCI000000"
    )
    write_all("mds", tmp_path, [small, large], 1 << 20)

    def ndarray(shape_byte: int, shape: bytes, values: list[int]) -> bytes:
        return bytes([shape_byte]) + shape + struct.pack(f"<{len(values)}I", *values)

    def sample(id: str, indices: bytes, input_ids: bytes, subject: str) -> bytes:
        columns = [id.encode(), indices, input_ids, subject.encode()]
        return struct.pack("<4I", *map(len, columns)) + b"".join(columns)

    encoded = [
        sample(
            "a",
            ndarray(2 << 2 | 0, bytes([2, 2]), [0, 2, 2, 3]),  # ndim 2, uint8 shape
            ndarray(1 << 2 | 0, bytes([3]), [1, 2, 3]),
            "",
        ),
        sample(
            "bé",
            ndarray(2 << 2 | 0, bytes([1, 2]), [0, 300]),
            ndarray(1 << 2 | 1, struct.pack("<H", 300), list(range(300))),  # uint16 shape
            "SCI000000",
        ),
    ]
    config = {
        "column_encodings": ["str", "ndarray:uint32", "ndarray:uint32", "str"],
        "column_names": ["id", "indices", "input_ids", "subject_code"],
        "column_sizes": [None, None, None, None],
        "compression": None,
        "format": "mds",
        "hashes": [],
        "size_limit": 1 << 20,
        "version": 2,
    }
    config_data = json.dumps(config, sort_keys=True).encode()
    start = 4 + 4 * 3 + len(config_data)
    offsets = [start, start + len(encoded[0]), start + len(encoded[0]) + len(encoded[1])]
    shard = struct.pack("<4I", 2, *offsets) + config_data + b"".join(encoded)
    assert (tmp_path / "shard.00000.mds").read_bytes() == shard

    raw_data = {"basename": "shard.00000.mds", "bytes": len(shard), "hashes": {}}
    shards = [{**config, "raw_data": raw_data, "samples": 2, "zip_data": None}]
    index = {"shards": shards, "version": 2}
    assert (tmp_path / "index.json").read_bytes() == json.dumps(index, sort_keys=True).encode()


def streaming_base() -> types.ModuleType:
    """mosaicml-streaming's `streaming.base`, or skip.

    The package's `__init__` imports its vision datasets, which need torchvision (no CPU build
    here); the writer, reader and StreamingDataset need only torch. Without torchvision, the
    package is registered without running that `__init__`, and `streaming.base` imported."""
    reason = "mosaicml-streaming (and torch) are not litelong dependencies"
    pytest.importorskip("torch", reason=reason)
    if "streaming" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        pytest.importorskip("streaming", reason=reason)
    else:
        spec = importlib.util.find_spec("streaming")
        if spec is None:
            pytest.skip(reason)
        sys.modules["streaming"] = importlib.util.module_from_spec(spec)
    return importlib.import_module("streaming.base")


def test_streaming_dataset_reads_the_mds_output(tmp_path: Path) -> None:
    base = streaming_base()
    samples = make_samples(30)
    write_all("mds", tmp_path / "out", samples, 64 << 10)

    dataset = base.StreamingDataset(local=str(tmp_path / "out"), shuffle=False, batch_size=1)
    rows = list(dataset)
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples, strict=True):
        assert row["id"] == sample.id
        assert np.array_equal(row["input_ids"], sample.input_ids)
        assert row["indices"].shape == (len(sample.spans), 2)
        assert row["indices"].tolist() == spans_of(sample)


def test_mds_files_are_byte_identical_to_mosaicml_mdswriter(tmp_path: Path) -> None:
    base = streaming_base()
    samples = make_samples(30)
    samples.insert(10, make_sample(np.random.default_rng(1), 99, 40_000))  # above the limit
    limit = 64 << 10
    write_all("mds", tmp_path / "ours", samples, limit)
    with base.MDSWriter(columns=MDS_COLUMNS, out=str(tmp_path / "theirs"), size_limit=limit) as w:
        for sample in samples:
            indices = np.array([(span.start, span.end) for span in sample.spans], np.uint32)
            w.write(
                {
                    "id": sample.id,
                    "indices": indices,
                    "input_ids": sample.input_ids,
                    "subject_code": sample.subject_code,
                }
            )

    theirs = sorted(path.name for path in (tmp_path / "theirs").iterdir())
    assert len(theirs) > 3
    for name in theirs:
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "theirs" / name).read_bytes()


# -- shards and memory -----------------------------------------------------------------------


@pytest.mark.parametrize("format", FORMATS)
def test_files_roll_over_at_the_shard_size(tmp_path: Path, format: Format) -> None:
    samples = make_samples(120)
    limit = 48 << 10
    stats = write_all(format, tmp_path, samples, limit)

    shards = shard_files(stats)
    assert len(shards) >= 5
    for name in shards:
        assert (tmp_path / name).stat().st_size <= limit
    assert stats.samples == len(samples)
    assert stats.tokens == sum(sample.num_tokens for sample in samples)
    assert stats.bytes == sum((tmp_path / name).stat().st_size for name in stats.files)
    assert sorted(stats.files) == sorted(path.name for path in tmp_path.iterdir())


@pytest.mark.parametrize("format", FORMATS)
def test_a_sample_larger_than_the_shard_size_gets_a_file_of_its_own(
    tmp_path: Path, format: Format
) -> None:
    rng = np.random.default_rng(3)
    samples = [make_sample(rng, n, 20_000 if n in (0, 3) else 200) for n in range(6)]
    stats = write_all(format, tmp_path, samples, 32 << 10)

    shards = shard_files(stats)
    assert len(shards) == 4  # [big] [small small] [big] [small small]
    sizes = [(tmp_path / name).stat().st_size for name in shards]
    assert sizes[0] > 32 << 10 and sizes[2] > 32 << 10
    assert sizes[1] <= 32 << 10 and sizes[3] <= 32 << 10
    if format == "mds":
        assert [row["id"] for row in read_mds(tmp_path)] == [sample.id for sample in samples]


@pytest.mark.parametrize("format", FORMATS)
def test_memory_does_not_grow_with_the_number_of_samples(
    tmp_path: Path, format: Format, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live memory (Python and Arrow) over the second half of a run stays at the first half's
    level: the writer keeps at most one shard or row group, never the samples written."""
    monkeypatch.setattr(writer_base, "METADATA_ROW_GROUP", 16)
    write_all(format, tmp_path / "warm-up", make_samples(20), 64 << 10)  # lazy imports, codecs

    def stream(count: int) -> Iterator[Sample]:
        rng = np.random.default_rng(5)
        for number in range(count):
            yield make_sample(rng, number, 2_000, docs=4)

    def used() -> int:
        return tracemalloc.get_traced_memory()[0] + pa.total_allocated_bytes()

    samples = 240  # about 12 KiB each: a writer that kept them would grow by 1.4 MiB below
    highs: list[int] = []
    tracemalloc.start()
    try:
        with open_writer(format, tmp_path / "out", 64 << 10) as writer:
            for number, sample in enumerate(stream(samples)):
                writer.write(sample)
                del sample
                if number in (samples // 4, samples // 2):
                    highs.append(0)
                if highs:
                    highs[-1] = max(highs[-1], used())
    finally:
        tracemalloc.stop()

    first, second = highs
    assert second <= first + (256 << 10), (first, second)


def test_mds_keeps_one_sample_in_memory_and_the_shard_in_a_temporary_file(
    tmp_path: Path,
) -> None:
    """A shard's samples wait in `.shard.NNNNN.mds.tmp`, not in memory: writing eight more
    4 MB samples into one 64 MiB shard grows live memory by less than one of them."""
    sample = make_sample(np.random.default_rng(2), 0, 1 << 20, docs=4)
    temporary = tmp_path / ".shard.00000.mds.tmp"
    sizes: list[int] = []
    grown = 0
    tracemalloc.start()
    try:
        with open_writer("mds", tmp_path, 64 << 20) as writer:
            writer.write(sample)
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(8):
                writer.write(sample)
                grown = max(grown, tracemalloc.get_traced_memory()[0] - before)
                sizes.append(temporary.stat().st_size)
            assert not (tmp_path / "shard.00000.mds").exists()
    finally:
        tracemalloc.stop()

    assert grown < sample.input_ids.nbytes, grown
    assert sizes == sorted(set(sizes)) and sizes[-1] > 8 * sample.input_ids.nbytes
    assert not temporary.exists()
    assert len(list(read_mds(tmp_path))) == 9


def test_an_aborted_mds_writer_leaves_no_shard_or_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="stop"), open_writer("mds", tmp_path, 1 << 20) as writer:
        for sample in make_samples(5):
            writer.write(sample)
        raise RuntimeError("stop")
    assert [path.name for path in tmp_path.iterdir()] == [METADATA_FILE]


def test_parquet_row_groups_end_at_the_byte_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups of at most ROW_GROUP_SAMPLES samples or ROW_GROUP_BYTES (estimated)."""
    monkeypatch.setattr(writers, "ROW_GROUP_BYTES", 8 << 10)
    write_all("parquet", tmp_path, make_samples(12, tokens=1_000), 1 << 20)
    assert pq.ParquetFile(tmp_path / "samples-00000.parquet").metadata.num_row_groups >= 4


# -- metadata.parquet and the writer's contract -------------------------------------------


@pytest.mark.parametrize("format", FORMATS)
def test_metadata_parquet_has_one_row_per_sample_with_the_documented_columns(
    tmp_path: Path, format: Format
) -> None:
    samples = make_samples(50)
    write_all(format, tmp_path, samples, 32 << 10)
    table = pq.read_table(tmp_path / METADATA_FILE)

    documented: dict[str, pa.DataType] = {
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
        "token_hash": pa.string(),
    }
    assert table.schema == pa.schema(documented)
    rows = table.to_pylist()
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples, strict=True):
        assert row == {
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
            "token_hash": token_hash(sample.input_ids).hex(),
        }


def test_metadata_parquet_is_written_in_bounded_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_base, "METADATA_ROW_GROUP", 16)
    write_all("jsonl", tmp_path, make_samples(50), 1 << 20)
    assert pq.ParquetFile(tmp_path / METADATA_FILE).metadata.num_row_groups == 4


def test_metadata_row_groups_end_once_their_rows_hold_the_span_bound(tmp_path: Path) -> None:
    """Long samples hold hundreds of documents each: the row group ends on document entries
    (METADATA_ROW_GROUP_SPANS) long before it reaches METADATA_ROW_GROUP rows."""
    docs = writer_base.METADATA_ROW_GROUP_SPANS // 3 + 1
    rng = np.random.default_rng(4)
    samples = [make_sample(rng, n, docs + 10, docs=docs) for n in range(7)]
    write_all("jsonl", tmp_path, samples, 64 << 20)
    metadata = pq.ParquetFile(tmp_path / METADATA_FILE).metadata
    assert metadata.num_rows == 7
    assert [metadata.row_group(k).num_rows for k in range(metadata.num_row_groups)] == [3, 3, 1]


@pytest.mark.parametrize("format", FORMATS)
def test_a_run_without_samples_leaves_an_empty_metadata_table(
    tmp_path: Path, format: Format
) -> None:
    stats = write_all(format, tmp_path, [], 1 << 20)
    assert (stats.samples, stats.tokens) == (0, 0)
    assert pq.read_table(tmp_path / METADATA_FILE).num_rows == 0
    if format == "mds":
        assert list(read_mds(tmp_path)) == []


def test_close_after_the_with_block_returns_the_same_stats(tmp_path: Path) -> None:
    with open_writer("parquet", tmp_path, 1 << 20) as writer:
        writer.write(make_samples(1)[0])
    assert writer.close() == writer.close()
    with pytest.raises(RuntimeError, match="after close"):
        writer.write(make_samples(1)[0])


def test_a_sample_whose_spans_do_not_tile_it_is_refused(tmp_path: Path) -> None:
    sample = make_samples(1)[0]
    gap = Sample(sample.id, sample.input_ids, sample.text, [Span("a", 0, 10), Span("b", 11, 500)])
    wrong_dtype = Sample(sample.id, sample.input_ids.astype(np.int64), "", sample.spans)
    with open_writer("mds", tmp_path, 1 << 20) as writer:
        with pytest.raises(ValueError, match="tile"):
            writer.write(gap)
        with pytest.raises(ValueError, match="uint32"):
            writer.write(wrong_dtype)
    assert writer.close().samples == 0


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        open_writer("csv", tmp_path, 1 << 20)  # type: ignore[arg-type]
