"""The operator end to end: kopf in-process against kmock, the test playing the controllers.

Each test applies resources the way `kubectl apply` does and watches what the operator makes of
them: children as rendered, status and Events as Jobs progress, dependencies, reruns, faults.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

pytest.importorskip("kopf")
pytest.importorskip("kmock")
os.environ.setdefault("LITELONG_RESYNC_SECONDS", "2")

import aiohttp
import kmock

from litelong.store import ArtifactStore
from litelong_operator.config import load_config
from litelong_operator.render import owner_of, render

from .operator_harness import (
    ApiServer,
    Cluster,
    as_stored,
    cluster_role_grants,
    owner_finalizer_permissions,
    register,
    running_operator,
    sample,
    write_kubeconfig,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.kmock(cls=ApiServer)]


@pytest_asyncio.fixture
async def cluster(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    register(kmock)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))))
    config = tmp_path / "operator.yaml"
    config.write_text(yaml.safe_dump({"store": {"uri": f"file://{tmp_path / 'store'}"}}))
    monkeypatch.setenv("LITELONG_OPERATOR_CONFIG", str(config))
    monkeypatch.setenv("LITELONG_METRICS_PORT", "0")
    async with aiohttp.ClientSession(base_url=str(kmock.url)) as session:
        cluster = Cluster(kmock, session)
        await cluster.apply(WORKER_ACCOUNT)  # the chart makes it in its workloadNamespaces
        async with running_operator():
            yield cluster


WORKER_ACCOUNT = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "litelong-worker"},
}


def rendered(applied: dict[str, Any]) -> list[dict[str, Any]]:
    return render(owner_of(applied), load_config())


async def run_pod_command(job: dict[str, Any], configmap: dict[str, Any], tmp: Path) -> str:
    """Run a Job's container command here, as its pod would: spec file, env, shard index."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    spec_file = tmp / "resource.yaml"
    spec_file.write_text(configmap["data"]["resource.yaml"])
    command = [
        arg if arg != "/etc/litelong/resource.yaml" else str(spec_file)
        for arg in container["command"]
    ]
    env = {**os.environ, "JOB_COMPLETION_INDEX": "0"}
    env.update({item["name"]: item["value"] for item in container["env"] if "value" in item})
    env.pop("HOME")
    litelong = Path(sys.executable).with_name("litelong")
    process = await asyncio.create_subprocess_exec(
        str(litelong),
        *command[1:],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_a_bm25index_runs_its_rendered_job_and_becomes_ready_with_outputs(
    cluster: Cluster, tmp_path: Path
) -> None:
    applied = await cluster.apply(sample("bm25index"))
    configmap, job = rendered(applied)
    await cluster.eventually(lambda: cluster.get("Job", job["metadata"]["name"]), what="the Job")
    assert cluster.get("ConfigMap", configmap["metadata"]["name"]) == configmap
    assert cluster.get("Job", job["metadata"]["name"]) == as_stored(job)
    await cluster.eventually(
        lambda: cluster.status("BM25Index", "wiki-sample").get("phase") == "Running"
    )
    assert cluster.status("BM25Index", "wiki-sample")["progress"]["summary"] == "0/1"

    await run_pod_command(job, configmap, tmp_path)
    await cluster.finish_job(job["metadata"]["name"])

    await cluster.eventually(
        lambda: cluster.condition("BM25Index", "wiki-sample", "Ready").get("status") == "True",
        what="Ready",
    )
    status = cluster.status("BM25Index", "wiki-sample")
    assert status["phase"] == "Succeeded"
    assert status["outputs"]["documents"] == 10_033
    assert status["outputs"]["parts"] == 1
    assert status["outputs"]["uri"].endswith(f"/ml/bm25index/wiki-sample/{status['specHash']}")
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Progressing": "False",
        "Failed": "False",
        "Waiting": "False",
    }
    # one Event per transition (Events are posted in the background, hence the wait)
    await cluster.eventually(
        lambda: [e["reason"] for e in cluster.events("wiki-sample")] == ["JobRunning", "Committed"],
        what="the Events",
    )


