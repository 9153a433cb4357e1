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
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np

from ..api.v1alpha1 import BM25IndexSpec
from .cutting import cut_bounds
from .keyset import SpillingKeySet
from .normalize import content_digest, normalize_batch
from .partition import assign_files
from .records import read_record_batches
from .skips import SkipCounter
from .sources import CorpusFile, CorpusReadError, InvalidCorpus, resolve

_BATCH = 1024
T = TypeVar("T")


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


class Columns(NamedTuple):
    """A batch of clean documents as columns (what the index writer takes)."""

    ids: list[str]
    texts: list[str]


class _Clean(NamedTuple):
    """One file's clean documents of a batch, before dedup (picklable for reader processes)."""

    keys: list[int]  # 64 bits of each content digest: shard and dedup key
    from_corpus: list[bool] | None  # id came from the corpus; None: every id is a digest
    ids: list[str]
    texts: list[str]


def clean_documents(file: CorpusFile, options: ReadOptions, skips: SkipCounter) -> Iterator[Keyed]:
    """The documents of one file that belong to this shard, before dedup."""
    for batch in clean_batches(file, options, skips):
        from_corpus = batch.from_corpus or [False] * len(batch.ids)
        for key, has_id, doc_id, text in zip(
            batch.keys, from_corpus, batch.ids, batch.texts, strict=True
        ):
            yield key, has_id, Document(doc_id, text)


def clean_batches(file: CorpusFile, options: ReadOptions, skips: SkipCounter) -> Iterator[_Clean]:
    """`clean_documents` a batch of up to `_BATCH` records at a time, as columns (maybe
    empty): each step is a list operation or one loop over the batch, not a generator step,
    tuples and a namedtuple a record (bench/README.md, "where the last tenth goes")."""
    shard, of, min_chars, max_chars = (
        options.shard,
        options.of,
        options.min_chars,
        options.max_chars,
    )
    for records in read_record_batches(file, skips, _BATCH):
        texts, digests = normalize_batch(records.texts)
        keys = _keys(digests)
        numbers, raw_ids = records.numbers, records.ids
        if of > 1:
            mine = [n for n, key in enumerate(keys) if key % of == shard]
            keys, texts, digests = _pick(keys, mine), _pick(texts, mine), _pick(digests, mine)
            numbers = _pick(numbers, mine)
            raw_ids = None if raw_ids is None else _pick(raw_ids, mine)
        if raw_ids is None:
            ids = [digest.hex() for digest in digests]
            from_corpus = None
        else:
            ids = [raw or digest.hex() for raw, digest in zip(raw_ids, digests, strict=True)]
            from_corpus = [raw is not None for raw in raw_ids]
        lengths = list(map(len, texts))
        if not lengths or (min(lengths) >= min_chars and max(lengths) <= max_chars):
            yield _Clean(keys, from_corpus, ids, texts)
        else:
            yield _filtered(_Clean(keys, from_corpus, ids, texts), numbers, file, options, skips)


def _keys(digests: list[bytes]) -> list[int]:
    """The first 8 bytes of each digest as a little-endian integer, in one numpy call."""
    if not digests:
        return []
    keys: list[int] = np.frombuffer(b"".join(digests), "<u8")[::2].tolist()
    return keys


def _pick(values: list[T], places: list[int]) -> list[T]:
    return [values[place] for place in places]


def _filtered(
    batch: _Clean,
    numbers: list[int],
    file: CorpusFile,
    options: ReadOptions,
    skips: SkipCounter,
) -> _Clean:
    """`batch` with the documents outside [minChars, maxChars] dropped and counted, or split
    into parts (`tooLong: split`)."""
    kept = _Clean([], None if batch.from_corpus is None else [], [], [])
    from_corpus = batch.from_corpus or [False] * len(batch.ids)
    for key, has_id, doc_id, text, number in zip(
        batch.keys, from_corpus, batch.ids, batch.texts, numbers, strict=True
    ):
        if options.min_chars <= len(text) <= options.max_chars:
            parts: Iterable[Keyed] = [(key, has_id, Document(doc_id, text))]
        elif len(text) > options.max_chars and options.split_long:
            parts = _parts(doc_id, has_id, text, options)
        else:
            reason = "too_short" if len(text) < options.min_chars else "too_long"
            skips.skip(reason, file.position(number), owned=True)
            continue
        for part_key, part_has_id, document in parts:
            kept.keys.append(part_key)
            kept.ids.append(document.id)
            kept.texts.append(document.text)
            if kept.from_corpus is not None:
                kept.from_corpus.append(part_has_id)
    return kept


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
    for batch in read_columns(spec, shard, of, skips, readers, on_file_done):
        yield from map(Document, batch.ids, batch.texts)


