"""Mode nextlong end to end: a chunk index built with the BM25Index, meta-documents from topic
retrieval, hard negatives from BM25 (the shipped Wikipedia sample) or dense embeddings (a small
corpus of three themes), every sample exactly `targetTokens`, no negative used twice, and spans
with roles read back from MDS and Parquet."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from litelong.api import parse
from litelong.api.v1alpha1 import SynthesisRun
from litelong.dataset.mds import read_mds, span_roles
from litelong.index import (
    ChunksUnavailable,
    open_chunk_index,
    open_index,
    parent_of,
    split_chunks,
)
from litelong.stages import resolve_inputs, run_shard
from litelong.store import ArtifactStore, EmptyOutput
from litelong.synth import threads as synth_threads
from litelong.synth.assembly import Separator, TokenizedDocuments, Topic
from litelong.synth.nextlong import (
    QUERY_POSTINGS,
    QUERY_TERMS,
    Bm25Negatives,
    Plan,
    Query,
    fill,
    samples,
)
from litelong.synth.nextlong.samples import Hits, Spilled, TextSpill
from litelong.tokenizer import load_tokenizer

from .conftest import bm25index, commit_topics, write_jsonl
from .test_synth_stage import synthesis as stage_synthesis

TOPICS = [
    ("SCI004000", "Science", "Black holes", "Black holes astronomy stars"),
    ("HIS037000", "History", "The French Revolution", "French Revolution history"),
    ("MUS000000", "Music", "Baroque composers", "Baroque composers music"),
]


@pytest.fixture(scope="module")
def wiki(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    """The shipped sample indexed with its chunk index, and three committed topics."""
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('nextlong')}")
    index = bm25index(
        "wiki", corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst"}], chunks={"enabled": True}
    )
    run_shard(index, store, 0, 1)
    commit_topics(store, TOPICS)
    return store


def synthesis(**spec: Any) -> SynthesisRun:
    """test_synth_stage's SynthesisRun, in mode nextlong at 4,096 tokens."""
    return stage_synthesis(**{"name": "nl", "mode": "nextlong", "targetTokens": 4096, **spec})


def run(store: ArtifactStore, resource: SynthesisRun, of: int = 1) -> tuple[dict[str, int], Path]:
    for shard in range(of):
        result = run_shard(resource, store, shard, of)
    assert result.manifest is not None
    return result.manifest.counts, Path(result.artifact.path)


def empty_run_counts(store: ArtifactStore, resource: SynthesisRun) -> dict[str, int]:
    """The counts of a one-shard run that made no sample: refused as empty, its counts kept
    in the failure record."""
    with pytest.raises(EmptyOutput):
        run_shard(resource, store, 0, 1)
    failure = store.output_of(resolve_inputs([resource], lambda _: store)[0]).failure()
    assert failure is not None
    return failure.counts


def metadata(artifact: Path) -> list[dict[str, Any]]:
    return [
        row
        for part in sorted(artifact.glob("part-*/metadata.parquet"))
        for row in pq.read_table(part).to_pylist()
    ]


def own_documents(row: dict[str, Any]) -> set[str]:
    metas = [i for i, role in zip(row["doc_ids"], row["roles"], strict=True) if role == "meta"]
    return {parent_of(part) or part for meta in metas for part in meta.split("+")}


# -- chunking --------------------------------------------------------------------------------


def test_chunks_group_whole_lines_within_the_limit_and_long_lines_stand_alone() -> None:
    text = "\n".join(["a" * 30, "b" * 30, "c" * 30, "d" * 100, "e" * 10])
    chunks = split_chunks(text, 64)
    assert chunks == ["a" * 30 + "\n" + "b" * 30, "c" * 30, "d" * 100, "e" * 10]
    assert "\n".join(chunks) == text
    assert all(len(chunk) <= 64 or "\n" not in chunk for chunk in chunks)


# -- BM25 negatives on the quickstart corpus -------------------------------------------------


def test_bm25_samples_are_exact_meta_first_and_never_reuse_a_negative(wiki: ArtifactStore) -> None:
    counts, artifact = run(wiki, synthesis())
    rows = metadata(artifact)
    assert len(rows) == counts["samples"] == 6
    negatives: Counter[str] = Counter()
    for row in rows:
        assert row["num_tokens"] == 4096 and row["ends"][-1] == 4096
        assert row["roles"][0] == "meta" and row["roles"].count("meta") >= 2
        assert set(row["roles"]) == {"meta", "negative"}
        ids = [i for i, role in zip(row["doc_ids"], row["roles"], strict=True) if role != "meta"]
        negatives.update(ids)
        assert not {parent_of(i) for i in ids} & own_documents(row)
        scores = [s for s, role in zip(row["scores"], row["roles"], strict=True) if role != "meta"]
        assert all(score is not None and score > 0 for score in scores)
    assert max(negatives.values()) == 1
    report = json.loads((artifact / "report" / "report.json").read_text())
    assert report["nextlong"]["negatives_reused"] == 0
    assert report["nextlong"]["negatives_from_own_document"] == 0
    assert report["nextlong"]["negatives"] == sum(negatives.values())
    assert report["nextlong"]["similarity"]["measure"] == "bm25"


