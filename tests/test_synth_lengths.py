"""Document lengths in the index (`ids.arrow`'s `chars`) let modes litelong and standard skip a
claim that reuse forbids without reading its text; an index written before the column (no
lengths) gives the same dataset through the fetch path."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from litelong.api.v1alpha1.bm25index import Analysis
from litelong.corpus import Document
from litelong.index import TantivyPartWriter, TantivyRetriever, open_index
from litelong.store import ArtifactStore
from litelong.synth.assembly import Claim, TokenizedDocuments
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
