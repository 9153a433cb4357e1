"""BM25Index `partition: files`: each shard reads only its share of the corpus files (balanced
by size), dedups within it, and counts every skip of its files; the default is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from litelong.corpus import (
    CorpusReadError,
    InvalidCorpus,
    SkipCounter,
    content_digest,
    read_shard,
    shard_files,
)
from litelong.corpus.partition import split_by_size
from litelong.corpus.sources import CorpusFile
from litelong.index import open_index
from litelong.plan.calibration import Calibration
from litelong.plan.index import estimate_index
from litelong.stages import run_shard
from litelong.store import ArtifactStore

from .conftest import Cli, bm25index, write_jsonl

TEXT = "a document that is comfortably longer than twenty characters"


def _corpus(folder: Path) -> dict[str, Path]:
    """Three files of different sizes: big (shard 0's alone), mid and small (shard 1's).

    mid repeats one of big's documents (other shard: both stay) and small repeats one of
    mid's (same shard: dropped); small also holds lines that never become documents."""
    big = [{"id": f"b{i}", "text": f"{TEXT} big {i} " + "x" * 200} for i in range(40)]
    mid = [{"id": f"m{i}", "text": f"{TEXT} mid {i}"} for i in range(30)]
    mid.append({"id": "m-copy", "text": big[0]["text"]})
    small: list[object] = [{"id": f"s{i}", "text": f"{TEXT} small {i}"} for i in range(5)]
    small.append({"id": "s-copy", "text": mid[3]["text"]})
    small += [b"not json", {"id": "s-short", "text": "tiny"}]
    return {
        "big": write_jsonl(folder / "big.jsonl", big),
        "mid": write_jsonl(folder / "mid.jsonl", mid),
        "small": write_jsonl(folder / "small.jsonl", small),
    }


def _spec(folder: Path, partition: str = "files", **spec: object):
    glob = str(folder / "*.jsonl*")
    return bm25index(corpus=[{"uri": glob, "idField": "id"}], partition=partition, **spec).spec


def _read(spec, shard: int, of: int) -> tuple[list[str], SkipCounter]:
    skips = SkipCounter(shard, of)
    return [document.id for document in read_shard(spec, shard, of, skips)], skips


def test_each_shard_reads_its_files_and_together_they_hold_the_corpus(tmp_path: Path) -> None:
    files = _corpus(tmp_path)
    spec = _spec(tmp_path)
    assert [[Path(f.uri).name for f in shard_files(spec, s, 2)] for s in range(2)] == [
        ["big.jsonl"],
        ["mid.jsonl", "small.jsonl"],
    ]
    (first, first_skips), (second, second_skips) = _read(spec, 0, 2), _read(spec, 1, 2)
    assert first == [f"b{i}" for i in range(40)]
    assert second == [f"m{i}" for i in range(30)] + ["m-copy"] + [f"s{i}" for i in range(5)]
    assert first_skips.counts == {}
    assert second_skips.counts == {"duplicate": 1, "invalid_json": 1, "too_short": 1}
    assert second_skips.examples["invalid_json"] == [f"{files['small']}:7"]
    parallel_skips = SkipCounter(1, 2)
    parallel = [d.id for d in read_shard(spec, 1, 2, parallel_skips, readers=2)]
    assert (parallel, parallel_skips) == (second, second_skips)  # reader processes agree
    whole, whole_skips = _read(_spec(tmp_path, "content"), 0, 1)
    assert set(first) | set(second) == set(whole) | {"m-copy"}  # the cross-shard copy stays
    assert whole_skips.counts == {"duplicate": 2, "invalid_json": 1, "too_short": 1}


def test_a_shard_never_opens_a_file_another_shard_owns(tmp_path: Path) -> None:
    files = _corpus(tmp_path)
    files["big"].unlink()
    (tmp_path / "big.jsonl.gz").write_bytes(b"not gzip " * 2000)  # the largest: shard 0's
    spec = _spec(tmp_path)
    second, _ = _read(spec, 1, 2)
    assert len(second) == 36
    with pytest.raises(CorpusReadError, match=r"big\.jsonl\.gz"):
        _read(spec, 0, 2)
    with pytest.raises(CorpusReadError, match=r"big\.jsonl\.gz"):
        _read(_spec(tmp_path, "content"), 1, 2)  # by content every shard reads every file


def test_fewer_files_than_shards_is_a_clear_error(tmp_path: Path) -> None:
    _corpus(tmp_path)
    with pytest.raises(InvalidCorpus, match=r"^partition files: 3 corpus file\(s\) for 4 shards"):
        _read(_spec(tmp_path), 0, 4)
    assert len(_read(_spec(tmp_path, "content"), 0, 4)[0]) > 0


