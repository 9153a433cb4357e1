"""Samples that are right on any corpus: long documents feed many samples piece by piece, no
sample is written twice, and a long document is tokenized only as far as samples need it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from litelong.dataset.sample import token_hash
from litelong.stages import run_shard
from litelong.store import ArtifactStore
from litelong.synth.assembly import (
    Claim,
    Separator,
    TokenizedDocuments,
    document_of,
    fill_samples,
    piece_bounds,
    pieces_for,
)
from litelong.tokenizer import load_tokenizer

from .conftest import bm25index, commit_topics, write_jsonl
from .test_synth_stage import mds_samples, run, synthesis

TOKENIZER = load_tokenizer()
WORDS = ["river", "mountain", "harbour", "lantern", "orchard", "meadow", "granite", "falcon"]


def book(number: int, paragraphs: int) -> str:
    """A long document of numbered paragraphs: every piece of it is different text."""
    return "\n\n".join(
        f"Book {number} paragraph {p}: " + " ".join(WORDS[(p + i) % 8] for i in range(40)) + "."
        for p in range(paragraphs)
    )


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    """Three long books (fewer documents than topK), four topics that all retrieve them and
    one that retrieves nothing."""
    folder = tmp_path_factory.mktemp("books")
    store = ArtifactStore(f"file://{folder / 'store'}")
    corpus = write_jsonl(
        folder / "books.jsonl", [{"id": f"book{n}", "text": book(n, 120)} for n in range(3)]
    )
    run_shard(bm25index("books", corpus=[{"uri": str(corpus), "idField": "id"}]), store, 0, 1)
    topics = [
        ("FIC000000", "Fiction", "River journeys", "river harbour"),
        ("FIC000001", "Fiction", "Mountain lanterns", "mountain lantern"),
        ("FIC000002", "Fiction", "Orchards", "orchard meadow"),
        ("FIC000003", "Fiction", "Falcons", "falcon granite"),
        ("FIC000004", "Fiction", "Nothing", "zzqx qqzz"),  # no hits: its samples are dropped
    ]
    commit_topics(store, topics)
    return store


def rows(parts: list[Path]) -> list[dict[str, Any]]:
    return [row for part in parts for row in pq.read_table(part / "metadata.parquet").to_pylist()]


def test_pieces_tile_the_text_and_end_at_paragraph_breaks() -> None:
    text = book(0, 50)
    bounds = piece_bounds(text, 1000)
    assert "".join(text[start:end] for start, end in bounds) == text
    assert all(end - start <= 1000 for start, end in bounds)
    assert all(text[:end].endswith("\n\n") for _, end in bounds[:-1])
    assert piece_bounds("short", 1000) == [(0, 5)]


def test_claimers_share_a_documents_pieces_and_reuse_bounds_a_short_one() -> None:
    shares = [pieces_for(Claim("d", rank, 3), 7, limit=1) for rank in range(3)]
    assert sorted(n for share in shares for n in share) == list(range(7))  # each piece once
    assert [pieces_for(Claim("d", rank, 3), 1, limit=1) for rank in range(3)] == [[0], [], []]
    assert [pieces_for(Claim("d", rank, 3), 1, limit=None) for rank in range(3)] == [[0]] * 3
    assert document_of("book1#p12") == "book1" and document_of("a#3") == "a#3"


@pytest.mark.parametrize("mode", ["standard", "litelong"])
def test_an_index_smaller_than_topk_gives_distinct_samples_from_every_piece(
    books: ArtifactStore, mode: str
) -> None:
    resource = synthesis(name=f"books-{mode}", indexRef="books", mode=mode, targetTokens=1024)
    counts, parts = run(books, resource)
    samples = mds_samples(parts)
    draws = 5 if mode == "standard" else 4  # as many draws as topics; one topic has no hits
    assert len(samples) == counts["samples"] == 2 * draws
    hashes = {token_hash(sample["input_ids"]) for sample in samples.values()}
    assert len(hashes) == len(samples)
    used = [doc_id for row in rows(parts) for doc_id in row["doc_ids"]]
    assert all("#p" in doc_id for doc_id in used)  # pieces, not whole books
    assert len(used) == len(set(used))  # each piece at most once
    heads = Counter(row["doc_ids"][0] for row in rows(parts))
    assert max(heads.values()) == 1  # no two samples start at the same place


def test_an_unbounded_reuse_lets_topics_share_short_documents(books: ArtifactStore) -> None:
    resource = synthesis(
        name="books-unbounded",
        indexRef="books",
        targetTokens=1024,
        reuse={"maxUsesPerDocument": None},
    )
    _, parts = run(books, resource)
    samples = mds_samples(parts)
    hashes = {token_hash(sample["input_ids"]) for sample in samples.values()}
    assert len(hashes) == len(samples) == 8  # long documents are still shared out by piece


class _Recording:
    """The tokenizer, recording the length of every text it is given."""

    def __init__(self) -> None:
        self.lengths: list[int] = []

    def encode_batch_fast(self, texts: list[str], **options: Any) -> Any:
        self.lengths += [len(text) for text in texts]
        return TOKENIZER.encode_batch_fast(texts, **options)

    def encode(self, text: str, **options: Any) -> Any:
        self.lengths.append(len(text))
        return TOKENIZER.encode(text, **options)

    def decode(self, ids: list[int], **options: Any) -> str:
        return TOKENIZER.decode(ids, **options)


class _Texts:
    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def get(self, ids: list[str]) -> list[str]:
        return [self.texts[i] for i in ids]


def test_a_long_document_is_tokenized_only_in_pieces_a_sample_takes() -> None:
    huge = book(7, 20_000)  # about 6 MB
    recording = _Recording()
    documents = TokenizedDocuments(_Texts({"huge": huge}), recording)  # type: ignore[arg-type]
    separator = Separator(recording, "\n\n")  # type: ignore[arg-type]
    piece_chars = 512 * 3
    stream = documents.stream(["huge"], piece_chars, limit=1)
    result = fill_samples(stream, wanted=2, target=512, separator=separator)
    assert len(result.samples) == 2
    assert max(recording.lengths) <= piece_chars
    assert sum(recording.lengths) < 20 * piece_chars  # not the 6 MB
    assert result.samples[0].spans[0].doc_id == "huge#p0"


def test_the_report_says_what_was_asked_what_was_lost_and_shows_each_topic(
    books: ArtifactStore, tmp_path: Path
) -> None:
    from litelong.index import open_index
    from litelong.synth.report import write_report

    resource = synthesis(name="books-litelong", indexRef="books", targetTokens=1024)
    run(books, resource)
    artifact = books.latest_committed("SynthesisRun", "books-litelong")
    retriever = open_index(books.latest_committed("BM25Index", "books"))
    try:
        summary = write_report(artifact, retriever, tmp_path)
    finally:
        retriever.close()
    figures = summary.figures
    assert figures["outcome"] == {
        "requested": 10,
        "written": 8,
        "dropped": 2,
        "underfilled": 0,
        "duplicates_not_written": 0,
        "duplicates_written": 0,
        "near_duplicates": 0,
    }
    key = dict(summary.key_figures())
    assert key["samples requested"] == "10" and key["samples dropped (requested - written)"] == "2"
    topics = {row["topic"]: row for row in figures["topics"]}
    assert topics["Nothing"]["hits"] == 0 and topics["Nothing"]["samples"] == 0
    assert topics["Falcons"] == {**topics["Falcons"], "hits": 3, "samples": 2, "tokens": 2048}
    assert any(row["coherence"] is not None for row in figures["topics"])
    browse = figures["browse"]
    assert len(browse) == 3
    for sample in browse:
        assert sample["topic"] and sample["documents"]
        for document in sample["documents"]:
            number = document["id"].split("#p")[0].removeprefix("book")
            assert document["first_line"].startswith(f"Book {number} paragraph")
            assert document["role"] == "doc" and document["score"] > 0
    page = summary.html.read_text()
    assert "<h2>Topics</h2>" in page and "Sample browser" in page and "Falcons" in page
    assert figures["coherence"]["missing_documents"] == 0  # pieces are read as their books
