"""Mode nextlong (NExtLong, arXiv 2501.12766, on LiteLong's topic retrieval): a meta-document
cut into meta-chunks, each followed by its hard-negative chunks, filled to exactly
`targetTokens`.

Three steps, all independent of the shard count:

1. **Plan** every topic's samples (on every shard: it is retrieval, cheap next to tokenizing):
   a sample's meta-document is the next document of the topic's retrieved pool that is longer
   than one chunk; its leading meta-chunks, up to half the budget, are kept; each meta-chunk
   asks for k = ceil((T*E*w - S) / (p*s)) negatives (T target tokens, E the meta-document's
   characters per token, w `expansion`, S its kept characters, p its meta-chunks, s the chunk
   index's mean chunk length), and retrieves `OVERFETCH` x k candidates (`plan_topics`: the
   meta-documents picked in topic order on one thread, several samples' searches at once).
2. **Claim**: a chunk retrieved for several samples goes to the one where it ranks highest
   (ties: a seeded hash of sample and chunk), and within a sample to its best-ranked
   meta-chunk; a chunk of a document that is (part of) any sample's meta-document is never a
   negative. So no chunk is used twice in the dataset, whichever shard builds what. The chunks
   nobody claimed are shuffled (seeded) and dealt to the samples as their **reserve**: when
   hard negatives run short, a sample takes negatives from anywhere in the chunk index, as the
   paper's Appendix C.2 does (counted as `negatives_from_reserve`).
3. **Fill** (this shard's samples only): `[m1, n11..n1k, m2, n21..n2k, ..., reserve]`, every
   piece followed by the separator. The meta-chunks' tokens are set aside first; the rest of
   the budget is shared out so meta-chunk i's negatives end near i/p of it, and the negative
   that reaches the budget is cut to fit. A sample that still cannot reach the budget (the
   corpus holds too few chunks) is dropped and counted, never padded.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tokenizers import Tokenizer

from ...api.v1alpha1.synthesisrun import SynthesisRunSpec
from ...corpus import content_digest
from ...dataset.sample import Span
from ...index import Retriever, chunk_id, parent_of, split_chunks
from ..assembly.assemble import Built, Separator, Tokenized, TokenizedDocuments, cut_to_fit
from ..assembly.candidates import Topic, seed_of
from ..assembly.permutation import Permutation
from ..assembly.pieces import document_of
from ..threads import ordered_map
from .negatives import NegativeSource, Query

# Candidates retrieved per meta-chunk, as a multiple of k: neighbouring meta-chunks of one
# meta-document retrieve many of the same chunks, and each chunk is placed once.
OVERFETCH = 2
_RESERVE_BATCH = 64  # reserve chunks fetched and tokenized at once
_RESERVE_BLOCK = 4096  # chunk ids read by ordinal at once for the reserve


@dataclass
class Group:
    """A meta-chunk and its negatives, most similar first. Its text is set aside on disk
    (`TextSpill`) between planning and filling."""

    meta_id: str
    text: str | Spilled
    negatives: list[tuple[str, float]]


@dataclass(frozen=True)
class Spilled:
    """Where a text lies in a `TextSpill`."""

    offset: int
    size: int


class TextSpill:
    """Meta-chunk texts on disk from planning to filling: a run plans every topic before it
    fills any (claims need every plan), and a sample's meta-chunks are half its budget in text
    (~270 KB at 128K tokens), so held in memory they would grow with the run (540 MB for
    2,000 samples). An unnamed temporary file, gone when closed; reads and writes from any
    thread."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="litelong-meta-")  # noqa: SIM115
        self._lock = threading.Lock()
        self._end = 0

    def put(self, text: str) -> Spilled:
        data = text.encode("utf-8", "surrogatepass")
        with self._lock:
            offset, self._end = self._end, self._end + len(data)
            os.pwrite(self._file.fileno(), data, offset)
        return Spilled(offset, len(data))

    def text(self, text: str | Spilled) -> str:
        if isinstance(text, str):
            return text
        data = os.pread(self._file.fileno(), text.size, text.offset)
        return data.decode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._file.close()


def _text_of(group: Group, spill: TextSpill | None) -> str:
    if isinstance(group.text, str):
        return group.text
    if spill is None:
        raise ValueError(f"meta-chunk {group.meta_id}: its text was spilled; fill needs the spill")
    return spill.text(group.text)


@dataclass
class Plan:
    topic: Topic
    number: int  # the sample's number within its topic
    doc_ids: list[str]  # the documents of the meta-document
    groups: list[Group]
    k: int  # negatives asked for per meta-chunk
    reserve: list[str] = field(default_factory=list)  # unclaimed chunks, for when hard run short

    @property
    def key(self) -> tuple[int, int]:
        return self.topic.number, self.number


