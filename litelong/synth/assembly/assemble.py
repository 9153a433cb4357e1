"""Assembly: ordered candidate documents → samples of exactly `target` tokens.

Documents (or the pieces of a long one, `pieces.py`) are tokenized once (in batches, on every
core, through the Rust tokenizer) and their ids reused. A sample takes whole documents, each
followed by the separator, until the budget is reached; the document that crosses it is cut
to fit and marked truncated, and its rest is not used. A topic's samples take disjoint
documents, distinct by id and by content. A sample that cannot be filled is dropped and
counted, never padded with unrelated text.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tokenizers import Tokenizer

from ...corpus import content_digest
from ...dataset.sample import Span
from ...index import Retriever
from ...tokenizer import end_of_text
from .pieces import Claim, piece_bounds, piece_id, pieces_for, unread_skip

FETCH_BATCH = 64
MIN_FETCH_BATCH = 8
FIRST_FETCH_BATCH = 16
_RETOKENIZE_REACH = 16  # characters either side of a cut tried for a retokenizable one
TEXT_BATCH = 8  # texts read from the index at once: a few long documents at most
# A sample is given up (`DocumentStream`) when its topic's documents still to come, at GIVE_UP
# times the tokens per character its documents so far had, would not fill it.
GIVE_UP = 2


@dataclass(frozen=True)
class Tokenized:
    doc_id: str
    text: str
    digest: bytes
    ids: np.ndarray  # uint32 token ids, no special tokens


class IdSpill:
    """Token ids of documents the memory cache forgot, in an unnamed temporary file: where a
    document may be used again (`reuse.maxUsesPerDocument` over 1), a re-use reads its ids
    back (a page-cache read) instead of tokenizing it again. The caller still has the text
    (it names the unit), so only ids and the content digest are kept: 4 bytes a token on
    disk, an entry per spilled document in memory (what grows is the run, not the index)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="litelong-ids-")  # noqa: SIM115
        self._end = 0
        self._where: dict[str, tuple[int, int, bytes]] = {}  # id → (offset, tokens, digest)

    def put(self, tokenized: Tokenized) -> None:
        """Called under the documents' lock."""
        if tokenized.doc_id in self._where:
            return
        data = tokenized.ids.astype(np.uint32, copy=False).tobytes()
        os.pwrite(self._file.fileno(), data, self._end)
        self._where[tokenized.doc_id] = (self._end, len(tokenized.ids), tokenized.digest)
        self._end += len(data)

    def get(self, unit_id: str, text: str) -> Tokenized | None:
        found = self._where.get(unit_id)
        if found is None:
            return None
        offset, tokens, digest = found
        data = os.pread(self._file.fileno(), tokens * 4, offset)
        return Tokenized(unit_id, text, digest, np.frombuffer(data, np.uint32))

    def close(self) -> None:
        self._file.close()


