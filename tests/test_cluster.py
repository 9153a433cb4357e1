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

from .conftest import REPO

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


@pytest.mark.parametrize(
    "path", sorted((REPO / "manifests" / "samples").glob("*.yaml")), ids=lambda p: p.name
)
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
