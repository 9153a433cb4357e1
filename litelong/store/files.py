"""A store's files: the root an fsspec URI names, paths under it and atomic writes.

Apart from `store.py` so that an `Artifact` can hold its store's files without importing the
`ArtifactStore` that makes artifacts: no import circle between the two.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

DEFAULT_STORE = "file://./litelong-data"


def default_store_uri() -> str:
    return os.environ.get("LITELONG_STORE") or DEFAULT_STORE


def local_cache_dir() -> Path:
    """This machine's cache ($LITELONG_CACHE): downloaded parts, built tokenizers."""
    return Path(os.environ.get("LITELONG_CACHE", Path(tempfile.gettempdir()) / "litelong-cache"))


class StoreFiles:
    """The files under a store's root, on local disk or object storage."""

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
        return f"{type(self).__name__}({self.uri!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def uri_of(self, path: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{path}"

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
