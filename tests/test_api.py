"""The resource API: what `litelong validate` accepts, rejects and hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from litelong.api import InvalidManifest, load_file, load_text
from litelong.api.v1alpha1 import KINDS, BM25Index, SynthesisRun

from .conftest import SAMPLES, Cli, bm25index

HEADER = "apiVersion: litelong.io/v1alpha1\nkind: BM25Index\nmetadata: {name: wiki}\n"
SPEC = "spec: {corpus: [{uri: a.jsonl}]}\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(InvalidManifest) as caught:
        load_text(text)
    return [str(error) for error in caught.value.errors]


def test_there_is_a_sample_for_every_kind() -> None:
    kinds = {resource.kind for path in SAMPLES for resource in load_file(path)}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_load(path: Path) -> None:
    assert load_file(path)


def test_invalid_enum_is_reported_by_its_path() -> None:
    text = HEADER + "spec:\n  corpus:\n    - {uri: a.csv, format: csv}\n"
    assert errors_of(text) == ["spec.corpus[0].format: must be one of jsonl, parquet"]


def test_unknown_and_mistyped_fields_are_all_reported() -> None:
    text = HEADER + "spec:\n  corpus: [{uri: a.jsonl}]\n  minChar: 20\n  maxChars: lots\n"
    assert errors_of(text) == [
        "spec.maxChars: input should be a valid integer, unable to parse string as an integer",
        "spec.minChar: unknown field",
    ]


def test_missing_required_field() -> None:
    assert errors_of(HEADER + "spec: {}\n") == ["spec.corpus: required field is missing"]


def test_unknown_kind_names_the_known_ones() -> None:
    text = "apiVersion: litelong.io/v1alpha1\nkind: Index\nmetadata: {name: x}\nspec: {}\n"
    (error,) = errors_of(text)
    assert error.startswith("kind: unknown kind 'Index'; one of TopicDebate, BM25Index")


def test_wrong_api_version() -> None:
    text = "apiVersion: litelong.io/v1\nkind: BM25Index\nmetadata: {name: x}\nspec: {}\n"
    assert errors_of(text) == ["apiVersion: must be litelong.io/v1alpha1"]


def test_invalid_yaml() -> None:
    (error,) = errors_of("kind: [unclosed\n")
    assert error.startswith("invalid YAML")


@pytest.mark.parametrize("name", ["Wiki", "wiki_1", "-wiki", "wiki-", "a" * 64, ""])
def test_names_must_be_dns1123_labels(name: str) -> None:
    text = f"apiVersion: litelong.io/v1alpha1\nkind: BM25Index\nmetadata: {{name: '{name}'}}\n"
    text += "spec: {corpus: [{uri: a.jsonl}]}\n"
    assert any(error.startswith("metadata.name") for error in errors_of(text))


@pytest.mark.parametrize("namespace", ["../../etc", "a/b", "Team-A", "team_a", "a" * 64, "."])
def test_a_namespace_that_is_not_a_dns1123_label_is_invalid_input(
    cli: Cli, tmp_path: Path, namespace: str
) -> None:
    path = tmp_path / "idx.yaml"
    metadata = f"metadata: {{name: wiki, namespace: '{namespace}'}}\n"
    path.write_text(HEADER.replace("metadata: {name: wiki}\n", metadata) + SPEC)
    result = cli("validate", str(path))
    assert result.code == 2
    (line,) = [line for line in result.stderr.splitlines() if "metadata.namespace" in line]
    assert "should match pattern" in line or "at most 63 characters" in line


@pytest.mark.parametrize("namespace", ["team-a", ""])
def test_a_dns1123_namespace_or_none_is_where_the_output_lives(namespace: str) -> None:
    metadata = f"{{name: wiki, namespace: '{namespace}'}}"
    (resource,) = load_text(HEADER.replace("{name: wiki}", metadata) + SPEC)
    assert resource.namespace == (namespace or "default")


def test_multi_document_errors_name_the_document() -> None:
    good = HEADER + "spec: {corpus: [{uri: a.jsonl}]}\n"
    bad = good.replace("name: wiki", "name: other").replace("a.jsonl}]", "a.jsonl}], dedup: fuzzy")
    assert errors_of(good + "---\n" + bad) == [
        "document 2 (BM25Index/other): spec.dedup: must be one of none, exact"
    ]


def test_a_name_may_appear_once_per_kind() -> None:
    good = HEADER + "spec: {corpus: [{uri: a.jsonl}]}\n"
    assert errors_of(good + "---\n" + good) == ["metadata.name: BM25Index/wiki appears twice"]


def test_defaults_come_from_the_papers() -> None:
    spec = bm25index(corpus=[{"uri": "a.jsonl"}]).spec
    assert (spec.min_chars, spec.dedup, spec.analysis.stem, spec.analysis.stopwords) == (
        20,
        "exact",
        True,
        True,
    )
    synthesis = load_text(
        "apiVersion: litelong.io/v1alpha1\nkind: SynthesisRun\nmetadata: {name: s}\n"
        "spec: {topicDebateRef: t, indexRef: i}\n"
    )[0]
    assert isinstance(synthesis, SynthesisRun)
    assert synthesis.spec.target_tokens == 131_072
    assert synthesis.spec.retrieval.top_k == 1000
    assert synthesis.spec.samples_per_topic == 4


def test_cross_field_rules() -> None:
    text = (
        "apiVersion: litelong.io/v1alpha1\nkind: SynthesisRun\nmetadata: {name: s}\n"
        "spec: {indexRef: i, mode: litelong}\n"
    )
    assert errors_of(text) == ["spec: topicDebateRef is required in mode litelong"]


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("{baseURL: local, model: qwen}", "baseURL: local serves only model 'smollm2'"),
        ("{baseURL: vllm-qwen:8000, model: q}", 'baseURL must be "local" or an http(s) URL'),
    ],
)
def test_endpoints_are_the_local_server_or_an_http_url(endpoint: str, message: str) -> None:
    text = (
        "apiVersion: litelong.io/v1alpha1\nkind: TopicDebate\nmetadata: {name: t}\n"
        f"spec: {{debaters: [{{name: a}}, {{name: b}}], judge: {{endpoint: {endpoint}}}}}\n"
    )
    (error,) = errors_of(text)
    assert error.startswith("spec.judge.endpoint: ") and message in error


def test_spec_hash_ignores_runtime_fields_and_spelling() -> None:
    base = bm25index(corpus=[{"uri": "a.jsonl"}])
    scaled = bm25index(
        corpus=[{"uri": "a.jsonl"}],
        parallelism=8,
        output={"store": "s3://elsewhere"},
        writer={"threads": 4},
        pod={"resources": {"limits": {"cpu": 4}}},
    )
    explicit_defaults = bm25index(corpus=[{"uri": "a.jsonl", "textField": "text"}], minChars=20)
    assert base.spec_hash() == scaled.spec_hash() == explicit_defaults.spec_hash()
    assert len(base.spec_hash()) == 12


def test_spec_hash_changes_with_what_is_made() -> None:
    base = bm25index(corpus=[{"uri": "a.jsonl"}])
    assert base.spec_hash() != bm25index(corpus=[{"uri": "a.jsonl"}], minChars=50).spec_hash()
    assert base.spec_hash() != bm25index(corpus=[{"uri": "b.jsonl"}]).spec_hash()


def test_kubernetes_quantities_accept_yaml_numbers() -> None:
    resource = bm25index(corpus=[{"uri": "a"}], pod={"resources": {"limits": {"cpu": 4}}})
    assert isinstance(resource, BM25Index)
    assert resource.spec.pod.resources.limits == {"cpu": "4"}


def test_objects_from_a_cluster_load_with_their_metadata_and_status() -> None:
    text = HEADER.replace(
        "metadata: {name: wiki}",
        "metadata: {name: wiki, namespace: ml, uid: abc, resourceVersion: '7', generation: 3}",
    )
    text += "spec: {corpus: [{uri: a.jsonl}]}\nstatus:\n  phase: Running\n  conditions:\n"
    text += "  - {type: Ready, status: 'False', reason: Indexing, observedGeneration: 3}\n"
    (resource,) = load_text(text)
    assert resource.metadata.generation == 3
    assert resource.status is not None
    assert resource.status.conditions[0].reason == "Indexing"


def test_a_key_given_twice_is_an_error_naming_its_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(HEADER + "spec:\n  corpus: [{uri: a.jsonl}]\n  minChars: 20\n  minChars: 5\n")
    with pytest.raises(InvalidManifest) as caught:
        load_file(path)
    assert caught.value.source == f"{path}:7"
    assert [str(e) for e in caught.value.errors] == [
        "spec.minChars: key given twice (YAML would keep only the last)"
    ]


def test_a_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(HEADER + "spec:\n  corpus: [{uri: a.jsonl}\n  minChars: 20\n")
    with pytest.raises(InvalidManifest) as caught:
        load_file(path)
    assert caught.value.source.startswith(f"{path}:")
    line = int(caught.value.source.rsplit(":", 1)[1])
    assert line in (5, 6)  # the unclosed list, or where YAML noticed it
    assert str(caught.value.errors[0]).startswith("invalid YAML: ")


def test_documents_of_other_api_groups_are_skipped_with_a_note() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + HEADER
    text += "spec:\n  corpus: [{uri: a.jsonl}]\n"
    notes: list[str] = []
    (resource,) = load_text(text, source="both.yaml", skipped=notes)
    assert resource.kind == "BM25Index"
    assert notes == ["both.yaml: skipped document 1 (v1 ConfigMap): not litelong.io"]
    assert errors_of("apiVersion: litelong.io/v9\nkind: BM25Index\n") == [
        "apiVersion: must be litelong.io/v1alpha1"
    ]  # our own group at another version is still an error
