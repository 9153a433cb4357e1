"""The BM25Index stage: one shard of the corpus → one committed index part."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from ..api.v1alpha1 import BM25Index, BM25IndexSpec
from ..cores import thread_share
from ..corpus import Document, SkipCounter, read_columns
from ..corpus.prefetch import prefetched
from ..progress import Progress
from ..store import Artifact, ArtifactStore
from .chunks import CHUNKS_FOLDER, document_chunks
from .retriever import Retriever
from .tantivy_backend import TantivyPartWriter, TantivyRetriever

#: read the corpus on its own thread (`corpus/prefetch.py`). Off: on two cores the thread's GIL
#: hand-offs (numpy and blake2b release the GIL a batch and a text at a time) cost more than it
#: overlapped, ~9% of a 100K build's CPU, and its queue 60-80 MB of RSS (bench/README.md,
#: "where the last tenth goes"); a machine whose cores outnumber tantivy's threads may want it
PREFETCH = False


class BackendUnavailable(RuntimeError):
    """The spec asks for a backend this build cannot run."""


class ChunksUnavailable(ValueError):
    """A SynthesisRun in mode nextlong names an index without a matching chunk index."""


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
        from .manticore import load_part

        try:
            return load_part(resource, shard, of, folder, progress, store)
        except LookupError as error:
            raise BackendUnavailable(f"BM25Index/{resource.name}: {error}") from None
    skips = SkipCounter(shard, of)
    threads = writer_threads(spec)
    writer = TantivyPartWriter(folder, spec.analysis, spec.writer.heap_mb, threads)
    chunks = None
    if spec.chunks.enabled:
        (folder / CHUNKS_FOLDER).mkdir()
        chunks = TantivyPartWriter(
            folder / CHUNKS_FOLDER, spec.analysis, spec.writer.heap_mb, threads
        )
    chunk_chars = 0
    readers = spec.writer.readers or default_readers()
    # a batch at a time (up to 1,024 documents, as columns): the writer's loop and the
    # progress count cost a Python call a batch, not a document; with PREFETCH, read on a
    # thread of its own (`prefetched`) while this one hands documents to tantivy
    batches = read_columns(spec, shard, of, skips, readers)
    with closing(prefetched(batches) if PREFETCH else batches) as reading:
        for ids, texts in reading:
            writer.add_columns(ids, texts)
            if chunks is not None:
                for document in map(Document, ids, texts):
                    pieces = list(
                        document_chunks((document,), spec.chunks.chunk_chars, spec.min_chars)
                    )
                    chunks.add(pieces)
                    chunk_chars += sum(len(piece.text) for piece in pieces)
            progress.advance(len(ids), sum(map(len, texts)))
    writer.commit()
    counts = {"documents": writer.documents}
    if chunks is not None:
        chunks.commit()
        counts.update(chunks=chunks.documents, chunk_chars=chunk_chars)
    return counts, skips


def writer_threads(spec: BM25IndexSpec) -> int:
    """The spec's writer threads; when automatic (0) in a `litelong run --jobs` worker, its
    share of the cores, as many as the heap allows (tantivy wants 15 MB a thread): N workers
    each starting a thread per core would run N threads on every core."""
    share = thread_share()
    if spec.writer.threads or not share:
        return spec.writer.threads
    return max(1, min(share, spec.writer.heap_mb // 16))


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
        from .manticore import open_committed

        return open_committed(
            artifact, folders[0], manifest.counts, by_files=spec.partition == "files"
        )
    return TantivyRetriever(folders, spec.analysis)


def open_chunk_index(artifact: Artifact, chunk_chars: int) -> tuple[Retriever, float]:
    """A retriever over the chunk index of a committed BM25Index, and its chunks' mean length
    in characters; raises ChunksUnavailable, saying what to change, when the index has none
    or was cut at another size."""
    manifest = artifact.manifest()
    if manifest.spec.get("backend", {}).get("type") == "manticore":
        raise ChunksUnavailable(
            f"BM25Index/{artifact.name} is a Manticore index, which has no chunk index; mode "
            "nextlong needs a BM25Index with backend.type tantivy and "
            f"`chunks: {{enabled: true, chunkChars: {chunk_chars}}}`"
        )
    spec = BM25IndexSpec.model_validate(manifest.spec)
    if not spec.chunks.enabled or spec.chunks.chunk_chars != chunk_chars:
        built = f"chunkChars {spec.chunks.chunk_chars}" if spec.chunks.enabled else "no chunks"
        raise ChunksUnavailable(
            f"BM25Index/{artifact.name} has {built}; mode nextlong with chunkChars {chunk_chars} "
            f"needs it built with `chunks: {{enabled: true, chunkChars: {chunk_chars}}}`"
        )
    folders = [artifact.local_part(part) / CHUNKS_FOLDER for part in manifest.parts]
    chunks = int(manifest.counts.get("chunks", 0))
    mean = manifest.counts.get("chunk_chars", 0) / chunks if chunks else float(chunk_chars)
    return TantivyRetriever(folders, spec.analysis), mean
