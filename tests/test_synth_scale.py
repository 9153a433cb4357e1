"""Synthesis whose memory does not grow with the index: mode standard draws through a seeded
permutation evaluated at the draw's positions, ids read by ordinal (`Retriever.ids_at`); the
nextlong reserve and the report's random baseline likewise; claims held on disk as compact keys
and ranked as they always were; the report's use counts in numpy. A retriever that cannot list
its ids (`document_ids` raises) runs every mode end to end."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from litelong.index.tantivy_backend import TantivyRetriever
from litelong.synth.assembly import Candidates, Claim, Topic, claims, seed_of
from litelong.synth.assembly.candidates import Ranked
from litelong.synth.assembly.permutation import Permutation
from litelong.synth.report.statistics import UseCounter

from .test_synth_nextlong import metadata, own_documents, run, wiki  # noqa: F401
from .test_synth_nextlong import synthesis as nextlong_synthesis
from .test_synth_stage import synthesis


@pytest.mark.parametrize("size", [1, 2, 3, 17, 1000, 4097])
def test_the_permutation_is_a_bijection_of_its_range(size: int) -> None:
    values = Permutation(size, seed=7)(np.arange(size))
    assert sorted(values.tolist()) == list(range(size))


def test_the_permutation_depends_on_its_seed_and_reads_any_position_of_a_huge_range() -> None:
    assert Permutation(50, 1)(range(50)).tolist() != Permutation(50, 2)(range(50)).tolist()
    huge = Permutation(10**12, 0)
    some = huge(np.arange(10**12 - 1000, 10**12))
    assert len(set(some.tolist())) == 1000 and some.min() >= 0 and some.max() < 10**12
    with pytest.raises(ValueError):
        huge([10**12])


class _OrdinalsOnly:
    """A retriever of `size` documents `d0..d{size-1}` that refuses to list them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.asked = 0

    def count(self) -> int:
        return self.size

    def ids_at(self, ordinals: Sequence[int]) -> list[str]:
        self.asked = max(self.asked, len(ordinals))
        return [f"d{n}" for n in ordinals]

    def lengths_at(self, ordinals: Sequence[int]) -> list[int | None]:
        return [None] * len(ordinals)

    def document_ids(self) -> Iterator[str]:
        raise AssertionError("listed every id of the index")


def _draws(size: int, top_k: int, draws: int) -> list[list[str]]:
    spec = synthesis(mode="standard", retrieval={"topK": top_k}).spec
    candidates = Candidates(spec, _OrdinalsOnly(size), draws=draws)  # type: ignore[arg-type]
    return [candidates(Topic(number)) for number in range(draws)]


def test_standard_draws_are_disjoint_until_the_index_is_used_up_without_listing_it() -> None:
    draws = _draws(size=100_000, top_k=1000, draws=100)
    every = [doc_id for draw in draws for doc_id in draw]
    assert len(every) == len(set(every)) == 100_000  # disjoint, and together the whole index
    assert sorted(draws[0]) != [f"d{n}" for n in range(1000)]  # random, not the first ids


def test_standard_draws_past_the_end_of_the_index_are_a_fresh_shuffle_not_repeats() -> None:
    """At 100K documents, 2,000 draws of 1,000 used to give draw 100 the same documents as
    draw 0 (so the same sample twice, dropped as a duplicate)."""
    draws = _draws(size=2_500, top_k=1000, draws=8)
    assert draws[:2] == _draws(size=2_500, top_k=1000, draws=2)  # within the first pass: as before
    first = [doc_id for draw in draws[:2] for doc_id in draw] + draws[2][:500]
    assert len(set(first)) == 2_500  # the first pass is the whole index, once
    crossing = draws[2]
    assert len(set(crossing)) >= 999 - 500  # its last 500 come from the next pass's shuffle
    sets = [frozenset(draw) for draw in draws]
    assert len(set(sets)) == len(sets)  # no draw repeats another
    second_pass = [doc_id for draw in draws[3:5] for doc_id in draw] + draws[2][500:]
    assert len(set(second_pass)) == 2_500  # each later pass is again the whole index, once
    assert draws[3] != draws[0] and draws[5][:500] != draws[0][:500]  # shuffled afresh


