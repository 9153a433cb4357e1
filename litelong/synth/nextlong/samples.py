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
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import pairwise

import numpy as np
from tokenizers import Tokenizer

from ...api.v1alpha1.synthesisrun import SynthesisRunSpec
from ...corpus import content_digest
from ...dataset.sample import Span
from ...index import Retriever, chunk_id, parent_of, split_chunks
from ..assembly.assemble import (
    Built,
    DocumentStream,
    Separator,
    Tokenized,
    TokenizedDocuments,
    cut_to_fit,
)
from ..assembly.candidates import Topic, seed_of
from ..assembly.permutation import Permutation
from ..assembly.pieces import document_of
from ..threads import ordered_map
from .negatives import NegativeSource, Query
from .slicing import ChunkSlicer

# Candidates retrieved per meta-chunk, as a multiple of k: neighbouring meta-chunks of one
# meta-document retrieve many of the same chunks, and each chunk is placed once.
OVERFETCH = 2
_RESERVE_BATCH = 64  # reserve chunks first fetched where a plan has no hard negatives to guess by
_RESERVE_BLOCK = 4096  # chunk ids read by ordinal at once for the reserve, at least
# and at most: one read of everything still wanted held millions of id strings at once
_RESERVE_MAX_BLOCK = 65_536
# What filling tokenizes at first, as a share of the tokens its estimate says a negative has
# (by the meta-chunks' characters per token): under 1, so it takes a little more than the
# sample will; whatever it still lacks is tokenized when filling reaches it (`_Negatives`).
_ESTIMATE_SHARE = 0.85
_LATE_BATCH = 16  # negatives tokenized at once past the first batch


