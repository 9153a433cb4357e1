"""The operator end to end: kopf in-process against kmock, the test playing the controllers.

Each test applies resources the way `kubectl apply` does and watches what the operator makes of
them: children as rendered, status and Events as Jobs progress, dependencies, reruns, faults.
"""

from __future__ import annotations

import asyncio
import dataclasses
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

from litelong_operator.config import load_config
from litelong_operator.render import owner_of, render

from .conftest import REPO
from .operator_harness import Cluster, register, running_operator, sample, write_kubeconfig

pytestmark = pytest.mark.asyncio


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
    async with aiohttp.ClientSession(base_url=str(kmock.url)) as session, running_operator():
        yield Cluster(kmock, session)


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
    assert cluster.get("Job", job["metadata"]["name"]) == job
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
    assert failed["reason"] == "FailedIndexes"
    assert "answered HTTP 503" in failed["message"]
    assert cluster.status("TopicDebate", "science")["phase"] == "Failed"
    warning = await cluster.eventually(
        lambda: [e for e in cluster.events("science") if e["type"] == "Warning"][-1]
    )
    assert warning["reason"] == "FailedIndexes" and "HTTP 503" in warning["message"]


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

    role = next(
        d
        for d in yaml.safe_load_all((REPO / "manifests" / "rbac" / "rbac.yaml").read_text())
        if d["kind"] == "ClusterRole"
    )
    allowed = {
        (verb, group, resource)
        for rule in role["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
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
    assert {("create", "batch", "jobs"), ("patch", "litelong.io", "bm25indexes/status")} <= made
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
