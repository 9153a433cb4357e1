"""The SynthesisRun stage end to end: a real index of the shipped Wikipedia sample, topics
committed as a TopicDebate would commit them, and every output format read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from litelong.api import parse
from litelong.api.v1alpha1 import SynthesisRun
from litelong.dataset.mds import read_mds
from litelong.stages import run_shard
from litelong.store import ArtifactStore
from litelong.tokenizer import load_tokenizer

from .conftest import Cli, bm25index, commit_topics

TOPICS = [
    ("SCI004000", "Science", "Black holes", "Black holes astronomy"),
    ("HIS037000", "History", "The French Revolution", "French Revolution history"),
    ("MUS000000", "Music", "Baroque composers", "Baroque composers music"),
    ("SPO000000", "Sports & Recreation", "Olympic athletics", "Olympic athletics sports"),
    ("SCI000000", "Science", "zzqx unmatched", "zzqxnothing qqzzunmatched"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    """A store holding the wiki-sample index and a committed TopicDebate `topics`."""
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('synth')}")
    run_shard(bm25index("wiki", corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst"}]), store, 0, 1)
    commit_topics(store, TOPICS)
    return store


def synthesis(**spec: Any) -> SynthesisRun:
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "SynthesisRun",
            "metadata": {"name": spec.pop("name", "s")},
            "spec": {
                "topicDebateRef": "topics",
                "indexRef": "wiki",
                "targetTokens": 2048,
                "samplesPerTopic": 2,
                "output": {"format": "mds"},
                **spec,
            },
        }
    )
    assert isinstance(resource, SynthesisRun)
    return resource


def run(
    store: ArtifactStore, resource: SynthesisRun, of: int = 1
) -> tuple[dict[str, int], list[Path]]:
    for shard in range(of):
        result = run_shard(resource, store, shard, of)
    assert result.manifest is not None
    parts = [result.artifact.local_part(part) for part in result.manifest.parts]
    return result.manifest.counts, parts


def mds_samples(parts: list[Path]) -> dict[str, dict[str, Any]]:
    return {sample["id"]: sample for part in parts for sample in read_mds(part)}


def test_every_sample_has_exactly_target_tokens_and_tiling_spans(inputs: ArtifactStore) -> None:
    counts, parts = run(inputs, synthesis())
    samples = mds_samples(parts)
    assert len(samples) == counts["samples"] == 8  # 4 topics with hits x 2
    for sample in samples.values():
        assert sample["input_ids"].dtype == np.uint32 and len(sample["input_ids"]) == 2048
        spans = sample["indices"]
        assert spans[0][0] == 0 and spans[-1][1] == 2048
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    assert counts["tokens"] == 8 * 2048


def test_spans_hold_each_documents_own_tokens(inputs: ArtifactStore) -> None:
    resource = synthesis(name="spans")
    _, parts = run(inputs, resource)
    sample = next(iter(mds_samples(parts).values()))
    meta = pq.read_table(parts[0] / "metadata.parquet").to_pylist()[0]
    from litelong.index import open_index

    index = open_index(inputs.latest_committed("BM25Index", "wiki"))
    (text,) = index.get([meta["doc_ids"][0]])
    tokenizer = load_tokenizer()
    expected = tokenizer.encode(text, add_special_tokens=False).ids
    expected += tokenizer.encode("<|endoftext|>", add_special_tokens=False).ids  # separator
    start, end = sample["indices"][0]
    assert sample["input_ids"][start:end].tolist() == expected


def test_a_topic_without_hits_is_counted_and_never_padded(inputs: ArtifactStore) -> None:
    counts, parts = run(inputs, synthesis(name="nohits"))
    assert counts["topics_without_hits"] == 1
    assert counts["topics_underfilled"] == 1
    assert not [s for s in mds_samples(parts) if s.startswith("SCI000000/")]


def test_the_same_spec_gives_the_same_samples_whatever_the_shard_count(
    inputs: ArtifactStore, tmp_path: Path
) -> None:
    resource = synthesis(name="shards")
    _, one = run(inputs, resource, of=1)
    other = ArtifactStore(f"file://{tmp_path}")
    for kind, name in (("BM25Index", "wiki"), ("TopicDebate", "topics")):
        source = inputs.latest_committed(kind, name)
        other.fs.copy(source.path, other.artifact(kind, name, source.identity).path, recursive=True)
    _, three = run(other, resource, of=3)
    assert len(three) == 3
    a, b = mds_samples(one), mds_samples(three)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key]["input_ids"], b[key]["input_ids"])
        assert np.array_equal(a[key]["indices"], b[key]["indices"])


def test_reuse_bound_keeps_every_document_under_its_limit(inputs: ArtifactStore) -> None:
    resource = synthesis(name="reuse", samplesPerTopic=1, reuse={"maxUsesPerDocument": 1})
    counts, parts = run(inputs, resource)
    rows = [row for part in parts for row in pq.read_table(part / "metadata.parquet").to_pylist()]
    used = [doc_id for row in rows for doc_id in row["doc_ids"]]
    assert len(used) == len(set(used))
    assert counts["samples"] == 4


def test_score_order_puts_the_best_hit_first(inputs: ArtifactStore) -> None:
    resource = synthesis(name="score", retrieval={"order": "score", "topK": 50})
    _, parts = run(inputs, resource)
    from litelong.index import open_index

    index = open_index(inputs.latest_committed("BM25Index", "wiki"))
    rows = {r["id"]: r for r in pq.read_table(parts[0] / "metadata.parquet").to_pylist()}
    first = rows["SCI004000/000000/0"]
    assert first["doc_ids"][0] == index.search("Black holes astronomy", 1)[0][0]


def test_standard_mode_concatenates_random_documents_like_for_like(inputs: ArtifactStore) -> None:
    counts, parts = run(inputs, synthesis(name="standard", mode="standard"))
    samples = mds_samples(parts)
    assert counts["samples"] == len(samples) == 2 * len(TOPICS)  # as many draws as topics
    assert all(key.startswith("standard/") for key in samples)
    assert all(len(s["input_ids"]) == 2048 for s in samples.values())


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_text_formats_load_with_datasets(inputs: ArtifactStore, fmt: str) -> None:
    datasets = pytest.importorskip("datasets")
    _, parts = run(inputs, synthesis(name=f"fmt-{fmt}", output={"format": fmt}))
    files = sorted(str(p) for part in parts for p in part.glob(f"samples-*.{fmt}"))
    loaded = datasets.load_dataset("json" if fmt == "jsonl" else fmt, data_files=files)["train"]
    assert len(loaded) == 8
    for row in loaded:
        assert row["num_tokens"] == 2048 and row["spans"][-1][1] == 2048
        assert row["text"] and row["topic"]
        if fmt == "parquet":
            assert len(row["input_ids"]) == 2048


def test_a_missing_input_is_named_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "synth.yaml"
    document = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "SynthesisRun",
        "metadata": {"name": "s"},
        "spec": {"topicDebateRef": "nope", "indexRef": "wiki"},
    }
    spec.write_text(yaml.safe_dump(document))
    missing = cli("run", str(spec), "--store", str(tmp_path / "store"))
    assert missing.code == 2 and "refers to TopicDebate/nope" in missing.stderr.replace("\n", " ")


def test_an_unknown_tokenizer_exits_2_with_how_to_fix(
    cli: Cli, inputs: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resource = synthesis(name="tok", tokenizer={"name": "no-org/no-tokenizer"})
    spec = tmp_path / "synth.yaml"
    document = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    document.pop("status", None)
    spec.write_text(yaml.safe_dump(document))
    result = cli("run", str(spec), "--store", inputs.uri_of(inputs.root))
    assert result.code == 2
    assert "nothing is downloaded at run time" in result.stderr.replace("\n", " ")


def test_a_run_stopped_after_some_shards_resumes_with_the_same_samples(
    cli: Cli, inputs: ArtifactStore, tmp_path: Path
) -> None:
    resource = synthesis(name="resume", parallelism=3)
    whole = synthesis(name="resume-whole")
    _, reference = run(inputs, whole)
    run_shard(resource, inputs, 0, 3)  # then the process dies
    spec = tmp_path / "synth.yaml"
    document = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    document.pop("status", None)
    spec.write_text(yaml.safe_dump(document))
    result = cli("run", str(spec), "--store", inputs.uri_of(inputs.root))
    assert result.code == 0, result.stderr
    assert "shard 0 already committed, skipped" in result.stderr
    assert "report:" in result.stdout
    artifact = inputs.latest_committed("SynthesisRun", "resume")
    parts = [artifact.local_part(part) for part in artifact.manifest().parts]
    resumed, expected = mds_samples(parts), mds_samples(reference)
    assert resumed.keys() == expected.keys()
    for key in expected:
        assert np.array_equal(resumed[key]["input_ids"], expected[key]["input_ids"])


def test_text_tokenizes_back_to_exactly_the_input_ids_in_every_format(
    inputs: ArtifactStore,
) -> None:
    """The boundary rule (docs/synthesis.md): documents joined by the tokenizer's end-of-text
    token, so `tokenizer.encode(text)` is the sample's input_ids; MDS, which stores no text, is
    compared through the same samples' text in JSONL and Parquet."""
    import json

    tokenizer = load_tokenizer()
    _, mds_parts = run(inputs, synthesis(name="rule-mds"))
    stored = {key: s["input_ids"].tolist() for key, s in mds_samples(mds_parts).items()}
    for fmt in ("jsonl", "parquet"):
        _, parts = run(inputs, synthesis(name=f"rule-{fmt}", output={"format": fmt}))
        files = sorted(p for part in parts for p in part.glob(f"samples-*.{fmt}"))
        if fmt == "jsonl":
            records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
        else:
            records = [r for f in files for r in pq.read_table(f).to_pylist()]
        assert len(records) == len(stored) == 8
        for record in records:
            ids = tokenizer.encode(record["text"], add_special_tokens=False).ids
            assert ids == stored[record["id"]], record["id"]
            assert len(ids) == record["num_tokens"] == 2048
            if fmt == "parquet":
                assert ids == record["input_ids"]
