"""The BM25Index stage: one shard of the corpus → one committed index part."""

from __future__ import annotations

from pathlib import Path

from ..api.v1alpha1 import BM25Index, BM25IndexSpec
from ..corpus import SkipCounter, read_shard
from ..progress import Progress
from ..store import Artifact, ArtifactStore
from .retriever import Retriever
from .tantivy_backend import TantivyPartWriter, TantivyRetriever

_PROGRESS_EVERY = 512


class BackendUnavailable(RuntimeError):
    """The spec asks for a backend this build cannot run."""


def build_part(
    resource: BM25Index,
    shard: int,
    of: int,
    folder: Path,
    progress: Progress,
    store: ArtifactStore,
) -> tuple[dict[str, int], SkipCounter]:
    """Index this shard's documents into `folder`; returns (counts, skips)."""
    spec = resource.spec
    progress.start(None, "docs")
    if spec.backend.type == "manticore":
        from .manticore_stage import load_part

        try:
            return load_part(resource, shard, of, folder, progress, store)
        except LookupError as error:
            raise BackendUnavailable(f"BM25Index/{resource.name}: {error}") from None
    skips = SkipCounter(shard, of)
    writer = TantivyPartWriter(folder, spec.analysis, spec.writer.heap_mb, spec.writer.threads)
    readers = spec.writer.readers or default_readers()
    pending_docs = pending_bytes = 0
    for document in read_shard(spec, shard, of, skips, readers):
        writer.add((document,))
        pending_docs += 1
        pending_bytes += len(document.text)
        if pending_docs == _PROGRESS_EVERY:
            progress.advance(pending_docs, pending_bytes)
            pending_docs = pending_bytes = 0
    progress.advance(pending_docs, pending_bytes)
    writer.commit()
    return {"documents": writer.documents}, skips


def default_readers() -> int:
    """One: parsing in extra processes was slower on 2 cores (bench/README.md), because the
    writer's threads already use every core and documents must be pickled across."""
    return 1


def open_index(artifact: Artifact) -> Retriever:
    """A retriever over a committed BM25Index artifact; refuses uncommitted ones."""
    manifest = artifact.manifest()
    spec = BM25IndexSpec.model_validate(manifest.spec)
    folders = [artifact.local_part(part) for part in manifest.parts]
    if spec.backend.type == "manticore":
        from .manticore_backend import ManticoreRetriever, read_location

        return ManticoreRetriever(read_location(folders[0]))
    return TantivyRetriever(folders, spec.analysis)