def plan_topics(
    spec: SynthesisRunSpec,
    pools: Iterable[tuple[Topic, Iterable[Tokenized], Counter[str]]],
    negatives: NegativeSource,
    chunk_length: float,
    threads: int | None = None,
    spill: TextSpill | None = None,
) -> dict[int, list[Plan]]:
    """Every topic's plans, from (topic, pool, counts) in topic order: up to `samplesPerTopic`
    from the topic's pool (its documents, or pieces of long ones, shared with other topics as
    `pieces.py` says), taken in order, each in one meta-document at most. The negatives'
    searches of several samples are in flight at once (`threads.py`) while this thread picks
    the next meta-documents. Pools are read one at a time, in order, and only a few samples' drafts
    wait for their searches, so memory holds the plans, never every topic's pool. The plans
    are the same for any number of threads. A source whose calls must not overlap
    (`concurrent` False) is called from this thread alone. With `spill`, each plan's
    meta-chunk texts go to disk once searched (`TextSpill`)."""
    if not negatives.concurrent:
        threads = 1

    def drafts() -> Iterator[Draft]:
        for topic, pool, counts in pools:
            yield from draft_topic(spec, topic, pool, chunk_length, counts)
            yield Draft(None, topic)  # the topic's end: a topic may have no plan at all

    def searched(draft: Draft) -> tuple[int, Plan | None]:
        if draft.plan is None:
            return draft.topic.number, None
        plan = _searched(draft, negatives)
        if spill is not None:
            for group in plan.groups:
                if isinstance(group.text, str):
                    group.text = spill.put(group.text)
        return draft.topic.number, plan

    plans: dict[int, list[Plan]] = {}
    for number, plan in ordered_map(searched, drafts(), threads):
        topic_plans = plans.setdefault(number, [])
        if plan is not None:
            topic_plans.append(plan)
    return plans


@dataclass
class Draft:
    """A sample planned up to its negatives: the plan with empty groups' negatives and the
    query of each meta-chunk. `plan` None marks the end of a topic's drafts."""

    plan: Plan | None
    topic: Topic
    queries: list[Query] = field(default_factory=list)
    k: int = 0


def draft_topic(
    spec: SynthesisRunSpec,
    topic: Topic,
    pool: Iterable[Tokenized],
    chunk_length: float,
    counts: Counter[str],
) -> list[Draft]:
    """The topic's samples up to their negatives: meta-documents taken from the pool in
    order, each cut into meta-chunks, and how many negatives each asks for."""
    options = spec.nextlong
    target = spec.target_tokens
    drafts: list[Draft] = []
    fetched = iter(pool)
    seen: set[bytes] = set()
    while len(drafts) < spec.samples_per_topic:
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
            return drafts
        drafts.append(_draft(spec, topic, len(drafts), meta, chunk_length, counts))
    return drafts


def _searched(draft: Draft, negatives: NegativeSource) -> Plan:
    """The draft's plan with each meta-chunk's negatives (`OVERFETCH` x k candidates)."""
    assert draft.plan is not None
    found = negatives(draft.queries, draft.k * OVERFETCH)
    for group, hits in zip(draft.plan.groups, found, strict=True):
        group.negatives = hits
    return draft.plan


def _draft(
    spec: SynthesisRunSpec,
    topic: Topic,
    number: int,
    meta: list[Tokenized],
    chunk_length: float,
    counts: Counter[str],
) -> Draft:
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
    groups = [Group(_meta_id(ids, text, meta, options.chunk_chars), text, []) for text, ids in kept]
    plan = Plan(topic, number, sorted(own), groups, k)
    return Draft(plan, topic, [Query(own, text, own_chunks) for text, _ in kept], k)


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


def claim(plans: list[Plan], seed: int, chunks: Retriever | None = None) -> None:
    """Leave each chunk in exactly one place: the sample where it ranks highest (ties by a
    seeded hash), and there under the meta-chunk where it ranks highest; never a chunk of a
    meta-document. Then deal chunks of the chunk index `chunks` that no sample holds to the
    plans' reserves. Edits the plans."""
    metas = {document for plan in plans for document in plan.doc_ids}
    for plan in plans:
        for group in plan.groups:
            group.negatives = [hit for hit in group.negatives if parent_of(hit[0]) not in metas]
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
    if chunks is not None:
        _deal_reserve(plans, seed, chunks, set(owner), metas)


