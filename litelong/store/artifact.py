"""Artifacts: `<store>/<kind>/<name>/<spec-hash>/`, committed part by part, then by a manifest.

A part is built in a local staging folder, moved (local disk) or uploaded (object storage) to
`part-00003-of-00016/`, and only then is `part-00003-of-00016.json` written: a part without its
record is debris from a killed run and is replaced. `_manifest.json` comes last, once every part
of the run is recorded; readers refuse an artifact without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.implementations.local import LocalFileSystem

from .manifest import Manifest, PartRecord, file_records

if TYPE_CHECKING:
    from .store import ArtifactStore

MANIFEST = "_manifest.json"
STAGING = ".staging"


class NotCommitted(RuntimeError):
    """An artifact (or part) was asked for before it was committed."""


def part_name(shard: int, of: int) -> str:
    return f"part-{shard:05d}-of-{of:05d}"


class Artifact:
    """One stage output, named by kind, resource name and spec hash."""

    def __init__(self, store: ArtifactStore, kind: str, name: str, spec_hash: str) -> None:
        self.store = store
        self.kind = kind
        self.name = name
        self.spec_hash = spec_hash
        self.path = store.join(kind.lower(), name, spec_hash)

    def __repr__(self) -> str:
        return f"Artifact({self.kind}/{self.name}@{self.spec_hash})"

    @property
    def uri(self) -> str:
        return self.store.uri_of(self.path)

    @property
    def _fs(self) -> Any:
        return self.store.fs

    def _join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])

    # -- reading -----------------------------------------------------------------------------

    def is_committed(self) -> bool:
        return bool(self._fs.exists(self._join(MANIFEST)))

    def manifest(self) -> Manifest:
        """The committed manifest; raises NotCommitted with what is there instead."""
        try:
            raw = self._fs.cat_file(self._join(MANIFEST))
        except FileNotFoundError:
            raise NotCommitted(f"{self} is not committed: {self.describe_state()}") from None
        return Manifest.model_validate_json(raw)

    def committed_manifest(self) -> Manifest | None:
        """The manifest if committed, else None: one read where `is_committed` + `manifest`
        would take two."""
        try:
            return self.manifest()
        except NotCommitted:
            return None

    def part(self, shard: int, of: int) -> PartRecord | None:
        """The record of a committed part, or None."""
        try:
            raw = self._fs.cat_file(self._join(part_name(shard, of) + ".json"))
        except FileNotFoundError:
            return None
        return PartRecord.model_validate_json(raw)

    def committed_parts(self, of: int) -> list[PartRecord]:
        records = (self.part(shard, of) for shard in range(of))
        return [record for record in records if record is not None]

    def describe_state(self) -> str:
        if self.is_committed():
            return "committed"
        if not self._fs.exists(self.path):
            return "nothing written"
        names = [Path(p).name for p in self._fs.ls(self.path, detail=False)]
        records = [n for n in names if n.startswith("part-") and n.endswith(".json")]
        if not records:
            return "started, no part committed"
        of = int(records[0].removesuffix(".json").rsplit("-", 1)[1])
        return f"{len(records)} of {of} parts committed, no {MANIFEST}"

    def local_part(self, record: PartRecord) -> Path:
        """A local folder holding the part's files (downloaded once for remote stores)."""
        remote = self._join(record.name)
        if isinstance(self._fs, LocalFileSystem):
            return Path(remote)
        cache = self.store.cache_dir / self.kind.lower() / self.name / self.spec_hash / record.name
        done = cache / ".complete"
        if not done.exists():
            shutil.rmtree(cache, ignore_errors=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            self._fs.get(remote + "/", str(cache), recursive=True)
            if file_records(cache) != record.files:
                raise NotCommitted(f"{self}: {record.name} does not match its recorded checksums")
            done.touch()
        return cache

    # -- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self, shard: int, of: int) -> Iterator[Path]:
        """A fresh local folder to build one part in; removed afterwards whatever happens.

        On local disk it sits inside the artifact, so committing it is a rename.
        """
        if isinstance(self._fs, LocalFileSystem):
            base = Path(self._join(STAGING))
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(tempfile.gettempdir()) / "litelong-staging"
            base.mkdir(exist_ok=True)
        folder = base / f"{part_name(shard, of)}.{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit_part(self, shard: int, of: int, folder: Path, **record: Any) -> PartRecord:
        """Move a built part into place, then record it. Safe to repeat after a crash."""
        name = part_name(shard, of)
        part = PartRecord(name=name, shard=shard, of=of, files=file_records(folder), **record)
        target = self._join(name)
        if isinstance(self._fs, LocalFileSystem):
            shutil.rmtree(target, ignore_errors=True)  # debris of a run killed mid-commit
            os.replace(folder, target)
        else:
            if self._fs.exists(target):
                self._fs.rm(target, recursive=True)
            self._fs.put(str(folder) + "/", target, recursive=True)
        self.store.write_atomic(self._join(name + ".json"), part.model_dump_json(indent=2))
        return part

    def commit(self, spec: dict[str, Any], of: int) -> Manifest:
        """Write `_manifest.json` from the recorded parts of a run with `of` shards.

        Any shard may call it; it does nothing until all parts are in. Parts left from a run
        with another shard count are removed.
        """
        parts = self.committed_parts(of)
        if len(parts) != of:
            raise NotCommitted(f"{self}: {len(parts)} of {of} parts committed")
        manifest = Manifest.from_parts(self.kind, self.name, self.spec_hash, spec, parts)
        self._remove_other_runs(of)
        self.store.write_atomic(self._join(MANIFEST), manifest.model_dump_json(indent=2))
        return manifest

    def _remove_other_runs(self, of: int) -> None:
        keep = {part_name(shard, of) for shard in range(of)}
        for entry in self._fs.ls(self.path, detail=False):
            name = Path(entry).name
            if name == STAGING or (
                name.startswith("part-") and name.removesuffix(".json") not in keep
            ):
                self._fs.rm(entry, recursive=True)
