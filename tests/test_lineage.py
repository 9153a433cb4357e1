"""Reruns that tell the truth: an output is named by its spec and the exact inputs it was made
from, lives in its namespace, and a changed input reruns every dependent, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from litelong.api import parse
from litelong.store import ArtifactStore

from .conftest import Cli, commit_topics, write_jsonl

TOPICS = [
    ("SCI004000", "Science", "Black holes", "black holes"),
    ("MUS000000", "Music", "Baroque composers", "baroque composers"),
]
WORDS = {
    "black holes": "black holes bend light near the event horizon of a collapsed star",
    "baroque composers": "baroque composers wrote fugues and concertos for the harpsichord",
}


def corpus(path: Path, variant: str, documents: int = 12) -> Path:
    records = [
        {"id": f"{variant}-{topic[:5]}-{i}", "text": f"{text} {variant} note {i}"}
        for topic, text in WORDS.items()
        for i in range(documents)
    ]
    return write_jsonl(path, records)


def index_yaml(path: Path, corpus_path: Path, namespace: str | None = None) -> Path:
    metadata: dict[str, str] = {"name": "corpus"}
    if namespace:
        metadata["namespace"] = namespace
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "litelong.io/v1alpha1",
                "kind": "BM25Index",
                "metadata": metadata,
                "spec": {"corpus": [{"uri": str(corpus_path), "idField": "id"}]},
            }
        )
    )
    return path


def synthesis_yaml(path: Path, **spec: object) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "litelong.io/v1alpha1",
                "kind": "SynthesisRun",
                "metadata": {"name": "syn"},
                "spec": {
                    "topicDebateRef": "topics",
                    "indexRef": "corpus",
                    "targetTokens": 64,
                    "samplesPerTopic": 1,
                    "output": {"format": "jsonl"},
                    **spec,
                },
            }
        )
    )
    return path


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, ArtifactStore]:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    commit_topics(store, TOPICS)
    return tmp_path, store


def test_a_changed_input_reruns_its_dependents_and_says_why(
    cli: Cli, world: tuple[Path, ArtifactStore]
) -> None:
    tmp, store = world
    index = index_yaml(tmp / "idx.yaml", corpus(tmp / "a.jsonl", "first"))
    synthesis = synthesis_yaml(tmp / "syn.yaml")
    first = cli("run", str(index), str(synthesis), "--store", store.uri)
    assert first.code == 0, first.stderr
    old_index = store.latest_committed("BM25Index", "corpus")
    old_run = store.latest_committed("SynthesisRun", "syn")
    assert old_run.manifest().inputs == {
        "BM25Index/corpus": old_index.identity,
        "TopicDebate/topics": "000000000000",
    }

    index_yaml(index, corpus(tmp / "b.jsonl", "second"))  # same name, another corpus
    second = cli("run", str(index), str(synthesis), "--store", store.uri)
    assert second.code == 0, second.stderr
    new_index = store.latest_committed("BM25Index", "corpus")
    new_run = store.latest_committed("SynthesisRun", "syn")
    assert new_index.identity != old_index.identity
    assert new_run.identity != old_run.identity
    assert (
        f"SynthesisRun/syn: input BM25Index/corpus changed {old_index.identity[:8]} → "
        f"{new_index.identity[:8]}" in second.stdout.replace("\n", " ")
    )
    assert "already committed" not in second.stdout
    inputs = json.loads((Path(new_run.path) / "part-00000-of-00001" / "inputs.json").read_text())
    assert inputs["identities"]["BM25Index/corpus"] == new_index.identity
    files = (Path(new_run.path) / "part-00000-of-00001").glob("samples-*.jsonl")
    lines = [line for file in files for line in file.open()]
    assert lines and all("second" in line and "first" not in line for line in lines)

    status = cli("status", "--store", store.uri).stdout
    (old_row,) = [line for line in status.splitlines() if old_run.identity in line]
    assert "stale" in old_row and f"BM25Index/corpus → {new_index.identity[:8]}" in old_row
    (new_row,) = [line for line in status.splitlines() if new_run.identity in line]
    assert "stale" not in new_row and f"BM25Index/corpus@{new_index.identity[:8]}" in new_row

    third = cli("run", str(index), str(synthesis), "--store", store.uri)
    assert third.stdout.count(": already committed at ") == 2


def test_a_runtime_field_never_changes_an_identity(
    cli: Cli, world: tuple[Path, ArtifactStore]
) -> None:
    tmp, store = world
    index = index_yaml(tmp / "idx.yaml", corpus(tmp / "a.jsonl", "first"))
    assert (
        cli("run", str(index), str(synthesis_yaml(tmp / "s.yaml")), "--store", store.uri).code == 0
    )
    scaled = synthesis_yaml(tmp / "s.yaml", parallelism=2, minSamplesRatio=0.1)
    again = cli("run", str(index), str(scaled), "--store", store.uri)
    assert again.stdout.count(": already committed at ") == 2


def test_identity_covers_the_inputs_identities_and_nothing_runtime() -> None:
    document = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "SynthesisRun",
        "metadata": {"name": "s"},
        "spec": {"topicDebateRef": "t", "indexRef": "i"},
    }
    run = parse(document)
    one = run.with_inputs({"BM25Index/i": "aaa", "TopicDebate/t": "bbb"})
    other = run.with_inputs({"BM25Index/i": "ccc", "TopicDebate/t": "bbb"})
    scaled = parse({**document, "spec": {**document["spec"], "parallelism": 8}})
    assert one.identity() != other.identity()
    assert scaled.with_inputs(one.inputs() or {}).identity() == one.identity()
    assert one.identity() != one.spec_hash()


def test_the_same_name_in_two_namespaces_makes_two_outputs(cli: Cli, tmp_path: Path) -> None:
    data = corpus(tmp_path / "a.jsonl", "first")
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    team_a = cli("run", str(index_yaml(tmp_path / "a.yaml", data, "team-a")), "--store", store.uri)
    team_b = cli("run", str(index_yaml(tmp_path / "b.yaml", data, "team-b")), "--store", store.uri)
    assert team_a.code == team_b.code == 0
    assert "already committed" not in team_b.stdout
    assert sorted(a.namespace for a in store.artifacts() if a.is_committed()) == [
        "team-a",
        "team-b",
    ]
    assert "/team-b/bm25index/corpus/" in team_b.stdout.replace("\n", "")


def test_a_ref_resolves_only_within_its_namespace(
    cli: Cli, world: tuple[Path, ArtifactStore]
) -> None:
    tmp, store = world  # the TopicDebate `topics` is committed in namespace default
    synthesis = synthesis_yaml(tmp / "syn.yaml")
    document = yaml.safe_load(synthesis.read_text())
    document["metadata"]["namespace"] = "team-b"
    synthesis.write_text(yaml.safe_dump(document))
    index = index_yaml(tmp / "idx.yaml", corpus(tmp / "a.jsonl", "first"), "team-b")
    result = cli("run", str(index), str(synthesis), "--store", store.uri)
    assert result.code == 2
    assert "TopicDebate/topics, which is neither in the file nor committed in namespace team-b" in (
        result.stderr.replace("\n", " ")
    )


def test_a_reverted_input_is_the_one_its_dependents_use_not_the_newest(
    cli: Cli, world: tuple[Path, ArtifactStore]
) -> None:
    tmp, store = world
    index = tmp / "idx.yaml"
    index_yaml(index, corpus(tmp / "a.jsonl", "first"))
    assert cli("run", str(index), "--store", store.uri).code == 0
    spec_a = store.latest_committed("BM25Index", "corpus").identity
    index_yaml(index, corpus(tmp / "b.jsonl", "second"))
    assert cli("run", str(index), "--store", store.uri).code == 0
    spec_b = store.latest_committed("BM25Index", "corpus").identity
    index_yaml(index, tmp / "a.jsonl")  # reverted: A is in force again, B stays the newest
    reverted = cli("run", str(index), "--store", store.uri)
    assert "BM25Index/corpus: already committed at " in reverted.stdout
    assert spec_a != spec_b and store.latest_committed("BM25Index", "corpus").identity == spec_a

    alone = cli("run", str(synthesis_yaml(tmp / "syn.yaml")), "--store", store.uri)
    assert alone.code == 0, alone.stderr
    run = store.latest_committed("SynthesisRun", "syn")
    assert run.manifest().inputs["BM25Index/corpus"] == spec_a
    files = (Path(run.path) / "part-00000-of-00001").glob("samples-*.jsonl")
    lines = [line for file in files for line in file.open()]
    assert lines and all("first" in line and "second" not in line for line in lines)
    (row,) = [
        line
        for line in cli("status", "--store", store.uri).stdout.splitlines()
        if run.identity in line
    ]
    assert "stale" not in row