def test_files_are_split_largest_first_onto_the_lightest_shard() -> None:
    files = [CorpusFile(f"f{n}.jsonl", "jsonl", "text", None) for n in range(6)]
    sizes = [10, 70, 30, 30, 50, 10]
    shards = split_by_size(files, sizes, 3)
    # 70→0, 50→1, 30 (f2)→2, 30 (f3)→2 (60), 10 (f0)→1 (60), 10 (f5)→1 (tied at 60 with
    # shard 2: the lower number); each shard's files in corpus order
    assert [[f.uri for f in shard] for shard in shards] == [
        ["f1.jsonl"],
        ["f0.jsonl", "f4.jsonl", "f5.jsonl"],
        ["f2.jsonl", "f3.jsonl"],
    ]
    assert split_by_size(list(reversed(files)), list(reversed(sizes)), 3) == [
        list(reversed(shard)) for shard in shards
    ]


def test_the_same_spec_gives_the_same_index_whatever_the_jobs(cli: Cli, tmp_path: Path) -> None:
    _corpus(tmp_path)
    manifest = tmp_path / "idx.yaml"
    resource = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "BM25Index",
        "metadata": {"name": "idx"},
        "spec": {
            "corpus": [{"uri": str(tmp_path / "*.jsonl"), "idField": "id"}],
            "partition": "files",
            "parallelism": 2,
        },
    }
    manifest.write_text(yaml.safe_dump(resource))
    found = []
    for jobs in ("1", "2"):
        store = ArtifactStore(f"file://{tmp_path / f'store-{jobs}'}")
        result = cli("run", str(manifest), "--store", store.uri, "--jobs", jobs)
        assert result.code == 0, result.stderr
        artifact = store.latest_committed("BM25Index", "idx")
        retriever = open_index(artifact)
        found.append((sorted(retriever.document_ids()), artifact.manifest().skipped))
        retriever.close()
    assert found[0] == found[1]
    assert len(found[0][0]) == 76
    assert found[0][1] == {"duplicate": 1, "invalid_json": 1, "too_short": 1}


def test_run_with_fewer_files_than_shards_exits_2_with_one_line(cli: Cli, tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "text": TEXT}])
    manifest = tmp_path / "idx.yaml"
    resource = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "BM25Index",
        "metadata": {"name": "idx"},
        "spec": {"corpus": [{"uri": str(corpus)}], "partition": "files", "parallelism": 2},
    }
    manifest.write_text(yaml.safe_dump(resource))
    result = cli("run", str(manifest), "--store", f"file://{tmp_path / 's'}", "--jobs", "1")
    assert result.code == 2
    assert "partition files: 1 corpus file(s) for 2 shards" in result.stderr


def test_the_default_partition_keeps_the_identity_and_files_changes_it() -> None:
    corpus = [{"uri": "corpus.jsonl"}]
    committed_before_the_field = "fe79b2b5702c"  # this spec's identity before `partition`
    assert bm25index(corpus=corpus).identity() == committed_before_the_field
    assert bm25index(corpus=corpus, partition="content").identity() == committed_before_the_field
    assert bm25index(corpus=corpus, partition="files").identity() != committed_before_the_field


def test_a_document_in_two_shards_files_is_one_search_hit(tmp_path: Path) -> None:
    shared = f"{TEXT} about glaciers and fjords"
    write_jsonl(tmp_path / "one.jsonl", [{"text": shared}, {"text": f"{TEXT} about deserts"}])
    write_jsonl(tmp_path / "two.jsonl", [{"text": shared}, {"text": f"{TEXT} about rivers"}])
    resource = bm25index(corpus=[{"uri": str(tmp_path / "*.jsonl")}], partition="files")
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    for shard in range(2):
        result = run_shard(resource, store, shard, 2)
    assert result.manifest is not None and result.manifest.counts["documents"] == 4
    retriever = open_index(result.artifact)
    hits = retriever.search("glaciers fjords", 10)
    retriever.close()
    assert [doc_id for doc_id, _ in hits] == [content_digest(shared).hex()]


def test_plan_warns_when_files_are_fewer_than_shards(tmp_path: Path) -> None:
    _corpus(tmp_path)
    corpus = [{"uri": str(tmp_path / "*.jsonl"), "idField": "id"}]
    calibration = Calibration(host="test")
    for partition, shards, warned in (
        ("files", 4, True),
        ("files", 3, False),
        ("content", 4, False),
    ):
        resource = bm25index(corpus=corpus, partition=partition, parallelism=shards)
        warnings = estimate_index(resource, calibration).warnings
        assert any("3 corpus file(s) for 4 shards" in w for w in warnings) == warned
