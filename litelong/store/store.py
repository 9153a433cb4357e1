"""The artifact store: any fsspec URI; a local folder by default."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..api import KINDS
from .artifact import Artifact, NotCommitted

DEFAULT_STORE = "file://./litelong-data"
_KIND_BY_FOLDER = {kind.lower(): kind for kind in KINDS}


def default_store_uri() -> str:
    return os.environ.get("LITELONG_STORE") or DEFAULT_STORE


def local_cache_dir() -> Path:
    """This machine's cache ($LITELONG_CACHE): downloaded parts, built tokenizers."""
    return Path(os.environ.get("LITELONG_CACHE", Path(tempfile.gettempdir()) / "litelong-cache"))


class ArtifactStore:
    """Where every stage commits its outputs: `<store>/<kind>/<name>/<spec-hash>/`."""

    def __init__(self, uri: str | None = None) -> None:
        uri = uri or default_store_uri()
        if uri.startswith("file://"):
            uri = "file://" + os.path.abspath(uri.removeprefix("file://"))
        elif "://" not in uri:
            uri = "file://" + os.path.abspath(uri)
        self.uri = uri
        self.fs, root = fsspec.core.url_to_fs(uri)
        self.root = root.rstrip("/")
        self.cache_dir = local_cache_dir()

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def uri_of(self, path: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{path}"

    def artifact(self, kind: str, name: str, spec_hash: str) -> Artifact:
        return Artifact(self, kind, name, spec_hash)

    def write_atomic(self, path: str, text: str) -> None:
        """Readers see the old file or the whole new one, never a torn write."""
        if self.is_local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            temporary = f"{path}.tmp-{os.getpid()}"
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        else:  # a single PUT is atomic on object stores
            self.fs.pipe_file(path, text.encode())

    def artifacts(self) -> Iterator[Artifact]:
        """Every artifact folder in the store, committed or not."""
        for kind_dir in self._children(self.root):
            for name_dir in self._children(kind_dir):
                for hash_dir in self._children(name_dir):
                    kind = _KIND_BY_FOLDER.get(Path(kind_dir).name, Path(kind_dir).name)
                    yield self.artifact(kind, Path(name_dir).name, Path(hash_dir).name)

    def latest_committed(self, kind: str, name: str) -> Artifact:
        """The newest committed output of a resource, whatever its spec hash."""
        folder = self.join(kind.lower(), name)
        found = []
        for hash_dir in self._children(folder):
            artifact = self.artifact(kind, name, Path(hash_dir).name)
            manifest = artifact.committed_manifest()
            if manifest is not None:
                found.append((manifest.created_at, artifact))
        if not found:
            raise NotCommitted(f"no committed {kind}/{name} in {self.uri}")
        return max(found, key=lambda pair: pair[0])[1]

    def _children(self, path: str) -> list[str]:
        try:
            entries: list[dict[str, Any]] = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            e["name"]
            for e in entries
            if e["type"] == "directory" and not Path(e["name"]).name.startswith(".")
        )
