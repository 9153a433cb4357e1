"""Assembly: ordered candidate documents → samples of exactly `target` tokens.

Documents are tokenized once (in batches, on every core, through the Rust tokenizer) and their
ids reused. A sample takes whole documents, each followed by the separator, until the budget is
reached; the document that crosses it is cut to fit and marked truncated, and its rest is not
used. A topic's samples take disjoint documents, distinct by id and by content. A sample that
cannot be filled is dropped and counted, never padded with unrelated text.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tokenizers import Tokenizer

from ..corpus import content_digest
from ..index import Retriever
from .sample import Span

FETCH_BATCH = 64


@dataclass(frozen=True)
class Tokenized:
    doc_id: str
    text: str
    digest: bytes
    ids: np.ndarray  # uint32 token ids, no special tokens
    ends: np.ndarray  # character offset where each token ends, to cut the text exactly


class TokenizedDocuments:
    """Texts from the index, tokenized once per process; least recently used ones forgotten
    past `capacity_tokens`, so memory stays flat however large the dataset."""

    def __init__(
        self, retriever: Retriever, tokenizer: Tokenizer, capacity_tokens: int = 8_000_000
    ) -> None:
        self._retriever = retriever
        self._tokenizer = tokenizer
        self._capacity = capacity_tokens
        self._held = 0
        self._cache: OrderedDict[str, Tokenized] = OrderedDict()
        self.tokenized = 0  # documents tokenized (cache misses)

    def fetch(self, ids: Sequence[str]) -> list[Tokenized]:
        missing = [doc_id for doc_id in dict.fromkeys(ids) if doc_id not in self._cache]
        if missing:
            texts = self._retriever.get(missing)
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
            for doc_id, text, encoding in zip(missing, texts, encodings, strict=True):
                tokenized = Tokenized(
                    doc_id,
                    text,
                    content_digest(text),
                    np.asarray(encoding.ids, dtype=np.uint32),
                    np.asarray([end for _, end in encoding.offsets], dtype=np.int32),
                )
                self._remember(tokenized)
            self.tokenized += len(missing)
        found = []
        for doc_id in ids:
            self._cache.move_to_end(doc_id)
            found.append(self._cache[doc_id])
        return found

    def _remember(self, tokenized: Tokenized) -> None:
        self._cache[tokenized.doc_id] = tokenized
        self._held += len(tokenized.ids)
        while self._held > self._capacity and len(self._cache) > FETCH_BATCH:
            _, old = self._cache.popitem(last=False)
            self._held -= len(old.ids)

    def stream(self, ids: Iterable[str]) -> Iterator[Tokenized]:
        """Documents in the order of `ids`, fetched lazily in batches."""
        batch: list[str] = []
        for doc_id in ids:
            batch.append(doc_id)
            if len(batch) == FETCH_BATCH:
                yield from self.fetch(batch)
                batch = []
        if batch:
            yield from self.fetch(batch)


@dataclass
class Built:
    """A filled sample before it gets its id and topic."""

    input_ids: np.ndarray
    text: str
    spans: list[Span]


@dataclass
class TopicResult:
    samples: list[Built] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class Separator:
    def __init__(self, tokenizer: Tokenizer, text: str) -> None:
        self.text = text
        encoding = tokenizer.encode(text, add_special_tokens=False) if text else None
        self.ids = np.asarray(encoding.ids if encoding else [], dtype=np.uint32)
        self.ends = np.asarray([end for _, end in encoding.offsets] if encoding else [])


def fill_samples(
    documents: Iterable[Tokenized], wanted: int, target: int, separator: Separator
) -> TopicResult:
    """Up to `wanted` samples of exactly `target` tokens from `documents`, in their order."""
    result = TopicResult()
    seen_ids: set[str] = set()
    seen_digests: set[bytes] = set()
    pieces: list[np.ndarray] = []
    texts: list[str] = []
    spans: list[Span] = []
    filled = 0
    for document in documents:
        if len(result.samples) == wanted:
            break
        if document.doc_id in seen_ids or document.digest in seen_digests:
            result.counts["skipped.duplicate_content"] += 1
            continue
        if len(document.ids) == 0:
            result.counts["skipped.no_tokens"] += 1
            continue
        seen_ids.add(document.doc_id)
        seen_digests.add(document.digest)
        room = target - filled
        whole = len(document.ids) + len(separator.ids)
        if whole <= room:
            pieces += [document.ids, separator.ids]
            texts += [document.text, separator.text]
            spans.append(Span(document.doc_id, filled, filled + whole))
            filled += whole
        else:
            ids, text, cut = _cut(document, separator, room)
            pieces.append(ids)
            texts.append(text)
            spans.append(Span(document.doc_id, filled, target, truncated=cut))
            filled = target
            result.counts["documents_truncated"] += cut
            result.counts["documents_longer_than_budget"] += len(document.ids) > target
        result.counts["documents"] += 1
        if filled == target:
            result.samples.append(Built(np.concatenate(pieces), "".join(texts), spans))
            pieces, texts, spans, filled = [], [], [], 0
    if spans:
        result.counts["samples_underfilled"] += 1  # the last one ran out of documents
    return result


def _cut(document: Tokenized, separator: Separator, room: int) -> tuple[np.ndarray, str, bool]:
    """The first `room` tokens of document + separator, their text, and whether the document
    itself was cut (not only its separator)."""
    if room <= len(document.ids):
        end = int(document.ends[room - 1]) if room else 0
        return document.ids[:room], document.text[:end], room < len(document.ids)
    kept = room - len(document.ids)
    end = int(separator.ends[kept - 1]) if kept else 0
    ids = np.concatenate([document.ids, separator.ids[:kept]])
    return ids, document.text + separator.text[:end], False