def test_reduced_negative_queries_still_never_return_the_meta_documents_chunks(
    wiki: ArtifactStore,
) -> None:
    """A chunk's own rarest terms find the chunk itself and its document's other chunks first;
    the negatives leave them all out and stay within `k`."""
    chunks, _ = open_chunk_index(wiki.latest_committed("BM25Index", "wiki"), 2048)
    try:
        ids = [i for i in chunks.ids_at(list(range(0, chunks.count(), 97))) if i.endswith("#1")]
        texts = chunks.get(ids)
        negatives = Bm25Negatives(chunks)
        queries = [
            Query(frozenset({parent_of(i)}), text, 8) for i, text in zip(ids, texts, strict=True)
        ]
        found = negatives(queries, 3)
        for chunk, text, hits in zip(ids, texts, found, strict=True):
            assert chunks.search(text, 1, max_terms=QUERY_TERMS)[0][0] == chunk
            assert 0 < len(hits) <= 3
            assert all(parent_of(hit) != parent_of(chunk) for hit, _ in hits)
    finally:
        chunks.close()


class _Listed:
    """A chunk index whose every search ranks the same hits: `own` chunks of document `m`
    first, then others; it records the limits asked."""

    def __init__(self, own: int) -> None:
        self.hits = [(f"m#{n}", 100.0 - n) for n in range(own)]
        self.hits += [(f"d{n}#0", 50.0 - n / 100) for n in range(200)]
        self.limits: list[int] = []

    def search(
        self, query: str, k: int, max_terms: int | None = None, max_postings: int | None = None
    ) -> list[tuple[str, float]]:
        self.limits.append(k)
        return self.hits[:k]

    def search_many(
        self,
        queries: list[str],
        k: int,
        max_terms: int | None = None,
        max_postings: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        return [self.search(query, k, max_terms, max_postings) for query in queries]


def test_a_negative_search_asks_for_all_own_chunks_only_when_the_first_answer_needs_them(
    wiki: ArtifactStore,
) -> None:
    """A meta-chunk's negatives are first searched at k + OWN_FIRST hits, not k + every chunk
    of its meta-document (~130 at 128K tokens); where its own chunks fill that first answer,
    the wide search follows. Either way the negatives are the wide search's."""
    from litelong.synth.nextlong.negatives import OWN_FIRST, _without_own

    for own_chunks, limits in ((3, [6]), (OWN_FIRST + 5, [3 + OWN_FIRST, 8 + OWN_FIRST])):
        listed = _Listed(own_chunks)
        query = Query(frozenset({"m"}), "text", own_chunks)
        answer = Bm25Negatives(listed)([query], 3)  # type: ignore[arg-type]
        assert listed.limits == limits
        assert answer == [[("d0#0", 50.0), ("d1#0", 49.99), ("d2#0", 49.98)]]
    chunks, _ = open_chunk_index(wiki.latest_committed("BM25Index", "wiki"), 2048)
    try:
        ids = chunks.ids_at(list(range(0, chunks.count(), 41)))
        for chunk, text in zip(ids, chunks.get(ids), strict=True):
            own = frozenset({parent_of(chunk)})
            (found,) = Bm25Negatives(chunks)([Query(own, text, 60)], 6)
            wide = chunks.search(text, 6 + 60, QUERY_TERMS, QUERY_POSTINGS)
            assert found == _without_own(wide, own, 6)
    finally:
        chunks.close()


def _reference_claim(
    found: list[list[list[tuple[str, float]]]],
    keys: list[tuple[int, int]],
    metas: set[str],
    seed: int,
) -> list[list[list[str]]]:
    """The claim rule written plainly over id strings (as it was before plans were arrays)."""
    from litelong.synth.assembly.candidates import seed_of

    found = [[[h for h in g if parent_of(h[0]) not in metas] for g in plan] for plan in found]
    bests = []
    for plan in found:
        best: dict[str, tuple[int, int]] = {}
        for number, group in enumerate(plan):
            for rank, (chunk, _) in enumerate(group):
                if chunk not in best or (rank, number) < best[chunk]:
                    best[chunk] = (rank, number)
        bests.append(best)
    owner: dict[str, Any] = {}
    for key, best in zip(keys, bests, strict=True):
        for chunk, (rank, _) in best.items():
            mine = (rank, seed_of(seed, key, chunk), key)
            if chunk not in owner or mine < owner[chunk]:
                owner[chunk] = mine
    return [
        [
            [c for rank, (c, _) in enumerate(group) if owner[c][2] == key and best[c] == (rank, n)]
            for n, group in enumerate(plan)
        ]
        for plan, key, best in zip(found, keys, bests, strict=True)
    ]


@pytest.mark.parametrize("spilled", [False, True])
def test_claims_over_arrays_follow_the_rule_chunk_by_chunk(spilled: bool) -> None:
    """Plans competing for few chunks, with many ties (the seeded hash decides them) and
    chunks of meta-documents among the hits: the claim over keys and arrays leaves exactly
    what the plain rule over ids leaves, each chunk in one place at most."""
    import random

    from litelong.synth.nextlong import claim

    rng = random.Random(7)
    found = [
        [
            [(f"d{rng.randrange(30)}#{rng.randrange(4)}", 1.0) for _ in range(rng.randrange(8))]
            for _ in range(rng.randrange(1, 5))
        ]
        for _ in range(40)
    ]
    found = [[list(dict.fromkeys(group)) for group in plan] for plan in found]
    plans = [
        Plan(Topic(n // 3), n % 3, [f"d{25 + n % 5}"], [], [], Hits.of(plan), k=2)
        for n, plan in enumerate(found)
    ]
    spill = TextSpill() if spilled else None
    if spill is not None:
        for plan in plans:
            plan.spill(spill)
    claim(plans, 11, spill=spill)
    expected = _reference_claim(found, [p.key for p in plans], {f"d{n}" for n in range(25, 30)}, 11)
    got = []
    for plan in plans:
        ids = spill.texts(plan.hits.ids) if spill is not None else plan.hits.ids
        assert isinstance(ids, list)
        got.append([[c for c, _ in group] for group in plan.hits.groups(ids)])
    assert got == expected
    kept = [c for plan in got for group in plan for c in group]
    assert len(kept) == len(set(kept)) > 20
    with pytest.raises(ValueError, match="already claimed"):
        claim(plans, 11)
    if spill is not None:
        again = [Plan(Topic(0), n, ["x"], [], [], Hits.of(p), k=2) for n, p in enumerate(found)]
        for plan in again:
            plan.spill(spill)
        with pytest.raises(ValueError, match="spilled to disk"):
            claim(again, 11)  # ties need the ids, which are on disk
        spill.close()


def test_plans_hold_numbers_and_leave_texts_and_ids_on_disk(wiki: ArtifactStore) -> None:
    """What waits in memory from planning to filling, per sample: arrays of scores (and,
    until claimed, 8-byte keys), reserve chunks as ordinals, and where its texts and ids lie
    on disk; no text, no chunk id. (As strings and tuples it was ~0.5 MB a sample at 128K.)"""
    from litelong.synth.assembly import Candidates, claims
    from litelong.synth.nextlong import claim, plan_topics
    from litelong.synth.stage import _topics

    resource = synthesis(samplesPerTopic=2)
    spec = resource.spec
    index = wiki.latest_committed("BM25Index", "wiki")
    retriever = open_index(index)
    chunks, chunk_length = open_chunk_index(index, 2048)
    spill = TextSpill()
    try:
        topics = _topics(spec, wiki.latest_committed("TopicDebate", "topics"), retriever)
        pools = claims(topics, Candidates(spec, retriever, draws=len(topics)), spec.seed)
        documents = TokenizedDocuments(retriever, load_tokenizer(None))
        streams = ((t, documents.stream(pools[t.number], 10**6, 1), Counter[str]()) for t in topics)
        plans = plan_topics(spec, streams, Bm25Negatives(chunks), chunk_length, spill=spill)
        every = [plan for topic_plans in plans.values() for plan in topic_plans]
        assert len(every) == 6
        for plan in every:
            assert isinstance(plan.texts, Spilled) and isinstance(plan.meta_ids, Spilled)
            assert isinstance(plan.hits.ids, Spilled) and plan.hits.scores.dtype == np.float32
            assert plan.hits.keys is not None and plan.hits.keys.dtype == np.uint64
        claim(every, spec.seed, chunks, spill)
        for plan in every:
            assert plan.hits.keys is None and plan.hits.parents is None
            assert plan.hits.kept is not None and plan.hits.kept.dtype == bool
            assert plan.reserve.dtype == np.int64 and len(plan.reserve) > 0
            held = [v for v in vars(plan).values() if isinstance(v, (str, list))]
            assert held == [plan.doc_ids]  # the meta-document's few documents, nothing else
            reserve = chunks.ids_at(plan.reserve.tolist())
            assert not {parent_of(c) for c in reserve} & {d for p in every for d in p.doc_ids}
    finally:
        spill.close()
        retriever.close()
        chunks.close()


def test_drafting_tokenizes_about_the_meta_documents_not_whole_batches_past_them(
    wiki: ArtifactStore,
) -> None:
    """A meta-document of ~40 documents was drafted from batches of 64 tokenized documents,
    the rest of the last batch tokenized for nothing (a third of the documents a 1M scale run
    tokenized). Told what it still needs, the stream tokenizes about that; the drafts are the
    same as from the documents read in whole batches."""
    from litelong.synth.assembly import Candidates, claims
    from litelong.synth.nextlong.samples import draft_topic
    from litelong.synth.stage import _topics

    spec = synthesis(targetTokens=16_384, samplesPerTopic=2).spec
    index = wiki.latest_committed("BM25Index", "wiki")
    retriever = open_index(index)
    _, chunk_length = open_chunk_index(index, 2048)
    tokenizer = load_tokenizer(None)
    try:
        topics = _topics(spec, wiki.latest_committed("TopicDebate", "topics"), retriever)
        pools = claims(topics, Candidates(spec, retriever, draws=len(topics)), spec.seed)
        found = {}
        for told in (True, False):
            documents = TokenizedDocuments(retriever, tokenizer)
            drafts = []
            for topic in topics:
                stream = documents.stream(pools[topic.number], 10**6, 1)
                pool = stream if told else (document for document in stream)
                for draft in draft_topic(spec, topic, pool, chunk_length, Counter()):
                    assert draft.plan is not None
                    drafts.append((draft.plan.doc_ids, draft.plan.texts, draft.k))
            found[told] = (drafts, documents.tokenized)
        (told_drafts, told_tokenized), (whole_drafts, whole_tokenized) = found[True], found[False]
        assert told_drafts == whole_drafts and len(told_drafts) == 6
        used = sum(len(doc_ids) for doc_ids, _, _ in told_drafts)
        assert used <= told_tokenized < whole_tokenized, (used, told_tokenized, whole_tokenized)
    finally:
        retriever.close()


def _plan_of(ids: list[str], per_group: int, groups: int) -> Plan:
    """A plan of `groups` short meta-chunks, each with `per_group` of `ids` as candidates."""
    found = [[(c, 1.0) for c in ids[per_group * n : per_group * (n + 1)]] for n in range(groups)]
    names = [f"m{n}" for n in range(groups)]
    texts = [f"meta chunk {n}" for n in range(groups)]
    return Plan(Topic(0), 0, ["m"], names, texts, Hits.of(found), k=2)


def test_hard_negatives_are_read_at_once_and_tokenized_as_far_as_filling_reaches(
    wiki: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fill reads every hard negative of a plan in one call, tokenizes what it estimates the
    sample takes in one batch, and the rest only when filling reaches it: tokenizing every
    candidate cost twice what samples keep. However good the estimate (share 0: every
    candidate at once; 1 and 100: fewer at first), the sample is the same, group by group in
    order."""
    chunks, _ = open_chunk_index(wiki.latest_committed("BM25Index", "wiki"), 2048)
    tokenizer = load_tokenizer(None)
    ids = chunks.ids_at(list(range(0, 24 * 31, 31)))
    made = {}
    try:
        for share in (samples._ESTIMATE_SHARE, 0.0, 1.0, 100.0):
            monkeypatch.setattr(samples, "_ESTIMATE_SHARE", share)
            documents = TokenizedDocuments(chunks, tokenizer)
            read: list[list[str]] = []
            batches: list[list[str]] = []
            get, tokenize = chunks.get, documents.tokenize
            monkeypatch.setattr(
                chunks, "get", lambda ids, get=get, read=read: read.append(ids) or get(ids)
            )
            monkeypatch.setattr(
                documents,
                "tokenize",
                lambda units, t=tokenize, b=batches: b.append([i for i, _ in units]) or t(units),
            )
            counts: Counter[str] = Counter()
            built = fill(
                _plan_of(ids, 8, 3), tokenizer, documents, Separator(tokenizer), 1024, counts
            )
            monkeypatch.setattr(chunks, "get", get)
            assert built is not None and len(built.input_ids) == 1024, counts
            assert read == [ids]
            made[share] = (built.input_ids.tolist(), [span.doc_id for span in built.spans])
            placed = [span.doc_id for span in built.spans if span.role == "negative"]
            tokenized = [i for batch in batches for i in batch]
            assert set(placed) <= set(tokenized) and len(tokenized) == len(set(tokenized))
            if share == 0.0:
                assert batches == [ids]
            elif share < 1:
                assert len(batches) <= 2 and len(tokenized) < len(ids) / 2, batches
            assert placed and placed == [c for c in ids if c in placed]  # group by group
            assert placed[0] == ids[0] and built.spans[0].doc_id == "m0"
    finally:
        chunks.close()
    assert made[0.0] == made[samples._ESTIMATE_SHARE] == made[1.0] == made[100.0]


def test_filling_tokenizes_no_duplicate_and_little_past_what_it_places(
    wiki: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negatives whose text the sample already holds are skipped by their digest, so they are
    never tokenized (a quarter of a 1M scale run's candidates); a negative reached past the
    first guess is tokenized with only the few more its meta-chunk's share lacks. The sample
    is the one filling makes with every candidate tokenized at once."""
    chunks, _ = open_chunk_index(wiki.latest_committed("BM25Index", "wiki"), 2048)
    tokenizer = load_tokenizer(None)
    ids = chunks.ids_at(list(range(0, 24 * 31, 31)))
    texts = dict(zip(ids, chunks.get(ids), strict=True))
    for number in range(1, len(ids), 3):  # every third candidate repeats the one before it
        texts[ids[number]] = texts[ids[number - 1]]
    made = {}
    try:
        monkeypatch.setattr(chunks, "get", lambda asked: [texts[i] for i in asked])
        for share in (0.0, samples._ESTIMATE_SHARE, 100.0):
            monkeypatch.setattr(samples, "_ESTIMATE_SHARE", share)
            documents = TokenizedDocuments(chunks, tokenizer)
            tokenized: list[str] = []
            tokenize = documents.tokenize
            monkeypatch.setattr(
                documents,
                "tokenize",
                lambda units, t=tokenize, b=tokenized: b.extend(i for i, _ in units) or t(units),
            )
            counts: Counter[str] = Counter()
            built = fill(
                _plan_of(ids, 8, 3), tokenizer, documents, Separator(tokenizer), 1024, counts
            )
            assert built is not None and len(built.input_ids) == 1024, counts
            made[share] = (built.input_ids.tolist(), [span.doc_id for span in built.spans])
            placed = [span.doc_id for span in built.spans if span.role == "negative"]
            assert counts["skipped.duplicate_content"] > 0
            # a copy of a placed negative is skipped untokenized; one whose original was not
            # placed (its meta-chunk's share was full first) is a negative like any other
            skipped = {ids[n] for n in range(1, len(ids), 3) if ids[n - 1] in placed}
            assert skipped and not skipped & set(tokenized), share
            assert set(placed) <= set(tokenized)
            assert counts["negatives_tokenized"] == len(tokenized)
            if share == 100.0:  # a first guess of one chunk: the rest one at a time as reached
                assert tokenized == placed, (tokenized, placed)
    finally:
        chunks.close()
    assert made[0.0] == made[samples._ESTIMATE_SHARE] == made[100.0]


def test_planning_threads_change_nothing_in_the_dataset(
    wiki: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Samples' negatives are searched from several threads at once (`plan_topics`); the
    plans come back in order, so one thread and four write the same samples."""
    datasets = []
    for threads in (1, 4):
        monkeypatch.setattr(synth_threads, "search_threads", lambda n=threads: n)
        _, artifact = run(wiki, synthesis(name=f"threads-{threads}", samplesPerTopic=3))
        rows = metadata(artifact)
        datasets.append({row["id"]: (row["doc_ids"], row["starts"]) for row in rows})
    assert datasets[0] == datasets[1] and len(datasets[0]) == 9


@pytest.mark.parametrize("mode", ["litelong", "standard"])
def test_topics_assembled_on_several_threads_give_the_same_dataset(
    wiki: ArtifactStore, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Topics are assembled concurrently (one's texts read while another's tokenize) and
    written in topic order, so one thread and four write the same samples, token for token."""
    datasets = []
    for threads in (1, 4):
        monkeypatch.setattr(synth_threads, "search_threads", lambda n=threads: n)
        spec = {"mode": mode, "samplesPerTopic": 2, "reuse": {"maxUsesPerDocument": 1}}
        _, artifact = run(wiki, synthesis(name=f"{mode}-threads-{threads}", **spec))
        datasets.append(metadata(artifact))
    assert datasets[0] == datasets[1] and len(datasets[0]) > 4


def test_meta_chunk_texts_and_ids_wait_on_disk_between_planning_and_filling(
    wiki: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every plan is made before any sample is filled, so the plans' meta-chunks (half of
    each sample's text), their names and their candidates' ids would otherwise sit in memory
    for the whole run."""
    spilled: list[int] = []
    put_many = TextSpill.put_many

    def counted(self: TextSpill, texts: list[str]) -> Spilled:
        spilled.append(len(texts))
        return put_many(self, texts)

    monkeypatch.setattr(TextSpill, "put_many", counted)
    _, on_disk = run(wiki, synthesis(name="spilled", samplesPerTopic=2))
    monkeypatch.setattr(TextSpill, "put_many", lambda self, texts: texts)  # kept in memory
    _, in_memory = run(wiki, synthesis(name="in-memory", samplesPerTopic=2))
    rows = metadata(on_disk)
    assert len(spilled) == 3 * len(rows) > 0  # texts, names, candidates' ids: one write each
    assert rows == metadata(in_memory)  # the same samples, token for token (token_hash)


def test_a_text_spill_gives_back_every_text_from_any_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"chunk {n} ünïcödé \ud800 " * (n + 1) for n in range(200)]
    spill = TextSpill()
    with ThreadPoolExecutor(4) as pool:
        places = list(pool.map(spill.put, texts))
        assert list(pool.map(spill.text, places)) == texts
        lists = list(pool.map(spill.put_many, [texts[n : n + 7] for n in range(0, 200, 7)]))
        assert [t for found in pool.map(spill.texts, lists) for t in found] == texts
    assert spill.texts(spill.put_many([])) == [] and spill.texts(["kept"]) == ["kept"]
    assert samples._texts_of(lists[3], spill, "x") == texts[21:28]
    with pytest.raises(ValueError, match="spilled to disk"):
        samples._texts_of(lists[3], None, "x")
    spill.close()


def test_spans_and_roles_load_back_from_mds_and_parquet(wiki: ArtifactStore) -> None:
    _, mds = run(wiki, synthesis(name="mds"))
    _, parquet = run(wiki, synthesis(name="parquet", output={"format": "parquet"}))
    meta = {row["id"]: row for row in metadata(mds)}
    mds_rows = [row for part in sorted(mds.glob("part-*[0-9]")) for row in read_mds(part)]
    parquet_rows = [
        row
        for path in sorted(parquet.glob("part-*/samples-*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]
    assert len(mds_rows) == len(parquet_rows) == len(meta) > 0
    for mds_row, parquet_row in zip(mds_rows, parquet_rows, strict=True):
        expected = meta[mds_row["id"]]
        assert span_roles(mds_row) == parquet_row["roles"] == expected["roles"]
        spans = [[s, e] for s, e in zip(expected["starts"], expected["ends"], strict=True)]
        assert mds_row["indices"].tolist() == parquet_row["spans"] == spans
        assert np.array_equal(mds_row["input_ids"], np.array(parquet_row["input_ids"], np.uint32))


def test_the_same_spec_gives_the_same_samples_whatever_the_shard_count(
    wiki: ArtifactStore, tmp_path: Path
) -> None:
    resource = synthesis(name="shards")
    _, one = run(wiki, resource, of=1)
    other = ArtifactStore(f"file://{tmp_path}")
    for kind, name in (("BM25Index", "wiki"), ("TopicDebate", "topics")):
        source = wiki.latest_committed(kind, name)
        other.fs.copy(source.path, other.artifact(kind, name, source.identity).path, recursive=True)
    _, two = run(other, resource, of=2)
    strip = ("doc_ids", "starts", "roles")
    a = {row["id"]: [row[key] for key in strip] for row in metadata(one)}
    b = {row["id"]: [row[key] for key in strip] for row in metadata(two)}
    assert a == b


def test_an_index_without_chunks_is_refused_with_how_to_build_one(wiki: ArtifactStore) -> None:
    run_shard(bm25index("plain", corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst"}]), wiki, 0, 1)
    with pytest.raises(ChunksUnavailable, match=r"chunks: \{enabled: true, chunkChars: 2048\}"):
        run_shard(synthesis(name="plain", indexRef="plain"), wiki, 0, 1)


def test_short_meta_documents_and_too_few_chunks_drop_samples_and_count_them(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    short = [{"id": f"s{n}", "text": f"volcano lava eruption number {n}"} for n in range(3)]
    longer = [
        {"id": f"l{n}", "text": "\n".join(f"magma chamber line {n} {i} " * 4 for i in range(40))}
        for n in range(3)
    ]
    corpus = write_jsonl(tmp_path / "c.jsonl", short + longer)
    index = bm25index("tiny", corpus=[{"uri": str(corpus)}], chunks={"enabled": True})
    run_shard(index, store, 0, 1)
    commit_topics(store, [("SCI000000", "Science", "volcano", "volcano lava eruption")])
    counts = empty_run_counts(store, synthesis(indexRef="tiny", targetTokens=2048))
    assert counts["skipped.meta_shorter_than_chunk"] == 1
    assert counts["samples"] == 0 and counts["topics_underfilled"] == 1

    commit = ("SCI000001", "Science", "magma", "magma chamber")
    store.fs.rm(store.join("default", "topicdebate"), recursive=True)
    commit_topics(store, [commit])
    counts = empty_run_counts(store, synthesis(name="big", indexRef="tiny", targetTokens=60_000))
    assert counts["samples_underfilled"] >= 1 and counts["samples"] == 0


# -- dense negatives -------------------------------------------------------------------------

THEMES = {
    "astronomy": ["telescope", "galaxy", "nebula", "orbit", "comet", "planet", "star", "quasar"],
    "cooking": ["oven", "flour", "butter", "simmer", "garlic", "recipe", "sauce", "dough"],
    "football": ["goal", "striker", "referee", "penalty", "stadium", "midfield", "league", "coach"],
}


def themed_corpus(path: Path) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for theme, words in THEMES.items():
        for n in range(24):
            lines = [
                " ".join(rng.choice(words, 12)) + f" about {theme} part {i}." for i in range(3)
            ]
            records.append({"id": f"{theme}-{n}", "text": "\n".join(lines)})
    return write_jsonl(path, records)


def test_dense_negatives_are_similar_chunks_and_embeddings_are_reused(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="the dense extra is in dev")
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    index = bm25index(
        "themes",
        corpus=[{"uri": str(themed_corpus(tmp_path / "t.jsonl")), "idField": "id"}],
        chunks={"enabled": True, "chunkChars": 256},
    )
    run_shard(index, store, 0, 1)
    commit_topics(store, [("SCI004000", "Science", "astronomy", "telescope galaxy astronomy")])
    options = {"negatives": "dense", "chunkChars": 256}
    spec = {"indexRef": "themes", "targetTokens": 1024, "samplesPerTopic": 1, "nextlong": options}
    counts, artifact = run(store, synthesis(name="dense", **spec))
    assert counts["samples"] == 1, sorted(counts.items())
    assert counts["chunks_embedded"] == len(THEMES) * 24 * 2  # 3 lines: 2 chunks of 256
    (row,) = metadata(artifact)
    assert row["num_tokens"] == 1024
    negatives = [i for i, role in zip(row["doc_ids"], row["roles"], strict=True) if role != "meta"]
    assert sum(i.startswith("astronomy-") for i in negatives) / len(negatives) > 0.8
    assert all(-1.0 <= s <= 1.0 for s in row["scores"] if s is not None)

    again = synthesis(name="again", seed=1, **spec)
    try:
        counts, _ = run(store, again)
    except EmptyOutput:  # this seed's claims may leave no sample; the part still counts
        counts = empty_run_counts(store, again)
    assert counts["chunks_embedded"] == 0  # read back from <store>/.embeddings


def test_an_embedding_model_that_cannot_load_offline_says_how_to_give_one(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="the dense extra is in dev")
    from litelong.synth.nextlong.embeddings import EmbeddingModelUnavailable, load_model

    with pytest.raises(EmbeddingModelUnavailable, match=r"nextlong\.embeddingModel to a folder"):
        load_model(str(tmp_path / "no-such-model"), on="cpu")


def test_ivf_search_finds_the_nearest_vectors_above_the_flat_limit() -> None:
    pytest.importorskip("faiss", reason="the dense extra is in dev")
    from litelong.synth.nextlong.embeddings import VectorIndex, normalise

    vectors = normalise(np.random.default_rng(0).normal(size=(4000, 32)))
    index = VectorIndex(vectors, flat_limit=1000)
    assert index.kind == "ivf"
    _, positions = index.search(vectors[:50], 1)
    assert (positions[:, 0] == np.arange(50)).mean() >= 0.9


def test_the_quickstart_sample_runs_nextlong_on_the_shipped_corpus(tmp_path: Path) -> None:
    import yaml

    from .conftest import REPO

    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    samples = REPO / "manifests" / "samples"
    index = parse(yaml.safe_load((samples / "bm25index.yaml").read_text()))
    run_shard(index, store, 0, 1)
    debate = store.artifact("TopicDebate", "science", "000000000000")
    with debate.staging(0, 1) as folder:
        record = {"subject_code": "SCI004000", "heading": "Science", "subject": "Astronomy"}
        record |= {"topic": "Black holes", "query": "black holes astronomy stars"}
        (folder / "topics.jsonl").write_text(json.dumps(record) + "\n")
        debate.commit_part(0, 1, folder, counts={"topics": 1})
    debate.commit({}, 1)
    resource = parse(yaml.safe_load((samples / "synthesisrun-nextlong.yaml").read_text()))
    assert isinstance(resource, SynthesisRun)
    counts, artifact = run(store, resource)
    (row,) = metadata(artifact)
    assert counts["samples"] == 1 and row["num_tokens"] == resource.spec.target_tokens
    assert row["roles"][0] == "meta" and "negative" in row["roles"]


def test_samples_fill_when_the_corpus_holds_enough_chunks_and_no_chunk_has_two_roles(
    wiki: ArtifactStore,
) -> None:
    """Hard negatives run short at 64K tokens (claims split them between samples: before, 5 of
    9 were written); the rest of each budget comes from chunks nobody claimed."""
    resource = synthesis(name="fills", targetTokens=65_536, samplesPerTopic=3)
    counts, artifact = run(wiki, resource)
    rows = metadata(artifact)
    assert len(rows) == counts["samples_requested"] == 9
    assert counts["negatives_from_reserve"] > 0
    assert all(row["num_tokens"] == 65_536 for row in rows)
    metas = set().union(*(own_documents(row) for row in rows))
    negatives = [
        doc_id
        for row in rows
        for doc_id, role in zip(row["doc_ids"], row["roles"], strict=True)
        if role == "negative"
    ]
    assert len(negatives) == len(set(negatives))
    assert not {parent_of(chunk) for chunk in negatives} & metas  # never both roles
    report = json.loads((artifact / "report" / "report.json").read_text())
    assert report["coherence"]["skipped"] is None and report["coherence"]["dataset"] is not None
    assert report["coherence"]["missing_documents"] == 0  # the meta-documents' own documents


# -- the dataset itself ------------------------------------------------------------------------

GOLDEN = Path(__file__).parent / "golden" / "nextlong_wiki.json"
GOLDEN_COUNTS = ("meta_chunks", "negatives", "negatives_from_reserve", "samples", "tokens")


def _spans_digest(row: dict[str, Any]) -> str:
    spans = [row["doc_ids"], row["starts"], row["ends"], row["roles"], row["scores"]]
    return hashlib.blake2b(json.dumps(spans).encode(), digest_size=8).hexdigest()


def test_the_wiki_dataset_is_the_golden_one(
    wiki: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning, claims and filling are tuned for speed and memory (compact plans, adaptive
    search limits, lazy tokenizing); none of it may change what is written. The golden file
    holds the token hash and a digest of the spans (ids, places, roles, scores) of every
    sample at 4,096 and 65,536 tokens (the second takes negatives from the reserve), made
    before that work; refresh it with
    LITELONG_UPDATE_GOLDEN=1 only where the method changes on purpose."""
    found: dict[str, Any] = {}
    for name, spec in (
        ("golden-4k", {"samplesPerTopic": 3}),
        ("golden-64k", {"targetTokens": 65_536, "samplesPerTopic": 3}),
    ):
        counts, artifact = run(wiki, synthesis(name=name, **spec))
        found[name] = {
            "counts": {key: counts.get(key, 0) for key in GOLDEN_COUNTS},
            "samples": {
                row["id"]: [row["token_hash"], _spans_digest(row)] for row in metadata(artifact)
            },
        }
    found = json.loads(json.dumps(found))
    # the reserve read a few ids at a time keeps the same chunks as read at once, and
    # negatives tokenized one at a time, past a first guess far too small, are the same
    monkeypatch.setattr(samples, "_RESERVE_BLOCK", 1)
    monkeypatch.setattr(samples, "_RESERVE_MAX_BLOCK", 5)
    monkeypatch.setattr(samples, "_LATE_BATCH", 1)
    monkeypatch.setattr(samples, "_ESTIMATE_SHARE", 100.0)
    _, artifact = run(
        wiki, synthesis(name="golden-64k-blocks", targetTokens=65_536, samplesPerTopic=3)
    )
    rows = {row["id"]: [row["token_hash"], _spans_digest(row)] for row in metadata(artifact)}
    assert rows == found["golden-64k"]["samples"]
    if os.environ.get("LITELONG_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    assert found == json.loads(GOLDEN.read_text())


class _Recording:
    """A tokenizer that keeps every text `encode_batch_fast` is asked for."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.texts: list[str] = []

    def encode_batch_fast(self, texts: list[str], **options: Any) -> Any:
        self.texts += texts
        return self.tokenizer.encode_batch_fast(texts, **options)


def test_fill_tokenizes_no_meta_chunk_that_planning_cut_from_its_documents(
    wiki: ArtifactStore,
) -> None:
    """Planning measured the meta-document by tokenizing its documents; with a slicer each
    meta-chunk's ids are cut from those (spilled to disk with its text), so filling tokenizes
    only the few it could not cut, and the samples are the same, token for token."""
    from litelong.synth.assembly import Candidates, claims
    from litelong.synth.nextlong import ChunkSlicer, claim, plan_topics
    from litelong.synth.stage import _topics

    spec = synthesis(samplesPerTopic=2, targetTokens=16384).spec
    index = wiki.latest_committed("BM25Index", "wiki")
    retriever = open_index(index)
    chunks, chunk_length = open_chunk_index(index, 2048)
    tokenizer = load_tokenizer(None)
    separator = Separator(tokenizer)
    made = {}
    try:
        topics = _topics(spec, wiki.latest_committed("TopicDebate", "topics"), retriever)
        for slicer in (None, ChunkSlicer.of(tokenizer)):
            spill = TextSpill()
            pools = claims(topics, Candidates(spec, retriever, draws=len(topics)), spec.seed)
            documents = TokenizedDocuments(retriever, tokenizer)
            streams = (
                (t, documents.stream(pools[t.number], 10**6, 1), Counter[str]()) for t in topics
            )
            plans = plan_topics(
                spec, streams, Bm25Negatives(chunks), chunk_length, spill=spill, slicer=slicer
            )
            every = [plan for topic_plans in plans.values() for plan in topic_plans]
            claim(every, spec.seed, chunks, spill)
            recording = _Recording(tokenizer)
            chunk_documents = TokenizedDocuments(chunks, tokenizer)
            built = []
            metas = cut = tokenized = 0
            for plan in every:
                texts = spill.texts(plan.texts)
                metas += len(texts)
                if slicer is not None:
                    assert isinstance(plan.meta_tokens, Spilled)
                    cut += sum(ids is not None for ids in spill.ids(plan.meta_tokens))
                counts: Counter[str] = Counter()
                tokenize: Any = recording
                sample = fill(plan, tokenize, chunk_documents, separator, 16384, counts, spill)
                assert sample is not None
                built.append(sample.input_ids.tolist())
                tokenized += counts["meta_chunks_tokenized"]
            made[slicer is not None] = built
            if slicer is None:
                assert len(recording.texts) == metas == tokenized  # every one tokenized again
            else:
                assert cut > 0.9 * metas and len(recording.texts) == metas - cut == tokenized
            spill.close()
            pools.close()
    finally:
        retriever.close()
        chunks.close()
    assert made[True] == made[False] and len(made[True]) == 6


def test_membership_by_binary_search_is_isin() -> None:
    """The claim's membership test (a plan's candidates against every meta-document's key)
    answers what `np.isin` does, without sorting both arrays at every call."""
    from litelong.synth.nextlong.samples import _within

    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 2**63, 500, dtype=np.uint64))
    values = np.concatenate([keys[::7], rng.integers(0, 2**63, 300, dtype=np.uint64)])
    values = np.concatenate([values, [np.uint64(0), np.uint64(2**64 - 1)]]).astype(np.uint64)
    assert (_within(values, keys) == np.isin(values, keys)).all()
    assert _within(values, keys)[: len(keys[::7])].all()
    assert not _within(values, np.zeros(0, np.uint64)).any()
