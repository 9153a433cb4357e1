"""Corpus sources: URIs and globs → the files to read, in a stable order."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from typing import Any, Literal

import fsspec

from ..api.v1alpha1 import CorpusSource

BUILTIN = "builtin://"

Format = Literal["jsonl", "parquet"]

_EXTENSIONS: dict[str, Format] = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


class InvalidCorpus(ValueError):
    """A corpus the spec cannot read: a missing file, an empty glob, an unknown format."""


class CorpusReadError(RuntimeError):
    """A corpus file exists but cannot be read (permissions, corruption, network)."""


@dataclass(frozen=True)
class CorpusFile:
    """One file to read, with the source options that apply to it. Picklable for workers."""

    uri: str
    format: Format
    text_field: str
    id_field: str | None

    def position(self, number: int) -> str:
        """Where a record is, for people: file:line, or file:row N for Parquet."""
        return f"{self.uri}:{number}" if self.format == "jsonl" else f"{self.uri}:row {number}"

    def open_fs(self) -> tuple[Any, str]:
        fs, path = fsspec.core.url_to_fs(self.uri)
        return fs, path


def builtin_path(name: str) -> str:
    """A data file shipped inside the litelong package (the Wikipedia sample)."""
    resource = importlib.resources.files("litelong") / "data" / name
    if not resource.is_file():
        raise InvalidCorpus(f"{BUILTIN}{name}: no such built-in corpus")
    return str(resource)


def resolve(source: CorpusSource) -> list[CorpusFile]:
    """The files a source names, sorted; raises InvalidCorpus when there are none."""
    uri = source.uri
    if uri.startswith(BUILTIN):
        uri = builtin_path(uri.removeprefix(BUILTIN))
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if fsspec.core.has_magic(path):
            paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not paths:
                raise InvalidCorpus(f"{source.uri}: the glob matches no file")
        elif fs.isfile(path):
            paths = [path]
        else:
            raise InvalidCorpus(f"{source.uri}: no such file")
    except (ImportError, ValueError) as exc:
        if isinstance(exc, InvalidCorpus):
            raise
        raise InvalidCorpus(f"{source.uri}: {exc}") from exc
    except OSError as exc:
        raise CorpusReadError(f"{source.uri}: {exc}") from exc
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return [
        CorpusFile(
            uri=path if protocol == "file" else f"{protocol}://{path}",
            format=source.format or _infer_format(path),
            text_field=source.text_field,
            id_field=source.id_field,
        )
        for path in paths
    ]


def _infer_format(path: str) -> Format:
    name = path.lower()
    for compression in (".gz", ".zst", ".zstd", ".bz2", ".xz"):
        name = name.removesuffix(compression)
    for extension, format in _EXTENSIONS.items():
        if name.endswith(extension):
            return format
    raise InvalidCorpus(f"{path}: cannot tell the format from the name; set `format`")
