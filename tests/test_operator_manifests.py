"""The operator's own deployment (manifests/rbac, manifests/operator) as a cluster receives it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
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
            continue  # kopf's peering object: its CRD is in manifests/crds/
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


# --- the plain install, in kubectl's order -------------------------------------------------

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _built_in(group: str) -> bool:
    return group == "" or group.endswith(".k8s.io") or group in {"apps", "batch", "policy"}


@dataclass
class ApiServerState:
    """What a fresh cluster knows as the documented commands run: namespaces, and the kinds
    whose CRDs are served (Established), with their scope."""

    namespaces: set[str] = field(default_factory=lambda: {"default", "kube-system"})
    served: dict[tuple[str, str], str] = field(default_factory=dict)
    applied_crds: dict[tuple[str, str], str] = field(default_factory=dict)
    #: namespaces holding the ServiceAccount stage pods run as
    workers: set[str] = field(default_factory=set)


def _files(paths: list[str]) -> list[Path]:
    """`-f` arguments as kubectl reads them: in the order given, a folder's files by name."""
    files = []
    for given in paths:
        path = Path(given) if Path(given).is_absolute() else REPO / given
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml", ".json"})
        else:
            files.append(path)
    return files


def _crd_key(crd: dict[str, Any]) -> tuple[tuple[str, str], str]:
    return (crd["spec"]["group"], crd["spec"]["names"]["kind"]), crd["spec"]["scope"]


def apply(state: ApiServerState, paths: list[str], namespace: str | None) -> list[str]:
    """`kubectl apply`: every object is mapped to its API before any is sent, then they are
    created in order. Returns what a real server would refuse."""
    objects = [d for path in _files(paths) for d in documents(path)]
    problems = []
    for obj in objects:
        key = (_group(obj["apiVersion"]), obj["kind"])
        if not _built_in(key[0]) and key not in state.served:
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: kind not served yet")
    for obj in objects:
        key = (_group(obj["apiVersion"]), obj["kind"])
        scope = "Cluster" if obj["kind"] in CLUSTER_SCOPED else state.served.get(key, "Namespaced")
        if scope == "Namespaced":
            where = obj["metadata"].get("namespace") or namespace or "default"
            if where not in state.namespaces:
                problems.append(f"{obj['kind']} {obj['metadata']['name']}: no namespace {where}")
            if key[0] == "litelong.io" and where not in state.workers:
                problems.append(f"{obj['kind']} {obj['metadata']['name']}: no worker in {where}")
            if obj["kind"] == "ServiceAccount" and obj["metadata"]["name"] == "litelong-worker":
                state.workers.add(where)
        if obj["kind"] == "Namespace":
            state.namespaces.add(obj["metadata"]["name"])
        if obj["kind"] == "CustomResourceDefinition":
            crd, crd_scope = _crd_key(obj)
            state.applied_crds[crd] = crd_scope
    return problems


def wait_established(state: ApiServerState, paths: list[str]) -> list[str]:
    problems = []
    for crd in (d for path in _files(paths) for d in documents(path)):
        key, scope = _crd_key(crd)
        if key not in state.applied_crds:
            problems.append(f"waits for {crd['metadata']['name']}, never applied")
        state.served[key] = scope
    return problems


def run_commands(commands: list[str], state: ApiServerState | None = None) -> list[str]:
    """Play kubectl apply / kubectl wait (and helm install's CRDs and namespace) in order."""
    state = state or ApiServerState()
    problems: list[str] = []
    variables: dict[str, str] = {}
    for command in commands:
        if assignment := re.fullmatch(r"(\w+)=(\S+)", command.strip()):
            variables[assignment[1]] = assignment[2]
            continue
        words = [
            re.sub(r"\$(\w+)", lambda m: variables.get(m[1], m[0]), w) for w in shlex.split(command)
        ]
        namespace = next(
            (words[i + 1] for i, w in enumerate(words) if w in {"-n", "--namespace"}), None
        )
        paths = [words[i + 1] for i, w in enumerate(words) if w == "-f"]
        if words[:2] == ["helm", "install"]:
            if "--create-namespace" in words and namespace:
                state.namespaces.add(namespace)
            state.workers.add(namespace or "default")  # the chart's worker account
            for crd in (d for p in _files(["charts/litelong/crds"]) for d in documents(p)):
                key, scope = _crd_key(crd)
                state.applied_crds[key] = state.served[key] = scope
        elif words[0] == "kubectl" and "apply" in words and paths:
            problems += apply(state, paths, namespace)
        elif words[0] == "kubectl" and "wait" in words and "--for=condition=Established" in words:
            problems += wait_established(state, paths)
    return problems


def documented_commands(text: str) -> list[str]:
    """Shell commands of fenced bash blocks and `kubectl`/`helm` inline code, in order."""
    found = []
    for block, inline in re.findall(r"```bash\n(.*?)```|`((?:kubectl|helm) [^`]+)`", text, re.S):
        if inline:
            found.append(inline)
            continue
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


INSTALL_DOCS = ["README.md", "docs/operator.md", "docs/kubernetes.md"]


@pytest.mark.parametrize("doc", INSTALL_DOCS)
def test_the_documented_install_succeeds_on_a_fresh_cluster_the_first_time(doc: str) -> None:
    commands = documented_commands((REPO / doc).read_text())
    assert any("apply" in c for c in commands)
    assert run_commands(commands) == []


def test_the_apply_order_check_refuses_a_crd_and_its_objects_in_one_apply() -> None:
    one_shot = "kubectl apply -f manifests/crds/ -f manifests/rbac/ -f manifests/operator/"
    assert run_commands([one_shot]) == ["ClusterKopfPeering litelong: kind not served yet"]


def test_the_apply_order_check_refuses_objects_before_their_namespace(tmp_path: Path) -> None:
    late = tmp_path / "late-namespace.yaml"
    late.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: team}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"
    )
    assert run_commands([f"kubectl apply -f {late}"]) == ["ServiceAccount a: no namespace team"]
