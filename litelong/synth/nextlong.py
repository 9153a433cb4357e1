"""Mode nextlong (NExtLong, arXiv 2501.12766, on LiteLong's topic retrieval): a meta-document
cut into meta-chunks, each followed by its hard-negative chunks, filled to exactly
`targetTokens`.

Three steps, all independent of the shard count:

1. **Plan** every topic's samples (on every shard: it is retrieval, cheap next to tokenizing):
   a sample's meta-document is the next document of the topic's retrieved pool that is longer
   than one chunk; its leading meta-chunks, up to half the budget, are kept; each meta-chunk
   asks for k = ceil((T*E*w - S) / (p*s)) negatives (T target tokens, E the meta-document's
   characters per token, w `expansion`, S its kept characters, p its meta-chunks, s the chunk
   index's mean chunk length), and retrieves `OVERFETCH` x k candidates.
2. **Claim**: a chunk retrieved for several samples goes to the one where it ranks highest
   (ties: a seeded hash of sample and chunk), and within a sample to its best-ranked
   meta-chunk. So no negative is used twice in the dataset, whichever shard builds what.
3. **Fill** (this shard's samples only): `[m1, n11..n1k, m2, n21..n2k, ...]`, every piece followed
   by the separator. The meta-chunks' tokens are set aside first; the rest of the budget is
   shared out so meta-chunk i's negatives end near i/p of it, and the negative that reaches
   the budget is cut to fit. A sample whose claimed negatives cannot reach the budget is dropped
   and counted, never padded.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from ..api.v1alpha1.synthesisrun import SynthesisRunSpec
from ..corpus import content_digest
from ..index import chunk_id, split_chunks
from .assemble import Built, Separator, Tokenized, TokenizedDocuments, cut_to_fit
from .candidates import Topic, seed_of
from .negatives import NegativeSource, Query
from .pieces import document_of
from .sample import Span

# Candidates retrieved per meta-chunk, as a multiple of k: neighbouring meta-chunks of one
# meta-document retrieve many of the same chunks, and each chunk is placed once.
OVERFETCH = 2
_NEGATIVE_BATCH = 16


@dataclass
class Group:
    """A meta-chunk and its negatives, most similar first."""

    meta_id: str
    text: str
    negatives: list[tuple[str, float]]


@dataclass
class Plan:
    topic: Topic
    number: int  # the sample's number within its topic
    doc_ids: list[str]  # the documents of the meta-document
    groups: list[Group]
    k: int  # negatives asked for per meta-chunk

    @property
    def key(self) -> tuple[int, int]:
        return self.topic.number, self.number


def plan_topic(
    spec: SynthesisRunSpec,
    topic: Topic,
    pool: Iterable[Tokenized],
    negatives: NegativeSource,
    chunk_length: float,
    counts: Counter[str],
) -> list[Plan]:
    """Up to `samplesPerTopic` plans from the topic's pool (its documents, or pieces of long
    ones, shared with other topics as `pieces.py` says), taken in order: each in one
    meta-document at most."""
    options = spec.nextlong
    target = spec.target_tokens
    plans: list[Plan] = []
    fetched = iter(pool)
    seen: set[bytes] = set()
    while len(plans) < spec.samples_per_topic:
        meta: list[Tokenized] = []
        chars = tokens = 0
        for document in fetched:
            if document.digest in seen or not len(document.ids):
                continue
            seen.add(document.digest)
            meta.append(document)
            chars += len(document.text) + 1
            tokens += len(document.ids)
            if tokens >= options.meta_share * target:
                break
        if chars - 1 <= options.chunk_chars:
            counts["skipped.meta_shorter_than_chunk"] += bool(meta)
            return plans
        plans.append(_plan(spec, topic, len(plans), meta, negatives, chunk_length, counts))
    return plans


def _plan(
    spec: SynthesisRunSpec,
    topic: Topic,
    number: int,
    meta: list[Tokenized],
    negatives: NegativeSource,
    chunk_length: float,
    counts: Counter[str],
) -> Plan:
    """One sample's meta-chunks (each with the ids of the documents it holds lines of) and the
    negatives each asks for."""
    options = spec.nextlong
    chars_per_token = sum(len(d.text) for d in meta) / sum(len(d.ids) for d in meta)
    owners = [d.doc_id for d in meta for _ in range(d.text.count("\n") + 1)]
    chunks = split_chunks("\n".join(d.text for d in meta), options.chunk_chars)
    allowance = options.meta_share * spec.target_tokens * chars_per_token
    kept: list[tuple[str, list[str]]] = []
    line = size = 0
    for text in chunks:
        lines = text.count("\n") + 1
        if kept and size + len(text) > allowance:
            break  # a long document's remaining lines
        kept.append((text, list(dict.fromkeys(owners[line : line + lines]))))
        line += lines
        size += len(text)
    counts["meta_chunks_left_out"] += len(chunks) - len(kept)
    wanted = spec.target_tokens * chars_per_token * options.expansion - size
    k = max(1, math.ceil(wanted / (len(kept) * chunk_length)))
    own = frozenset(document_of(d.doc_id) for d in meta)
    own_chunks = sum(len(split_chunks(d.text, options.chunk_chars)) for d in meta)
    found = negatives([Query(own, text, own_chunks) for text, _ in kept], k * OVERFETCH)
    groups = [
        Group(_meta_id(ids, text, meta, options.chunk_chars), text, hits)
        for (text, ids), hits in zip(kept, found, strict=True)
    ]
    return Plan(topic, number, sorted(own), groups, k)


def _meta_id(ids: list[str], text: str, meta: list[Tokenized], chunk_chars: int) -> str:
    """A meta-chunk's name: a whole document's id, a chunk id (`<doc>#<n>`, as in the chunk
    index), or the ids of the documents it holds lines of, joined by `+`."""
    if len(ids) == 1:
        (document,) = (d for d in meta if d.doc_id == ids[0])
        if text == document.text:
            return document.doc_id
        pieces = split_chunks(document.text, chunk_chars)
        if text in pieces:
            return chunk_id(document.doc_id, pieces.index(text))
    return "+".join(ids)


def claim(plans: list[Plan], seed: int) -> None:
    """Leave each chunk in exactly one place: the sample where it ranks highest (ties by a
    seeded hash), and there under the meta-chunk where it ranks highest. Edits the plans."""
    owner: dict[str, tuple[int, int, tuple[int, int]]] = {}
    for plan in plans:
        for chunk, rank in _best_ranks(plan).items():
            key = (rank[0], seed_of(seed, plan.key, chunk), plan.key)
            if chunk not in owner or key < owner[chunk]:
                owner[chunk] = key
    for plan in plans:
        best = _best_ranks(plan)
        for number, group in enumerate(plan.groups):
            group.negatives = [
                (chunk, score)
                for rank, (chunk, score) in enumerate(group.negatives)
                if owner[chunk][2] == plan.key and best[chunk] == (rank, number)
            ]


def _best_ranks(plan: Plan) -> dict[str, tuple[int, int]]:
    """Each chunk's best (rank, meta-chunk number) within a plan."""
    best: dict[str, tuple[int, int]] = {}
    for number, group in enumerate(plan.groups):
        for rank, (chunk, _) in enumerate(group.negatives):
            if chunk not in best or (rank, number) < best[chunk]:
                best[chunk] = (rank, number)
    return best


