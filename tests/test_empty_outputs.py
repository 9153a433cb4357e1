"""A stage whose output would be empty commits nothing, exits 1 and says why in one line; a
SynthesisRun far short of the samples asked for says so loudly."""

from __future__ import annotations

from pathlib import Path

import yaml

from litelong.store import ArtifactStore

from .conftest import Cli, commit_topics, manifest_yaml, write_jsonl
from .test_lineage import TOPICS, corpus, index_yaml, synthesis_yaml


def run_index(cli: Cli, tmp_path: Path, data: Path, **spec: object) -> tuple[int, str]:
    path = tmp_path / "idx.yaml"
    path.write_text(manifest_yaml("idx", str(data), **spec))
    result = cli("run", str(path), "--store", str(tmp_path / "store"))
    return result.code, result.stderr.replace("\n", " ")


def nothing_committed(tmp_path: Path) -> bool:
    return not any(a.is_committed() for a in ArtifactStore(str(tmp_path / "store")).artifacts())


def test_a_wrong_text_field_fails_with_the_largest_skip_and_where(cli: Cli, tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "c.jsonl", [{"id": str(i), "body": "long enough text"} for i in range(5)]
    )
    path = tmp_path / "idx.yaml"
    document = yaml.safe_load(manifest_yaml("idx", str(data)))
    document["spec"]["corpus"][0]["textField"] = "content"
    path.write_text(yaml.safe_dump(document))
    result = cli("run", str(path), "--store", str(tmp_path / "store"))
    assert result.code == 1
    line = result.stderr.replace("\n", " ")
    assert "BM25Index/idx: empty output, 0 documents: 5 skipped as missing_text" in line
    assert f"e.g. {data}:1" in line and "textField" in line
    assert nothing_committed(tmp_path)
    again = cli("run", str(path), "--store", str(tmp_path / "store"))
    assert again.code == 1 and "empty output" in again.stderr, "a rerun never commits it either"


def test_an_empty_file_and_binary_junk_fail_too(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    code, message = run_index(cli, tmp_path, tmp_path / "empty.jsonl")
    assert code == 1 and "0 documents: the corpus holds no records" in message
    (tmp_path / "junk.jsonl").write_bytes(bytes(range(256)) * 8)
    code, message = run_index(cli, tmp_path, tmp_path / "junk.jsonl")
    assert code == 1 and "0 documents" in message and "skipped as invalid_" in message
    assert nothing_committed(tmp_path)


def test_an_empty_output_clears_once_the_input_is_filled(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "later.jsonl"
    data.write_bytes(b"")
    code, message = run_index(cli, tmp_path, data)
    assert code == 1 and "0 documents: the corpus holds no records" in message
    assert "a rerun rebuilds it" in message and "--rebuild" in message
    write_jsonl(data, [{"id": str(i), "text": f"filled in later, record {i}"} for i in range(4)])
    path = tmp_path / "idx.yaml"
    again = cli("run", str(path), "--store", str(tmp_path / "store"))  # same spec, same identity
    assert again.code == 0, again.stderr
    assert "committed 4 documents" in again.stdout
    (artifact,) = ArtifactStore(str(tmp_path / "store")).artifacts()
    assert artifact.manifest().counts["documents"] == 4 and artifact.failure() is None


def test_a_synthesis_whose_topics_find_nothing_fails_naming_them(cli: Cli, tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    commit_topics(store, TOPICS)
    unrelated = write_jsonl(
        tmp_path / "u.jsonl",
        [{"id": str(i), "text": f"tax forms and invoices number {i}"} for i in range(20)],
    )
    index = index_yaml(tmp_path / "idx.yaml", unrelated)
    result = cli("run", str(index), str(synthesis_yaml(tmp_path / "s.yaml")), "--store", store.uri)
    assert result.code == 1
    assert "SynthesisRun/syn: empty output, 0 samples: 2 of 2 topics had no hits" in (
        result.stderr.replace("\n", " ")
    )
    assert [a.kind for a in store.artifacts() if a.is_committed()] == ["BM25Index", "TopicDebate"]


def test_a_target_no_topic_can_fill_fails_with_what_the_best_topic_reaches(
    cli: Cli, tmp_path: Path
) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    commit_topics(store, TOPICS)
    index = index_yaml(tmp_path / "idx.yaml", corpus(tmp_path / "a.jsonl", "first", documents=3))
    synthesis = synthesis_yaml(tmp_path / "s.yaml", targetTokens=131_072)
    result = cli("run", str(index), str(synthesis), "--store", store.uri)
    assert result.code == 1
    message = result.stderr.replace("\n", " ")
    assert "0 samples: every sample underfilled; the best topic's documents reach" in message
    assert "of the 131,072 tokens a sample needs" in message


def test_far_fewer_samples_than_asked_warns_and_the_status_counts_them(
    cli: Cli, tmp_path: Path
) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    commit_topics(store, TOPICS)
    index = index_yaml(tmp_path / "idx.yaml", corpus(tmp_path / "a.jsonl", "first", documents=6))
    synthesis = synthesis_yaml(tmp_path / "s.yaml", samplesPerTopic=20)
    result = cli("run", str(index), str(synthesis), "--store", store.uri)
    assert result.code == 0, result.stderr
    warning = result.stderr.replace("\n", " ")
    assert "warning: SynthesisRun/syn: only" in warning and "of 40 samples asked for" in warning
    assert "under minSamplesRatio 50%" in warning
    counts = store.latest_committed("SynthesisRun", "syn").manifest().counts
    assert counts["samples_requested"] == 40 and 0 < counts["samples"] < 20


def test_validate_bounds_target_tokens_with_the_field_path(cli: Cli, tmp_path: Path) -> None:
    path = synthesis_yaml(tmp_path / "s.yaml", targetTokens=100_000_000_000)
    result = cli("validate", str(path))
    assert result.code == 2
    assert "spec.targetTokens" in result.stderr and "4194304" in result.stderr.replace(",", "")