def test_a_standard_draw_of_an_index_smaller_than_topk_holds_all_of_it() -> None:
    draws = _draws(size=5, top_k=1000, draws=3)
    assert all(sorted(draw) == [f"d{n}" for n in range(5)] for draw in draws)
    assert len({draw[0] for draw in draws}) == 3  # each draw starts one further on


def _reference_claims(ranked: dict[int, list[Ranked]], seed: int) -> dict[int, list[Claim]]:
    """The claims as they were ranked with Python dicts before the table moved to disk."""
    claimers: dict[str, list[tuple[int, int, int]]] = {}
    for number, hits in ranked.items():
        for doc_id, position, _, _ in hits:
            claimers.setdefault(doc_id, []).append(
                (position, seed_of(seed, number, doc_id), number)
            )
    order = {
        doc_id: {key[2]: place for place, key in enumerate(sorted(keys))}
        for doc_id, keys in claimers.items()
    }
    return {
        number: [
            Claim(doc_id, order[doc_id][number], len(claimers[doc_id]), score, chars)
            for doc_id, _, score, chars in hits
        ]
        for number, hits in ranked.items()
    }


class _Ranked:
    def __init__(self, ranked: dict[int, list[Ranked]]) -> None:
        self._ranked = ranked

    def ranked(self, topic: Topic) -> list[Ranked]:
        return self._ranked[topic.number]