class TokenizedDocuments:
    """Texts from the index, tokenized once per process; least recently used ones forgotten
    past `capacity_tokens`, so memory stays flat however large the dataset (with `spill`,
    their ids wait on disk instead, `IdSpill`). Safe to share between threads: topics are
    assembled concurrently (`synth/stage.py`), so one topic's texts are read while another's
    are tokenized (the tokenizer releases the GIL)."""

    def __init__(
        self,
        retriever: Retriever,
        tokenizer: Tokenizer,
        capacity_tokens: int = 8_000_000,
        spill: bool = False,
    ) -> None:
        self.retriever = retriever
        self._tokenizer = tokenizer
        self._capacity = capacity_tokens
        self._held = 0
        self._cache: OrderedDict[str, Tokenized] = OrderedDict()
        self._spill = IdSpill() if spill else None
        self._lock = threading.Lock()  # the cache and the counter; never held while tokenizing
        self.tokenized = 0  # documents or pieces tokenized (cache misses)

    def fetch(self, ids: Sequence[str]) -> list[Tokenized]:
        """Whole documents (chunks of the chunk index: short by construction)."""
        unique = list(dict.fromkeys(ids))
        with self._lock:
            missing = [doc_id for doc_id in unique if doc_id not in self._cache]
        texts = dict(zip(missing, self.retriever.get(missing), strict=True)) if missing else {}
        found = {d.doc_id: d for d in self.tokenize([(i, texts.get(i, "")) for i in unique])}
        return [found[doc_id] for doc_id in ids]

    def tokenize(self, units: Sequence[tuple[str, str]]) -> list[Tokenized]:
        """(id, text) units tokenized in one batch on every core; cached by id."""
        found: dict[str, Tokenized] = {}
        with self._lock:
            for unit_id, text in units:
                if (hit := self._cache.get(unit_id)) is not None:
                    self._cache.move_to_end(unit_id)
                    found[unit_id] = hit
                elif self._spill and (spilled := self._spill.get(unit_id, text)) is not None:
                    found[unit_id] = spilled
                    self._remember(spilled)
        missing = {unit_id: text for unit_id, text in units if unit_id not in found}
        if missing:
            # no offsets: only the one document a sample cuts needs them (`cut_to_fit`)
            encodings = self._tokenizer.encode_batch_fast(
                list(missing.values()), add_special_tokens=False
            )
            made = [
                Tokenized(unit_id, text, content_digest(text), np.asarray(encoding.ids, np.uint32))
                for (unit_id, text), encoding in zip(missing.items(), encodings, strict=True)
            ]
            with self._lock:
                for tokenized in made:
                    found[tokenized.doc_id] = tokenized
                    self._remember(tokenized)  # may evict others, never what `found` holds
                self.tokenized += len(missing)
        return [found[unit_id] for unit_id, _ in units]

    def _remember(self, tokenized: Tokenized) -> None:
        self._cache[tokenized.doc_id] = tokenized
        self._held += len(tokenized.ids)
        while self._held > self._capacity and len(self._cache) > FETCH_BATCH:
            _, old = self._cache.popitem(last=False)
            self._held -= len(old.ids)
            if self._spill is not None:
                self._spill.put(old)

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()

    def stream(
        self,
        claims: Sequence[str | Claim],
        piece_chars: int | None = None,
        limit: int | None = None,
    ) -> DocumentStream:
        return DocumentStream(self, claims, piece_chars, limit)


