"""The embedded tantivy backend passes the retriever contract, as one part and as several."""

from __future__ import annotations

import subprocess
import sys
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
