"""A shard's stream of clean documents: normalised, filtered, partitioned and deduplicated.

With `partition: content` (the default) every shard reads every file and keeps the documents
whose content digest falls in it, so exact dedup is global without coordination and a single
huge file still spreads over shards. With `partition: files` a shard reads only its share of
the files (`partition.py`) and keeps all of their documents, so reading scales with the shard
count and dedup is within the shard. Files are parsed by worker processes (`readers`) and
consumed in file order, so the first copy of a duplicate is always the one kept, whatever the
number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..api.v1alpha1 import BM25IndexSpec
from .cutting import cut_bounds
from .keyset import SpillingKeySet
from .normalize import content_digest, normalize_and_digest
from .partition import assign_files
from .records import read_records
from .skips import SkipCounter
from .sources import CorpusFile, CorpusReadError, InvalidCorpus, resolve

_BATCH = 1024


class Document(NamedTuple):
    id: str
    text: str


@dataclass(frozen=True)
class ReadOptions:
    min_chars: int
    max_chars: int
    dedup: bool
    split_long: bool = True
    shard: int = 0
    of: int = 1

    @classmethod
    def from_spec(cls, spec: BM25IndexSpec, shard: int = 0, of: int = 1) -> ReadOptions:
        """`shard`/`of` split documents by content; with partition files the shard's files
        are already its own, so every document (and every skip) in them is the shard's."""
        if spec.partition == "files":
            shard, of = 0, 1
        return cls(
            spec.min_chars,
            spec.max_chars,
            spec.dedup == "exact",
            spec.too_long == "split",
            shard,
            of,
        )


Keyed = tuple[int, bool, Document]  # (content key, id came from the corpus, document)


def clean_documents(file: CorpusFile, options: ReadOptions, skips: SkipCounter) -> Iterator[Keyed]:
    """The documents of one file that belong to this shard, before dedup."""
    for batch in clean_batches(file, options, skips):
        yield from batch


def clean_batches(
    file: CorpusFile, options: ReadOptions, skips: SkipCounter
) -> Iterator[list[Keyed]]:
    """`clean_documents` in lists of `_BATCH` (the last one shorter, maybe empty): the
    per-record loop appends instead of resuming a generator a record."""
    shard, of, min_chars, max_chars = (
        options.shard,
        options.of,
        options.min_chars,
        options.max_chars,
    )
    batch: list[Keyed] = []
    for number, raw_id, raw_text in read_records(file, skips):
        text, digest = normalize_and_digest(raw_text)
        key = int.from_bytes(digest[:8], "little")
        if of > 1 and key % of != shard:
            continue
        if min_chars <= len(text) <= max_chars:
            batch.append((key, raw_id is not None, Document(raw_id or digest.hex(), text)))
        elif len(text) > max_chars and options.split_long:
            batch += _parts(raw_id or digest.hex(), raw_id is not None, text, options)
        else:
            reason = "too_short" if len(text) < min_chars else "too_long"
            skips.skip(reason, file.position(number), owned=True)
            continue
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    yield batch


def _parts(doc_id: str, has_id: bool, text: str, options: ReadOptions) -> Iterator[Keyed]:
    """A document over maxChars as parts `<id>#part<n>` of at most maxChars, cut at its
    strongest breaks; each keyed by its own content for dedup, all in the document's shard."""
    for number, (start, end) in enumerate(cut_bounds(text, options.max_chars)):
        part = text[start:end]
        if len(part.strip()) >= options.min_chars:
            key = int.from_bytes(content_digest(part)[:8], "little")
            yield key, has_id, Document(f"{doc_id}#part{number}", part)


def read_shard(
    spec: BM25IndexSpec,
    shard: int,
    of: int,
    skips: SkipCounter,
    readers: int = 1,
    on_file_done: Callable[[CorpusFile], None] | None = None,
) -> Iterator[Document]:
    """Every document of shard `shard` of `of`, in corpus order; skips counted in `skips`.
    Dedup keys spill to disk past a bound (`keyset.py`), so memory does not grow with the
    corpus."""
    for batch in read_batches(spec, shard, of, skips, readers, on_file_done):
        yield from batch


