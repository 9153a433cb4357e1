"""The debate against the real embedded LLM (llama.cpp serving SmolLM2-135M on loopback).

The model is tiny and its topics are poor, so these tests check structure, never content: what
a user relies on is that the run finishes offline, commits every file, reports each subject, and
resumes after a kill with the same topics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from litelong.store import ArtifactStore
from litelong.taxonomy import load_bisac

pytestmark = pytest.mark.llm

LOCAL = {"baseURL": "local", "model": "smollm2"}
QUERY_SYNTAX = set('+-&|!(){}[]^"~*?:\\/')


def tiny_debate(
    path: Path, name: str, subjects: int, topics: int, seed: int = 3, **spec: Any
) -> Path:
    document = {
        "apiVersion": "litelong.io/v1alpha1",
        "kind": "TopicDebate",
        "metadata": {"name": name},
        "spec": {
            "taxonomy": {"include": ["SCI*"], "maxSubjects": subjects, "seed": seed},
            "debaters": [{"name": "alpha", "endpoint": LOCAL}, {"name": "beta", "endpoint": LOCAL}],
            "judge": {"endpoint": LOCAL},
            "topicsPerSubject": topics,
            "sampling": {"maxTokens": 384},
            **spec,
        },
    }
    path.write_text(yaml.safe_dump(document))
    return path


def committed_files(store: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    artifact = ArtifactStore(f"file://{store}").latest_committed("TopicDebate", name)
    files: dict[str, list[dict[str, Any]]] = {}
    for part in artifact.manifest().parts:
        for file in ("topics", "candidates", "transcripts", "failures"):
            lines = (artifact.local_part(part) / f"{file}.jsonl").read_text().splitlines()
            files.setdefault(file, []).extend(json.loads(line) for line in lines)
    return files


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("local")
    spec = tiny_debate(folder / "debate.yaml", "tiny", subjects=2, topics=2, concurrency=4)
    result = subprocess.run(
        [sys.executable, "-m", "litelong", "run", str(spec), "--store", str(folder / "store")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return folder / "store", result.stdout + result.stderr


def test_the_local_debate_commits_topics_transcripts_and_stats(local_run: tuple[Path, str]) -> None:
    store, _ = local_run
    files = committed_files(store, "tiny")
    manifest = ArtifactStore(f"file://{store}").latest_committed("TopicDebate", "tiny").manifest()
    counts = manifest.counts
    assert counts.get("subjects", 0) + counts.get("subjects_failed", 0) == 2
    assert counts["requests"] == len(files["transcripts"]) >= 5
    assert counts["tokens_out.alpha"] > 0 and counts["tokens_in.judge"] > 0
    assert counts.get("topics", 0) == len(files["topics"])
    assert len(files["failures"]) == counts.get("subjects_failed", 0)
    for exchange in files["transcripts"]:
        assert exchange["model"] == "smollm2" and exchange["role"] in {"alpha", "beta", "judge"}
        assert exchange["messages"][0]["role"] == "system"


def test_local_topics_have_the_documented_structure(local_run: tuple[Path, str]) -> None:
    store, _ = local_run
    files = committed_files(store, "tiny")
    selected = {s.code for s in load_bisac().select(_selection())}
    for topic in files["topics"]:
        assert topic["subject_code"] in selected
        assert 1 <= len(topic["topic"].split()) <= 12
        assert topic["proposer"] in {"alpha", "beta"}
        assert topic["critique"]["by"] == ({"alpha", "beta"} - {topic["proposer"]}).pop()
        assert topic["judge"]["verdict"] == "kept" and topic["kept"] is True
        assert topic["query"] and not set(topic["query"]) & QUERY_SYNTAX
    assert len(files["candidates"]) >= len(files["topics"])


def test_the_run_reports_every_subject(local_run: tuple[Path, str]) -> None:
    _, output = local_run
    for code in {s.code for s in load_bisac().select(_selection())}:
        assert code in output
    assert "committed" in output


def test_any_concurrency_and_a_kill_give_the_same_topics(tmp_path: Path) -> None:
    """An uninterrupted run one request at a time is the reference for a run at concurrency 4
    (the embedded server batching requests of several subjects) killed after its first subject
    and run again: the committed topics are the same bytes."""
    # seed 1: subjects on which the embedded model proposes more than taxonomy labels
    one = tiny_debate(tmp_path / "one.yaml", "kill", 2, 1, seed=1, concurrency=1)
    spec = tiny_debate(tmp_path / "four.yaml", "kill", 2, 1, seed=1, concurrency=4)
    reference = subprocess.run(
        [sys.executable, "-m", "litelong", "run", str(one), "--store", str(tmp_path / "a")],
        capture_output=True,
        timeout=900,
    )
    assert reference.returncode == 0, reference.stderr
    command = [sys.executable, "-m", "litelong", "run", str(spec), "--store"]

    store = tmp_path / "b"
    victim = subprocess.Popen(
        [*command, str(store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    cache = store / ".llm-cache"
    # about one subject's answers: half the reference's (a subject whose topics are only
    # taxonomy labels fails after fewer requests than one that debates)
    half = max(1, len(list((tmp_path / "a" / ".llm-cache").rglob("*.json"))) // 2)
    deadline = time.monotonic() + 600
    while len(list(cache.rglob("*.json"))) < half and time.monotonic() < deadline:
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (store / "default" / "topicdebate" / "kill").exists() or not list(
        (store / "default" / "topicdebate" / "kill").rglob("_manifest.json")
    )
    rerun = subprocess.run([*command, str(store)], capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    resumed = committed_files(store, "kill")
    assert resumed["candidates"] == committed_files(tmp_path / "a", "kill")["candidates"]
    assert topics_bytes(store) == topics_bytes(tmp_path / "a")
    manifest = ArtifactStore(f"file://{store}").latest_committed("TopicDebate", "kill").manifest()
    assert manifest.counts["requests_cached"] >= half


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_llm_serve_answers_the_openai_chat_api_until_stopped(stop: signal.Signals) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "litelong", "llm", "serve", "--port", "0", "--slots", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        client = openai.OpenAI(base_url=url, api_key="unused")
        answer = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8
        )
        assert answer.choices[0].message.content
        assert [model.id for model in client.models.list()] == ["smollm2"]
    finally:
        server.send_signal(stop)
        try:
            out, _ = server.communicate(timeout=60)
        finally:
            server.kill()  # never leave a server behind, even when the test fails
    assert server.returncode == 0
    assert "stopped" in out


def topics_bytes(store: Path) -> bytes:
    artifact = ArtifactStore(f"file://{store}").latest_committed("TopicDebate", "kill")
    parts = artifact.manifest().parts
    return b"".join((artifact.local_part(p) / "topics.jsonl").read_bytes() for p in parts)


def _selection() -> Any:
    from litelong.api.v1alpha1.topicdebate import TaxonomySelection

    return TaxonomySelection.model_validate({"include": ["SCI*"], "maxSubjects": 2, "seed": 3})