def chunk_key(chunk: str) -> int:
    """A chunk id as a number, the same in every process: claims compare 8-byte keys, not
    strings. Two ids sharing a key (odds ~1e-8 for a million chunks) would count as one
    chunk: a negative left out, never one used twice."""
    return int.from_bytes(
        blake2b(chunk.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


def _keys(ids: Iterable[str]) -> np.ndarray:
    digests = b"".join(
        blake2b(i.encode("utf-8", "surrogatepass"), digest_size=8).digest() for i in ids
    )
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _within(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """`np.isin(values, sorted_unique)` for a sorted array without repeats, by binary search:
    `isin` sorts both arrays again at every call, and the claim asks once a plan against every
    meta-document's key."""
    if not len(sorted_unique):
        return np.zeros(len(values), bool)
    at = np.searchsorted(sorted_unique, values)
    at[at == len(sorted_unique)] = 0
    return sorted_unique[at] == values


@dataclass(frozen=True)
class Spilled:
    """Where a text, or a list of texts laid end to end (`lengths` in characters), lies in a
    `TextSpill`."""

    offset: int
    size: int
    lengths: np.ndarray | None = None


class TextSpill:
    """Texts on disk from planning to filling: a run plans every topic before it fills any
    (claims need every plan), and a sample's meta-chunks are half its budget in text (~270 KB
    at 128K tokens), its meta-chunk names and its candidates' ids another ~50 KB, so held in
    memory they would grow with the run (540 MB of texts for 2,000 samples). An unnamed
    temporary file, gone when closed; reads and writes from any thread."""

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

    def put_many(self, texts: Sequence[str]) -> Spilled:
        lengths = np.fromiter((len(text) for text in texts), np.int32, len(texts))
        place = self.put("".join(texts))
        return Spilled(place.offset, place.size, lengths)

    def text(self, text: str | Spilled) -> str:
        if isinstance(text, str):
            return text
        data = os.pread(self._file.fileno(), text.size, text.offset)
        return data.decode("utf-8", "surrogatepass")

    def put_ids(self, ids: Sequence[np.ndarray | None]) -> Spilled:
        """Token id arrays laid end to end (`lengths` in ids; -1 for a None)."""
        lengths = np.fromiter((-1 if i is None else len(i) for i in ids), np.int32, len(ids))
        data = b"".join(i.astype(np.uint32).tobytes() for i in ids if i is not None)
        with self._lock:
            offset, self._end = self._end, self._end + len(data)
            os.pwrite(self._file.fileno(), data, offset)
        return Spilled(offset, len(data), lengths)

    def ids(self, ids: Spilled) -> list[np.ndarray | None]:
        assert ids.lengths is not None
        data = os.pread(self._file.fileno(), ids.size, ids.offset) if ids.size else b""
        whole = np.frombuffer(data, np.uint32)
        found: list[np.ndarray | None] = []
        start = 0
        for length in ids.lengths.tolist():
            if length < 0:
                found.append(None)
                continue
            found.append(whole[start : start + length])
            start += length
        return found

    def texts(self, texts: list[str] | Spilled) -> list[str]:
        if not isinstance(texts, Spilled):
            return texts
        assert texts.lengths is not None
        whole = self.text(Spilled(texts.offset, texts.size))
        ends = [0, *np.cumsum(texts.lengths).tolist()]
        return [whole[start:end] for start, end in pairwise(ends)]

    def close(self) -> None:
        self._file.close()


def _texts_of(texts: list[str] | Spilled, spill: TextSpill | None, what: str) -> list[str]:
    if not isinstance(texts, Spilled):
        return texts
    if spill is None:
        raise ValueError(f"{what}: spilled to disk; fill needs the spill")
    return spill.texts(texts)


@dataclass
class Hits:
    """A plan's hard-negative candidates, meta-chunk after meta-chunk, each's most similar
    first, as numbers: a score and (until claimed) 8-byte keys of the chunk and its document
    per candidate, ~25 bytes; their ids wait on disk with the meta-chunks' texts. Thousands of
    plans wait for the claim, and as Python strings and tuples their candidates held ~0.5 MB
    a sample (bench/README.md)."""

    starts: (
        np.ndarray
    )  # int64, meta-chunks + 1: meta-chunk g's candidates are [starts[g], starts[g + 1])
    scores: np.ndarray  # float32 (what metadata.parquet keeps)
    ids: list[str] | Spilled
    keys: np.ndarray | None  # uint64 `chunk_key` of each candidate; dropped once claimed
    parents: np.ndarray | None  # uint64 `chunk_key` of its document's id; dropped once claimed
    kept: np.ndarray | None = None  # bool: what the claim left (None: every candidate)

    @classmethod
    def of(cls, found: Sequence[Sequence[tuple[str, float]]]) -> Hits:
        sizes = [len(hits) for hits in found]
        starts = np.zeros(len(found) + 1, np.int64)
        np.cumsum(sizes, out=starts[1:])
        ids = [chunk for hits in found for chunk, _ in hits]
        scores = np.fromiter((s for hits in found for _, s in hits), np.float32, len(ids))
        return cls(starts, scores, ids, _keys(ids), _keys(parent_of(i) for i in ids))

    def groups(self, ids: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Each meta-chunk's kept (chunk id, score), given the candidates' `ids`."""
        kept = [True] * len(ids) if self.kept is None else self.kept.tolist()
        scores = self.scores.tolist()
        bounds = self.starts.tolist()
        return [
            [(ids[i], scores[i]) for i in range(start, end) if kept[i]]
            for start, end in pairwise(bounds)
        ]


@dataclass
class Plan:
    """A sample up to filling. Between planning and filling its texts and ids wait on disk
    (`TextSpill`) and its candidates are arrays (`Hits`): ~30 KB of memory a sample at 128K."""

    topic: Topic
    number: int  # the sample's number within its topic
    doc_ids: list[str]  # the documents of the meta-document
    meta_ids: list[str] | Spilled  # each meta-chunk's name
    texts: list[str] | Spilled  # each meta-chunk's text
    hits: Hits
    k: int  # negatives asked for per meta-chunk
    chars_per_token: float = 4.0  # the meta-document's: what filling estimates negatives by
    # ordinals in the chunk index of unclaimed chunks, for when hard ones run short
    reserve: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # each meta-chunk's token ids cut from its documents' (`slicing.py`); None: tokenize it
    meta_tokens: list[np.ndarray | None] | Spilled | None = None

    @property
    def key(self) -> tuple[int, int]:
        return self.topic.number, self.number

    @property
    def meta_chunks(self) -> int:
        return len(self.hits.starts) - 1

    def spill(self, spill: TextSpill) -> None:
        """Texts and ids to disk, till `fill` reads them back."""
        if not isinstance(self.texts, Spilled):
            self.texts = spill.put_many(self.texts)
        if not isinstance(self.meta_ids, Spilled):
            self.meta_ids = spill.put_many(self.meta_ids)
        if not isinstance(self.hits.ids, Spilled):
            self.hits.ids = spill.put_many(self.hits.ids)
        if self.meta_tokens is not None and not isinstance(self.meta_tokens, Spilled):
            self.meta_tokens = spill.put_ids(self.meta_tokens)


def plan_topics(
    spec: SynthesisRunSpec,
    pools: Iterable[tuple[Topic, Iterable[Tokenized], Counter[str]]],
    negatives: NegativeSource,
    chunk_length: float,
    threads: int | None = None,
    spill: TextSpill | None = None,
    slicer: ChunkSlicer | None = None,
) -> dict[int, list[Plan]]:
    """Every topic's plans, from (topic, pool, counts) in topic order: up to `samplesPerTopic`
    from the topic's pool (its documents, or pieces of long ones, shared with other topics as
    `pieces.py` says), taken in order, each in one meta-document at most. The negatives'
    searches of several samples are in flight at once (`threads.py`) while this thread picks
    the next meta-documents. Pools are read one at a time, in order, and only a few samples' drafts
    wait for their searches, so memory holds the plans, never every topic's pool. The plans
    are the same for any number of threads. A source whose calls must not overlap
    (`concurrent` False) is called from this thread alone. With `spill`, each plan's
    texts and ids go to disk once searched (`TextSpill`). With `slicer`, each meta-chunk's
    token ids are cut from its documents' (`slicing.py`), so filling need not tokenize it."""
    if not negatives.concurrent:
        threads = 1

    def drafts() -> Iterator[Draft]:
        for topic, pool, counts in pools:
            yield from draft_topic(spec, topic, pool, chunk_length, counts, slicer)
            yield Draft(None, topic)  # the topic's end: a topic may have no plan at all

    def searched(draft: Draft) -> tuple[int, Plan | None]:
        if draft.plan is None:
            return draft.topic.number, None
        plan = _searched(draft, negatives)
        if spill is not None:
            plan.spill(spill)
        return draft.topic.number, plan

    plans: dict[int, list[Plan]] = {}
    for number, plan in ordered_map(searched, drafts(), threads):
        topic_plans = plans.setdefault(number, [])
        if plan is not None:
            topic_plans.append(plan)
    return plans


@dataclass
class Draft:
    """A sample planned up to its negatives: the plan without candidates and the query of
    each meta-chunk. `plan` None marks the end of a topic's drafts."""

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
    slicer: ChunkSlicer | None = None,
) -> list[Draft]:
    """The topic's samples up to their negatives: meta-documents taken from the pool in
    order, each cut into meta-chunks, and how many negatives each asks for."""
    options = spec.nextlong
    target = spec.target_tokens
    drafts: list[Draft] = []
    # a stream told what is still needed tokenizes about that (`DocumentStream.need`), not
    # a whole batch of 64 documents past a meta-document of ~40: the same documents come, in
    # the same order, in smaller batches
    need = pool.need if isinstance(pool, DocumentStream) else None
    fetched = iter(pool)
    seen: set[bytes] = set()
    wanted = math.ceil(options.meta_share * target)
    while len(drafts) < spec.samples_per_topic:
        meta: list[Tokenized] = []
        chars = tokens = 0
        later = (spec.samples_per_topic - len(drafts) - 1) * wanted
        if need is not None:
            need(later + wanted)
        for document in fetched:
            if document.digest in seen or not len(document.ids):
                continue
            seen.add(document.digest)
            meta.append(document)
            chars += len(document.text) + 1
            tokens += len(document.ids)
            if tokens >= options.meta_share * target:
                break
            if need is not None:
                need(later + wanted - tokens)
        if chars - 1 <= options.chunk_chars:
            counts["skipped.meta_shorter_than_chunk"] += bool(meta)
            return drafts
        drafts.append(_draft(spec, topic, len(drafts), meta, chunk_length, counts, slicer))
    return drafts


def _searched(draft: Draft, negatives: NegativeSource) -> Plan:
    """The draft's plan with each meta-chunk's candidates (`OVERFETCH` x k)."""
    assert draft.plan is not None
    found = negatives(draft.queries, draft.k * OVERFETCH)
    if len(found) != len(draft.queries):
        raise ValueError(f"a negative source answered {len(found)} of {len(draft.queries)} queries")
    draft.plan.hits = Hits.of(found)
    return draft.plan


def _draft(
    spec: SynthesisRunSpec,
    topic: Topic,
    number: int,
    meta: list[Tokenized],
    chunk_length: float,
    counts: Counter[str],
    slicer: ChunkSlicer | None = None,
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
    names = [_meta_id(ids, text, meta, options.chunk_chars) for text, ids in kept]
    texts = [text for text, _ in kept]
    empty = Hits.of([[] for _ in kept])
    plan = Plan(topic, number, sorted(own), names, texts, empty, k, chars_per_token)
    if slicer is not None:
        plan.meta_tokens = slicer.token_ids(meta, texts)
    return Draft(plan, topic, [Query(own, text, own_chunks) for text in texts], k)


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


def claim(
    plans: list[Plan], seed: int, chunks: Retriever | None = None, spill: TextSpill | None = None
) -> None:
    """Leave each chunk in exactly one place: the sample where it ranks highest (ties by a
    seeded hash), and there under the meta-chunk where it ranks highest; never a chunk of a
    meta-document. Then deal chunks of the chunk index `chunks` that no sample holds to the
    plans' reserves. Edits the plans: their `Hits.kept`, their reserves.

    Chunks are compared by key (`chunk_key`), in arrays sorted once over every candidate of
    every plan (~30 bytes a candidate while it runs); ids are read back (from `spill`) only
    for the candidates whose tie the seeded hash decides."""
    metas = {document for plan in plans for document in plan.doc_ids}
    meta_keys = np.unique(_keys(metas)) if metas else np.zeros(0, np.uint64)
    best_keys, best_ranks, best_plans, best_entries = [], [], [], []
    for number, plan in enumerate(plans):
        hits = plan.hits
        if hits.keys is None or hits.parents is None:
            raise ValueError(f"plan {plan.key}: already claimed")
        alive = ~_within(hits.parents, meta_keys)
        # each candidate's rank in its meta-chunk once the meta-documents' chunks are left out
        sizes = np.diff(hits.starts)
        seen = np.concatenate([[0], np.cumsum(alive)])
        rank = seen[1:] - 1 - np.repeat(seen[hits.starts[:-1]], sizes)
        group = np.repeat(np.arange(len(sizes)), sizes)
        entries = np.flatnonzero(alive)
        # each chunk's best (rank, meta-chunk) within the plan
        order = entries[np.lexsort((group[entries], rank[entries], hits.keys[entries]))]
        first = np.ones(len(order), bool)
        first[1:] = hits.keys[order][1:] != hits.keys[order][:-1]
        best = order[first]
        best_keys.append(hits.keys[best])
        best_ranks.append(rank[best])
        best_plans.append(np.full(len(best), number, np.int64))
        best_entries.append(best)
    keys = np.concatenate(best_keys) if plans else np.zeros(0, np.uint64)
    ranks = np.concatenate(best_ranks) if plans else np.zeros(0, np.int64)
    owners = np.concatenate(best_plans) if plans else np.zeros(0, np.int64)
    entries = np.concatenate(best_entries) if plans else np.zeros(0, np.int64)
    winners = _owners(plans, keys, ranks, owners, entries, seed, spill)
    for number, plan in enumerate(plans):
        kept = np.zeros(len(plan.hits.scores), bool)
        kept[entries[winners][owners[winners] == number]] = True
        plan.hits.kept = kept
    taken = np.unique(keys)
    for plan in plans:
        plan.hits.keys = plan.hits.parents = None
    if chunks is not None:
        _deal_reserve(plans, seed, chunks, taken, metas)


def _owners(
    plans: list[Plan],
    keys: np.ndarray,
    ranks: np.ndarray,
    owners: np.ndarray,
    entries: np.ndarray,
    seed: int,
    spill: TextSpill | None,
) -> np.ndarray:
    """Which of the (chunk, plan) candidates win their chunk: the best rank, then the
    smallest `seed_of(seed, plan key, chunk id)`, then the smallest plan key."""
    order = np.lexsort((ranks, keys))
    keys, ranks = keys[order], ranks[order]
    start = np.ones(len(order), bool)
    start[1:] = keys[1:] != keys[:-1]
    run = np.cumsum(start) - 1  # each candidate's chunk, numbered in order
    lowest = ranks[start][run]  # its chunk's best rank
    contenders = ranks == lowest
    counted = np.bincount(run[contenders], minlength=int(start.sum()))
    won = contenders & (counted[run] == 1)
    tied = np.flatnonzero(contenders & (counted[run] > 1))
    if len(tied):
        ids = _tied_ids(plans, owners[order[tied]], entries[order[tied]], spill)
        ties: dict[int, tuple[int, tuple[int, int], int]] = {}
        for position, chunk in zip(tied.tolist(), ids, strict=True):
            plan = plans[int(owners[order[position]])]
            key = (seed_of(seed, plan.key, chunk), plan.key, position)
            chunk_run = int(run[position])
            if chunk_run not in ties or key < ties[chunk_run]:
                ties[chunk_run] = key
        won[[key[2] for key in ties.values()]] = True
    winners = np.zeros(len(order), bool)
    winners[order[won]] = True
    return winners


def _tied_ids(
    plans: list[Plan], owners: np.ndarray, entries: np.ndarray, spill: TextSpill | None
) -> list[str]:
    """The ids of these (plan, candidate) pairs, each plan's read once."""
    found: list[str] = [""] * len(owners)
    for number in np.unique(owners).tolist():
        rows = np.flatnonzero(owners == number)
        ids = _texts_of(plans[number].hits.ids, spill, f"plan {plans[number].key}'s candidates")
        for row, entry in zip(rows.tolist(), entries[rows].tolist(), strict=True):
            found[row] = ids[entry]
    return found


def _deal_reserve(
    plans: list[Plan], seed: int, chunks: Retriever, taken: np.ndarray, metas: set[str]
) -> None:
    """Unclaimed chunks outside the meta-documents, in a seeded order, dealt in turn to the
    plans (by topic and sample number), at most what a plan could need.

    The seeded order is a permutation of the chunk index's ordinals (`permutation.py`) read
    from its start, ids fetched by ordinal (`Retriever.ids_at`) a block at a time, until about
    twice what the plans could need is kept, as ordinals: a chunk index of 100M chunks costs
    8 bytes per reserve chunk in memory, never its own size, and ids are read at most
    `_RESERVE_MAX_BLOCK` at a time (the same chunks kept as in one read)."""
    if not plans:
        return
    ordered = sorted(plans, key=lambda plan: plan.key)
    wanted = [OVERFETCH * plan.k * max(1, plan.meta_chunks) for plan in ordered]
    total = chunks.count()
    order = Permutation(total, seed_of(seed, "reserve"))
    goal = 2 * sum(wanted)
    kept: list[np.ndarray] = []
    held = position = 0
    while held < goal and position < total:
        block = min(total - position, _RESERVE_MAX_BLOCK, max(_RESERVE_BLOCK, goal - held))
        ordinals = np.asarray(order(range(position, position + block)), np.int64)
        ids = chunks.ids_at(ordinals.tolist())
        position += block
        outside = np.fromiter((parent_of(c) not in metas for c in ids), bool, len(ids))
        free = np.flatnonzero(outside)
        free = free[~_within(_keys(ids[i] for i in free.tolist()), taken)]
        kept.append(ordinals[free])
        held += len(free)
    reserve = np.concatenate(kept)[:goal] if kept else np.zeros(0, np.int64)
    for turn, (plan, count) in enumerate(zip(ordered, wanted, strict=True)):
        plan.reserve = reserve[turn :: len(ordered)][:count].copy()


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
    texts = _texts_of(plan.texts, spill, f"plan {plan.key}'s meta-chunks")
    names = _texts_of(plan.meta_ids, spill, f"plan {plan.key}'s meta-chunk names")
    known = _meta_tokens(plan, spill, len(texts))
    todo = [number for number, ids in enumerate(known) if ids is None]
    counts["meta_chunks_tokenized"] += len(todo)  # planning could not cut their ids
    if todo:
        encoded = tokenizer.encode_batch_fast([texts[n] for n in todo], add_special_tokens=False)
        for number, encoding in zip(todo, encoded, strict=True):
            known[number] = np.asarray(encoding.ids, "u4")
    metas = [
        Tokenized(name, text, content_digest(text), ids)
        for name, text, ids in zip(names, texts, known, strict=True)
        if ids is not None
    ]
    meta_tokens = sum(len(meta.ids) + len(separator.ids) for meta in metas)
    if meta_tokens >= target:
        counts["skipped.meta_fills_budget"] += 1
        return None
    sample = _Filling(target - meta_tokens, separator, {meta.digest for meta in metas}, counts)
    groups = plan.hits.groups(_texts_of(plan.hits.ids, spill, f"plan {plan.key}'s candidates"))
    hard = _Negatives(chunks, groups, sample, plan.chars_per_token)
    for number, meta in enumerate(metas):
        sample.add(meta, "meta", None)
        share = sample.budget * (number + 1) // len(metas)
        for place, (_, similarity) in enumerate(groups[number], hard.start(number)):
            if sample.used >= share:
                break
            sample.add(hard.at(place, share - sample.used), "negative", similarity)
    if sample.used < sample.budget and len(plan.reserve):
        reserve = chunks.retriever.ids_at(plan.reserve.tolist())
        unread = [(chunk, None) for chunk in reserve]

        def lacking() -> int:
            """Reserve chunks to read next: about what the sample still lacks."""
            return hard.chunks_for(sample.budget - sample.used, plan.chars_per_token)

        for negative, score in _negatives(chunks, unread, lacking, counts):
            if sample.used >= sample.budget:
                break
            counts["negatives_from_reserve"] += sample.add(negative, "negative", score)
    if sample.used < sample.budget:
        counts["samples_underfilled"] += 1
        return None
    counts["meta_chunks"] += len(metas)
    counts["negatives"] += len(sample.spans) - len(metas)
    return Built(np.concatenate(sample.pieces), "".join(sample.parts), sample.spans)


def _meta_tokens(plan: Plan, spill: TextSpill | None, count: int) -> list[np.ndarray | None]:
    """The meta-chunks' ids planning cut from their documents (None: to tokenize)."""
    known = plan.meta_tokens
    if known is None:
        return [None] * count
    if isinstance(known, Spilled):
        if spill is None:
            raise ValueError(
                f"plan {plan.key}'s meta-chunk ids: spilled to disk; fill needs the spill"
            )
        return spill.ids(known)
    return list(known)


class _Rate:
    """Characters per token of the hard negatives this process has tokenized: what `_Negatives`
    guesses a negative's tokens by (a meta-document's own rate is the guess until enough
    negatives are seen; on the scale corpus's manuals the two differ by a third). It steers
    how much is tokenized at once, never what is placed."""

    _ENOUGH = 100_000  # tokens seen before the measured rate is trusted

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chars = self._tokens = 0

    def add(self, chars: int, tokens: int) -> None:
        with self._lock:
            self._chars += chars
            self._tokens += tokens

    def chars_per_token(self, otherwise: float) -> float:
        with self._lock:
            if self._tokens < self._ENOUGH:
                return otherwise
            return self._chars / self._tokens


_RATE = _Rate()


class _Negatives:
    """A plan's hard negatives in the order filling may place them: texts read in one call,
    tokenized as few times as filling needs. The first batch is what filling is estimated to
    place (each negative's tokens guessed from its characters and the characters per token
    seen so far (`_Rate`), a little low, so the guess takes a few more): about half of the
    candidates, where tokenizing them all cost twice what the sample keeps. A negative the
    guess left out is tokenized when filling reaches it, with the few after it that the
    meta-chunk's share still lacks (at most `_LATE_BATCH`). A text whose content the sample
    already holds is never tokenized: filling skips it by its digest (a quarter of the
    candidates on the scale corpus, whose copies share chunks). What is placed is the same
    either way."""

    def __init__(
        self,
        chunks: TokenizedDocuments,
        groups: list[list[tuple[str, float]]],
        sample: _Filling,
        chars_per_token: float,
    ) -> None:
        self._chunks = chunks
        self._sample = sample
        self._counts = sample.counts
        self._ids = [chunk for group in groups for chunk, _ in group]
        self._texts = chunks.retriever.get(self._ids) if self._ids else []
        self._digests = [content_digest(text) for text in self._texts]
        self._ready: dict[int, Tokenized] = {}
        self._starts = np.cumsum([0] + [len(group) for group in groups]).tolist()
        self._chars_per_token = chars_per_token
        # filling as `fill` does it, with guessed lengths: duplicates skipped, shares kept
        tokens_per_char = self._tokens_per_char()
        separator = len(sample.separator.ids)
        seen = set(sample.seen)
        guess = []
        used = 0.0
        for number, group in enumerate(groups):
            share = sample.budget * (number + 1) // len(groups)
            for place in range(self._starts[number], self._starts[number] + len(group)):
                if used >= share:
                    break
                text, digest = self._texts[place], self._digests[place]
                if digest not in seen and text:
                    seen.add(digest)
                    guess.append(place)
                    used += len(text) * tokens_per_char + separator
        self._tokenize(guess)

    def _tokens_per_char(self) -> float:
        return _ESTIMATE_SHARE / _RATE.chars_per_token(self._chars_per_token)

    def _tokenize(self, places: list[int]) -> None:
        places = [place for place in places if place not in self._ready]
        if not places:
            return
        units = [(self._ids[place], self._texts[place]) for place in places]
        made = self._chunks.tokenize(units)
        for place, tokenized in zip(places, made, strict=True):
            self._ready[place] = tokenized
        tokens = sum(len(t.ids) for t in made)
        _RATE.add(sum(len(t.text) for t in made), tokens)
        self._counts["negatives_tokenized"] += len(made)  # placed or not: what filling paid
        self._counts["negative_tokens_tokenized"] += tokens

    def at(self, place: int, lacking: int = 0) -> Tokenized:
        """The negative at `place`, which filling is about to add while its meta-chunk's share
        lacks `lacking` tokens; one whose content the sample holds comes untokenized (filling
        skips it by its digest)."""
        ready = self._ready.get(place)
        if ready is not None:
            return ready
        seen = self._sample.seen
        if self._digests[place] in seen or not self._texts[place]:
            return Tokenized(self._ids[place], self._texts[place], self._digests[place], _NO_IDS)
        end = self._starts[bisect_right(self._starts, place)]  # its meta-chunk's last + 1
        tokens_per_char = self._tokens_per_char()
        separator = len(self._sample.separator.ids)
        batch: list[int] = []
        digests: set[bytes] = set()
        guessed = 0.0
        for later in range(place, end):  # as filling will go on: copies skipped
            digest = self._digests[later]
            if digest in seen or digest in digests:
                continue
            if len(batch) >= _LATE_BATCH or (batch and guessed >= lacking):
                break
            digests.add(digest)
            ready = self._ready.get(later)
            if ready is not None:
                guessed += len(ready.ids) + separator
                continue
            batch.append(later)
            guessed += len(self._texts[later]) * tokens_per_char + separator
        self._tokenize(batch)
        return self._ready[place]

    def chunks_for(self, tokens: int, chars_per_token: float) -> int:
        """How many chunks like these hard negatives hold `tokens`, guessed a little high (the
        reserve's batches)."""
        if not self._texts:
            return _RESERVE_BATCH
        chars = sum(len(text) for text in self._texts) / len(self._texts)
        per_chunk = chars * _ESTIMATE_SHARE / _RATE.chars_per_token(chars_per_token)
        return math.ceil(tokens / max(per_chunk, 1.0)) + 1

    def start(self, number: int) -> int:
        """Where meta-chunk `number`'s negatives start."""
        return int(self._starts[number])


_NO_IDS = np.zeros(0, np.uint32)


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
    chunks: TokenizedDocuments,
    negatives: Sequence[tuple[str, float | None]],
    lacking: Callable[[], int],
    counts: Counter[str],
) -> Iterator[tuple[Tokenized, float | None]]:
    """Reserve chunks read and tokenized a batch at a time, each batch about what the sample
    is guessed to lack then (`lacking()`; the first at least, the later at most
    `_LATE_BATCH`): most are never needed past the budget. Batching changes what is
    tokenized, never what is placed."""
    start = 0
    while start < len(negatives):
        size = max(1, lacking())
        if start:
            size = min(size, _LATE_BATCH)
        batch = negatives[start : start + size]
        start += len(batch)
        fetched = chunks.fetch([chunk for chunk, _ in batch])
        counts["negatives_tokenized"] += len(fetched)
        counts["negative_tokens_tokenized"] += sum(len(chunk.ids) for chunk in fetched)
        yield from zip(fetched, (score for _, score in batch), strict=True)