def fill(
    plan: Plan,
    tokenizer: Tokenizer,
    chunks: TokenizedDocuments,
    separator: Separator,
    target: int,
    counts: Counter[str],
) -> Built | None:
    """The plan's sample of exactly `target` tokens, or None (counted) when it cannot be."""
    texts = [group.text for group in plan.groups]
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    metas = [
        Tokenized(group.meta_id, group.text, content_digest(group.text), np.asarray(e.ids, "u4"))
        for group, e in zip(plan.groups, encodings, strict=True)
    ]
    meta_tokens = sum(len(meta.ids) + len(separator.ids) for meta in metas)
    if meta_tokens >= target:
        counts["skipped.meta_fills_budget"] += 1
        return None
    budget = target - meta_tokens
    pieces: list[np.ndarray] = []
    parts: list[str] = []
    spans: list[Span] = []
    seen = {meta.digest for meta in metas}
    position = used = 0
    for number, (group, meta) in enumerate(zip(plan.groups, metas, strict=True)):
        whole = len(meta.ids) + len(separator.ids)
        pieces += [meta.ids, separator.ids]
        parts += [meta.text, separator.text]
        spans.append(Span(meta.doc_id, position, position + whole, role="meta"))
        position += whole
        share = budget * (number + 1) // len(plan.groups)
        for negative, score in _negatives(chunks, group):
            if used >= share:
                break
            if negative.digest in seen or not len(negative.ids):
                counts["skipped.duplicate_content"] += 1
                continue
            seen.add(negative.digest)
            whole = len(negative.ids) + len(separator.ids)
            truncated = False
            if whole <= budget - used:
                pieces += [negative.ids, separator.ids]
                parts += [negative.text, separator.text]
            else:
                whole = budget - used
                ids, text, truncated = cut_to_fit(negative, separator, whole)
                pieces.append(ids)
                parts.append(text)
                counts["documents_truncated"] += truncated
            spans.append(
                Span(negative.doc_id, position, position + whole, truncated, "negative", score)
            )
            position += whole
            used += whole
    if used < budget:
        counts["samples_underfilled"] += 1
        return None
    counts["meta_chunks"] += len(metas)
    counts["negatives"] += len(spans) - len(metas)
    return Built(np.concatenate(pieces), "".join(parts), spans)


def _negatives(chunks: TokenizedDocuments, group: Group) -> Iterator[tuple[Tokenized, float]]:
    """A group's negatives, tokenized a few at a time: most are never needed past the quota."""
    for start in range(0, len(group.negatives), _NEGATIVE_BATCH):
        batch = group.negatives[start : start + _NEGATIVE_BATCH]
        fetched = chunks.fetch([chunk for chunk, _ in batch])
        yield from zip(fetched, (score for _, score in batch), strict=True)
