"""Artifacts: `<store>/<namespace>/<kind>/<name>/<identity>/`, committed part by part, then by a
manifest.

A part is built in a private staging folder, moved (local disk) or uploaded (object storage) to
`part-00003-of-00016/`, and only then is `part-00003-of-00016.json` written: a part without its
record is debris from a killed run and is replaced. `_manifest.json` comes last, once every part
of the run is recorded; readers refuse an artifact without it. Two runs of one artifact take
turns through lock files on local disk (a shared volume included), so the second finds the
first's work committed instead of replacing it under the first's feet.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel

from .files import StoreFiles
from .manifest import Manifest, PartRecord, file_records

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
FAILURE = "_failure.json"
#: `<store>/<namespace>/<kind>/<name>/_current`: the identity a run last committed or found
#: committed, i.e. the output of the spec in force; refs resolve to it (a file, never a folder)
CURRENT = "_current"
STAGING = ".staging"
LOCKS = ".locks"
DEFAULT_NAMESPACE = "default"


class NotCommitted(RuntimeError):
    """An artifact (or part) was asked for before it was committed."""


class EmptyOutput(RuntimeError):
    """Every part is in and the output would be empty: nothing is committed."""


class Failure(BaseModel):
    """Why an artifact whose parts are all in was not committed (`_failure.json`), with the
    counts its discarded parts recorded."""

    reason: str
    message: str
    counts: dict[str, int] = {}
    skipped: dict[str, int] = {}


def part_name(shard: int, of: int) -> str:
    return f"part-{shard:05d}-of-{of:05d}"


def artifact_folder(namespace: str, kind: str, name: str, identity: str) -> str:
    """The one place an artifact's folder is named, relative to the store's root."""
    return f"{namespace}/{kind.lower()}/{name}/{identity}"


def current_pointer(namespace: str, kind: str, name: str) -> str:
    """Where a resource's `_current` pointer lives, relative to the store's root."""
    return f"{namespace}/{kind.lower()}/{name}/{CURRENT}"


class Artifact:
    """One stage output, named by namespace, kind, resource name and identity."""

    def __init__(
        self,
        store: StoreFiles,
        kind: str,
        name: str,
        identity: str,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.store = store
        self.kind = kind
        self.name = name
        self.identity = identity
        self.namespace = namespace
        self.path = store.join(artifact_folder(namespace, kind, name, identity))

    def __repr__(self) -> str:
        return f"Artifact({self.namespace}/{self.kind}/{self.name}@{self.identity})"

    @property
    def spec_hash(self) -> str:
        """The identity (the folder name); kept under its earlier name for readers."""
        return self.identity

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

    def failure(self) -> Failure | None:
        """Why the complete parts were not committed (an empty output), if that happened."""
        try:
            return Failure.model_validate_json(self._fs.cat_file(self._join(FAILURE)))
        except FileNotFoundError:
            return None

    def describe_state(self) -> str:
        if self.is_committed():
            return "committed"
        if (failure := self.failure()) is not None:
            return f"failed: {failure.reason}: {failure.message}"
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
        folder = artifact_folder(self.namespace, self.kind, self.name, self.identity)
        cache = self.store.cache_dir / folder / record.name
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

    def make_current(self) -> None:
        """Name this committed output the resource's current one: what its dependents resolve
        to, whatever newer outputs of other specs exist (a spec reverted to an earlier one)."""
        pointer = self.store.join(current_pointer(self.namespace, self.kind, self.name))
        try:
            self.store.write_atomic(pointer, self.identity)
        except OSError as exc:  # a read-only store: dependents fall back to the newest output
            log.warning("%s: could not record it as current: %s", self, exc)

    @contextlib.contextmanager
    def lock(self, what: str) -> Iterator[None]:
        """Hold `what` of this artifact against other processes (local disk, NFS included).

        Object stores have no locks; there a part's upload and record are single PUTs, and
        two runs racing write equivalent parts.
        """
        if not isinstance(self._fs, LocalFileSystem):
            yield
            return
        folder = Path(self._join(LOCKS))
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{what}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def staging(self, shard: int, of: int) -> Iterator[Path]:
        """A fresh private folder to build one part in; removed afterwards whatever happens.

        On local disk it sits inside the artifact, so committing it is a rename, and a lock
        file held while it lives tells a commit which staging folders are debris of killed
        runs (removed) and which belong to live ones (left alone).
        """
        local = isinstance(self._fs, LocalFileSystem)
        if local:
            base = Path(self._join(STAGING))
        else:
            base = Path(tempfile.gettempdir()) / "litelong-staging"
        folder = base / f"{part_name(shard, of)}.{uuid.uuid4().hex[:8]}"
        with _open_creating(Path(f"{folder}.lock")) as alive:
            fcntl.flock(alive, fcntl.LOCK_EX)
            folder.mkdir(parents=True)
            try:
                yield folder
            finally:
                shutil.rmtree(folder, ignore_errors=True)
                Path(f"{folder}.lock").unlink(missing_ok=True)
        if local:
            with contextlib.suppress(OSError):  # others still staging: not empty
                base.rmdir()

    def _sweep_staging(self) -> None:
        """Remove staging folders whose run is gone (its lock is free); keep live ones."""
        base = Path(self._join(STAGING))
        for lock in sorted(base.glob("*.lock")) if base.is_dir() else []:
            with open(lock, "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live run
                shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
                lock.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            base.rmdir()

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

    def commit(
        self,
        spec: dict[str, Any],
        of: int,
        inputs: dict[str, str] | None = None,
        check: Callable[[Manifest], str | None] | None = None,
    ) -> Manifest:
        """Write `_manifest.json` from the recorded parts of a run with `of` shards.

        Any shard may call it; it does nothing until all parts are in, and returns the
        manifest already there if another run committed first. `check` says why a complete
        output must not be committed (it is empty): then `_failure.json` records why, the
        parts are discarded (the input may be fixed under the same identity, e.g. records
        written into an empty file, and a rerun must read it again) and EmptyOutput is raised.
        Parts left from a run with another shard count are removed.
        """
        with self.lock("commit"):
            committed = self.committed_manifest()
            if committed is not None:
                self.make_current()
                return committed
            parts = self.committed_parts(of)
            if len(parts) != of:
                raise NotCommitted(f"{self}: {len(parts)} of {of} parts committed")
            manifest = Manifest.from_parts(
                self.kind, self.name, self.identity, spec, parts, self.namespace, inputs or {}
            )
            problem = check(manifest) if check is not None else None
            if problem:
                failure = Failure(
                    reason="EmptyOutput",
                    message=problem,
                    counts=manifest.counts,
                    skipped=manifest.skipped,
                )
                self.store.write_atomic(self._join(FAILURE), failure.model_dump_json(indent=2))
                self._discard_parts()
                raise EmptyOutput(
                    f"{problem}; nothing committed: once the input is fixed, a rerun rebuilds "
                    "it (`litelong run`, or `litelong run --rebuild`)"
                )
            self._remove_other_runs(of)
            if isinstance(self._fs, LocalFileSystem):
                self._sweep_staging()
            self.store.write_atomic(self._join(MANIFEST), manifest.model_dump_json(indent=2))
            self.make_current()
            return manifest

    def _discard_parts(self) -> None:
        """Every part of a complete but empty output: records first, so a part folder left
        by a crash here is debris that the next run replaces, never a part it reuses."""
        entries = [Path(e).name for e in self._fs.ls(self.path, detail=False)]
        parts = [name for name in entries if name.startswith("part-")]
        for name in sorted(parts, key=lambda name: not name.endswith(".json")):
            self._fs.rm(self._join(name), recursive=True)

    def _remove_other_runs(self, of: int) -> None:
        """Parts of another shard count and a stale failure record; never staging folders,
        which belong to live runs (each removes its own)."""
        keep = {part_name(shard, of) for shard in range(of)}
        for entry in self._fs.ls(self.path, detail=False):
            name = Path(entry).name
            if name == FAILURE or (
                name.startswith("part-") and name.removesuffix(".json") not in keep
            ):
                self._fs.rm(entry, recursive=True)


def _open_creating(path: Path) -> Any:
    """Open `path` for appending, creating its folder; again if a sweep removed the folder
    between the two."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(path, "a")  # the caller's `with` closes it
        except FileNotFoundError:
            continue