async def test_a_synthesisrun_waits_for_its_refs_and_starts_as_soon_as_they_are_ready(
    cluster: Cluster,
) -> None:
    await cluster.apply(sample("synthesisrun"))
    waiting = await cluster.eventually(
        lambda: (
            cluster.condition("SynthesisRun", "science-16k", "Waiting").get("status") == "True"
            and cluster.condition("SynthesisRun", "science-16k", "Waiting")
        )
    )
    assert "TopicDebate/science: not found" in waiting["message"]
    assert "BM25Index/wiki-sample: not found" in waiting["message"]
    assert cluster.all("Job") == []

    for name in ("topicdebate", "bm25index"):
        applied = await cluster.apply(sample(name))
        job = rendered(applied)[-1]["metadata"]["name"]
        await cluster.eventually(lambda job=job: cluster.get("Job", job))
        await cluster.finish_job(job)
    # started by the refs' status change, well before the resync timer (2 s) could
    await cluster.eventually(
        lambda: any(
            j["metadata"]["labels"]["litelong.io/kind"] == "SynthesisRun"
            for j in cluster.all("Job")
        ),
        timeout=1.5,
        what="the SynthesisRun's Job",
    )
    await cluster.eventually(
        lambda: cluster.status("SynthesisRun", "science-16k")["phase"] == "Running"
    )
    assert cluster.condition("SynthesisRun", "science-16k", "Waiting")["status"] == "False"


async def test_a_failed_job_fails_the_resource_with_the_pods_last_words(cluster: Cluster) -> None:
    applied = await cluster.apply(sample("topicdebate"))
    job = rendered(applied)[-1]
    name = job["metadata"]["name"]
    await cluster.eventually(lambda: cluster.get("Job", name))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-0-abcde",
            "labels": {
                **job["spec"]["template"]["metadata"]["labels"],
                "batch.kubernetes.io/job-name": name,
            },
        },
        "status": {
            "containerStatuses": [
                {
                    "name": "stage",
                    "state": {
                        "terminated": {
                            "exitCode": 1,
                            "message": "error: model smollm2 at http://x/v1 answered HTTP 503",
                            "finishedAt": "2026-01-01T00:00:00Z",
                        }
                    },
                }
            ]
        },
    }
    await cluster.apply(pod)
    await cluster.finish_job(name, failed=True)
    failed = await cluster.eventually(
        lambda: (
            cluster.condition("TopicDebate", "science", "Failed").get("status") == "True"
            and cluster.condition("TopicDebate", "science", "Failed")
        )
    )
    assert failed["reason"] == "MaxFailedIndexesExceeded"
    assert "answered HTTP 503" in failed["message"]
    assert cluster.status("TopicDebate", "science")["phase"] == "Failed"
    warning = await cluster.eventually(
        lambda: [e for e in cluster.events("science") if e["type"] == "Warning"][-1]
    )
    assert warning["reason"] == "MaxFailedIndexesExceeded" and "HTTP 503" in warning["message"]


async def test_a_spec_edit_reruns_with_new_children_and_removes_the_old_ones_once_done(
    cluster: Cluster,
) -> None:
    first = rendered(await cluster.apply(sample("topicdebate")))[-1]["metadata"]["name"]
    await cluster.eventually(lambda: cluster.get("Job", first))
    await cluster.finish_job(first)
    await cluster.eventually(
        lambda: cluster.status("TopicDebate", "science").get("phase") == "Succeeded"
    )

    edited = sample("topicdebate")
    edited["spec"]["topicsPerSubject"] = 5
    await cluster.patch("TopicDebate", "science", {"spec": edited["spec"]})
    second = rendered({**edited, "metadata": cluster.get("TopicDebate", "science")["metadata"]})[-1]
    second_name = second["metadata"]["name"]
    assert second_name != first
    await cluster.eventually(lambda: cluster.get("Job", second_name), what="the new Job")
    assert cluster.get("Job", first) is not None, "the old Job stays until the new one succeeds"
    await cluster.eventually(lambda: cluster.status("TopicDebate", "science")["phase"] == "Running")
    assert cluster.status("TopicDebate", "science")["specHash"].startswith(
        second_name.rsplit("-", 1)[1]
    )

    await cluster.finish_job(second_name)
    await cluster.eventually(
        lambda: (
            cluster.get("Job", first) is None and cluster.get("ConfigMap", f"{first}-spec") is None
        ),
        what="the old children removed",
    )
    assert cluster.get("ConfigMap", f"{second_name}-spec") is not None
    await cluster.eventually(
        lambda: cluster.status("TopicDebate", "science")["phase"] == "Succeeded"
    )


