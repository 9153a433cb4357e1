"""Document lengths in the index (`ids.arrow`'s `chars`) let modes litelong and standard skip a
claim that reuse forbids without reading its text; an index written before the column (no
lengths) gives the same dataset through the fetch path."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest

from litelong.api.v1alpha1.bm25index import Analysis
from litelong.corpus import Document
from litelong.index import TantivyPartWriter, TantivyRetriever, open_index
from litelong.store import ArtifactStore
from litelong.synth.assembly import Claim, Separator, TokenizedDocuments, assemble, fill_samples
from litelong.synth.assembly.pieces import unread_skip
from litelong.tokenizer import load_tokenizer

from .test_synth_stage import inputs, run, synthesis  # noqa: F401

TEXTS = {"a": "Plants need light.", "b": "Café au lait " * 40, "c": "x", "d": ""}


def _drop_lengths(folder: Path) -> None:
    """Rewrite a part's `ids.arrow` as an index written before the `chars` column."""
    path = folder / "ids.arrow"
    table = pa.ipc.open_file(pa.py_buffer(path.read_bytes())).read_all().select(["id"])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


@pytest.fixture
def part(tmp_path: Path) -> Path:
    writer = TantivyPartWriter(tmp_path, Analysis())
    writer.add(Document(doc_id, text) for doc_id, text in TEXTS.items())
    writer.commit()
    return tmp_path


def test_the_index_gives_each_hits_length_in_characters(part: Path) -> None:
    retriever = TantivyRetriever([part], Analysis())
    hits = retriever.search_lengths("plants light café lait", 10)
    assert {doc_id: chars for doc_id, _, chars in hits} == {"a": 18, "b": len(TEXTS["b"])}
    assert [(doc_id, score) for doc_id, score, _ in hits] == retriever.search(
        "plants light café lait", 10
    )
    ids = retriever.ids_at([3, 0, 2])
    assert retriever.lengths_at([3, 0, 2]) == [len(TEXTS[doc_id]) for doc_id in ids]


def test_an_index_without_the_length_column_says_unknown(part: Path) -> None:
    _drop_lengths(part)
    retriever = TantivyRetriever([part], Analysis())
    assert [chars for _, _, chars in retriever.search_lengths("plants light", 5)] == [None]
    assert retriever.lengths_at([0, 1]) == [None, None]
    assert retriever.search("plants light", 5)[0][0] == "a"


def test_only_a_one_piece_claim_that_reuse_forbids_is_skipped_unread() -> None:
    second = Claim("d", rank=1, claimers=2, chars=100)
    assert unread_skip(second, piece_chars=100, limit=1)  # one piece, given to rank 0
    assert not unread_skip(Claim("d", 0, 2, chars=100), 100, limit=1)  # the first claimer
    assert not unread_skip(second, piece_chars=100, limit=2)  # two uses allowed
    assert not unread_skip(second, piece_chars=100, limit=None)
    assert not unread_skip(Claim("d", 1, 2, chars=101), 100, limit=1)  # pieces: read to know
    assert not unread_skip(Claim("d", 1, 2), 100, limit=1)  # length unknown
    assert unread_skip(Claim("d", 1, 2, chars=10**9), None, limit=1)  # uncut: one piece


class _CountingRetriever(TantivyRetriever):
    read: list[str]

    def get(self, ids: list[str]) -> list[str]:  # type: ignore[override]
        self.read += ids
        return super().get(ids)


def test_a_claim_skipped_by_its_length_is_never_read(part: Path) -> None:
    retriever = _CountingRetriever([part], Analysis())
    retriever.read = []
    documents = TokenizedDocuments(retriever, load_tokenizer())
    claims = [Claim(doc_id, 1, 2, chars=len(text)) for doc_id, text in TEXTS.items()]
    stream = documents.stream([Claim("a", 0, 2, chars=18), *claims], piece_chars=300, limit=1)
    assert [unit.doc_id for unit in stream] == ["a", "b#p1"]  # b has 2 pieces: claimer 1's
    assert retriever.read == ["a", "b"]  # a's second claim, c and d: never read
    assert stream.counts["skipped.reuse_limited"] == 3


def _copy(store: ArtifactStore, tmp_path: Path) -> ArtifactStore:
    other = ArtifactStore(f"file://{tmp_path}")
    for kind, name in (("BM25Index", "wiki"), ("TopicDebate", "topics")):
        source = store.latest_committed(kind, name)
        other.fs.copy(source.path, other.artifact(kind, name, source.identity).path, recursive=True)
    return other


def _dataset(parts: list[Path]) -> list[tuple[str, bytes]]:
    """Every file of the parts but `inputs.json` (which names the store)."""
    return [
        (f"{part.name}/{path.relative_to(part)}", path.read_bytes())
        for part in parts
        for path in sorted(part.rglob("*"))
        if path.is_file() and path.name != "inputs.json"
    ]