def test_claims_rank_documents_shared_by_topics_as_before_and_leave_no_file(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    ranked: dict[int, list[Ranked]] = {}
    for number in range(30):  # 30 topics drawing 40 of 120 documents: many shared, ties too
        docs = rng.choice(120, size=40, replace=False)
        positions = rng.permutation(40) if number % 2 else np.arange(40)
        ranked[number] = [  # lengths carried through, unknown (None) in some topics
            (
                f"doc-{d}",
                int(p),
                float(rng.random()) if number % 3 else None,
                int(d) if number % 4 else None,
            )
            for d, p in zip(docs, positions, strict=True)
        ]
    ranked[30] = []  # a topic without hits
    topics = [Topic(number) for number in ranked]
    table = claims(topics, _Ranked(ranked), seed=11, folder=tmp_path)  # type: ignore[arg-type]
    assert os.listdir(tmp_path)  # held on disk while in use
    expected = _reference_claims(ranked, seed=11)
    assert {number: table[number] for number in ranked} == expected
    assert any(claim.claimers > 2 for claim in expected[0])  # the case shares documents
    table.close()
    assert os.listdir(tmp_path) == []


def test_use_counts_agree_with_a_counter_of_the_ids() -> None:
    rng = np.random.default_rng(0)
    ids = [f"doc-{n}" for n in rng.integers(0, 500, size=3000)]
    counter = UseCounter()
    counter._MERGE = 700  # merge several times on the way
    for start in range(0, len(ids), 250):
        counter.add(ids[start : start + 250])
    counter.add(["doc-0", "doc-1"], np.array([5, 0]))
    expected = Counter(ids)
    expected["doc-0"] += 5
    expected["doc-1"] += 0
    assert len(counter) == len(expected) and counter.total() == expected.total()
    assert counter.by_uses() == Counter(expected.values())


@pytest.fixture
def unlisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tantivy index (documents or chunks) may be listed whole."""

    def refuse(self: TantivyRetriever) -> Any:
        raise AssertionError("listed every id of an index")

    monkeypatch.setattr(TantivyRetriever, "document_ids", refuse)


@pytest.mark.usefixtures("unlisted")
@pytest.mark.parametrize("mode", ["standard", "litelong"])
def test_standard_and_litelong_runs_and_their_report_never_list_the_index(
    wiki: Any,  # noqa: F811
    mode: str,
) -> None:
    resource = synthesis(name=f"unlisted-{mode}", indexRef="wiki", mode=mode, targetTokens=2048)
    counts, artifact = run(wiki, resource)
    assert counts["samples"] > 0
    assert (artifact / "report" / "report.json").exists()


@pytest.mark.usefixtures("unlisted")
def test_nextlong_deals_its_reserve_without_listing_the_chunk_index(wiki: Any) -> None:  # noqa: F811
    resource = nextlong_synthesis(name="unlisted-nl", targetTokens=65_536, samplesPerTopic=3)
    counts, artifact = run(wiki, resource)
    rows = metadata(artifact)
    assert counts["negatives_from_reserve"] > 0
    negatives = [
        doc_id
        for row in rows
        for doc_id, role in zip(row["doc_ids"], row["roles"], strict=True)
        if role == "negative"
    ]
    assert len(negatives) == len(set(negatives))
    metas = set().union(*(own_documents(row) for row in rows))
    assert not {doc_id.rpartition("#")[0] for doc_id in negatives} & metas


def test_ids_are_taken_chunk_by_chunk_in_the_order_asked() -> None:
    from litelong.index.tantivy_backend import _take

    column = pa.chunked_array([[f"id{n}" for n in range(s, s + 5)] for s in range(0, 20, 5)])
    asked = np.array([19, 0, 7, 7, 12, 4, 5])
    assert _take(column, asked) == [f"id{n}" for n in asked]
    assert _take(pa.chunked_array([["a", "b"]]), np.array([1, 0])) == ["b", "a"]
    many = pa.chunked_array([[f"id{n}" for n in range(s, s + 5)] for s in range(0, 200, 5)])
    asked = np.random.default_rng(0).integers(0, 200, 150)  # past the one-by-one reads
    assert _take(many, asked) == [f"id{n}" for n in asked]


def test_a_retriever_remapping_its_files_as_it_reads_answers_the_same(
    wiki: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mapping the index afresh every read (what bounds the pages a long run keeps resident)
    changes no answer."""
    from litelong.index import open_index, tantivy_backend

    artifact = wiki.latest_committed("BM25Index", "wiki")
    steady = open_index(artifact)
    monkeypatch.setattr(tantivy_backend, "mapped_bytes", lambda: None)  # the fallback: weighed
    monkeypatch.setattr(tantivy_backend, "_REMAP_READS", 1)
    remapping = open_index(artifact)
    assert isinstance(remapping, TantivyRetriever)
    for query in ["black holes", "french revolution", "baroque music"]:
        hits = steady.search(query, 50)
        searchers = remapping._searchers
        assert remapping.search(query, 50) == hits
        assert remapping._searchers is not searchers  # it did map afresh
        ids = [doc_id for doc_id, _ in hits]
        assert remapping.get(ids) == steady.get(ids)
    assert remapping.ids_at([5, 0, 4000]) == steady.ids_at([5, 0, 4000])
    steady.close()
    remapping.close()


def test_a_retriever_maps_afresh_once_its_resident_mapped_pages_pass_the_budget(
    wiki: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What bounds a run's RSS: the mapped pages are measured, and the files mapped afresh
    when they have grown by the budget since mapping, not before."""
    from litelong.index import open_index, tantivy_backend

    resident = [100 << 20]  # what the OS reports; each search below touches 40 MB more
    monkeypatch.setattr(tantivy_backend, "mapped_bytes", lambda: resident[0])
    monkeypatch.setattr(tantivy_backend, "MAPPED_BUDGET_MB", 100)
    monkeypatch.setattr(tantivy_backend, "_MEASURE_EVERY", 0)  # measured at every read
    retriever = open_index(wiki.latest_committed("BM25Index", "wiki"))
    assert isinstance(retriever, TantivyRetriever)
    map_files = retriever._open

    def afresh() -> None:
        resident[0] = 100 << 20  # the old maps go as the new ones are made
        map_files()

    monkeypatch.setattr(retriever, "_open", afresh)
    remaps = []
    for _ in range(6):
        searchers = retriever._searchers
        resident[0] += 40 << 20
        retriever.search("black holes", 10)
        remaps.append(retriever._searchers is not searchers)
    assert remaps == [False, False, True, False, False, True]  # 40, 80, 120 > 100: afresh
    retriever.close()


def test_a_retriever_measures_its_mapped_pages_once_per_measure_interval(
    wiki: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading /proc at every search cost a tenth of a negative's search: the pages are
    measured once per `_MEASURE_EVERY` KB of weighted reads, so a budget passed between two
    measurements is acted on at the next one."""
    from litelong.index import open_index, tantivy_backend

    measured = [0]
    resident = [100 << 20]

    def mapped() -> int:
        measured[0] += 1
        return resident[0]

    monkeypatch.setattr(tantivy_backend, "mapped_bytes", mapped)
    monkeypatch.setattr(tantivy_backend, "MAPPED_BUDGET_MB", 100)
    every = 4 * tantivy_backend._SEARCH_WEIGHT
    monkeypatch.setattr(tantivy_backend, "_MEASURE_EVERY", every)
    retriever = open_index(wiki.latest_committed("BM25Index", "wiki"))
    assert isinstance(retriever, TantivyRetriever)
    opened = measured[0]
    searchers = retriever._searchers
    resident[0] += 200 << 20  # past the budget at once
    for _ in range(3):
        retriever.search("black holes", 10)
    assert measured[0] == opened and retriever._searchers is searchers  # not measured yet
    retriever.search("black holes", 10)  # the fourth search: measured, mapped afresh
    assert measured[0] > opened and retriever._searchers is not searchers
    retriever.close()


def test_a_query_asked_again_is_analysed_once(wiki: Any) -> None:  # noqa: F811
    """A meta-chunk searched again with a wider limit reuses its terms, with the same hits."""
    from litelong.index import open_index

    retriever = open_index(wiki.latest_committed("BM25Index", "wiki"))
    assert isinstance(retriever, TantivyRetriever)
    text = "black holes bend light; the event horizon of a black hole hides its singularity"
    first = retriever.search(text, 5, 4, 1000)
    analysed = []
    analyzer = retriever._analyzer

    class Counting:
        def analyze(self, query: str) -> list[str]:
            analysed.append(query)
            return list(analyzer.analyze(query))

    retriever._analyzer = Counting()  # type: ignore[assignment]
    wide = retriever.search(text, 20, 4, 1000)
    assert analysed == [] and wide[:5] == first
    retriever.search(text, 20, 5, 1000)  # other options: analysed again
    retriever.search("french revolution", 5, 4, 1000)
    assert len(analysed) == 2
    retriever.close()


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_mapped_bytes_counts_the_pages_touched_in_a_mapped_file(tmp_path: Path) -> None:
    import mmap

    from litelong.index.tantivy_backend import mapped_bytes

    size = 64 << 20
    path = tmp_path / "big"
    path.write_bytes(b"\1" * size)
    before = mapped_bytes()
    assert before is not None
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert sum(m[offset] for offset in range(0, size, 4096)) == size // 4096
        touched = mapped_bytes()
    after = mapped_bytes()
    assert touched is not None and after is not None
    assert touched - before >= size * 0.9
    assert touched - after >= size * 0.9  # unmapped: gone from the process's RSS


def test_searches_from_threads_come_back_in_order_with_few_in_flight() -> None:
    import threading
    import time

    from litelong.synth.threads import ordered_map

    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def slow(n: int) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.002 * (n % 3))
        with lock:
            running[0] -= 1
        return n * n

    assert list(ordered_map(slow, range(40), threads=3)) == [n * n for n in range(40)]
    assert 1 < running[1] <= 3
    assert list(ordered_map(slow, [], threads=3)) == []


def test_a_jobs_worker_assembles_on_its_share_of_the_cores_not_on_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`litelong run --jobs N` gives each worker a share; its topic threads keep to it."""
    from litelong import cores
    from litelong.synth.threads import assembly_threads, search_threads

    monkeypatch.setattr(cores, "usable_cores", lambda: 16)
    monkeypatch.setattr("litelong.synth.threads.usable_cores", lambda: 16)
    assert search_threads() == 8  # no share: the cores, at most MAX_THREADS
    assert assembly_threads() == 8
    monkeypatch.setattr(cores, "_thread_share", 2)
    assert search_threads() == 2
    # one topic more than cores: its Python holds the GIL while another's tokenizer runs
    assert assembly_threads() == 3