async def test_reapplying_or_restarting_the_operator_creates_no_duplicate(
    cluster: Cluster,
) -> None:
    applied = await cluster.apply(sample("bm25index"))
    job = rendered(applied)[-1]["metadata"]["name"]
    await cluster.eventually(
        lambda: cluster.status("BM25Index", "wiki-sample").get("phase") == "Running"
    )
    # re-apply the same spec (kubectl apply of an unchanged file touches metadata only)
    await cluster.patch("BM25Index", "wiki-sample", {"metadata": {"labels": {"team": "ml"}}})
    async with running_operator():  # a second operator process resumes the same objects
        await asyncio.sleep(1.0)
    assert [j["metadata"]["name"] for j in cluster.all("Job")] == [job]
    assert len(cluster.all("ConfigMap")) == 1
    job_creates = [r for r in cluster.server["post"] if r.url.path.endswith("/jobs")]
    assert len(job_creates) >= 2, "the restarted operator tried again and was told 409"


async def test_a_trainingjob_waits_for_its_synthesisrun_then_runs_a_pytorchjob(
    cluster: Cluster,
) -> None:
    applied = await cluster.apply(sample("trainingjob"))
    await cluster.eventually(
        lambda: cluster.status("TrainingJob", "smollm2-16k").get("phase") == "Waiting"
    )
    assert cluster.all("PyTorchJob") == []
    for name in ("topicdebate", "bm25index"):  # the SynthesisRun's refs, run to completion
        job = rendered(await cluster.apply(sample(name)))[-1]["metadata"]["name"]
        await cluster.eventually(lambda job=job: cluster.get("Job", job))
        await cluster.finish_job(job)
    await cluster.apply(sample("synthesisrun"))
    jobs = await cluster.eventually(
        lambda: [
            j
            for j in cluster.all("Job")
            if j["metadata"]["labels"]["litelong.io/kind"] == "SynthesisRun"
        ]
    )
    await cluster.finish_job(jobs[0]["metadata"]["name"])
    synthesis = await cluster.eventually(
        lambda: (
            cluster.status("SynthesisRun", "science-16k").get("phase") == "Succeeded"
            and cluster.status("SynthesisRun", "science-16k")
        )
    )
    # children are named by the identity: the spec and the SynthesisRun output it trains on
    owner = owner_of(applied)
    inputs = {"SynthesisRun/science-16k": synthesis["specHash"]}
    _, pytorchjob = render(
        dataclasses.replace(owner, resource=owner.resource.with_inputs(inputs)), load_config()
    )
    name = pytorchjob["metadata"]["name"]
    await cluster.eventually(lambda: cluster.get("PyTorchJob", name), what="the PyTorchJob")
    assert cluster.get("PyTorchJob", name) == pytorchjob
    await cluster.patch(
        "PyTorchJob",
        name,
        {
            "status": {
                "conditions": [
                    {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded"}
                ]
            }
        },
        status=True,
    )
    await cluster.eventually(
        lambda: cluster.condition("TrainingJob", "smollm2-16k", "Ready").get("status") == "True"
    )


async def test_an_invalid_spec_fails_with_the_field_path(cluster: Cluster) -> None:
    bad = sample("synthesisrun")
    bad["metadata"] = {"name": "bad"}
    bad["spec"]["targetTokens"] = 3
    await cluster.apply(bad)
    failed = await cluster.eventually(
        lambda: (
            cluster.condition("SynthesisRun", "bad", "Failed").get("status") == "True"
            and cluster.condition("SynthesisRun", "bad", "Failed")
        )
    )
    assert failed["reason"] == "InvalidSpec"
    assert "spec.targetTokens" in failed["message"]
    assert cluster.all("Job") == []


async def test_api_keys_reach_pods_as_secret_refs_and_the_operator_never_reads_secrets(
    cluster: Cluster,
) -> None:
    debate = sample("topicdebate")
    debate["spec"]["judge"]["endpoint"] = {
        "baseURL": "http://vllm-judge:8000/v1",
        "model": "gemma",
        "apiKeySecretRef": {"name": "llm-keys", "key": "judge"},
    }
    applied = await cluster.apply(debate)
    job = rendered(applied)[-1]
    await cluster.eventually(lambda: cluster.get("Job", job["metadata"]["name"]))
    env = cluster.get("Job", job["metadata"]["name"])["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    assert {
        "name": "LITELONG_SECRET_LLM_KEYS_JUDGE",
        "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "judge"}},
    } in env
    await cluster.eventually(
        lambda: cluster.status("TopicDebate", "science").get("phase") == "Running"
    )
    touched = [r.url.path for r in cluster.server if "/secrets" in r.url.path]
    assert touched == []


async def test_a_managed_manticore_index_starts_its_cluster_and_loads_when_every_pod_is_ready(
    cluster: Cluster,
) -> None:
    index = sample("bm25index")
    index["spec"]["backend"] = {"type": "manticore", "manticore": {"mode": "managed", "shards": 2}}
    index["spec"]["chunks"] = {"enabled": False}  # the chunk index is tantivy's only
    applied = await cluster.apply(index)
    children = rendered(applied)
    statefulset = next(c for c in children if c["kind"] == "StatefulSet")
    job = children[-1]
    await cluster.eventually(lambda: cluster.get("StatefulSet", statefulset["metadata"]["name"]))
    assert cluster.get("Service", statefulset["metadata"]["name"])["spec"]["clusterIP"] == "None"
    starting = await cluster.eventually(
        lambda: (
            cluster.condition("BM25Index", "wiki-sample", "Progressing").get("reason")
            == "ManticoreStarting"
            and cluster.condition("BM25Index", "wiki-sample", "Progressing")
        )
    )
    assert "0/2 Manticore pods ready" in starting["message"]
    assert cluster.get("Job", job["metadata"]["name"]) is None, "no loading before Manticore is up"

    await cluster.patch(
        "StatefulSet",
        statefulset["metadata"]["name"],
        {"status": {"readyReplicas": 2}},
        status=True,
    )
    loader = await cluster.eventually(lambda: cluster.get("Job", job["metadata"]["name"]))
    assert loader["spec"]["completions"] == 2
    env = {
        e["name"]: e.get("value")
        for e in loader["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["LITELONG_MANTICORE_SHARD_URL"] == (
        f"http://{statefulset['metadata']['name']}-{{shard}}.{statefulset['metadata']['name']}.ml.svc:9308"
    )


async def test_deleting_a_resource_keeps_its_outputs_and_leaves_children_to_the_garbage_collector(
    cluster: Cluster, tmp_path: Path
) -> None:
    applied = await cluster.apply(sample("bm25index"))
    configmap, job = rendered(applied)
    await cluster.eventually(lambda: cluster.get("Job", job["metadata"]["name"]))
    await run_pod_command(job, configmap, tmp_path)
    await cluster.finish_job(job["metadata"]["name"])
    await cluster.eventually(
        lambda: cluster.status("BM25Index", "wiki-sample").get("phase") == "Succeeded"
    )
    uri = cluster.status("BM25Index", "wiki-sample")["outputs"]["uri"]

    await cluster.delete("BM25Index", "wiki-sample")
    await asyncio.sleep(0.5)
    assert cluster.get("BM25Index", "wiki-sample") is None
    assert (Path(uri.removeprefix("file://")) / "_manifest.json").is_file()
    for child in cluster.all("Job") + cluster.all("ConfigMap"):
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == applied["metadata"]["uid"] and owner["controller"] is True


def _verb_and_resource(method: str, path: str, watch: bool) -> tuple[str, str, str] | None:
    """(verb, apiGroup, resource[/subresource]) of a request, as RBAC sees it; None: discovery."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    elif rest and rest[0] == "namespaces":
        return ("list" if method == "get" else method, "", "namespaces")
    resource, named = rest[0], len(rest) > 1
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    verb = {"post": "create", "patch": "patch", "put": "update", "delete": "delete"}.get(method)
    if verb is None:
        verb = "watch" if watch else ("get" if named else "list")
    return verb, group, resource


async def test_every_call_the_operator_makes_is_allowed_by_its_cluster_role(
    cluster: Cluster, tmp_path: Path
) -> None:
    applied = await cluster.apply(sample("bm25index"))
    job = rendered(applied)[-1]["metadata"]["name"]
    await cluster.eventually(lambda: cluster.get("Job", job))
    await cluster.finish_job(job, failed=True)
    await cluster.eventually(
        lambda: cluster.status("BM25Index", "wiki-sample").get("phase") == "Failed"
    )
    for name in ("synthesisrun", "trainingjob"):
        await cluster.apply(sample(name))
    await cluster.eventually(
        lambda: cluster.status("TrainingJob", "smollm2-16k").get("phase") == "Waiting"
    )

    allowed = cluster_role_grants()
    made = set()
    for request in cluster.server:
        if request.headers.get("User-Agent", "").startswith(
            "Python/3"
        ) and "aiohttp" in request.headers.get("User-Agent", ""):
            continue  # the test's own client
        call = _verb_and_resource(
            request.method.value.lower(), request.url.path, request.params.get("watch") == "true"
        )
        if call is not None:
            made.add(call)
        if call is not None and call[0] == "create" and isinstance(request.data, dict):
            # what admission asks on top of the create itself (OwnerReferencesPermission...)
            made |= owner_finalizer_permissions(request.data)
    assert {("create", "batch", "jobs"), ("patch", "litelong.io", "bm25indexes/status")} <= made
    assert ("update", "litelong.io", "bm25indexes/finalizers") in made
    assert made - allowed == set(), "calls the ClusterRole would refuse"
    assert not any(resource == "secrets" for _, _, resource in made)


async def test_prometheus_metrics_count_reconciles_and_resources_by_phase(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(kmock)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))))
    monkeypatch.setenv("LITELONG_OPERATOR_CONFIG", str(tmp_path / "absent.yaml"))
    (tmp_path / "absent.yaml").write_text("store: {uri: 'file:///nonexistent/store'}\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LITELONG_METRICS_PORT", str(port))
    async with aiohttp.ClientSession(base_url=str(kmock.url)) as session, running_operator():
        cluster = Cluster(kmock, session)
        await cluster.apply(sample("synthesisrun"))
        await cluster.eventually(
            lambda: cluster.status("SynthesisRun", "science-16k").get("phase") == "Waiting"
        )
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    assert 'litelong_reconciles_total{kind="SynthesisRun"}' in text
    # the gauge is process-wide: earlier tests in this process may have left resources too
    assert re.search(r'litelong_resources\{kind="SynthesisRun",phase="Waiting"\} [1-9]', text)


def failed_pod(job: dict[str, Any], message: str) -> dict[str, Any]:
    """A stage pod of `job` that exited 1, its last log lines as termination message."""
    name = job["metadata"]["name"]
    terminated = {"exitCode": 1, "message": message, "finishedAt": "2026-01-01T00:00:00Z"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-0-xyz12",
            "labels": {
                **job["spec"]["template"]["metadata"]["labels"],
                "batch.kubernetes.io/job-name": name,
            },
        },
        "status": {"containerStatuses": [{"name": "stage", "state": {"terminated": terminated}}]},
    }


@pytest.mark.parametrize(
    "minor", [pytest.param(28, marks=pytest.mark.kmock(minor=28)), pytest.param(32)]
)
async def test_a_shard_that_keeps_failing_fails_the_resource_within_its_retry_budget(
    cluster: Cluster, minor: int
) -> None:
    """On every supported version (read from /version): no infinite retries, and the pod's
    last words reach the status."""
    index = sample("bm25index")
    index["spec"]["parallelism"] = 2
    await cluster.apply(index)
    job = await cluster.eventually(lambda: cluster.all("Job") and cluster.all("Job")[0])
    name = job["metadata"]["name"]
    assert ("backoffLimitPerIndex" in job["spec"]) == (minor >= 29)
    budget = cluster.retry_budget(name)
    assert budget == (3 if minor >= 29 else 3 * 2), "a limit the server kept, scaled to shards"
    await cluster.apply(failed_pod(job, "error: corpus file /data/x.jsonl: no such file"))

    assert await cluster.fail_shard(name, 0, times=budget) == "Running"
    # the Job itself ends: on 1.29+ one failed index is enough (maxFailedIndexes: 0), while
    # shard 1 is still running
    assert await cluster.fail_shard(name, 0, times=1) == "Failed"
    failed = await cluster.eventually(
        lambda: (
            cluster.condition("BM25Index", "wiki-sample", "Failed").get("status") == "True"
            and cluster.condition("BM25Index", "wiki-sample", "Failed")
        ),
        what="Failed",
    )
    expected = "MaxFailedIndexesExceeded" if minor >= 29 else "BackoffLimitExceeded"
    assert failed["reason"] == expected
    assert "corpus file /data/x.jsonl: no such file" in failed["message"]


@pytest.mark.kmock(minor=28)
async def test_a_job_retrying_failed_pods_shows_the_latest_last_words_while_it_runs(
    cluster: Cluster,
) -> None:
    """1.27/1.28 allow retries x shards failures in all, with up to 6 minutes of back-off
    between them: hours of `Running`. The resource says why meanwhile, in its Progressing
    condition, and once in a Warning Event."""
    index = sample("bm25index")
    index["spec"]["parallelism"] = 2
    await cluster.apply(index)
    job = await cluster.eventually(lambda: cluster.all("Job") and cluster.all("Job")[0])
    name = job["metadata"]["name"]
    await cluster.apply(failed_pod(job, "error: corpus file /data/x.jsonl: no such file"))

    assert await cluster.fail_shard(name, 0, times=1) == "Running"
    progressing = await cluster.eventually(
        lambda: (
            cluster.condition("BM25Index", "wiki-sample", "Progressing").get("reason")
            == "RetryingFailedPods"
            and cluster.condition("BM25Index", "wiki-sample", "Progressing")
        ),
        what="the retries on the resource",
    )
    assert progressing["status"] == "True"
    assert "1 pod(s) failed" in progressing["message"]
    assert "corpus file /data/x.jsonl: no such file" in progressing["message"]
    assert cluster.status("BM25Index", "wiki-sample")["phase"] == "Running"

    assert await cluster.fail_shard(name, 1, times=2) == "Running"
    await cluster.eventually(
        lambda: (
            "3 pod(s) failed"
            in cluster.condition("BM25Index", "wiki-sample", "Progressing")["message"]
        ),
        what="the count of failed pods kept current",
    )
    retries = [e for e in cluster.events("wiki-sample") if e["reason"] == "RetryingFailedPods"]
    assert len(retries) == 1, "one Event, not one per failed pod"
    assert retries[0]["type"] == "Warning" and "no such file" in retries[0]["message"]


async def test_a_namespace_without_the_worker_account_says_so_then_runs_once_it_has_one(
    cluster: Cluster,
) -> None:
    cluster.namespace = "team-b"  # not among the chart's workloadNamespaces
    await cluster.apply(sample("topicdebate"))
    waiting = await cluster.eventually(
        lambda: (
            cluster.condition("TopicDebate", "science", "Waiting").get("reason")
            == "NamespaceNotPrepared"
            and cluster.condition("TopicDebate", "science", "Waiting")
        ),
        what="NamespaceNotPrepared",
    )
    assert "ServiceAccount team-b/litelong-worker not found" in waiting["message"]
    assert cluster.all("Job") == [], "no Job that could never make a pod"
    warning = await cluster.eventually(
        lambda: [e for e in cluster.events("science") if e["type"] == "Warning"][-1]
    )
    assert warning["reason"] == "NamespaceNotPrepared"

    await cluster.apply(WORKER_ACCOUNT)
    await cluster.eventually(lambda: cluster.all("Job"), what="the Job once the account exists")
    await cluster.eventually(lambda: cluster.status("TopicDebate", "science")["phase"] == "Running")


async def test_a_job_that_cannot_create_pods_puts_the_reason_on_the_resource(
    cluster: Cluster,
) -> None:
    applied = await cluster.apply(sample("topicdebate"))
    name = rendered(applied)[-1]["metadata"]["name"]
    await cluster.eventually(lambda: cluster.get("Job", name))
    why = (
        'Error creating: pods "science-0-" is forbidden: exceeded quota: compute, '
        "requested: requests.cpu=2, used: requests.cpu=8, limited: requests.cpu=8"
    )
    # what the Job controller records when the API server refuses its pods
    await cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.17a2b3c4d5e6f708"},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": name},
            "reason": "FailedCreate",
            "type": "Warning",
            "message": why,
            "lastTimestamp": "2026-01-01T00:00:00Z",
        }
    )
    stuck = await cluster.eventually(
        lambda: (
            cluster.condition("TopicDebate", "science", "Progressing").get("reason")
            == "FailedCreate"
            and cluster.condition("TopicDebate", "science", "Progressing")
        ),
        what="FailedCreate on the resource (within a resync)",
    )
    assert "exceeded quota: compute" in stuck["message"] and name in stuck["message"]
    warning = await cluster.eventually(
        lambda: [e for e in cluster.events("science") if e["reason"] == "FailedCreate"][-1]
    )
    assert warning["type"] == "Warning" and "exceeded quota" in warning["message"]

    # pods get made once quota frees up: the stale Event no longer decides
    await cluster.patch("Job", name, {"status": {"active": 1}}, status=True)
    await cluster.eventually(
        lambda: (
            cluster.condition("TopicDebate", "science", "Progressing").get("reason") == "JobRunning"
        )
    )


WITHOUT_FINALIZERS = {
    grant for grant in cluster_role_grants() if not grant[2].endswith("/finalizers")
}


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        pytest.param(
            "CreateForbidden",
            "cannot set blockOwnerDeletion",
            marks=pytest.mark.kmock(granted=WITHOUT_FINALIZERS),
            id="403-owner-references-admission",
        ),
        pytest.param(
            "CreateInvalid",
            'Unsupported value: "FailIndex"',
            marks=pytest.mark.kmock(minor=27),
            id="422-stale-version-override",
        ),
    ],
)
async def test_a_child_the_api_server_refuses_fails_the_resource_with_its_answer(
    kmock: kmock.KubernetesEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reason: str,
    words: str,
) -> None:
    register(kmock)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))))
    config = tmp_path / "operator.yaml"
    # a kubernetesVersion override newer than the server (the 422 case); harmless otherwise
    config.write_text(
        yaml.safe_dump({"store": {"uri": f"file://{tmp_path}"}, "kubernetesVersion": "1.32"})
    )
    monkeypatch.setenv("LITELONG_OPERATOR_CONFIG", str(config))
    monkeypatch.setenv("LITELONG_METRICS_PORT", "0")
    async with aiohttp.ClientSession(base_url=str(kmock.url)) as session:
        cluster = Cluster(kmock, session)
        await cluster.apply(WORKER_ACCOUNT)
        async with running_operator():
            await cluster.apply(sample("topicdebate"))
            failed = await cluster.eventually(
                lambda: (
                    cluster.condition("TopicDebate", "science", "Failed").get("status") == "True"
                    and cluster.condition("TopicDebate", "science", "Failed")
                ),
                what="the refusal on the resource",
            )
            assert failed["reason"] == reason and words in failed["message"]
            warning = await cluster.eventually(
                lambda: [e for e in cluster.events("science") if e["type"] == "Warning"][-1]
            )
            assert warning["reason"] == reason


@pytest.mark.parametrize(
    "command",
    [
        ["kopf", "run", "-m", "litelong_operator"],
        ["litelong-operator"],
        ["python", "-m", "litelong_operator"],
    ],
    ids=["kopf-run-m", "litelong-operator", "python-m"],
)
async def test_every_documented_way_to_start_the_operator_runs_the_handlers(
    kmock: kmock.KubernetesEmulator,
    tmp_path: Path,
    command: list[str],
) -> None:
    """`kopf run -m litelong_operator` (kopf's own way), the console script and
    `python -m litelong_operator` are one operator: each, started as a process, makes the
    Job of a TopicDebate."""
    register(kmock)
    config = tmp_path / "operator.yaml"
    config.write_text(yaml.safe_dump({"store": {"uri": f"file://{tmp_path}"}}))
    env = {
        **os.environ,
        "KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))),
        "LITELONG_OPERATOR_CONFIG": str(config),
        "LITELONG_METRICS_PORT": "0",
    }
    executable = (
        Path(sys.executable)
        if command[0] == "python"
        else Path(sys.executable).with_name(command[0])
    )
    process = await asyncio.create_subprocess_exec(
        str(executable),
        *command[1:],
        "--standalone",
        "--all-namespaces",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession(base_url=str(kmock.url)) as session:
            cluster = Cluster(kmock, session)
            await cluster.apply(WORKER_ACCOUNT)
            await cluster.apply(sample("topicdebate"))
            await cluster.eventually(lambda: cluster.all("Job"), timeout=60, what="the Job")
    finally:
        process.terminate()
        _, stderr = await process.communicate()
    assert b"Traceback" not in stderr, stderr.decode()[-2000:]


async def test_a_missing_store_claim_is_named_and_status_needs_no_mounted_store(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace without the store claim waits, saying so; once the claim exists the Job
    runs, and status comes from the Job alone: on an RWO-only cluster the claim is the
    workers', and the operator never mounts it."""
    register(kmock)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))))
    config = tmp_path / "operator.yaml"
    unmounted = tmp_path / "not-mounted-here"
    store = {"pvc": {"claimName": "litelong-store", "mountPath": str(unmounted)}}
    config.write_text(yaml.safe_dump({"store": store}))
    monkeypatch.setenv("LITELONG_OPERATOR_CONFIG", str(config))
    monkeypatch.setenv("LITELONG_METRICS_PORT", "0")
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "litelong-store"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    async with aiohttp.ClientSession(base_url=str(kmock.url)) as session:
        cluster = Cluster(kmock, session)
        await cluster.apply(WORKER_ACCOUNT)
        async with running_operator():
            await cluster.apply(sample("bm25index"))
            waiting = await cluster.eventually(
                lambda: (
                    cluster.condition("BM25Index", "wiki-sample", "Waiting").get("reason")
                    == "NamespaceNotPrepared"
                    and cluster.condition("BM25Index", "wiki-sample", "Waiting")
                )
            )
            assert "PersistentVolumeClaim ml/litelong-store not found" in waiting["message"]
            await cluster.apply(claim)
            job = await cluster.eventually(lambda: cluster.all("Job") and cluster.all("Job")[0])
            await cluster.eventually(
                lambda: cluster.status("BM25Index", "wiki-sample").get("phase") == "Running"
            )
            await cluster.finish_job(job["metadata"]["name"])
            await cluster.eventually(
                lambda: (
                    cluster.condition("BM25Index", "wiki-sample", "Ready").get("reason")
                    == "JobComplete"
                ),
                what="Ready from the Job",
            )
    outputs = cluster.status("BM25Index", "wiki-sample")["outputs"]
    assert outputs["uri"].startswith(f"file://{unmounted}/ml/bm25index/wiki-sample/")
    assert not unmounted.exists(), "the operator wrote nothing where the store is not mounted"