def _deal_reserve(
    plans: list[Plan], seed: int, chunks: Retriever, taken: set[str], metas: set[str]
) -> None:
    """Unclaimed chunks outside the meta-documents, in a seeded order, dealt in turn to the
    plans (by topic and sample number), at most what a plan could need.

    The seeded order is a permutation of the chunk index's ordinals (`permutation.py`) read
    from its start, ids fetched by ordinal (`Retriever.ids_at`) a block at a time, until about
    twice what the plans could need is kept: a chunk index of 100M chunks costs the reserve's
    size in memory, never its own."""
    if not plans:
        return
    ordered = sorted(plans, key=lambda plan: plan.key)
    wanted = [OVERFETCH * plan.k * max(1, len(plan.groups)) for plan in ordered]
    total = chunks.count()
    order = Permutation(total, seed_of(seed, "reserve"))
    goal = 2 * sum(wanted)
    kept: list[str] = []
    position = 0
    while len(kept) < goal and position < total:
        block = min(total - position, max(_RESERVE_BLOCK, goal - len(kept)))
        ids = chunks.ids_at(order(range(position, position + block)).tolist())
        position += block
        kept += [c for c in ids if c not in taken and parent_of(c) not in metas]
    del kept[goal:]
    for turn, (plan, count) in enumerate(zip(ordered, wanted, strict=True)):
        plan.reserve = kept[turn :: len(ordered)][:count]


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
    spill: TextSpill | None = None,
) -> Built | None:
    """The plan's sample of exactly `target` tokens, or None (counted) when it cannot be."""
    texts = [_text_of(group, spill) for group in plan.groups]
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    metas = [
        Tokenized(group.meta_id, text, content_digest(text), np.asarray(e.ids, "u4"))
        for group, text, e in zip(plan.groups, texts, encodings, strict=True)
    ]
    meta_tokens = sum(len(meta.ids) + len(separator.ids) for meta in metas)
    if meta_tokens >= target:
        counts["skipped.meta_fills_budget"] += 1
        return None
    sample = _Filling(target - meta_tokens, separator, {meta.digest for meta in metas}, counts)
    # every hard negative's text in one read and one tokenizer batch: a few hundred chunks,
    # about twice what the sample takes, but thousands of small batches cost far more (the
    # tokenizer's thread pool wakes for each: half a 1M-document run's wall time under load)
    hard = chunks.fetch([chunk for group in plan.groups for chunk, _ in group.negatives])
    start = 0
    for number, (group, meta) in enumerate(zip(plan.groups, metas, strict=True)):
        sample.add(meta, "meta", None)
        share = sample.budget * (number + 1) // len(plan.groups)
        mine = hard[start : start + len(group.negatives)]
        start += len(group.negatives)
        for (_, similarity), negative in zip(group.negatives, mine, strict=True):
            if sample.used >= share:
                break
            sample.add(negative, "negative", similarity)
    if sample.used < sample.budget:
        for negative, score in _negatives(chunks, [(chunk, None) for chunk in plan.reserve]):
            if sample.used >= sample.budget:
                break
            counts["negatives_from_reserve"] += sample.add(negative, "negative", score)
    if sample.used < sample.budget:
        counts["samples_underfilled"] += 1
        return None
    counts["meta_chunks"] += len(metas)
    counts["negatives"] += len(sample.spans) - len(metas)
    return Built(np.concatenate(sample.pieces), "".join(sample.parts), sample.spans)


class _Filling:
    """A sample being filled: meta-chunks whole, negatives until `budget` tokens, the last one
    cut to fit."""

    def __init__(
        self, budget: int, separator: Separator, seen: set[bytes], counts: Counter[str]
    ) -> None:
        self.budget = budget
        self.separator = separator
        self.seen = seen
        self.counts = counts
        self.pieces: list[np.ndarray] = []
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.position = self.used = 0

    def add(self, document: Tokenized, role: str, score: float | None) -> bool:
        separator = self.separator
        whole = len(document.ids) + len(separator.ids)
        if role == "meta":
            self.pieces += [document.ids, separator.ids]
            self.parts += [document.text, separator.text]
            self.spans.append(
                Span(document.doc_id, self.position, self.position + whole, role=role)
            )
            self.position += whole
            return True
        if document.digest in self.seen or not len(document.ids):
            self.counts["skipped.duplicate_content"] += 1
            return False
        self.seen.add(document.digest)
        truncated = False
        if whole <= self.budget - self.used:
            self.pieces += [document.ids, separator.ids]
            self.parts += [document.text, separator.text]
        else:
            whole = self.budget - self.used
            ids, text, truncated = cut_to_fit(document, separator, whole)
            self.pieces.append(ids)
            self.parts.append(text)
            self.counts["documents_truncated"] += truncated
        end = self.position + whole
        self.spans.append(Span(document.doc_id, self.position, end, truncated, role, score))
        self.position = end
        self.used += whole
        return True


def _negatives(
    chunks: TokenizedDocuments, negatives: Sequence[tuple[str, float | None]]
) -> Iterator[tuple[Tokenized, float | None]]:
    """Reserve chunks tokenized a batch at a time: most are never needed past the budget."""
    for start in range(0, len(negatives), _RESERVE_BATCH):
        batch = negatives[start : start + _RESERVE_BATCH]
        fetched = chunks.fetch([chunk for chunk, _ in batch])
        yield from zip(fetched, (score for _, score in batch), strict=True)
