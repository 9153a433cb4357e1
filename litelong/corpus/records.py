"""Parsing one corpus file into (id, text) records, counting every record it cannot use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow.parquet as pq

from .skips import SkipCounter
from .sources import CorpusFile, CorpusReadError, InvalidCorpus

Record = tuple[int, str | None, str]  # (line or row number, id or None, raw text)

_PARQUET_BATCH = 4096
_CHUNK = 1 << 17  # compressed bytes a read: 128 KiB read faster than 1 MiB (bench/README.md)


def read_records(file: CorpusFile, skips: SkipCounter) -> Iterator[Record]:
    """Yield raw records of a file; unusable ones are counted in `skips`, never raised."""
    reader = _jsonl if file.format == "jsonl" else _parquet
    try:
        yield from reader(file, skips)
    except InvalidCorpus:
        raise
    except Exception as exc:  # decompression, network, permissions: the file, not a record
        raise CorpusReadError(f"{file.uri}: cannot read: {exc}") from exc


def _jsonl(file: CorpusFile, skips: SkipCounter) -> Iterator[Record]:
    fs, path = file.open_fs()
    zstd = path.endswith((".zst", ".zstd"))
    with fs.open(path, "rb", compression=None if zstd else "infer") as handle:
        lines = _zstd_lines(handle) if zstd else handle
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                reason = "invalid_utf8" if not _is_utf8(line) else "invalid_json"
                skips.skip(reason, file.position(number))
                continue
            if type(value) is dict and type(text := value.get(file.text_field)) is str:
                identifier = value.get(file.id_field) if file.id_field else None
                yield number, None if identifier is None else str(identifier), text
            else:
                _count_unusable(value, file, skips, number)


def _zstd_lines(raw: Any) -> Iterator[bytes]:
    """Lines of a (multi-frame) zstd stream; a truncated stream is an error, not a short file.

    zstandard's stream reader returns nothing at all for a truncated frame, silently, so the
    frames are decoded here and checked for their end.
    """
    import zstandard

    decompressor = zstandard.ZstdDecompressor()
    frame, fed, tail = decompressor.decompressobj(), False, b""
    while chunk := raw.read(_CHUNK):
        while chunk:
            fed = True
            data = tail + frame.decompress(chunk)
            *complete, tail = data.split(b"\n")
            yield from complete
            chunk = b""
            if frame.eof:
                chunk, frame, fed = frame.unused_data, decompressor.decompressobj(), False
    if fed:
        raise CorpusReadError("the zstd stream is truncated or corrupt")
    if tail:
        yield tail


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


def _parquet(file: CorpusFile, skips: SkipCounter) -> Iterator[Record]:
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
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=columns):
            texts = batch.column(0).to_pylist()
            ids = batch.column(1).to_pylist() if file.id_field else [None] * len(texts)
            for text, identifier in zip(texts, ids, strict=True):
                row += 1
                if text is None:
                    skips.skip("missing_text", file.position(row))
                elif not isinstance(text, str):
                    skips.skip("text_not_string", file.position(row))
                else:
                    yield row, None if identifier is None else str(identifier), text