class DocumentStream:
    """A topic's candidates in order, cut into pieces of at most `piece_chars` (`pieces.py`),
    and fetched and tokenized in batches no larger than what the samples still need (told
    through `need`), so little is tokenized and then left unused: a 50 MB document costs the
    pieces a sample takes, never its whole tokenization."""

    def __init__(
        self,
        documents: TokenizedDocuments,
        claims: Sequence[str | Claim],
        piece_chars: int | None = None,
        limit: int | None = None,
    ) -> None:
        self._documents = documents
        self._claims = [c if isinstance(c, Claim) else Claim(c) for c in claims]
        self._piece_chars = piece_chars
        self._limit = limit
        self._needed = 0  # tokens the samples still need; 0: unknown
        self._sample_needs = 0  # tokens the sample being filled still needs; 0: unknown
        self._seen_tokens = 0
        self._seen_documents = 0
        self._seen_chars = 0
        self._next_claim = 0  # the first claim `_units` has not finished with
        self._chars_from = self._chars_left()
        self.tokens_left = 0  # a given-up sample: the tokens its documents left were worth
        self.counts: Counter[str] = Counter()
        self.scores: dict[str, float] = {}  # piece id → its document's retrieval score

    def need(self, tokens: int, sample: int = 0) -> None:
        """Tokens the samples still need, and of them the sample being filled (`sample`)."""
        self._needed = tokens
        self._sample_needs = sample

    def _chars_left(self) -> list[float]:
        """Characters of claims i.. that may still be used (a claim whose length says reuse
        forbids it counts none; an unknown length counts as unbounded)."""
        left = [0.0] * (len(self._claims) + 1)
        for i in range(len(self._claims) - 1, -1, -1):
            claim = self._claims[i]
            chars = math.inf if claim.chars is None else claim.chars
            if unread_skip(claim, self._piece_chars, self._limit):
                chars = 0
            left[i] = left[i + 1] + chars
        return left

    def _hopeless(self) -> bool:
        """Whether the sample being filled cannot be: what its topic has left (from the
        index's lengths), at `GIVE_UP` times the tokens per character of the documents read so
        far, is less than it needs. Its documents would be tokenized only to be dropped with
        it (`samples_underfilled`); a topic's last sample is the one that runs out. Depends
        only on the topic's own documents, so every shard gives up the same samples."""
        if not (self._sample_needs and self._seen_chars):
            return False
        left = self._chars_from[self._next_claim]
        if left * GIVE_UP * self._seen_tokens >= self._sample_needs * self._seen_chars:
            return False
        self.tokens_left = round(left * self._seen_tokens / self._seen_chars)
        return True

    def _units(self) -> Iterator[tuple[str, str]]:
        """(piece id, piece text) of every piece this topic may use, texts read a few at a
        time so that only a few long documents are held at once. A claim that its length says
        reuse forbids (`unread_skip`) is never read; it is counted where it comes, as when it
        was read, so the counts do not change."""
        claims = self._claims
        start = 0
        while start < len(claims):
            window: list[tuple[Claim, bool]] = []  # up to TEXT_BATCH claims to read
            reads = 0
            while start < len(claims) and reads < TEXT_BATCH:
                claim = claims[start]
                read = not unread_skip(claim, self._piece_chars, self._limit)
                window.append((claim, read))
                reads += read
                start += 1
            wanted = [claim.doc_id for claim, read in window if read]
            texts = iter(self._documents.retriever.get(wanted) if wanted else [])
            for offset, (claim, read) in enumerate(window):
                self._next_claim = start - len(window) + offset
                if not read:
                    self.counts["skipped.reuse_limited"] += 1
                    continue
                text = next(texts)
                whole = [(0, len(text))]
                bounds = piece_bounds(text, self._piece_chars) if self._piece_chars else whole
                chosen = pieces_for(claim, len(bounds), self._limit)
                self.counts["skipped.reuse_limited"] += not chosen
                self.counts["documents_split"] += len(bounds) > 1
                for number in chosen:
                    begin, end = bounds[number]
                    unit = piece_id(claim.doc_id, number, len(bounds))
                    if claim.score is not None:
                        self.scores[unit] = claim.score
                    yield unit, text[begin:end]

    def __iter__(self) -> Iterator[Tokenized]:
        units = self._units()
        while True:
            size = FETCH_BATCH
            if self._needed and not self._seen_documents:
                size = FIRST_FETCH_BATCH  # document lengths unknown yet: start small
            elif self._needed:
                per_document = self._seen_tokens / self._seen_documents
                size = max(MIN_FETCH_BATCH, min(FETCH_BATCH, int(self._needed / per_document) + 2))
            if self._hopeless():
                self.counts["samples_given_up"] += 1
                return
            batch = list(itertools.islice(units, size))
            if not batch:
                return
            for document in self._documents.tokenize(batch):
                self._seen_tokens += len(document.ids)
                self._seen_documents += 1
                self._seen_chars += len(document.text)
                yield document


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
    leftover_tokens: int = 0  # tokens of the last sample that ran out of documents


class Separator:
    """What follows every document, and the tokenizer that counts it (and cuts the document
    that crosses a sample's budget). None: the tokenizer's end-of-text token, so that a
    sample's `text` tokenizes back to exactly its `input_ids` (docs/synthesis.md)."""

    def __init__(self, tokenizer: Tokenizer, text: str | None = None) -> None:
        self.tokenizer = tokenizer
        text = end_of_text(tokenizer) if text is None else text
        self.text = text
        self.ids = np.asarray(tokenizer.encode(text, add_special_tokens=False).ids, np.uint32)
        self.ends = token_ends(tokenizer, text)


