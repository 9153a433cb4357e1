"""The `litelong` command as a user meets it: exit codes, messages, reruns, shards, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from litelong.store import ArtifactStore

from .conftest import REPO, SAMPLES, CliResult, manifest_yaml, write_jsonl

Cli = Callable[..., CliResult]
SAMPLE = str(REPO / "manifests" / "samples" / "bm25index.yaml")
LONG_ENOUGH = "a document that is comfortably longer than twenty characters"


def corpus_manifest(tmp_path: Path, records: list[object], **spec: object) -> Path:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", records)
    path = tmp_path / "index.yaml"
    path.write_text(manifest_yaml("idx", str(corpus), **spec))
    return path


def test_every_command_explains_itself(cli: Cli) -> None:
    for command in ["validate", "crds", "run", "stage", "status"]:
        result = cli(command, "--help")
        assert result.code == 0, result.stderr
        assert "Usage: litelong" in result.stdout
    assert "Run every resource in FILE" in cli("run", "--help").stdout


def test_validate_prints_spec_hashes(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table is as wide as the terminal
    result = cli("validate", *map(str, SAMPLES))
    assert result.code == 0, result.stderr
    assert "wiki-sample" in result.stdout and "fefef6960b7e" in result.stdout


def test_validate_and_run_skip_other_kinds_in_a_glob_with_a_note(cli: Cli, tmp_path: Path) -> None:
    every = sorted((REPO / "manifests" / "samples").glob("*.yaml"))  # kustomization.yaml too
    result = cli("validate", *map(str, every))
    assert result.code == 0, result.stderr
    kustomization = str(REPO / "manifests" / "samples" / "kustomization.yaml")
    note = f"{kustomization}: skipped document 1 (kustomize.config.k8s.io/v1beta1 Kustomization)"
    assert note in result.stderr.replace("\n", "")
    alone = cli("run", kustomization, "--store", str(tmp_path))
    assert alone.code == 2 and "no litelong.io resources to run" in alone.stderr


def test_validate_reports_field_paths_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: litelong.io/v1alpha1\nkind: BM25Index\nmetadata: {name: x}\n"
        "spec:\n  corpus: [{uri: a, format: csv}]\n  minChar: 1\n"
    )
    result = cli("validate", str(path))
    assert result.code == 2
    assert "spec.corpus[0].format: must be one of jsonl, parquet" in result.stderr
    assert "spec.minChar: unknown field" in result.stderr


@pytest.mark.parametrize(
    "text", ["kind: [oops\n", "apiVersion: litelong.io/v1alpha1\nkind: Nope\n", ""]
)
def test_unusable_manifests_exit_2(cli: Cli, tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli("validate", str(path)).code == 2
    assert cli("run", str(path)).code == 2


def test_a_missing_manifest_exits_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(tmp_path / "missing.yaml"))
    assert result.code == 2 and "cannot read" in result.stderr


def test_crds_prints_all_four(cli: Cli) -> None:
    result = cli("crds")
    kinds = [doc["spec"]["names"]["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert kinds == ["TopicDebate", "BM25Index", "SynthesisRun", "TrainingJob"]


def test_run_commits_the_sample_and_a_rerun_does_nothing(cli: Cli, tmp_path: Path) -> None:
    store = f"file://{tmp_path}/store"
    first = cli("run", SAMPLE, "--store", store)
    assert first.code == 0, first.stderr
    assert "committed 10,033 documents" in first.stdout
    assert f"{store}/default/bm25index/wiki-sample/fefef6960b7e" in first.stdout
    manifest = ArtifactStore(store).artifact("BM25Index", "wiki-sample", "fefef6960b7e").manifest()
    second = cli("run", SAMPLE, "--store", store)
    assert second.code == 0
    assert second.stdout.split() == [
        "BM25Index/wiki-sample:",
        "already",
        "committed",
        "at",
        f"{store}/default/bm25index/wiki-sample/fefef6960b7e",
    ]  # only that: no "committed 10,033 documents" as if it had just been built
    again = ArtifactStore(store).artifact("BM25Index", "wiki-sample", "fefef6960b7e").manifest()
    assert again.created_at == manifest.created_at


def test_run_summarises_skips_and_records_them(cli: Cli, tmp_path: Path) -> None:
    records = [{"id": "a", "text": LONG_ENOUGH}, b"{broken", {"id": "b", "text": "short"}]
    manifest = corpus_manifest(tmp_path, records)
    result = cli("run", str(manifest), "--store", str(tmp_path / "store"))
    assert result.code == 0, result.stderr
    assert "committed 1 documents" in result.stdout
    assert "invalid_json: 1" in result.stdout and "corpus.jsonl:2" in result.stdout
    (artifact,) = ArtifactStore(str(tmp_path / "store")).artifacts()
    assert artifact.manifest().skipped == {"invalid_json": 1, "too_short": 1}


def test_a_missing_corpus_exits_2_and_commits_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "index.yaml"
    path.write_text(manifest_yaml("idx", str(tmp_path / "data" / "*.jsonl")))
    result = cli("run", str(path), "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert "the glob matches no file" in result.stderr
    assert not any(a.is_committed() for a in ArtifactStore(str(tmp_path / "store")).artifacts())


def test_refs_must_resolve_before_anything_runs(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "synth.yaml"
    path.write_text(
        "apiVersion: litelong.io/v1alpha1\nkind: SynthesisRun\nmetadata: {name: s}\n"
        "spec: {topicDebateRef: topics, indexRef: missing}\n"
    )
    result = cli("run", str(path), "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert "refers to TopicDebate/topics, which is neither in the file nor committed" in (
        result.stderr.replace("\n", " ")
    )


def test_a_kind_without_a_stage_fails_clearly(cli: Cli, tmp_path: Path) -> None:
    sample = REPO / "manifests" / "samples" / "trainingjob.yaml"
    result = cli("stage", "TrainingJob", "--spec", str(sample), "--store", str(tmp_path))
    assert result.code == 1
    assert "no stage for TrainingJob" in result.stderr


def test_stage_builds_one_shard_and_the_last_shard_commits(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [{"id": str(i), "text": f"{LONG_ENOUGH} {i}"} for i in range(60)]
    manifest = corpus_manifest(tmp_path, records, parallelism=3)
    store = str(tmp_path / "store")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    result = cli("stage", "BM25Index", "--spec", str(manifest), "--store", store)
    assert result.code == 0, result.stderr
    assert "shard 2 of 3: built" in result.stdout
    retry = cli("stage", "BM25Index", "--spec", str(manifest), "--store", store)
    assert "shard 2 of 3: part already committed" in retry.stdout
    status = cli("status", "--store", store)
    assert "1 of 3 parts committed" in status.stdout
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    cli("stage", "BM25Index", "--spec", str(manifest), "--store", store, "--shard", "0")
    last = cli("stage", "BM25Index", "--spec", str(manifest), "--store", store, "--shard", "1")
    assert "committed 60 documents" in last.stdout
    assert "committed" in cli("status", "--store", store).stdout


def test_run_resumes_after_some_shards_committed(cli: Cli, tmp_path: Path) -> None:
    records = [{"id": str(i), "text": f"{LONG_ENOUGH} {i}"} for i in range(60)]
    manifest = corpus_manifest(tmp_path, records, parallelism=3)
    store = str(tmp_path / "store")
    cli("stage", "BM25Index", "--spec", str(manifest), "--store", store, "--shard", "1")
    result = cli("run", str(manifest), "--store", store)
    assert result.code == 0
    assert "shard 1 already committed, skipped" in result.stderr
    assert "committed 60 documents" in result.stdout


def test_a_run_on_several_processes_hands_workers_only_the_parts_still_missing(
    cli: Cli, tmp_path: Path
) -> None:
    records = [{"id": str(i), "text": f"{LONG_ENOUGH} {i}"} for i in range(60)]
    manifest = corpus_manifest(tmp_path, records, parallelism=4)
    store = str(tmp_path / "store")
    for shard in ("0", "2"):
        cli("stage", "BM25Index", "--spec", str(manifest), "--store", store, "--shard", shard)
    result = cli("run", str(manifest), "--store", store, "--jobs", "2")
    assert result.code == 0, result.stderr
    assert "2 of 4 shards in 2 processes" in result.stderr
    assert "shard 0 already committed, skipped" in result.stderr
    assert "shard 2 already committed, skipped" in result.stderr
    assert "committed meanwhile" not in result.stdout  # no worker found its siblings' commit
    assert "committed 60 documents" in result.stdout


def test_stage_rejects_a_shard_out_of_range(cli: Cli) -> None:
    result = cli("stage", "BM25Index", "--spec", SAMPLE, "--shard", "3", "--of", "2")
    assert result.code == 2 and "shard 3 is not in 0..1" in result.stderr


def big_corpus(tmp_path: Path, documents: int) -> Path:
    words = (REPO / "litelong" / "api" / "crd.py").read_text().split()
    records = [
        {"id": str(i), "text": " ".join(words[(i * 7) % 500 : (i * 7) % 500 + 60]) + f" {i}"}
        for i in range(documents)
    ]
    return corpus_manifest(tmp_path, records, writer={"heapMb": 16, "threads": 1, "readers": 1})


def test_kill_9_during_indexing_then_rerun_commits_every_document(tmp_path: Path) -> None:
    manifest = big_corpus(tmp_path, 120_000)
    uninterrupted, interrupted = tmp_path / "clean", tmp_path / "killed"
    command = [sys.executable, "-m", "litelong", "run", str(manifest), "--store"]
    subprocess.run([*command, str(uninterrupted)], check=True, capture_output=True)
    process = subprocess.Popen([*command, str(interrupted)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(interrupted.glob("default/bm25index/idx/*/.staging/*/*")):  # the writer has begun
        assert process.poll() is None, "finished before it could be killed: use a bigger corpus"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (artifact,) = ArtifactStore(str(interrupted)).artifacts()
    assert not artifact.is_committed()
    subprocess.run([*command, str(interrupted)], check=True, capture_output=True)
    clean = next(ArtifactStore(str(uninterrupted)).artifacts()).manifest()
    resumed = artifact.manifest()
    assert resumed.counts == clean.counts == {"documents": 120_000}
    assert not (Path(artifact.path) / ".staging").exists()


def test_the_console_script_is_installed() -> None:
    result = subprocess.run(["litelong", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("litelong ")


def test_manifest_json_is_what_status_reads(cli: Cli, tmp_path: Path) -> None:
    manifest = corpus_manifest(tmp_path, [{"id": "a", "text": LONG_ENOUGH}])
    store = tmp_path / "store"
    cli("run", str(manifest), "--store", str(store))
    (path,) = store.glob("default/bm25index/idx/*/_manifest.json")
    data = json.loads(path.read_text())
    assert data["counts"] == {"documents": 1} and data["kind"] == "BM25Index"
    assert all(len(f["sha256"]) == 64 for part in data["parts"] for f in part["files"])
    assert "documents=1" in cli("status", "--store", str(store)).stdout
