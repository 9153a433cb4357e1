"""Parsing one corpus file into (id, text) records, counting every record it cannot use."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
import pyarrow.parquet as pq

from .skips import SkipCounter
from .sources import CorpusFile, CorpusReadError, InvalidCorpus

Record = tuple[int, str | None, str]  # (line or row number, id or None, raw text)


class Records(NamedTuple):
    """Consecutive usable records of a file, as columns: a batch costs a few list appends a
    record, not a generator step and a tuple (bench/README.md, "where the last tenth goes")."""

    numbers: list[int]  # line or row numbers
    ids: list[str | None] | None  # None when the file has no id field
    texts: list[str]  # raw texts


BATCH = 1024  # records a batch: a few MB of text
_CHUNK = 1 << 17  # compressed bytes a read: 128 KiB read faster than 1 MiB (bench/README.md)
_LINE_BUFFER = 1 << 20  # decoded bytes the line reader holds


def read_records(file: CorpusFile, skips: SkipCounter) -> Iterator[Record]:
    """Yield raw records of a file; unusable ones are counted in `skips`, never raised."""
    for batch in read_record_batches(file, skips):
        ids = batch.ids or [None] * len(batch.texts)
        yield from zip(batch.numbers, ids, batch.texts, strict=True)


def read_record_batches(
    file: CorpusFile, skips: SkipCounter, size: int = BATCH
) -> Iterator[Records]:
    """`read_records` in batches of up to `size` records (never empty)."""
    reader = _jsonl if file.format == "jsonl" else _parquet
    try:
        yield from reader(file, skips, size)
    except InvalidCorpus:
        raise
    except Exception as exc:  # decompression, network, permissions: the file, not a record
        raise CorpusReadError(f"{file.uri}: cannot read: {exc}") from exc


def _jsonl(file: CorpusFile, skips: SkipCounter, size: int) -> Iterator[Records]:
    fs, path = file.open_fs()
    zstd = path.endswith((".zst", ".zstd"))
    text_field, id_field, loads = file.text_field, file.id_field, orjson.loads
    numbers: list[int] = []
    ids: list[str | None] = []
    texts: list[str] = []
    with fs.open(path, "rb", compression=None if zstd else "infer") as handle:
        lines = _zstd_lines(handle) if zstd else handle
        for number, line in enumerate(lines, start=1):
            try:  # a blank line is a decode error too: not stripped first, a copy a record
                value = loads(line)
            except orjson.JSONDecodeError:
                if not line.strip():
                    continue
                reason = "invalid_utf8" if not _is_utf8(line) else "invalid_json"
                skips.skip(reason, file.position(number))
                continue
            if type(value) is dict and type(text := value.get(text_field)) is str:
                numbers.append(number)
                texts.append(text)
                if id_field:
                    identifier = value.get(id_field)
                    ids.append(None if identifier is None else str(identifier))
                if len(texts) == size:
                    yield Records(numbers, ids if id_field else None, texts)
                    numbers, ids, texts = [], [], []
            else:
                _count_unusable(value, file, skips, number)
    if texts:
        yield Records(numbers, ids if id_field else None, texts)


def _zstd_lines(raw: Any) -> Iterator[bytes]:
    """Lines of a (multi-frame) zstd stream, each with its newline but the last; a truncated
    stream is an error, not a short file.

    zstandard's stream reader returns nothing at all for a truncated frame, silently, so the
    frames are decoded here (`_ZstdFrames`) and checked for their end. The lines come from a
    `BufferedReader`, whose C `readline` costs less than splitting each decoded chunk (0.24
    against 0.33 CPU s per 100K documents, bench/README.md).
    """
    return iter(io.BufferedReader(_ZstdFrames(raw), _LINE_BUFFER))


class _ZstdFrames(io.RawIOBase):
    """A zstd stream's decoded bytes, frame by frame; raises CorpusReadError at the end of
    the input when its last frame is incomplete."""

    def __init__(self, raw: Any) -> None:
        import zstandard

        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._fed = False  # the current frame has had input
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                if self._fed:
                    raise CorpusReadError("the zstd stream is truncated or corrupt")
                return 0
            decoded = b""
            while chunk:
                self._fed = True
                decoded += self._frame.decompress(chunk)
                chunk = b""
                if self._frame.eof:
                    chunk = self._frame.unused_data
                    self._frame, self._fed = self._decompressor.decompressobj(), False
            self._pending = memoryview(decoded)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _count_unusable(value: Any, file: CorpusFile, skips: SkipCounter, number: int) -> None:
    if not isinstance(value, dict):
        reason = "not_an_object"
    elif value.get(file.text_field) is None:
        reason = "missing_text"
    else:
        reason = "text_not_string"
    skips.skip(reason, file.position(number))


def _parquet(file: CorpusFile, skips: SkipCounter, size: int) -> Iterator[Records]:
    fs, path = file.open_fs()
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        columns = [file.text_field] + ([file.id_field] if file.id_field else [])
        missing = [column for column in columns if column not in names]
        if missing:
            raise InvalidCorpus(
                f"{file.uri}: no column {', '.join(missing)} (columns: {', '.join(names)})"
            )
        row = 0
        for table in parquet.iter_batches(batch_size=size, columns=columns):
            texts = table.column(0).to_pylist()
            ids = table.column(1).to_pylist() if file.id_field else [None] * len(texts)
            batch = Records([], [] if file.id_field else None, [])
            for text, identifier in zip(texts, ids, strict=True):
                row += 1
                if text is None:
                    skips.skip("missing_text", file.position(row))
                elif not isinstance(text, str):
                    skips.skip("text_not_string", file.position(row))
                else:
                    batch.numbers.append(row)
                    batch.texts.append(text)
                    if batch.ids is not None:
                        batch.ids.append(None if identifier is None else str(identifier))
            if batch.texts:
                yield batch
