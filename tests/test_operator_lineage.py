"""The operator keeps the store's promises: outputs named by spec and inputs, kept apart by
namespace, Ready for good once committed, status written whole, empty outputs Failed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kopf")
pytest.importorskip("kmock")

from litelong.store import ArtifactStore

from .conftest import manifest_yaml, write_jsonl
from .operator_harness import Cluster, sample
from .test_operator_e2e import WORKER_ACCOUNT, cluster, rendered

__all__ = ["cluster"]  # the fixture, shared with the end-to-end suite
pytestmark = pytest.mark.asyncio


async def pod(job: dict[str, Any], configmap: dict[str, Any], tmp: Path) -> tuple[int, str]:
    """Run a Job's container command here, as its pod would; (exit code, output)."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    spec_file = tmp / f"{job['metadata']['namespace']}-{job['metadata']['name']}.yaml"
    spec_file.write_text(configmap["data"]["resource.yaml"])
    command = [str(spec_file) if a.endswith("/resource.yaml") else a for a in container["command"]]
    env = {**os.environ, "JOB_COMPLETION_INDEX": "0"}
    env.update({item["name"]: item["value"] for item in container["env"] if "value" in item})
    env.pop("HOME")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("litelong")),
        *command[1:],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode()


async def job_of(cluster: Cluster, kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The workload Job of a resource and its spec ConfigMap, once the operator made them."""

    def find() -> Any:
        jobs = [
            j
            for j in cluster.all("Job")
            if j["metadata"]["labels"]["litelong.io/kind"] == kind
            and j["metadata"]["labels"]["app.kubernetes.io/instance"] == name
            and j["metadata"]["labels"]["litelong.io/spec-hash"]
            == cluster.status(kind, name).get("specHash")
        ]
        return jobs[0] if jobs else None

    job = await cluster.eventually(find, what=f"the Job of {kind}/{name}")
    configmap = cluster.get("ConfigMap", f"{job['metadata']['name']}-spec")
    assert configmap is not None
    return job, configmap


def commit(store: Path, namespace: str, kind: str, name: str, identity: str, **counts: int) -> None:
    """What a pod's stage leaves in the store for this identity (the operator only reads it)."""
    artifact = ArtifactStore(f"file://{store}").artifact(kind, name, identity, namespace)
    with artifact.staging(0, 1) as folder:
        (folder / "data").write_text("x")
        artifact.commit_part(0, 1, folder, counts=counts)
    artifact.commit({}, 1)


async def ready(cluster: Cluster, kind: str, name: str) -> dict[str, Any]:
    await cluster.eventually(
        lambda: cluster.condition(kind, name, "Ready").get("status") == "True",
        what=f"{kind}/{name} Ready",
    )
    return cluster.status(kind, name)


async def committed_synthesis(cluster: Cluster, store: Path) -> dict[str, Any]:
    """TopicDebate and BM25Index Ready, then the SynthesisRun run and committed (3 samples)."""
    for name in ("topicdebate", "bm25index"):
        applied = await cluster.apply(sample(name))
        job = rendered(applied)[-1]["metadata"]["name"]
        await cluster.eventually(lambda job=job: cluster.get("Job", job))
        await cluster.finish_job(job)
    await cluster.apply(sample("synthesisrun"))
    job, _ = await job_of(cluster, "SynthesisRun", "science-16k")
    identity = cluster.status("SynthesisRun", "science-16k")["specHash"]
    commit(store, "ml", "SynthesisRun", "science-16k", identity, samples=3, samples_requested=3)
    await cluster.finish_job(job["metadata"]["name"])
    return await ready(cluster, "SynthesisRun", "science-16k")


async def test_the_same_name_in_two_namespaces_gets_two_jobs_and_two_outputs(
    cluster: Cluster, tmp_path: Path
) -> None:
    uris = {}
    for namespace in ("ml", "team-b"):
        cluster.namespace = namespace
        if namespace != "ml":  # the fixture made ml's; the chart makes one per workload namespace
            await cluster.apply(WORKER_ACCOUNT)
        await cluster.apply(sample("bm25index"))
        job, configmap = await job_of(cluster, "BM25Index", "wiki-sample")
        assert cluster.status("BM25Index", "wiki-sample")["phase"] == "Running"
        code, output = await pod(job, configmap, tmp_path)
        assert code == 0, output
        await cluster.finish_job(job["metadata"]["name"])
        status = await ready(cluster, "BM25Index", "wiki-sample")
        assert status["outputs"]["documents"] == 10_033
        uris[namespace] = status["outputs"]["uri"]
    assert uris["ml"].endswith(f"/ml/bm25index/wiki-sample/{status['specHash']}")
    assert uris["team-b"].endswith(f"/team-b/bm25index/wiki-sample/{status['specHash']}")
    assert len(list((tmp_path / "store").glob("*/bm25index/wiki-sample/*/_manifest.json"))) == 2


async def test_a_changed_input_reruns_the_dependent_under_a_new_identity(
    cluster: Cluster, tmp_path: Path
) -> None:
    first = await committed_synthesis(cluster, tmp_path / "store")
    index = cluster.status("BM25Index", "wiki-sample")["specHash"]
    assert first["inputs"] == {
        "BM25Index/wiki-sample": index,
        "TopicDebate/science": first["inputs"]["TopicDebate/science"],
    }
    assert first["progress"]["summary"] == "1/1"

    edited = sample("bm25index")
    edited["spec"]["minChars"] = 50
    await cluster.patch("BM25Index", "wiki-sample", {"spec": edited["spec"]})
    await cluster.eventually(
        lambda: cluster.status("BM25Index", "wiki-sample")["specHash"] != index, what="new index"
    )
    # while the new index runs, the output made from the old one stays Ready
    await asyncio.sleep(0.5)
    assert cluster.status("SynthesisRun", "science-16k")["phase"] == "Succeeded"
    new_job, _ = await job_of(cluster, "BM25Index", "wiki-sample")
    await cluster.finish_job(new_job["metadata"]["name"])
    new_index = (await ready(cluster, "BM25Index", "wiki-sample"))["specHash"]

    await cluster.eventually(
        lambda: cluster.status("SynthesisRun", "science-16k")["specHash"] != first["specHash"],
        what="a new identity for the SynthesisRun",
    )
    status = cluster.status("SynthesisRun", "science-16k")
    assert status["inputs"]["BM25Index/wiki-sample"] == new_index
    job, configmap = await job_of(cluster, "SynthesisRun", "science-16k")
    assert job["metadata"]["name"].endswith(status["specHash"][:8])
    assert new_index in configmap["data"]["resource.yaml"]  # the pods read exactly that index
    await cluster.eventually(
        lambda: cluster.status("SynthesisRun", "science-16k")["phase"] == "Running"
    )
    running = cluster.status("SynthesisRun", "science-16k")
    assert "samples" not in running["outputs"], "no count of the old output survives"
    assert running["progress"]["summary"] == "0/1"

    old = first["specHash"][:8]
    assert [j for j in cluster.all("Job") if j["metadata"]["name"].endswith(old)], (
        "the old identity's Job stays until the new one has succeeded"
    )
    commit(tmp_path / "store", "ml", "SynthesisRun", "science-16k", status["specHash"], samples=2)
    await cluster.finish_job(job["metadata"]["name"])
    await cluster.eventually(
        lambda: cluster.status("SynthesisRun", "science-16k")["outputs"].get("samples") == 2
    )
    await cluster.eventually(
        lambda: (
            not [
                j
                for j in cluster.all("Job")
                if j["metadata"]["name"].endswith(first["specHash"][:8])
            ]
        ),
        what="the old identity's children removed",
    )


async def test_a_spec_edit_replaces_the_status_whole(cluster: Cluster, tmp_path: Path) -> None:
    first = await committed_synthesis(cluster, tmp_path / "store")
    assert first["outputs"]["samples"] == 3 and first["progress"]["summary"] == "1/1"
    edited = sample("synthesisrun")
    edited["spec"]["samplesPerTopic"] = 2
    await cluster.patch("SynthesisRun", "science-16k", {"spec": edited["spec"]})
    await cluster.eventually(
        lambda: cluster.status("SynthesisRun", "science-16k")["phase"] == "Running"
    )
    status = cluster.status("SynthesisRun", "science-16k")
    assert status["specHash"] != first["specHash"]
    assert set(status["outputs"]) == {"uri"}, status["outputs"]
    assert status["progress"] == {"done": 0, "total": 1, "unit": "shards", "summary": "0/1"}


async def test_a_committed_output_stays_ready_when_a_ref_is_deleted(
    cluster: Cluster, tmp_path: Path
) -> None:
    first = await committed_synthesis(cluster, tmp_path / "store")
    await cluster.delete("BM25Index", "wiki-sample")
    await cluster.eventually(
        lambda: (
            cluster.condition("SynthesisRun", "science-16k", "RefsPresent").get("status") == "False"
        ),
        what="RefsPresent=False",
    )
    status = cluster.status("SynthesisRun", "science-16k")
    assert status["phase"] == "Succeeded" and status["specHash"] == first["specHash"]
    assert (
        "BM25Index/wiki-sample"
        in cluster.condition("SynthesisRun", "science-16k", "RefsPresent")["message"]
    )
    # and what depends on it is not blocked
    await cluster.apply(sample("trainingjob"))
    await cluster.eventually(lambda: cluster.all("PyTorchJob"), what="the TrainingJob's PyTorchJob")


async def test_an_empty_output_fails_the_resource_with_reason_empty_output(
    cluster: Cluster, tmp_path: Path
) -> None:
    data = write_jsonl(
        tmp_path / "c.jsonl", [{"id": str(i), "body": "no text field"} for i in range(4)]
    )
    import yaml

    document = yaml.safe_load(manifest_yaml("wrong-field", str(data)))
    await cluster.apply(document)
    job, configmap = await job_of(cluster, "BM25Index", "wrong-field")
    code, output = await pod(job, configmap, tmp_path)
    assert code == 1 and "empty output, 0 documents" in output
    await cluster.finish_job(job["metadata"]["name"], failed=True)
    failed = await cluster.eventually(
        lambda: (
            cluster.condition("BM25Index", "wrong-field", "Failed").get("status") == "True"
            and cluster.condition("BM25Index", "wrong-field", "Failed")
        ),
        what="Failed",
    )
    assert failed["reason"] == "EmptyOutput"
    assert "4 skipped as missing_text" in failed["message"]
    assert "documents" not in cluster.status("BM25Index", "wrong-field")["outputs"]