def token_ends(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """The character offset where each token of `text` ends."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    return np.asarray([end for _, end in offsets], dtype=np.int64)


def fill_samples(
    documents: Iterable[Tokenized], wanted: int, target: int, separator: Separator
) -> TopicResult:
    """Up to `wanted` samples of exactly `target` tokens from `documents`, in their order.

    A `DocumentStream` is told how many tokens are still needed before each document.
    """
    need = documents.need if isinstance(documents, DocumentStream) else None
    scores = documents.scores if isinstance(documents, DocumentStream) else {}
    result = TopicResult()
    seen_ids: set[str] = set()
    seen_digests: set[bytes] = set()
    pieces: list[np.ndarray] = []
    texts: list[str] = []
    spans: list[Span] = []
    filled = 0
    if need is not None:
        need(wanted * target, target)
    for document in documents:
        if need is not None:  # before the stream fetches the next batch
            need((wanted - len(result.samples)) * target - filled, target - filled)
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
            score = scores.get(document.doc_id)
            spans.append(Span(document.doc_id, filled, filled + whole, score=score))
            filled += whole
        else:
            ids, text, cut = cut_to_fit(document, separator, room)
            pieces.append(ids)
            texts.append(text)
            score = scores.get(document.doc_id)
            spans.append(Span(document.doc_id, filled, target, truncated=cut, score=score))
            filled = target
            result.counts["documents_truncated"] += cut
            result.counts["documents_longer_than_budget"] += len(document.ids) > target
        result.counts["documents"] += 1
        if filled == target:
            result.samples.append(Built(np.concatenate(pieces), "".join(texts), spans))
            pieces, texts, spans, filled = [], [], [], 0
            if len(result.samples) == wanted:
                break  # before the stream fetches and tokenizes more
    # given up (`DocumentStream._hopeless`): what the rest of its documents would add, estimated
    left = documents.tokens_left if isinstance(documents, DocumentStream) else 0
    if spans or left:
        result.counts["samples_underfilled"] += 1  # the last one ran out of documents
        result.leftover_tokens = filled + left
    if isinstance(documents, DocumentStream):
        result.counts.update(documents.counts)
    return result


def _prefix_end(tokenizer: Tokenizer, document: Tokenized, room: int) -> int:
    """Where the first `room` tokens of the document end in its text.

    Decoding them is exact for byte-level BPE unless the cut splits a character's bytes; then a
    prefix of the text is tokenized (a cut document can be megabytes long): a prefix that gives
    the same first `room` ids, with more tokens after them, gives their character offsets.
    """
    expected = document.ids[:room].tolist()
    decoded = tokenizer.decode(expected, skip_special_tokens=False)
    if document.text.startswith(decoded):
        return len(decoded)
    chars = room * 8 + 64
    while True:
        encoding = tokenizer.encode(document.text[:chars], add_special_tokens=False)
        whole = chars >= len(document.text)
        if whole or (len(encoding.ids) > room + 1 and encoding.ids[:room] == expected):
            return int(encoding.offsets[room - 1][1])
        chars *= 2


def _retokenizable(
    tokenizer: Tokenizer, document: Tokenized, room: int, end: int
) -> tuple[np.ndarray, str]:
    """`room` token ids and the text they are the tokenization of.

    The first `room` ids of the whole document usually are the tokenization of their own text;
    where BPE merges the cut's last characters differently, a cut a few characters away whose
    text tokenizes to exactly `room` ids is taken instead (its ids, not the whole document's).
    """
    ids = document.ids[:room]
    if room == 0 or tokenizer.encode(document.text[:end], add_special_tokens=False).ids == list(
        ids
    ):
        return ids, document.text[:end]
    for delta in range(1, _RETOKENIZE_REACH):
        for near in (end - delta, end + delta):
            if 0 < near <= len(document.text):
                found = tokenizer.encode(document.text[:near], add_special_tokens=False).ids
                if len(found) == room:
                    return np.asarray(found, np.uint32), document.text[:near]
    return ids, document.text[:end]  # no such cut nearby: exact length kept, text approximate


def cut_to_fit(
    document: Tokenized, separator: Separator, room: int
) -> tuple[np.ndarray, str, bool]:
    """The first `room` tokens of document + separator, their text, and whether the document
    itself was cut (not only its separator)."""
    if room <= len(document.ids):
        end = _prefix_end(separator.tokenizer, document, room) if room else 0
        ids, text = _retokenizable(separator.tokenizer, document, room, end)
        return ids, text, room < len(document.ids)
    kept = room - len(document.ids)
    end = int(separator.ends[kept - 1]) if kept else 0
    ids = np.concatenate([document.ids, separator.ids[:kept]])
    return ids, document.text + separator.text[:end], False