def read_batches(
    spec: BM25IndexSpec,
    shard: int,
    of: int,
    skips: SkipCounter,
    readers: int = 1,
    on_file_done: Callable[[CorpusFile], None] | None = None,
) -> Generator[list[Document], None, None]:
    """`read_shard`'s documents in lists of up to `_BATCH`, for a consumer that takes them a
    batch at a time (the index writer): a list a batch instead of a generator step a
    document. `on_file_done` is called once every batch of the file has been taken."""
    files = shard_files(spec, shard, of)
    options = ReadOptions.from_spec(spec, shard, of)
    with SpillingKeySet() as seen_content, SpillingKeySet() as seen_ids:
        for file, batch, file_skips in _batches(files, options, readers):
            if batch:
                kept = _first_copies(batch, options.dedup, seen_content, seen_ids, skips)
                if kept:
                    yield kept
            if file_skips is not None:
                skips.merge(file_skips)
                if on_file_done:
                    on_file_done(file)


def _first_copies(
    batch: list[Keyed],
    dedup: bool,
    seen_content: SpillingKeySet,
    seen_ids: SpillingKeySet,
    skips: SkipCounter,
) -> list[Document]:
    """The batch's documents whose content (with exact dedup) and corpus id were not seen
    before, in order; the others counted as duplicates."""
    keys = [key for key, _, _ in batch]
    fresh = seen_content.first_seen(keys) if dedup else [True] * len(batch)
    if not any(has_id for _, has_id, _ in batch):  # ids made from the content: no id check
        kept: list[Document] = []
        for (_, _, document), new in zip(batch, fresh, strict=True):
            if new:
                kept.append(document)
            else:
                skips.skip("duplicate", document.id, owned=True)
        return kept
    with_id: list[tuple[bool, Document]] = []
    for (_, has_id, document), new in zip(batch, fresh, strict=True):
        if new:
            with_id.append((has_id, document))
        else:
            skips.skip("duplicate", document.id, owned=True)
    new_ids = iter(seen_ids.first_seen([hash(d.id) for has_id, d in with_id if has_id]))
    unique: list[Document] = []
    for has_id, document in with_id:
        if has_id and not next(new_ids):
            skips.skip("duplicate_id", document.id, owned=True)
            continue
        unique.append(document)
    return unique


def corpus_files(spec: BM25IndexSpec) -> list[CorpusFile]:
    """All files of all sources; raises InvalidCorpus naming the first source that has none."""
    return [file for source in spec.corpus for file in resolve(source)]


def shard_files(spec: BM25IndexSpec, shard: int, of: int) -> list[CorpusFile]:
    """The files shard `shard` of `of` reads, in corpus order: all of them with partition
    content, its own share with partition files (InvalidCorpus when files are fewer than
    shards)."""
    files = corpus_files(spec)
    if spec.partition == "content":
        return files
    return assign_files(files, of)[shard]


Batch = tuple[CorpusFile, list[Keyed], SkipCounter | None]


def _batches(files: list[CorpusFile], options: ReadOptions, readers: int) -> Iterator[Batch]:
    if readers <= 1 or len(files) <= 1:
        for file in files:
            skips = SkipCounter(options.shard, options.of)
            for batch in clean_batches(file, options, skips):
                yield file, batch, None
            yield file, [], skips
        return
    yield from _parallel_batches(files, options, readers)


def _parallel_batches(
    files: list[CorpusFile], options: ReadOptions, readers: int
) -> Iterator[Batch]:
    context = mp.get_context("spawn")  # never fork a process that runs index writer threads
    waiting = deque(files)
    running: deque[tuple[CorpusFile, Any, Any]] = deque()

    def start() -> None:
        file = waiting.popleft()
        channel = context.Queue(maxsize=16)
        process = context.Process(target=_worker, args=(file, options, channel), daemon=True)
        process.start()
        running.append((file, process, channel))

    try:
        while waiting and len(running) < readers:
            start()
        while running:
            file, process, channel = running.popleft()
            while True:
                try:
                    message = channel.get(timeout=1.0)
                except queue.Empty:
                    if not process.is_alive():
                        raise CorpusReadError(f"{file.uri}: reader process died") from None
                    continue
                tag, payload = message
                if tag == "batch":
                    yield file, payload, None
                elif tag == "done":
                    yield file, [], payload
                    break
                else:
                    error = InvalidCorpus if tag == "invalid" else CorpusReadError
                    raise error(payload)
            process.join()
            if waiting:
                start()
    finally:
        for _, process, _ in running:
            process.terminate()


def _worker(file: CorpusFile, options: ReadOptions, channel: Any) -> None:
    skips = SkipCounter(options.shard, options.of)
    try:
        for batch in clean_batches(file, options, skips):
            channel.put(("batch", batch))
        channel.put(("done", skips))
    except InvalidCorpus as exc:
        channel.put(("invalid", str(exc)))
    except Exception as exc:
        channel.put(("error", str(exc)))
