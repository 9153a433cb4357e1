"""Parsing one corpus file into (id, text) records, counting every record it cannot use."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow.parquet as pq

from .skips import SkipCounter
from .sources import CorpusFile, CorpusReadError, InvalidCorpus

Record = tuple[str, str | None, str]  # (file:line position, id or None, raw text)

_PARQUET_BATCH = 4096


def read_records(file: CorpusFile, skips: SkipCounter) -> Iterator[Record]:
    """Yield raw records of a file; unusable ones are counted in `skips`, never raised."""
    reader = _jsonl if file.format == "jsonl" else _parquet
    try:
        yield from reader(file, skips)
    except (InvalidCorpus, CorpusReadError):
        raise
    except Exception as exc:  # decompression, network, permissions: the file, not a record
        raise CorpusReadError(f"{file.uri}: cannot read: {exc}") from exc


def _jsonl(file: CorpusFile, skips: SkipCounter) -> Iterator[Record]:
    fs, path = file.open_fs()
    with fs.open(path, "rb", compression="infer") as raw:
        # zstd's reader has no readline; a buffer in front gives lines for every codec
        handle = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw, 1 << 20)
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                reason = "invalid_utf8" if not _is_utf8(line) else "invalid_json"
                skips.skip(reason, f"{file.uri}:{number}")
                continue
            position = f"{file.uri}:{number}"
            record = _record(value, file, skips, position)
            if record is not None:
                yield position, *record


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _record(
    value: Any, file: CorpusFile, skips: SkipCounter, position: str
) -> tuple[str | None, str] | None:
    if not isinstance(value, dict):
        skips.skip("not_an_object", position)
        return None
    text = value.get(file.text_field)
    if text is None:
        skips.skip("missing_text", position)
        return None
    if not isinstance(text, str):
        skips.skip("text_not_string", position)
        return None
    identifier = value.get(file.id_field) if file.id_field else None
    return (None if identifier is None else str(identifier), text)


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
                    skips.skip("missing_text", f"{file.uri}:row {row}")
                elif not isinstance(text, str):
                    skips.skip("text_not_string", f"{file.uri}:row {row}")
                else:
                    position = f"{file.uri}:row {row}"
                    yield position, None if identifier is None else str(identifier), text
