"""Loading one shard of the corpus into Manticore: the BM25Index stage for backend manticore.

A loader reads its share of the corpus (by content or by files: `partition`) exactly as the
tantivy stage does (normalised, filtered, deduplicated) and sends each document to the Manticore
shard its id hashes to. The committed part holds no index, only `manticore.json` naming the
shard tables, and counts per shard.

Reruns resume per corpus file: once every document of a file is acknowledged, the file is
recorded in a checkpoint beside the artifact, and a rerun reads such files again (dedup needs
them) without sending them. Whatever is sent twice is harmless: operations are `replace` by id.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...api.v1alpha1 import BM25Index
from ...api.v1alpha1.bm25index import shard_count_key
from ...corpus import CorpusFile, SkipCounter, read_shard, shard_files
from ...progress import Progress
from ...store import ArtifactStore
from .backend import connect, prepare_tables, write_location
from .bulk import BulkLoader
from .shards import shard_layout, shard_of, table_name

_PROGRESS_EVERY = 512


class LoadCheckpoint:
    """Corpus files of one loader already acknowledged by Manticore, kept in the store."""

    def __init__(self, store: ArtifactStore, artifact_path: str, shard: int, of: int) -> None:
        self._store = store
        self._path = f"{artifact_path}/.loading/shard-{shard:05d}-of-{of:05d}.json"
        try:
            self.done: set[str] = set(json.loads(store.fs.cat_file(self._path))["files"])
        except FileNotFoundError:
            self.done = set()

    def record(self, uri: str) -> None:
        self.done.add(uri)
        self._store.write_atomic(self._path, json.dumps({"files": sorted(self.done)}))

    def clear(self) -> None:
        if self._store.fs.exists(self._path):
            self._store.fs.rm(self._path)


def load_part(
    resource: BM25Index,
    shard: int,
    of: int,
    folder: Path,
    progress: Progress,
    store: ArtifactStore,
) -> tuple[dict[str, int], SkipCounter]:
    """Send this loader's documents to their shards; returns (counts, skips)."""
    spec = resource.spec
    options = spec.backend.manticore
    assert options is not None  # the model sets it for type manticore
    # namespace in the table name: one external Manticore serving two teams keeps them apart
    shards = shard_layout(
        table_name(f"{resource.namespace}_{resource.name}", resource.identity()),
        options.shards,
        options.url,
    )
    connections = connect(shards)
    lengths = prepare_tables(shards, connections, spec.analysis)
    artifact_path = store.output_of(resource).path
    checkpoint = LoadCheckpoint(store, artifact_path, shard, of)
    files = [file.uri for file in shard_files(spec, shard, of)]
    loader = BulkLoader(
        shards, connections, spec.writer.batch_size, spec.writer.in_flight, lengths=lengths
    )
    skips = SkipCounter(shard, of)
    per_shard = [0] * len(shards)
    finished = 0  # files are read in order: the current one is files[finished]

    def file_done(file: CorpusFile) -> None:
        nonlocal finished
        if file.uri not in checkpoint.done:
            loader.flush()
            checkpoint.record(file.uri)
        finished += 1

    pending = 0
    try:
        for document in read_shard(
            spec, shard, of, skips, spec.writer.readers or 1, on_file_done=file_done
        ):
            per_shard[shard_of(document.id, len(shards))] += 1
            pending += 1
            if pending == _PROGRESS_EVERY:
                progress.advance(pending)
                pending = 0
            if files[finished] not in checkpoint.done:
                loader.add(document)
        loader.flush()
    finally:
        loader.close()
        for connection in connections.values():
            connection.close()
    progress.advance(pending)
    write_location(folder, shards)
    checkpoint.clear()
    counts = {"documents": sum(per_shard)}
    counts.update({shard_count_key(index): number for index, number in enumerate(per_shard)})
    return counts, skips