#: Long enough that the peering keepalive (every ~50 s) falls in the outage and, with kopf's
#: default retries of one call (1+1+2+3+5+8+13+21 = 54 s), gives up before the server is back.
OUTAGE_SECONDS = 65  # the issue's minute, and a little more


async def test_the_operator_rides_out_the_api_server_going_away_for_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes down (connections refused, watches cut) and comes back on the same
    address: the operator (with peering, as deployed) is still running and picks up what
    changed meanwhile."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", url)))
    config = tmp_path / "operator.yaml"
    config.write_text(yaml.safe_dump({"store": {"uri": f"file://{tmp_path / 'store'}"}}))
    monkeypatch.setenv("LITELONG_OPERATOR_CONFIG", str(config))
    monkeypatch.setenv("LITELONG_METRICS_PORT", "0")
    async with ApiServer() as server:
        register(server)
        up = kmock.Server(server, port=port)
        await up.__aenter__()
        peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering"}
        async with aiohttp.ClientSession(base_url=url) as session:
            await session.post(
                "/apis/kopf.dev/v1/clusterkopfpeerings",
                json={**peering, "metadata": {"name": "litelong"}},
            )
        try:
            async with running_operator(peering="litelong", api_retry_seconds=300) as operator:
                async with aiohttp.ClientSession(base_url=url) as session:
                    cluster = Cluster(server, session)
                    await cluster.apply(WORKER_ACCOUNT)
                    await cluster.apply(sample("topicdebate"))
                    job = await cluster.eventually(lambda: cluster.all("Job"), what="the Job")
                await up.__aexit__(None, None, None)  # the API server goes away
                await asyncio.sleep(OUTAGE_SECONDS)
                up = kmock.Server(server, port=port)
                await up.__aenter__()  # and comes back
                assert not operator.done(), "the operator exited during the outage"
                async with aiohttp.ClientSession(base_url=url) as session:
                    cluster = Cluster(server, session)
                    await cluster.finish_job(job[0]["metadata"]["name"])
                    await cluster.eventually(
                        lambda: (
                            cluster.status("TopicDebate", "science").get("phase") == "Succeeded"
                        ),
                        timeout=60,
                        what="the Job's completion noticed after the outage",
                    )
                assert not operator.done()
        finally:
            await up.__aexit__(None, None, None)


