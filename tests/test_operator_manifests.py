"""The operator's own deployment (manifests/rbac, manifests/operator) as a cluster receives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import REPO

K8S_VERSION = "1.30"
FILES = sorted((REPO / "manifests" / "rbac").glob("*.yaml")) + sorted(
    (REPO / "manifests" / "operator").glob("*.yaml")
)


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_deployment_manifests_validate_against_kubernetes(path: Path) -> None:
    for document in documents(path):
        if document["apiVersion"].startswith("kopf.dev/"):
            continue  # kopf's peering object: its CRD (validated here) is in the same file
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_operator_runs_hardened_with_a_liveness_probe_and_peering() -> None:
    (deployment,) = [
        d
        for d in documents(REPO / "manifests/operator/deployment.yaml")
        if d["kind"] == "Deployment"
    ]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["command"]
    assert "--peering=litelong" in container["command"]
    peering = [
        d
        for d in documents(REPO / "manifests/operator/peering.yaml")
        if d["kind"] == "ClusterKopfPeering"
    ]
    assert [p["metadata"]["name"] for p in peering] == ["litelong"]


def test_the_operator_is_never_granted_secrets() -> None:
    (role,) = [
        d for d in documents(REPO / "manifests/rbac/rbac.yaml") if d["kind"] == "ClusterRole"
    ]
    resources = {resource for rule in role["rules"] for resource in rule["resources"]}
    assert "secrets" not in resources and "*" not in resources
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert "*" not in verbs and "escalate" not in verbs and "bind" not in verbs


def test_the_shipped_config_is_what_the_operator_loads() -> None:
    from litelong_operator.config import OperatorConfig

    (configmap,) = documents(REPO / "manifests/operator/config.yaml")
    config = OperatorConfig.model_validate(yaml.safe_load(configmap["data"]["operator.yaml"]))
    assert config.store.pvc is not None and config.store.pvc.claim_name == "litelong-store"
