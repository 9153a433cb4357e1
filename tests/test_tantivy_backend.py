"""The embedded tantivy backend passes the retriever contract, as one part and as several."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from litelong.index import Retriever, open_index
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