def read_batches(
    spec: BM25IndexSpec,
    shard: int,
    of: int,
    skips: SkipCounter,
    readers: int = 1,
    on_file_done: Callable[[CorpusFile], None] | None = None,
) -> Generator[list[Document], None, None]:
    """`read_shard`'s documents in lists of up to `_BATCH`."""
    for batch in read_columns(spec, shard, of, skips, readers, on_file_done):
        yield list(map(Document, batch.ids, batch.texts))


def read_columns(
    spec: BM25IndexSpec,
    shard: int,
    of: int,
    skips: SkipCounter,
    readers: int = 1,
    on_file_done: Callable[[CorpusFile], None] | None = None,
) -> Generator[Columns, None, None]:
    """`read_shard`'s documents a batch of up to `_BATCH` at a time, as columns (never
    empty), for a consumer that takes them so (the index writer): lists, not a tuple a
    document. `on_file_done` is called once every batch of the file has been taken."""
    files = shard_files(spec, shard, of)
    options = ReadOptions.from_spec(spec, shard, of)
    with SpillingKeySet() as seen_content, SpillingKeySet() as seen_ids:
        for file, batch, file_skips in _batches(files, options, readers):
            if batch.ids:
                kept = _first_copies(batch, options.dedup, seen_content, seen_ids, skips)
                if kept.ids:
                    yield kept
            if file_skips is not None:
                skips.merge(file_skips)
                if on_file_done:
                    on_file_done(file)


def _first_copies(
    batch: _Clean,
    dedup: bool,
    seen_content: SpillingKeySet,
    seen_ids: SpillingKeySet,
    skips: SkipCounter,
) -> Columns:
    """The batch's documents whose content (with exact dedup) and corpus id were not seen
    before, in order; the others counted as duplicates."""
    fresh = seen_content.first_seen(batch.keys) if dedup else None
    if batch.from_corpus is None and (fresh is None or all(fresh)):
        return Columns(batch.ids, batch.texts)  # ids made from the content: no id check
    kept = Columns([], [])
    from_corpus: list[bool] = []
    for n, (doc_id, text) in enumerate(zip(batch.ids, batch.texts, strict=True)):
        if fresh is None or fresh[n]:
            kept.ids.append(doc_id)
            kept.texts.append(text)
            from_corpus.append(batch.from_corpus is not None and batch.from_corpus[n])
        else:
            skips.skip("duplicate", doc_id, owned=True)
    if not any(from_corpus):
        return kept
    with_id = [hash(i) for i, has_id in zip(kept.ids, from_corpus, strict=True) if has_id]
    new_ids = iter(seen_ids.first_seen(with_id))
    unique = Columns([], [])
    for doc_id, text, has_id in zip(kept.ids, kept.texts, from_corpus, strict=True):
        if has_id and not next(new_ids):
            skips.skip("duplicate_id", doc_id, owned=True)
            continue
        unique.ids.append(doc_id)
        unique.texts.append(text)
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


Batch = tuple[CorpusFile, _Clean, SkipCounter | None]

_NOTHING = _Clean([], None, [], [])


def _batches(files: list[CorpusFile], options: ReadOptions, readers: int) -> Iterator[Batch]:
    if readers <= 1 or len(files) <= 1:
        for file in files:
            skips = SkipCounter(options.shard, options.of)
            for batch in clean_batches(file, options, skips):
                yield file, batch, None
            yield file, _NOTHING, skips
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
                    yield file, _NOTHING, payload
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
