"""The debate protocol end to end through the TopicDebate stage, against scripted servers.

The models here are an adversary server that answers by rule (tests/adversary_llm.py), so
each test knows exactly what was proposed, critiqued and judged, and can break one step on cue.
The protocol against a real model is in test_debate_local.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import yaml

from litelong.api import parse
from litelong.api.v1alpha1 import TopicDebate
from litelong.stages import run_shard
from litelong.store import ArtifactStore
from tests.adversary_llm import Action, AdversaryLLM, reply, status, trickle
from tests.conftest import Cli

TOPICS = {
    "model-a": [
        "Stellar evolution",
        "Dark matter halos",
        "Exoplanet atmospheres",
        "Cosmic microwave background",
    ],
    "model-b": ["Dark matter halo", "Gravitational lensing", "Solar flares", "Neutron stars"],
}


class Models:
    """Answers by step and model: both critiques reject the 2nd topic, the judge the 3rd.

    `broken[(step, model)]` holds actions used first, to break one step on cue.
    """

    def __init__(self) -> None:
        self.broken: dict[tuple[str, str], deque[Action]] = {}

    def break_step(self, step: str, model: str, *actions: Action) -> None:
        self.broken[step, model] = deque(actions)

    def __call__(self, body: dict[str, Any]) -> Action:
        step = body["response_format"]["json_schema"]["name"]
        model = body["model"]
        if queue := self.broken.get((step, model)):
            return queue.popleft()
        if step == "propose":
            topics = [{"topic": t, "explanation": f"about {t}"} for t in TOPICS[model]]
            return reply(json.dumps({"topics": topics}))
        if step == "critique":
            verdicts = [
                {"id": i, "verdict": "rejected" if i == 2 else "accepted", "reason": f"r{i}"}
                for i in range(1, 5)
            ]
            return reply(json.dumps({"verdicts": verdicts}))
        rejected = [{"id": 3, "category": "low_relevance", "reason": "off subject"}]
        return reply(json.dumps({"rejected": rejected}))


def debate(url: str, subjects: int = 1, **spec: Any) -> TopicDebate:
    endpoint = {"baseURL": url, "maxRetries": 0}
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "TopicDebate",
            "metadata": {"name": "t"},
            "spec": {
                "taxonomy": {"include": ["SCI*"], "maxSubjects": subjects},
                "debaters": [
                    {"name": "alpha", "endpoint": {**endpoint, "model": "model-a"}},
                    {"name": "beta", "endpoint": {**endpoint, "model": "model-b"}},
                ],
                "judge": {"endpoint": {**endpoint, "model": "model-j"}},
                "topicsPerSubject": 10,
                "concurrency": 1,
                **spec,
            },
        }
    )
    assert isinstance(resource, TopicDebate)
    return resource


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def part_files(store: ArtifactStore, resource: TopicDebate, name: str) -> list[dict[str, Any]]:
    artifact = store.artifact("TopicDebate", resource.name, resource.spec_hash())
    manifest = artifact.manifest()
    return [r for p in manifest.parts for r in read_jsonl(artifact.local_part(p) / name)]


def test_each_debater_critiques_the_other_and_the_judge_sees_everything(
    store: ArtifactStore,
) -> None:
    models = Models()
    with AdversaryLLM(respond=models) as server:
        resource = debate(server.base_url)
        run_shard(resource, store, 0, 1)
    sent = [(r.body["response_format"]["json_schema"]["name"], r.body) for r in server.requests]
    critiques = {
        body["model"]: body["messages"][-1]["content"] for step, body in sent if step == "critique"
    }
    assert "Gravitational lensing" in critiques["model-a"]  # alpha reads beta's list
    assert "Stellar evolution" not in critiques["model-a"]
    assert "Stellar evolution" in critiques["model-b"]  # and beta reads alpha's
    (judge,) = [body["messages"][-1]["content"] for step, body in sent if step == "judge"]
    for topic in TOPICS["model-a"] + TOPICS["model-b"]:
        assert topic in judge
    assert "by beta; alpha's critique: rejected (r2)" in judge

    candidates = part_files(store, resource, "candidates.jsonl")
    by_topic = {c["topic"]: c for c in candidates}
    assert by_topic["Stellar evolution"]["proposer"] == "alpha"
    assert by_topic["Stellar evolution"]["critique"]["by"] == "beta"
    assert by_topic["Gravitational lensing"]["critique"] == {
        "by": "alpha",
        "verdict": "rejected",
        "reason": "r2",
    }
    assert by_topic["Exoplanet atmospheres"]["judge"]["verdict"] == "rejected"
    assert by_topic["Exoplanet atmospheres"]["judge"]["category"] == "low_relevance"


def test_filter_reject_keeps_all_but_the_judges_rejections_without_duplicates(
    store: ArtifactStore,
) -> None:
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url)
        result = run_shard(resource, store, 0, 1)
    kept = [t["topic"] for t in part_files(store, resource, "topics.jsonl")]
    assert kept == [
        "Stellar evolution",
        "Dark matter halos",
        "Cosmic microwave background",
        "Gravitational lensing",
        "Solar flares",
        "Neutron stars",
    ]
    assert result.manifest is not None
    counts = result.manifest.counts
    assert counts["topics"] == 6
    assert counts["topics_proposed"] == 8
    assert counts["dropped.judge"] == counts["dropped.duplicate"] == 1
    assert counts["requests"] == 5  # 2 proposals, 2 critiques, 1 judgement
    assert counts["tokens_in.judge"] > 0


def test_keep_accepted_keeps_only_what_the_other_debater_accepted(store: ArtifactStore) -> None:
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url, retention="keepAccepted")
        run_shard(resource, store, 0, 1)
    kept = [t["topic"] for t in part_files(store, resource, "topics.jsonl")]
    assert "Dark matter halos" not in kept and "Gravitational lensing" not in kept
    assert "Dark matter halo" in kept  # no longer a duplicate of a kept topic
    assert len(kept) == 6


def test_every_kept_topic_has_a_query_and_its_subject(store: ArtifactStore) -> None:
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url, subjects=2)
        run_shard(resource, store, 0, 1)
    topics = part_files(store, resource, "topics.jsonl")
    assert {t["subject_code"] for t in topics} == {
        s.code for s in _selected(resource)
    }  # both subjects
    for topic in topics:
        assert topic["subject"].startswith("SCIENCE / ")
        assert topic["heading"] == "Science"
        assert topic["query"].startswith(topic["topic"])
        assert topic["kept"] is True


def test_an_unreadable_answer_gets_one_repair_request(store: ArtifactStore) -> None:
    models = Models()
    models.break_step("propose", "model-a", reply("Sorry, as a language model I cannot."))
    with AdversaryLLM(respond=models) as server:
        resource = debate(server.base_url)
        result = run_shard(resource, store, 0, 1)
    assert result.manifest is not None
    assert result.manifest.counts["repairs"] == 1
    assert result.manifest.counts["subjects"] == 1
    (repair,) = [
        r.body["messages"]
        for r in server.requests
        if r.body["model"] == "model-a" and len(r.body["messages"]) == 4
    ]
    assert repair[2] == {"role": "assistant", "content": "Sorry, as a language model I cannot."}
    assert "could not be used: the answer holds no valid JSON" in repair[3]["content"]


def test_a_subject_whose_answers_stay_unusable_fails_alone_with_its_raw_answers(
    store: ArtifactStore,
) -> None:
    models = Models()
    models.break_step("critique", "model-b", reply("{not json"), reply('{"verdicts": []}'))
    with AdversaryLLM(respond=models) as server:
        resource = debate(server.base_url, subjects=2)
        result = run_shard(resource, store, 0, 1)
    assert result.manifest is not None
    assert result.manifest.counts["subjects"] == 1
    assert result.manifest.counts["subjects_failed"] == 1
    assert result.manifest.skipped == {"subject_failed": 1}
    (failure,) = part_files(store, resource, "failures.jsonl")
    assert failure["subject_code"] == _selected(resource)[0].code
    assert failure["reason"].startswith("critique by beta: no verdict names a topic number")
    assert failure["raw_answers"] == ["{not json", '{"verdicts": []}']
    failed_code = failure["subject_code"]
    topics = part_files(store, resource, "topics.jsonl")
    assert topics and all(t["subject_code"] != failed_code for t in topics)


def test_rate_limits_are_waited_out_within_a_run(store: ArtifactStore) -> None:
    models = Models()
    models.break_step("judge", "model-j", status(429, headers={"Retry-After": "1"}))
    with AdversaryLLM(respond=models) as server:
        resource = debate(server.base_url)
        resource.spec.judge.endpoint.max_retries = 1
        result = run_shard(resource, store, 0, 1)
    assert result.manifest is not None and result.manifest.counts["subjects"] == 1
    judge_exchange = [
        e for e in part_files(store, resource, "transcripts.jsonl") if e["step"] == "judge"
    ]
    assert judge_exchange[0]["attempts"] == 2


def test_an_endpoint_down_stops_the_run_and_the_rerun_resumes_from_the_cache(
    cli: Cli, tmp_path: Path
) -> None:
    models = Models()
    models.break_step("judge", "model-j", status(500))  # maxRetries: 0
    spec = tmp_path / "debate.yaml"
    store = tmp_path / "store"
    with AdversaryLLM(respond=models) as server:
        resource = debate(server.base_url)
        document = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
        document.pop("status", None)
        spec.write_text(yaml.safe_dump(document))
        failed = cli("run", str(spec), "--store", str(store))
        assert failed.code == 1
        assert f"model model-j at {server.base_url}: HTTP 500" in failed.stderr.replace("\n", "")
        assert "not committed" not in failed.stdout
        rerun = cli("run", str(spec), "--store", str(store))
    assert rerun.code == 0, rerun.stderr
    counts = ArtifactStore(f"file://{store}").latest_committed("TopicDebate", "t").manifest()
    assert counts.counts["requests_cached"] == 4  # proposals and critiques were not asked again
    assert counts.counts["topics"] == 6


def test_a_rerun_after_deleting_the_output_asks_nothing(store: ArtifactStore) -> None:
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url)
        first = run_shard(resource, store, 0, 1)
        asked = len(server.requests)
        store.fs.rm(first.artifact.path, recursive=True)
        second = run_shard(resource, store, 0, 1)
        assert len(server.requests) == asked
    assert second.manifest is not None
    assert second.manifest.counts["requests_cached"] == second.manifest.counts["requests"]
    assert part_files(store, resource, "topics.jsonl")


def test_shards_split_subjects_and_together_give_the_unsharded_topics(
    tmp_path: Path,
) -> None:
    stores = [ArtifactStore(f"file://{tmp_path / name}") for name in ("one", "three")]
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url, subjects=4)
        run_shard(resource, stores[0], 0, 1)
        for shard in range(3):
            run_shard(resource, stores[1], shard, 3)
    one, three = (
        sorted((t["subject_code"], t["topic"]) for t in part_files(store, resource, "topics.jsonl"))
        for store in stores
    )
    assert one == three and len({code for code, _ in one}) == 4


def test_api_keys_are_sent_but_never_written(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "sk-test-DO-NOT-LEAK-4242"
    monkeypatch.setenv("LITELONG_SECRET_LLM_TOKEN", secret)
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url)
        endpoints = [d.endpoint for d in resource.spec.debaters] + [resource.spec.judge.endpoint]
        for endpoint in endpoints:
            endpoint.api_key_secret_ref = parse_ref({"name": "llm", "key": "token"})
        run_shard(resource, store, 0, 1)
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {secret}"}
    root = Path(store.root)
    for path in root.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def parse_ref(data: dict[str, str]) -> Any:
    from litelong.api.v1alpha1.meta import SecretKeyRef

    return SecretKeyRef.model_validate(data)


def _selected(resource: TopicDebate) -> list[Any]:
    from litelong.taxonomy import load_bisac

    return load_bisac().select(resource.spec.taxonomy)


def test_a_missing_api_key_stops_the_run_before_any_request(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELONG_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.delenv("LITELONG_SECRET_LLM_TOKEN", raising=False)
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url)
        resource.spec.judge.endpoint.api_key_secret_ref = parse_ref({"name": "llm", "key": "token"})
        spec = tmp_path / "debate.yaml"
        document = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
        document.pop("status", None)
        spec.write_text(yaml.safe_dump(document))
        result = cli("run", str(spec), "--store", str(tmp_path / "store"))
    assert result.code == 2
    message = result.stderr.replace("\n", "")
    assert "$LITELONG_SECRET_LLM_TOKEN" in message and "secrets/llm/token" in message
    assert server.requests == []


def test_topics_per_subject_caps_what_a_subject_keeps(store: ArtifactStore) -> None:
    with AdversaryLLM(respond=Models()) as server:
        resource = debate(server.base_url, topicsPerSubject=2)
        result = run_shard(resource, store, 0, 1)
    kept = [t["topic"] for t in part_files(store, resource, "topics.jsonl")]
    assert kept == ["Stellar evolution", "Dark matter halos"]  # each list's first choices
    assert result.manifest is not None
    assert result.manifest.counts["topics"] == 2
    assert result.manifest.counts["dropped.limit"] == 4  # 6 survive the judge and duplicates


def test_a_dead_endpoint_ends_the_run_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """One model fails at once while the other's answers are still streaming in: the run stops
    with one error line, without the asyncio shutdown traceback of requests left behind."""

    def models(body: dict[str, Any]) -> Action:
        if body["model"] == "model-a":
            return status(500)
        return trickle(json.dumps({"topics": [{"topic": "Solar flares"}]}), pieces=20, gap=0.1)

    spec = tmp_path / "debate.yaml"
    with AdversaryLLM(respond=models) as server:
        document = debate(server.base_url, subjects=3, concurrency=3).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        document.pop("status", None)
        spec.write_text(yaml.safe_dump(document))
        command = [sys.executable, "-m", "litelong", "run", str(spec), "--store", str(tmp_path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "asyncio" not in result.stderr, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: model model-a at ") and "HTTP 500" in error


def test_a_run_on_other_endpoints_says_how_far_its_topics_are_reproducible(
    cli: Cli, tmp_path: Path
) -> None:
    spec = tmp_path / "debate.yaml"
    with AdversaryLLM(respond=Models()) as server:
        document = debate(server.base_url).model_dump(mode="json", by_alias=True, exclude_none=True)
        document.pop("status", None)
        spec.write_text(yaml.safe_dump(document))
        result = cli("run", str(spec), "--store", str(tmp_path / "store"))
    assert result.code == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert f"reproducible only as far as {server.base_url} answers a seeded request alike" in said


def test_topics_that_are_only_taxonomy_labels_are_rejected_before_the_judge(
    store: ArtifactStore,
) -> None:
    from litelong.taxonomy import load_bisac

    resource = debate("http://unused")
    taxonomy = load_bisac()
    (subject,) = taxonomy.select(resource.spec.taxonomy)
    sibling = taxonomy.siblings(subject)[0]
    labels = [subject.title.upper(), f"{sibling.name.split(' / ')[-1]}s", "Stellar evolution"]
    models = Models()
    proposal = [{"topic": t, "explanation": "x"} for t in [*labels, "Dark matter halos"]]
    models.break_step("propose", "model-a", reply(json.dumps({"topics": proposal})))
    with AdversaryLLM(respond=models) as server:
        resource = debate(server.base_url)
        result = run_shard(resource, store, 0, 1)
    (judge,) = [
        r.body["messages"][-1]["content"]
        for r in server.requests
        if r.body["response_format"]["json_schema"]["name"] == "judge"
    ]
    assert labels[0] not in judge and labels[1] not in judge
    assert "Stellar evolution" in judge
    assert result.manifest is not None
    counts = result.manifest.counts
    assert counts["proposal_dropped.same_as_subject"] == 1
    assert counts["proposal_dropped.same_as_sibling"] == 1
