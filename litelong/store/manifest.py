"""What `_manifest.json` and each part's `part-*.json` hold: the proof an output is complete."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..cores import usable_cores
from ..skips import SkipCounter

_HASH_THREADS = 4  # at most; never more than the cores this process may use


class FileRecord(BaseModel):
    path: str
    size: int
    sha256: str


class PartRecord(BaseModel):
    """One committed shard's output: its files and what it counted."""

    model_config = ConfigDict(extra="forbid")

    name: str
    shard: int
    of: int
    files: list[FileRecord]
    counts: dict[str, int] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = Field(default_factory=dict)
    seconds: float = 0.0

    @property
    def size(self) -> int:
        return sum(record.size for record in self.files)

    @property
    def sha256(self) -> str:
        """One digest for the part, over its files' digests in path order."""
        digest = hashlib.sha256()
        for record in sorted(self.files, key=lambda r: r.path):
            digest.update(f"{record.path}\0{record.sha256}\n".encode())
        return digest.hexdigest()


class Manifest(BaseModel):
    """Written last, atomically: an artifact without it is not an output."""

    kind: str
    name: str
    spec_hash: str  # the identity: the folder's name
    spec: dict[str, Any]
    namespace: str = "default"
    inputs: dict[str, str] = Field(default_factory=dict)  # "Kind/name" → identity it was made of
    parts: list[PartRecord]
    counts: dict[str, int]
    skipped: dict[str, int]
    skipped_examples: dict[str, list[str]] = Field(default_factory=dict)
    size: int
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    litelong_version: str = __version__

    @classmethod
    def from_parts(
        cls,
        kind: str,
        name: str,
        spec_hash: str,
        spec: dict[str, Any],
        parts: list[PartRecord],
        namespace: str = "default",
        inputs: dict[str, str] | None = None,
    ) -> Manifest:
        """Totals are sums over parts (maxima for `max_*` counts); examples keep the first few
        per reason, in part order."""
        parts = sorted(parts, key=lambda p: p.shard)
        skips = SkipCounter()
        for part in parts:
            skips.merge(SkipCounter(counts=part.skipped, examples=part.skipped_examples))
        return cls(
            kind=kind,
            name=name,
            spec_hash=spec_hash,
            spec=spec,
            namespace=namespace,
            inputs=inputs or {},
            parts=parts,
            counts=_sum(part.counts for part in parts),
            skipped=skips.counts,
            skipped_examples=skips.examples,
            size=sum(part.size for part in parts),
        )


def file_records(directory: Path) -> list[FileRecord]:
    """Size and sha256 of every file under a directory, paths relative to it. Files are
    hashed on up to `_HASH_THREADS` threads (hashlib releases the GIL): a 1M-document index
    part is 2 GB, about 1 s of one core, the last serial step of its build."""
    paths = sorted(p for p in directory.rglob("*") if p.is_file())
    sizes = {path: path.stat().st_size for path in paths}
    threads = min(_HASH_THREADS, usable_cores(), len(paths))
    if threads > 1:  # largest first, so no thread is left with a large file at the end
        with ThreadPoolExecutor(threads, thread_name_prefix="litelong-sha256") as pool:
            futures = {
                path: pool.submit(_sha256, path)
                for path in sorted(paths, key=lambda path: sizes[path], reverse=True)
            }
            digests = {path: future.result() for path, future in futures.items()}
    else:
        digests = {path: _sha256(path) for path in paths}
    return [
        FileRecord(
            path=path.relative_to(directory).as_posix(), size=sizes[path], sha256=digests[path]
        )
        for path in paths
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sum(dicts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in dicts:
        for key, value in counts.items():
            if key.startswith("max_"):
                total[key] = max(total.get(key, value), value)
            else:
                total[key] = total.get(key, 0) + value
    return total
