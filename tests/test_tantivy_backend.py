"""The embedded tantivy backend passes the retriever contract, as one part and as several."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from litelong.api.v1alpha1.bm25index import Analysis
from litelong.corpus import Document
from litelong.index import (
    Retriever,
    TantivyPartWriter,
    TantivyRetriever,
    UnknownDocument,
    open_index,
    tantivy_backend,
)
from litelong.index.tantivy_backend import id_key, part_layout
from litelong.stages import run_shard
from litelong.store import ArtifactStore

from .conftest import bm25index, write_jsonl
from .retriever_contract import CONTRACT_CORPUS, RetrieverContract


def build_index(tmp_path: Path, parts: int) -> Retriever:
    corpus = write_jsonl(tmp_path / "contract.jsonl", CONTRACT_CORPUS)
    resource = bm25index(corpus=[{"uri": str(corpus), "idField": "id"}], minChars=10)
    store = ArtifactStore(f"file://{tmp_path}/store")
    for shard in range(parts):
        result = run_shard(resource, store, shard, parts)
    assert result.manifest is not None
    return open_index(result.artifact)


class TestTantivy(RetrieverContract):
    """One part, and three parts whose hits are merged by score."""

    @pytest.fixture(params=[1, 3], ids=["one-part", "three-parts"])
    def retriever(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Retriever]:
        retriever = build_index(tmp_path, parts=request.param)
        yield retriever
        retriever.close()


# A part written by the code before `key` (main at 573ec14, CONTRACT_CORPUS, one shard): its
# ids are indexed as text.
PART_BEFORE_KEYS = Path(__file__).parent / "data" / "tantivy-part-id-field"


class TestTantivyPartWrittenBeforeKeys(RetrieverContract):
    """An index written before `key` still answers everything, `get` included."""

    @pytest.fixture
    def retriever(self, tmp_path: Path) -> Iterator[Retriever]:
        folder = shutil.copytree(PART_BEFORE_KEYS, tmp_path / "part")  # tantivy writes locks
        assert part_layout(folder) == "id"
        retriever = TantivyRetriever([folder], Analysis())
        yield retriever
        retriever.close()


def test_an_index_of_parts_before_and_after_keys_finds_texts_in_both(tmp_path: Path) -> None:
    old = shutil.copytree(PART_BEFORE_KEYS, tmp_path / "old")
    new = tmp_path / "new"
    new.mkdir()
    writer = TantivyPartWriter(new, Analysis())
    writer.add([Document("tide", "The moon raises the tides of the oceans twice a day.")])
    writer.commit()
    assert part_layout(new) == "key"
    retriever = TantivyRetriever([old, new], Analysis())
    assert retriever.get(["tide", "rust"]) == [
        "The moon raises the tides of the oceans twice a day.",
        CONTRACT_CORPUS[0]["text"],
    ]
    assert retriever.search("moon tides", 1)[0][0] == "tide"
    assert retriever.search("rusting iron", 1)[0][0] == "rust"
    with pytest.raises(UnknownDocument, match="nope"):
        retriever.get(["tide", "nope"])


# Ids whose keys (CRC-32) are equal: `get` must tell them apart by the id itself.
SHARING = ("doc-29685295", "doc-32060020")
SHARING_TOO = ("doc-29685294", "doc-32060021")


@pytest.fixture
def sharing_keys(tmp_path: Path) -> TantivyRetriever:
    assert id_key(SHARING[0]) == id_key(SHARING[1])
    assert id_key(SHARING_TOO[0]) == id_key(SHARING_TOO[1])
    writer = TantivyPartWriter(tmp_path, Analysis())
    writer.add(Document(doc_id, f"text of {doc_id}") for doc_id in (*SHARING, SHARING_TOO[0]))
    writer.add(Document(f"other-{number}", f"filler {number}") for number in range(50))
    writer.commit()
    return TantivyRetriever([tmp_path], Analysis())


def test_ids_sharing_a_key_each_get_their_own_text(sharing_keys: TantivyRetriever) -> None:
    assert sharing_keys.get([SHARING[1], SHARING[0], "other-7"]) == [
        f"text of {SHARING[1]}",
        f"text of {SHARING[0]}",
        "filler 7",
    ]
    assert sharing_keys.get([SHARING[0]]) == [f"text of {SHARING[0]}"]
    assert sharing_keys.get([SHARING[1]]) == [f"text of {SHARING[1]}"]


def test_an_unknown_id_sharing_a_key_with_a_document_is_unknown(
    sharing_keys: TantivyRetriever,
) -> None:
    """`SHARING_TOO[1]` is not in the index, but its key is (`SHARING_TOO[0]`'s)."""
    assert sharing_keys.get([SHARING_TOO[0]]) == [f"text of {SHARING_TOO[0]}"]
    with pytest.raises(UnknownDocument, match=SHARING_TOO[1]):
        sharing_keys.get([SHARING_TOO[1]])


def test_get_asks_again_when_ids_sharing_keys_fill_its_hits(
    sharing_keys: TantivyRetriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no margin one id's search has room for one hit, which may be the other id's."""
    monkeypatch.setattr(tantivy_backend, "_KEY_MARGIN", 0)
    for doc_id in SHARING:
        assert sharing_keys.get([doc_id]) == [f"text of {doc_id}"]


def test_the_ids_column_holds_the_ids_as_pyarrow_would() -> None:
    import pyarrow as pa

    from litelong.index.tantivy_backend import _string_array

    for ids in (["a", "caf\u00e9", "", "\U0001f600", "x" * 70_000], []):
        column = _string_array(ids)
        assert column.type == pa.string() and column.to_pylist() == ids


def test_building_an_index_does_not_import_pandas(tmp_path: Path) -> None:
    """The first `pa.array` of a list imports pandas, 0.3 s of a 100K-document build."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.test_tantivy_backend import build_index\n"
        f"build_index(Path({str(tmp_path)!r}), parts=1).close()\n"
        "print('pandas' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False"]


def test_ids_read_from_the_columns_buffers_are_the_ids() -> None:
    """`get` reads each hit's id from `ids.arrow`'s buffers (`_IdColumn`), chunk by chunk."""
    import pyarrow as pa

    from litelong.index.tantivy_backend import _IdColumn, _string_array

    chunks = [["a", "caf\u00e9", ""], [], ["\U0001f600", "x" * 300]]
    column = pa.chunked_array([_string_array(chunk) for chunk in chunks], pa.string())
    sliced = pa.chunked_array([column.chunk(0).slice(1), column.chunk(2)], pa.string())
    for ids in (column, sliced):
        reader = _IdColumn(ids)
        assert [reader.at(ordinal) for ordinal in range(len(ids))] == ids.to_pylist()


@pytest.mark.parametrize("batches", [1, 3, 7])
def test_lengths_are_read_by_ordinal_across_record_batches(batches: int) -> None:
    """A synthesis reads a search's lengths by ordinal from the `chars` column, which a large
    index holds in many record batches: any order, repeats, every batch (an empty one too)."""
    import numpy as np
    import pyarrow as pa

    from litelong.index.tantivy_backend import _Lengths

    values = np.arange(1000, 1000 + 70 * batches, dtype=np.int64)
    chunks = [pa.array(part) for part in np.array_split(values, batches)]
    column = pa.chunked_array([*chunks, pa.array([], pa.int64())] if batches > 1 else chunks)
    ordinals = np.random.default_rng(batches).integers(0, len(values), 300)
    taken = _Lengths(column).take(np.concatenate([ordinals, ordinals[:5]]))
    assert taken == [*values[ordinals].tolist(), *values[ordinals[:5]].tolist()]
    assert all(type(length) is int for length in taken)
    assert _Lengths(column).take(np.zeros(0, np.int64)) == []
