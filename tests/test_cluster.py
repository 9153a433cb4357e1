"""Against a real Kubernetes API server (set KUBECONFIG); skipped without one.

The server is the judge of what a CRD may contain: these dry-run creates ask it, without
changing the cluster, whether it accepts the generated CRDs and, once they are installed,
the samples with strict field validation (no unknown or pruned fields).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from litelong.api.crd import all_crds

from .conftest import REPO, SAMPLES

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not os.environ.get("KUBECONFIG"),
        reason="needs a Kubernetes API server: set KUBECONFIG to run these",
    ),
]


@pytest.fixture(scope="module")
def api_client():  # type: ignore[no-untyped-def]
    kubernetes = pytest.importorskip("kubernetes")
    kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def test_server_accepts_the_crds(api_client) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    for document in all_crds():
        extensions.create_custom_resource_definition(document, dry_run="All")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_server_accepts_the_samples_strictly(api_client, path: Path) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    installed = {crd.metadata.name for crd in extensions.list_custom_resource_definition().items}
    custom = client.CustomObjectsApi(api_client)
    for document in yaml.safe_load_all(path.read_text()):
        crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == document["kind"])
        if crd["metadata"]["name"] not in installed:
            pytest.skip("install the CRDs first: litelong crds | kubectl apply -f -")
        custom.create_namespaced_custom_object(
            "litelong.io",
            "v1alpha1",
            os.environ.get("LITELONG_TEST_NAMESPACE", "default"),
            crd["spec"]["names"]["plural"],
            document,
            dry_run="All",
            field_validation="Strict",
        )


def test_the_operator_creates_the_rendered_children_on_a_real_server(  # type: ignore[no-untyped-def]
    api_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf in-process against the real server: a BM25Index gets its ConfigMap and Job, as
    rendered, with status Running; deleting it leaves the children to the garbage collector."""
    import asyncio

    from kubernetes import client

    pytest.importorskip("kopf")
    from litelong_operator.config import load_config
    from litelong_operator.render import owner_of, render

    from .operator_harness import running_operator

    namespace = os.environ.get("LITELONG_TEST_NAMESPACE", "default")
    monkeypatch.setenv("LITELONG_METRICS_PORT", "0")
    (tmp_path / "operator.yaml").write_text(f"store: {{uri: 'file://{tmp_path}/store'}}\n")
    monkeypatch.setenv("LITELONG_OPERATOR_CONFIG", str(tmp_path / "operator.yaml"))
    custom = client.CustomObjectsApi(api_client)
    batch = client.BatchV1Api(api_client)
    document = yaml.safe_load((REPO / "manifests/samples/bm25index.yaml").read_text())
    document["metadata"]["name"] = "litelong-operator-test"

    async def scenario() -> dict:  # type: ignore[type-arg]
        async with running_operator():
            created = custom.create_namespaced_custom_object(
                "litelong.io", "v1alpha1", namespace, "bm25indexes", document
            )
            try:
                job_name = render(owner_of(created), load_config())[-1]["metadata"]["name"]
                for _ in range(200):
                    await asyncio.sleep(0.1)
                    jobs = batch.list_namespaced_job(namespace).items
                    if any(job.metadata.name == job_name for job in jobs):
                        break
                job = batch.read_namespaced_job(job_name, namespace)
                await asyncio.sleep(1)
                return {
                    "job": api_client.sanitize_for_serialization(job),
                    "resource": custom.get_namespaced_custom_object(
                        "litelong.io",
                        "v1alpha1",
                        namespace,
                        "bm25indexes",
                        "litelong-operator-test",
                    ),
                }
            finally:
                custom.delete_namespaced_custom_object(
                    "litelong.io", "v1alpha1", namespace, "bm25indexes", "litelong-operator-test"
                )

    seen = asyncio.run(scenario())
    labels = seen["job"]["metadata"]["labels"]
    assert labels["litelong.io/spec-hash"] == seen["resource"]["status"]["specHash"]
    assert (
        seen["job"]["metadata"]["ownerReferences"][0]["uid"] == seen["resource"]["metadata"]["uid"]
    )
    assert seen["resource"]["status"]["phase"] == "Running"