@pytest.mark.parametrize("mode", ["litelong", "standard"])
def test_the_dataset_is_byte_identical_with_and_without_lengths(
    inputs: ArtifactStore,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    read: list[str] = []
    original = TantivyRetriever.get

    def counting(self: TantivyRetriever, ids: list[str]) -> list[str]:
        read.extend(ids)
        return original(self, ids)

    monkeypatch.setattr(TantivyRetriever, "get", counting)
    monkeypatch.setattr(assemble, "GIVE_UP", math.inf)  # lengths' other use: tested below
    old = _copy(inputs, tmp_path)
    index = old.latest_committed("BM25Index", "wiki")
    for name in index.manifest().parts:
        _drop_lengths(index.local_part(name))
    retriever = open_index(index)
    assert retriever.lengths_at([0]) == [None]  # as an index written before the column
    retriever.close()
    runs = []
    for store in (inputs, old):
        read.clear()
        spec = {  # topics run out of documents: every claim is walked, none left unvisited
            "mode": mode,
            "samplesPerTopic": 40,
            "reuse": {"maxUsesPerDocument": 1},
            "output": {"format": "jsonl"},
        }
        counts, parts = run(store, synthesis(name=f"lengths-{mode}", **spec))
        runs.append((_dataset(parts), counts, len(read)))
    (with_lengths, counts, reads), (without, old_counts, old_reads) = runs
    assert with_lengths == without and len(with_lengths) > 1
    assert counts == old_counts
    if mode == "litelong":  # standard's few draws of the index are disjoint: nothing to skip
        assert counts["skipped.reuse_limited"] > 0 and counts["samples_underfilled"] > 0
        assert reads < old_reads  # skipped claims unread (the report reads the same in both)


def _short_documents(tmp_path: Path, count: int) -> TantivyRetriever:
    writer = TantivyPartWriter(tmp_path, Analysis())
    writer.add(
        Document(f"d{n}", f"Document {n} is about plants and light. " * 3) for n in range(count)
    )
    writer.commit()
    return TantivyRetriever([tmp_path], Analysis())


@pytest.mark.parametrize("give_up", [assemble.GIVE_UP, math.inf])
def test_a_sample_its_documents_cannot_fill_is_given_up_before_they_are_tokenized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, give_up: float
) -> None:
    """40 documents of ~120 characters cannot fill 10,000 tokens: once the first batch says
    how many tokens a character makes, the rest are left untokenized (given up, counted);
    without the rule (`GIVE_UP` infinite) every one is tokenized for the same nothing."""
    monkeypatch.setattr(assemble, "GIVE_UP", give_up)
    retriever = _short_documents(tmp_path, 40)
    tokenizer = load_tokenizer()
    documents = TokenizedDocuments(retriever, tokenizer)
    claims = [
        Claim(f"d{n}", chars=len(text))
        for n, text in enumerate(retriever.get([f"d{n}" for n in range(40)]))
    ]
    result = fill_samples(documents.stream(claims), 1, 10_000, Separator(tokenizer))
    assert result.samples == [] and result.counts["samples_underfilled"] == 1
    if give_up == math.inf:
        assert documents.tokenized == 40 and not result.counts["samples_given_up"]
    else:
        assert documents.tokenized == assemble.FIRST_FETCH_BATCH
        assert result.counts["samples_given_up"] == 1
    every = sum(
        len(document.ids) + 1
        for document in documents.tokenize(
            [(f"d{n}", text) for n, text in enumerate(retriever.get([f"d{n}" for n in range(40)]))]
        )
    )
    # what the topic's documents reach (the empty-output error says it): estimated when given up
    assert abs(result.leftover_tokens - every) < every * 0.1


def test_a_sample_its_documents_can_fill_is_never_given_up(tmp_path: Path) -> None:
    """The same documents, a budget they fill twice over: both samples are made; and where
    the lengths are unknown (an older index), nothing is given up either."""
    retriever = _short_documents(tmp_path, 40)
    tokenizer = load_tokenizer()
    texts = retriever.get([f"d{n}" for n in range(40)])
    target = sum(len(tokenizer.encode(text).ids) + 1 for text in texts) // 2 - 40
    for known in (True, False):
        claims = [Claim(f"d{n}", chars=len(t) if known else None) for n, t in enumerate(texts)]
        documents = TokenizedDocuments(retriever, tokenizer)
        result = fill_samples(documents.stream(claims), 2, target, Separator(tokenizer))
        assert len(result.samples) == 2 and not result.counts["samples_given_up"]


@pytest.mark.parametrize("mode", ["litelong", "standard"])
def test_giving_up_hopeless_samples_leaves_the_dataset_as_it_was(
    inputs: ArtifactStore,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    """Topics that run out of documents (40 samples asked of each): the samples written are
    the same with the rule and without it, and fewer documents are tokenized with it."""
    runs = []
    for give_up in (math.inf, assemble.GIVE_UP):
        monkeypatch.setattr(assemble, "GIVE_UP", give_up)
        spec = {
            "mode": mode,
            "samplesPerTopic": 40,
            "targetTokens": 16384,
            "reuse": {"maxUsesPerDocument": 1},
            "output": {"format": "jsonl"},
        }
        counts, parts = run(inputs, synthesis(name=f"give-up-{mode}-{give_up}", **spec))
        samples = (
            [line for part in parts for line in (part / "samples.jsonl").read_bytes().splitlines()]
            if False
            else _dataset(parts)
        )
        runs.append((samples, counts))
    (without, old), (with_rule, new) = runs
    assert [data for name, data in with_rule if "sample" in name] == [
        data for name, data in without if "sample" in name
    ]
    assert new["samples"] == old["samples"] and new["tokens"] == old["tokens"]
    assert new["samples_given_up"] > 0
    assert new["documents_tokenized"] < old["documents_tokenized"]