async def test_a_trainingjob_shows_step_loss_throughput_and_eta_while_it_trains(
    cluster: Cluster, tmp_path: Path
) -> None:
    applied = await cluster.apply(sample("trainingjob"))
    await cluster.apply(sample("synthesisrun"))
    ready = {"type": "Ready", "status": "True", "reason": "Committed"}
    samples = "5a3b1e5a3b1e"  # the identity of the committed samples the job trains on
    await cluster.patch(
        "SynthesisRun",
        "science-16k",
        {"status": {"phase": "Succeeded", "conditions": [ready], "specHash": samples}},
        status=True,
    )
    owner = owner_of(applied)
    owner = dataclasses.replace(
        owner, resource=owner.resource.with_inputs({"SynthesisRun/science-16k": samples})
    )
    name = render(owner, load_config())[-1]["metadata"]["name"]
    await cluster.eventually(lambda: cluster.get("PyTorchJob", name), what="the PyTorchJob")
    running = {"type": "Running", "status": "True", "reason": "PyTorchJobRunning"}
    await cluster.patch("PyTorchJob", name, {"status": {"conditions": [running]}}, status=True)
    # what rank 0 of `litelong train` writes after each step
    artifact = ArtifactStore(f"file://{tmp_path / 'store'}").output_of(owner.resource)
    rows = [{"step": s, "loss": 2.5, "seconds": 4.0, "tokens_per_s": 4096.0} for s in (1, 2, 3)]
    artifact.store.write_atomic(
        f"{artifact.path}/metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows)
    )
    status = await cluster.eventually(
        lambda: (
            (cluster.status("TrainingJob", "smollm2-16k").get("training") or {}).get("step") == 3
            and cluster.status("TrainingJob", "smollm2-16k")
        ),
        what="status.training",
    )
    assert status["training"] == {
        "step": 3,
        "loss": 2.5,
        "tokensPerSecond": 4096.0,
        "etaSeconds": 4 * (100 - 3),
    }
    assert status["progress"]["summary"] == "3/100" and status["phase"] == "Running"
